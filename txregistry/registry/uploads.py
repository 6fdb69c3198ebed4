# -*- test-case-name: tests.registry.test_store -*-
"""
Blob uploads: resumable, chunked, verified.

An upload's bytes live in storage (C{_uploads/<id>/data}), so an upload
survives a restart of the registry and goes on through any instance on
the same storage.  The running sha256 of those bytes is kept in memory
between chunks; a chunk arriving where it is missing or stale (after a
restart, on another instance) is appended unhashed, and the hash is
computed from storage once, at commit (so is a sha512's).  Reading an
upload back between chunks would cost its size per chunk, and on an
object store it completes the store's multipart upload.  Each
chunk is appended by a storage writer that is committed only when the
whole chunk arrived, so a dropped connection leaves the upload as it was
before that chunk.

L{UploadArea} holds what every repository's uploads share (the running
hashes, a lock per upload); L{StoredUpload} is one upload as an
L{IBlobUpload}, and the writers here are the L{IBlobWriter}s that take a
chunk, or a whole blob, through the digest into storage.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from txregistry.errors import BlobUploadInvalid, BlobUploadUnknown, DigestInvalid, RangeMismatch
from txregistry.interfaces import BlobDescriptor, IBlobUpload, IBlobWriter
from txregistry.registry import layout
from txregistry.registry.blobs import BlobContent, onHashingPool
from txregistry.registry.cache import BoundedCache
from txregistry.registry.digest import Digest, DigestingConsumer
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageDriver, IStorageWriter

_UPLOAD_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

T = TypeVar("T")
_Key = tuple[str, str]


def newUploadID(now: float) -> str:
    """
    A fresh upload id: a version 7 UUID, whose first 48 bits are the time
    it was made (milliseconds), so an upload's start time needs no I/O.
    """
    value = (int(now * 1000) & ((1 << 48) - 1)) << 80
    value |= int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def startedAt(uploadID: str) -> float | None:
    """
    When the upload C{uploadID} began, if its id says (see L{newUploadID}).
    """
    try:
        parsed = uuid.UUID(uploadID)
    except ValueError:
        return None
    if parsed.version != 7:
        return None
    return (parsed.int >> 80) / 1000.0


class UploadArea:
    """
    The uploads of every repository.

    @ivar maxHashStates: how many running hashes to keep in memory; an
        evicted one is recomputed from storage when its upload goes on.
    """

    maxHashStates = 4096

    def __init__(self, driver: IStorageDriver, content: BlobContent, clock: IReactorTime) -> None:
        self._driver = driver
        self._content = content
        self._clock = clock
        self._hashes: BoundedCache[_Key, tuple[int, Any]] = BoundedCache(
            self.maxHashStates, name="uploadhashes"
        )
        self._locks: dict[_Key, DeferredLock] = {}

    # Bookkeeping

    def path(self, key: _Key) -> str:
        name, uploadID = key
        if not _UPLOAD_ID.match(uploadID):
            raise BlobUploadUnknown()
        return layout.uploadData(name, uploadID)

    async def lock(self, key: _Key) -> Callable[[], None]:
        """
        Take the upload's lock.

        @return: the function that releases it.
        """
        lock = self._locks.setdefault(key, DeferredLock())
        await lock.acquire()

        def release() -> None:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(key, None)

        return release

    async def locked(self, key: _Key, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        release = await self.lock(key)
        try:
            return await work()
        finally:
            release()

    async def size(self, key: _Key) -> int:
        try:
            info = await self._driver.stat(self.path(key))
        except PathNotFoundError:
            raise BlobUploadUnknown() from None
        return info.size

    def rememberHash(self, key: _Key, size: int, hasher: Any) -> None:
        self._hashes.put(key, (size, hasher))

    def forgetHash(self, key: _Key) -> None:
        self._hashes.pop(key)

    def knownHasher(self, key: _Key, size: int) -> Any:
        """
        A copy of the running sha256 of the first C{size} bytes of the
        upload, if this process has it (an empty upload's is new), or
        L{None}.
        """
        if size == 0:
            return hashlib.sha256()
        known = self._hashes.get(key)
        if known is not None and known[0] == size:
            return known[1].copy()
        return None

    async def hasher(self, key: _Key, size: int, algorithm: str = "sha256") -> Any:
        """
        The running hash of the first C{size} bytes of the upload: the one
        kept in memory for sha256, else computed from storage.
        """
        known = self._hashes.get(key) if algorithm == "sha256" else None
        if known is not None and known[0] == size:
            return known[1].copy()
        storedSize, hasher = await self._content.hashStored(self.path(key), algorithm)
        if storedSize != size:
            raise BlobUploadInvalid("upload changed while it was read")
        return hasher

    async def writer(self, key: _Key, append: bool) -> IStorageWriter:
        return await self._driver.writer(self.path(key), append=append)

    async def store(self, key: _Key, digest: Digest, hasher: Any) -> None:
        """
        Make the upload the blob C{digest} in its repository if C{hasher}
        (its content's hash) matches; either way, the upload is gone after.
        """
        name, uploadID = key
        actual = hasher.hexdigest()
        if actual != digest.encoded:
            await self.discard(key)
            raise DigestInvalid(
                digest=str(digest), actual=f"{digest.algorithm}:{actual}"
            )
        await self._content.adopt(self.path(key), digest)
        await self.discard(key)
        await self._content.link(name, digest)

    async def discard(self, key: _Key) -> None:
        try:
            await self._driver.delete(layout.uploadDirectory(*key))
        except PathNotFoundError:
            pass

    # What a repository's blob store asks for

    def create(self, name: str) -> Deferred[IBlobUpload]:
        return Deferred.fromCoroutine(self._create(name))

    async def _create(self, name: str) -> IBlobUpload:
        uploadID = newUploadID(self._clock.seconds())
        await self._driver.putContent(layout.uploadData(name, uploadID), b"")
        return StoredUpload(self, name, uploadID, 0)

    def resume(self, name: str, uploadID: str) -> Deferred[IBlobUpload]:
        return Deferred.fromCoroutine(self._resume(name, uploadID))

    async def _resume(self, name: str, uploadID: str) -> IBlobUpload:
        size = await self.size((name, uploadID))
        return StoredUpload(self, name, uploadID, size)

    def whole(self, name: str, digest: Digest) -> Deferred[IBlobWriter]:
        return Deferred.fromCoroutine(self._whole(name, digest))

    async def _whole(self, name: str, digest: Digest) -> IBlobWriter:
        key = (name, newUploadID(self._clock.seconds()))
        hasher = hashlib.new(digest.algorithm)
        storage = await self.writer(key, append=False)

        async def finish(size: int) -> int:
            await self.store(key, digest, hasher)
            return size

        return DigestingWriter(storage, hasher, 0, finish)

    async def purge(self, olderThan: float, dryRun: bool) -> list[str]:
        """
        See L{txregistry.interfaces.INamespace.purgeUploads}.
        """
        try:
            entries = await self._driver.walk(layout.REPOSITORIES)
        except PathNotFoundError:
            return []
        stale = []
        for entry in entries:
            key = layout.parseUploadData(entry.path)
            if key is not None and not entry.isDirectory and entry.modified < olderThan:
                stale.append(key)
        purged = []
        for key in stale:
            if not dryRun:
                try:
                    await self._driver.delete(layout.uploadDirectory(*key))
                except PathNotFoundError:
                    continue
            purged.append("/".join(key))
        return purged


@implementer(IBlobUpload)
class StoredUpload:
    """
    One upload, as it was when looked up.
    """

    def __init__(self, area: UploadArea, name: str, uploadID: str, size: int) -> None:
        self._area = area
        self._key = (name, uploadID)
        self.id = uploadID
        self.size = size
        self.startedAt = startedAt(uploadID)

    def append(self, start: int | None = None, length: int | None = None) -> Deferred[IBlobWriter]:
        return Deferred.fromCoroutine(self._append(start))

    async def _append(self, start: int | None) -> IBlobWriter:
        key = self._key
        release = await self._area.lock(key)
        try:
            size = await self._area.size(key)
            if start is not None and start != size:
                raise RangeMismatch(f"chunk starts at {start}, upload has {size} bytes", size)
            hasher = self._area.knownHasher(key, size)
            storage = await self._area.writer(key, append=True)
        except BaseException:
            release()
            raise

        async def finish(newSize: int) -> int:
            # Remembered only when it covers exactly the stored bytes: not
            # when this chunk was unhashed, nor when another writer's
            # append landed too.
            if hasher is not None and newSize == writer.seen:
                self._area.rememberHash(key, newSize, hasher)
            else:
                self._area.forgetHash(key)
            self.size = newSize
            return newSize

        writer = DigestingWriter(storage, hasher if hasher is not None else _Unhashed(), size,
                                 finish, release)
        return writer

    def commit(self, digest: Digest) -> Deferred[BlobDescriptor]:
        return Deferred.fromCoroutine(self._area.locked(self._key, lambda: self._commit(digest)))

    async def _commit(self, digest: Digest) -> BlobDescriptor:
        key = self._key
        size = await self._area.size(key)
        hasher = await self._area.hasher(key, size, digest.algorithm)
        self._area.forgetHash(key)
        await self._area.store(key, digest, hasher)
        return BlobDescriptor(digest, size)

    def cancel(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._area.locked(self._key, self._cancel))

    async def _cancel(self) -> None:
        await self._area.size(self._key)
        self._area.forgetHash(self._key)
        await self._area.discard(self._key)


class _Unhashed:
    """
    The hash of a chunk appended where the upload's running hash is not
    known: nothing, as the commit hashes the stored bytes.
    """

    def update(self, data: bytes) -> None:
        pass


@implementer(IBlobWriter)
class DigestingWriter:
    """
    Bytes through a hash into a storage writer (an L{IBlobWriter}).

    @param finish: called with the committed size once the storage writer
        committed; its result is L{close}'s.
    @param release: called once, when the writer is closed or aborted (an
        upload's lock).
    """

    def __init__(
        self,
        storage: IStorageWriter,
        hasher: Any,
        size: int,
        finish: Callable[[int], Coroutine[Any, Any, int]],
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self._storage = storage
        self._digesting = DigestingConsumer(storage, hasher, size, run=onHashingPool)
        self._finish = finish
        self._release: Callable[[], None] | None = release

    @property
    def seen(self) -> int:
        """
        The size the upload had when opened plus the bytes written since.
        """
        return self._digesting.size

    # IConsumer

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._digesting.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._digesting.unregisterProducer()

    def write(self, data: bytes) -> None:
        self._digesting.write(data)

    # IBlobWriter

    def close(self) -> Deferred[int]:
        return Deferred.fromCoroutine(self._close())

    async def _close(self) -> int:
        try:
            try:
                await self._digesting.idle()
            except BaseException:
                await self._storage.cancel()
                raise
            return await self._finish(await self._storage.commit())
        finally:
            self._done()

    def abort(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._abort())

    async def _abort(self) -> None:
        try:
            await self._storage.cancel()
        finally:
            self._done()

    def _done(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()
