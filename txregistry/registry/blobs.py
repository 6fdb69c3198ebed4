"""
Blobs: content stored once, by digest, and linked into the repositories
that own it.  A blob is visible through a repository only while that
repository links it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from twisted.internet.interfaces import IConsumer
from zope.interface import implementer

from txregistry.registry import layout
from txregistry.registry.digest import Digest, DigestingConsumer
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageDriver, IStorageReader


class BlobStore:
    """
    Content-addressed blob storage over a driver.
    """

    def __init__(self, driver: IStorageDriver) -> None:
        self._driver = driver

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

    async def urlFor(self, digest: Digest, method: str = "GET") -> str | None:
        """
        A URL the driver serves the blob's content at directly, or L{None}.
        """
        return await self._driver.urlFor(layout.blobData(digest), method)

    async def reader(self, digest: Digest, offset: int = 0, length: int | None = None) -> IStorageReader:
        return await self._driver.reader(layout.blobData(digest), offset, length)

    async def adopt(self, source: str, digest: Digest) -> None:
        """
        Make the verified content at storage path C{source} the blob
        C{digest}.  If another push stored the same blob first, C{source}
        is just deleted: content-addressed, both are the same bytes.
        """
        if await self.size(digest) is not None:
            await self._driver.delete(source)
            return
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
