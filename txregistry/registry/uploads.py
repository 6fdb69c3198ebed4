"""
Blob uploads: resumable, chunked, verified.

An upload's bytes live in storage (C{_uploads/<id>/data}), so an upload
survives a restart of the registry.  The running sha256 of those bytes is
kept in memory between chunks; when it is missing or stale (after a
restart, or for a sha512 digest) it is recomputed from storage.  Each
chunk is appended by a storage writer that is committed only when the
whole chunk arrived, so a dropped connection leaves the upload as it was
before that chunk.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import OrderedDict
from typing import Any

from twisted.internet.defer import DeferredLock

from txregistry.api.errors import RegistryError
from txregistry.registry import layout
from txregistry.registry.blobs import BlobStore
from txregistry.registry.digest import Digest, DigestingConsumer
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageDriver, IStorageWriter
from txregistry.web.body import RequestBody

_UPLOAD_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def _unknown() -> RegistryError:
    return RegistryError("BLOB_UPLOAD_UNKNOWN")


class Uploads:
    """
    The uploads of every repository.

    @ivar maxHashStates: how many running hashes to keep in memory; an
        evicted one is recomputed from storage when its upload goes on.
    """

    maxHashStates = 4096

    def __init__(self, driver: IStorageDriver, blobs: BlobStore) -> None:
        self._driver = driver
        self._blobs = blobs
        self._hashes: OrderedDict[tuple[str, str], tuple[int, Any]] = OrderedDict()
        self._locks: dict[tuple[str, str], DeferredLock] = {}

    # Bookkeeping

    def _path(self, name: str, uploadID: str) -> str:
        if not _UPLOAD_ID.match(uploadID):
            raise _unknown()
        return layout.uploadData(name, uploadID)

    def _rememberHash(self, key: tuple[str, str], size: int, hasher: Any) -> None:
        self._hashes[key] = (size, hasher)
        self._hashes.move_to_end(key)
        while len(self._hashes) > self.maxHashStates:
            self._hashes.popitem(last=False)

    async def _locked(self, key: tuple[str, str], f: Any, *args: Any) -> Any:
        lock = self._locks.setdefault(key, DeferredLock())
        await lock.acquire()
        try:
            return await f(*args)
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(key, None)

    async def _sha256(self, key: tuple[str, str], path: str, size: int) -> Any:
        """
        The running sha256 of the first C{size} bytes of the upload.
        """
        known = self._hashes.get(key)
        if known is not None and known[0] == size:
            return known[1].copy()
        storedSize, hasher = await self._blobs.hashStored(path, "sha256")
        if storedSize != size:
            raise RegistryError("BLOB_UPLOAD_INVALID", "upload changed while it was read")
        return hasher

    # Operations

    async def start(self, name: str) -> str:
        """
        Begin an upload into repository C{name}.

        @return: its id.
        """
        uploadID = str(uuid.uuid4())
        await self._driver.putContent(layout.uploadData(name, uploadID), b"")
        return uploadID

    async def size(self, name: str, uploadID: str) -> int:
        """
        @raise RegistryError: C{BLOB_UPLOAD_UNKNOWN}.
        """
        try:
            info = await self._driver.stat(self._path(name, uploadID))
        except PathNotFoundError:
            raise _unknown() from None
        return info.size

    def append(
        self, name: str, uploadID: str, body: RequestBody, start: int | None = None
    ) -> Any:
        """
        Stream C{body} onto the end of the upload.

        @param start: the first byte's offset as the client declared it
            (C{Content-Range}); it must be the upload's current size.
        @return: (a coroutine of) the upload's new size.
        @raise RegistryError: C{BLOB_UPLOAD_UNKNOWN}, or C{RANGE_INVALID}
            (416) for a chunk out of order.
        """
        key = (name, uploadID)
        return self._locked(key, self._append, key, body, start)

    async def _append(self, key: tuple[str, str], body: RequestBody, start: int | None) -> int:
        name, uploadID = key
        path = self._path(name, uploadID)
        size = await self.size(name, uploadID)
        if start is not None and start != size:
            raise RegistryError(
                "RANGE_INVALID",
                f"chunk starts at {start}, upload has {size} bytes",
                detail={"size": size},
            )
        hasher = await self._sha256(key, path, size)
        writer = await self._driver.writer(path, append=True)
        newSize = await _receive(body, writer, hasher, size)
        self._rememberHash(key, newSize, hasher)
        return newSize

    async def complete(
        self, name: str, uploadID: str, digest: Digest, body: RequestBody | None = None
    ) -> int:
        """
        Append C{body} (a final chunk), check the upload against C{digest},
        and make it the blob C{digest} in repository C{name}.

        @return: the blob's size.
        @raise RegistryError: C{DIGEST_INVALID} (and the upload is gone) if
            the content does not match.
        """
        key = (name, uploadID)
        return await self._locked(key, self._complete, key, digest, body)

    async def _complete(
        self, key: tuple[str, str], digest: Digest, body: RequestBody | None
    ) -> int:
        name, uploadID = key
        path = self._path(name, uploadID)
        if body is not None and (body.length is None or body.length > 0):
            size = await self._append(key, body, None)
        else:
            size = await self.size(name, uploadID)
        if digest.algorithm == "sha256":
            hasher = await self._sha256(key, path, size)
        else:
            _, hasher = await self._blobs.hashStored(path, digest.algorithm)
        self._hashes.pop(key, None)
        await self._store(name, uploadID, digest, hasher)
        return size

    async def _store(self, name: str, uploadID: str, digest: Digest, hasher: Any) -> None:
        """
        Make the upload the blob C{digest} in C{name} if C{hasher} (its
        content's hash) matches; either way, the upload is gone after.
        """
        actual = hasher.hexdigest()
        if actual != digest.encoded:
            await self._discard(name, uploadID)
            raise RegistryError(
                "DIGEST_INVALID",
                detail={"digest": str(digest), "actual": f"{digest.algorithm}:{actual}"},
            )
        await self._blobs.adopt(layout.uploadData(name, uploadID), digest)
        await self._discard(name, uploadID)
        await self._blobs.link(name, digest)

    async def monolithic(self, name: str, digest: Digest, body: RequestBody) -> int:
        """
        Store C{body} as blob C{digest} in one request (C{POST ?digest=}).
        """
        uploadID = str(uuid.uuid4())
        path = layout.uploadData(name, uploadID)
        hasher = hashlib.new(digest.algorithm)
        writer = await self._driver.writer(path)
        size = await _receive(body, writer, hasher)
        await self._store(name, uploadID, digest, hasher)
        return size

    async def cancel(self, name: str, uploadID: str) -> None:
        """
        @raise RegistryError: C{BLOB_UPLOAD_UNKNOWN}.
        """
        key = (name, uploadID)
        await self._locked(key, self._cancel, name, uploadID)

    async def _cancel(self, name: str, uploadID: str) -> None:
        await self.size(name, uploadID)
        self._hashes.pop((name, uploadID), None)
        await self._discard(name, uploadID)

    async def _discard(self, name: str, uploadID: str) -> None:
        try:
            await self._driver.delete(f"{layout.uploadsDirectory(name)}/{uploadID}")
        except PathNotFoundError:
            pass


async def _receive(body: RequestBody, writer: IStorageWriter, hasher: Any, size: int = 0) -> int:
    """
    Stream C{body} through C{hasher} into C{writer} and commit it; if the
    body does not arrive whole, the writer is cancelled.

    @return: the committed size.
    """
    digesting = DigestingConsumer(writer, hasher, size)
    try:
        await body.deliverTo(digesting)
        await digesting.idle()
    except BaseException:
        await writer.cancel()
        raise
    return await writer.commit()
