# -*- test-case-name: tests.registry.test_store -*-
"""
Blobs: content stored once, by digest, and linked into the repositories
that own it.  A blob is visible through a repository only while that
repository links it.

L{BlobContent} is the content-addressed store every repository shares;
L{RepositoryBlobs} is one repository's L{IBlobStore} over it.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer
from zope.interface import alsoProvides, implementer

from txregistry.errors import BlobUnknown
from txregistry.interfaces import (
    BlobDescriptor,
    IBlobReader,
    IBlobStore,
    IBlobUpload,
    IBlobWriter,
)
from txregistry.registry import layout
from txregistry.registry.digest import Digest, DigestingConsumer
from txregistry.registry.names import isValidName
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageDriver, IStorageReader
from txregistry.storage.middleware.forwarding import directURL

if TYPE_CHECKING:
    from txregistry.registry.uploads import UploadArea


class BlobContent:
    """
    Content-addressed blob storage over a driver, and the links that put
    blobs in repositories.

    @param leases: whether writes that come to depend on a blob touch its
        lease, as online garbage collection needs
        (L{txregistry.registry.collection}).
    """

    def __init__(self, driver: IStorageDriver, leases: bool = False) -> None:
        self._driver = driver
        self.leases = leases

    async def touch(self, digest: Digest) -> None:
        """
        Say that a write depends on blob C{digest} now (with leases on).
        """
        if self.leases:
            await self._driver.putContent(layout.blobLease(digest), b"")

    async def touchIfThere(self, digest: Digest) -> bool:
        """
        L{touch}, for a write that goes on without the blob if a
        collection is removing it meanwhile.

        @return: whether the blob is usable after the touch.
        """
        try:
            await self.touch(digest)
        except (OSError, PathNotFoundError):
            if await self.usable(digest):
                raise
            return False
        return await self.usable(digest)

    async def usable(self, digest: Digest) -> bool:
        """
        Whether blob C{digest} has data that no collection has condemned.

        The marker is looked for first, the data after: a collection
        removes the data before the marker, so a check in the other order
        could see the data, then (the collection having removed both
        meanwhile) no marker, and call a removed blob usable.
        """
        if self.leases:
            try:
                await self._driver.stat(layout.blobCondemned(digest))
            except PathNotFoundError:
                pass
            else:
                return False
        return await self.size(digest) is not None

    async def size(self, digest: Digest) -> int | None:
        """
        The size of the stored blob, or L{None} if no repository could have it.
        """
        try:
            info = await self._driver.stat(layout.blobData(digest))
        except PathNotFoundError:
            return None
        return info.size

    async def sizeIn(self, name: str, digest: Digest) -> int | None:
        """
        The blob's size if repository C{name} links it, else L{None}.
        """
        try:
            await self._driver.stat(layout.layerLink(name, digest))
        except PathNotFoundError:
            return None
        return await self.size(digest)

    async def linkedSizes(self, name: str) -> dict[Digest, int]:
        """
        The size of each blob repository C{name} links (whose content is
        still there).
        """
        try:
            entries = await self._driver.walk(layout.layersDirectory(name))
        except PathNotFoundError:
            return {}
        sizes: dict[Digest, int] = {}
        for entry in entries:
            parts = entry.path.rsplit("/", 3)
            if entry.isDirectory or len(parts) != 4 or parts[3] != "link":
                continue
            try:
                digest = Digest.parse(f"{parts[1]}:{parts[2]}")
            except ValueError:
                continue
            size = await self.size(digest)
            if size is not None:
                sizes[digest] = size
        return sizes

    async def link(self, name: str, digest: Digest) -> None:
        """
        Make the stored blob C{digest} part of repository C{name}.
        """
        await self._driver.putContent(layout.layerLink(name, digest), str(digest).encode())

    async def unlink(self, name: str, digest: Digest) -> bool:
        """
        Remove the blob from repository C{name} (its content stays for other
        repositories until garbage collection).

        @return: whether the repository had it.
        """
        try:
            await self._driver.delete(layout.layerLink(name, digest))
        except PathNotFoundError:
            return False
        return True

    async def urlFor(self, digest: Digest, method: str = "GET", client: str | None = None) -> str | None:
        """
        A URL the driver serves the blob's content at directly (for the
        client at address C{client}, when the driver routes by client), or
        L{None}.
        """
        return await directURL(self._driver, layout.blobData(digest), method, client=client)

    async def reader(self, digest: Digest, offset: int = 0, length: int | None = None) -> IStorageReader:
        return await self._driver.reader(layout.blobData(digest), offset, length)

    async def adopt(self, source: str, digest: Digest) -> None:
        """
        Make the verified content at storage path C{source} the blob
        C{digest}.  If another push stored the same blob first, C{source}
        is just deleted: content-addressed, both are the same bytes.
        """
        if await self.size(digest) is not None and (
                not self.leases or await self.touchIfThere(digest)):
            await self._driver.delete(source)
            return
        # New content, or content a collection is removing: ours takes its
        # place (an upload committed in the very instant a collection
        # removes the same content may still lose it; the manifest PUT
        # naming it then says MANIFEST_BLOB_UNKNOWN, never 201).
        await self._driver.move(source, layout.blobData(digest))

    async def putContent(self, content: bytes, digest: Digest) -> None:
        """
        Store a small blob (a manifest) given whole.
        """
        if await self.size(digest) is None:
            await self._driver.putContent(layout.blobData(digest), content)

    async def getContent(self, digest: Digest) -> bytes:
        return await self._driver.getContent(layout.blobData(digest))

    async def hashStored(self, path: str, algorithm: str) -> tuple[int, Any]:
        """
        Hash the content at storage path C{path} by streaming it, with the
        hashing itself on a thread.

        @return: the size and the L{hashlib} object.
        """
        hasher = hashlib.new(algorithm)
        reader = await self._driver.reader(path)
        digesting = DigestingConsumer(_Discard(), hasher)
        digesting.registerProducer(reader, True)
        await reader.startProducing(digesting)
        digesting.unregisterProducer()
        await digesting.idle()
        return reader.length, hasher


@implementer(IBlobStore)
class RepositoryBlobs:
    """
    The blobs of repository C{name}.

    @param redirect: whether reads go to the driver's direct URL when it
        has one (C{storage.redirect}).
    @param client: the address of the client the blobs are read for, for a
        driver whose direct URLs depend on it; L{None} when unknown.
    """

    def __init__(
        self, name: str, content: BlobContent, uploads: "UploadArea", redirect: bool,
        client: str | None = None,
    ) -> None:
        self._name = name
        self._content = content
        self._uploads = uploads
        self._redirect = redirect
        self._client = client

    def stat(self, digest: Digest) -> Deferred[BlobDescriptor]:
        return Deferred.fromCoroutine(self._stat(digest))

    async def _stat(self, digest: Digest) -> BlobDescriptor:
        size = await self._content.sizeIn(self._name, digest)
        if size is None:
            raise BlobUnknown(str(digest))
        return BlobDescriptor(digest, size)

    def reader(self, digest: Digest, offset: int = 0, length: int | None = None) -> Deferred[IBlobReader]:
        return Deferred.fromCoroutine(self._reader(digest, offset, length))

    async def _reader(self, digest: Digest, offset: int, length: int | None) -> IBlobReader:
        try:
            reader = await self._content.reader(digest, offset, length)
        except PathNotFoundError:
            raise BlobUnknown(str(digest)) from None
        alsoProvides(reader, IBlobReader)
        return reader  # type: ignore[return-value]

    def redirectURL(self, digest: Digest, method: str = "GET") -> Deferred[str | None]:
        if not self._redirect:
            return succeed(None)
        return Deferred.fromCoroutine(self._content.urlFor(digest, method, self._client))

    def create(self) -> Deferred[IBlobUpload]:
        return self._uploads.create(self._name)

    def resume(self, uploadID: str) -> Deferred[IBlobUpload]:
        return self._uploads.resume(self._name, uploadID)

    def put(self, digest: Digest, length: int | None = None) -> Deferred[IBlobWriter]:
        return self._uploads.whole(self._name, digest)

    def mount(self, digest: Digest, source: str) -> Deferred[BlobDescriptor | None]:
        return Deferred.fromCoroutine(self._mount(digest, source))

    async def _mount(self, digest: Digest, source: str) -> BlobDescriptor | None:
        if not isValidName(source):
            return None
        size = await self._content.sizeIn(source, digest)
        if size is None:
            return None
        if self._content.leases and not await self._content.touchIfThere(digest):
            # A collection is removing it: the client uploads it instead.
            return None
        await self._content.link(self._name, digest)
        return BlobDescriptor(digest, size)

    def delete(self, digest: Digest) -> Deferred[None]:
        return Deferred.fromCoroutine(self._delete(digest))

    async def _delete(self, digest: Digest) -> None:
        if not await self._content.unlink(self._name, digest):
            raise BlobUnknown(str(digest))


@implementer(IConsumer)
class _Discard:
    """
    A consumer that keeps nothing: what is hashed needs no storing.
    """

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass
