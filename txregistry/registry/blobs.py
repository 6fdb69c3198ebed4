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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer, IReactorTime
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
from txregistry.registry.cache import BoundedCache
from txregistry.registry.digest import Digest, DigestingConsumer
from txregistry.registry.names import isValidName
from txregistry.registry.peers import NO_PEERS, IReferencePeers, ReferenceChange, announcedDigest
from txregistry.storage.blocking import BlockingPool
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageDriver, IStorageReader
from txregistry.storage.middleware.forwarding import directURL

if TYPE_CHECKING:
    from txregistry.registry.uploads import UploadArea

#: Where pushed content is hashed (L{onHashingPool}), made on first use.
_hashingPool: BlockingPool | None = None


def onHashingPool(f: Callable[..., Any], *args: Any) -> Deferred[Any]:
    """
    Run C{f(*args)} (a L{DigestingConsumer}'s batch of hashing) on the
    hashing pool: four threads (C{hashlib} releases the GIL, so uploads
    hash side by side on every CPU) shared by every upload.

    A push hands its body to the hasher in batches as it arrives, so a
    1 MiB push makes several hand-offs and a 1 GiB push thousands:
    through C{deferToThread} (the reactor's
    C{twisted.python.threadpool}) each cost about 55 CPU-microseconds, on
    a L{BlockingPool} about 13.
    """
    global _hashingPool
    if _hashingPool is None:
        from twisted.internet import reactor

        _hashingPool = BlockingPool(reactor, "txregistry-hashing", 4)  # type: ignore[arg-type]
    return _hashingPool.run(f, *args)


#: How many blob sizes L{BlobContent.servedSizeIn} keeps.
_MAX_SIZES = 65536

#: Seconds a blob's size is reused by L{BlobContent.servedSizeIn}.
SIZE_TTL = 10.0


class BlobContent:
    """
    Content-addressed blob storage over a driver, and the links that put
    blobs in repositories.

    @param leases: whether writes that come to depend on a blob touch its
        lease, as online garbage collection needs
        (L{txregistry.registry.collection}).
    @param clock: the time source of the sizes and links L{servedSizeIn}
        reuses; L{None} reuses none.
    @param linkTTL: seconds L{servedSizeIn} reuses a repository's link to
        a blob (C{storage.cache.tagttl}); 0 reuses none.
    @param peers: the other processes over this storage (the other
        workers), told of each link removed before the removal returns.
    """

    def __init__(
        self, driver: IStorageDriver, leases: bool = False, clock: IReactorTime | None = None,
        linkTTL: float = 0.0, peers: IReferencePeers = NO_PEERS,
    ) -> None:
        self._driver = driver
        self.leases = leases
        self._sizes: BoundedCache[Digest, int] | None = None
        self._links: BoundedCache[tuple[str, Digest], bool] | None = None
        if clock is not None:
            self._sizes = BoundedCache(_MAX_SIZES, ttl=SIZE_TTL, clock=clock, name="blob sizes")
            if linkTTL > 0:
                self._links = BoundedCache(_MAX_SIZES, ttl=linkTTL, clock=clock, name="blob links")
        # Moved on by every link removal, here or announced: a stat that
        # ran across one keeps nothing (as ManifestIndex's epoch).
        self._linkEpoch = 0
        self._peers = peers
        peers.listen(self._forgetAnnounced)

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

    async def servedSizeIn(self, name: str, digest: Digest) -> int | None:
        """
        L{sizeIn}, for a blob C{GET} or C{HEAD}: the repository's link is
        looked for every time, the size of the content it names is reused
        for L{SIZE_TTL} seconds.

        The link is the repository's mutable state (a blob delete or a
        collection removes it) and is reused for the link TTL, as a tag
        is: a removal through this process (L{unlink}, L{forgetLink}) or
        announced by a peer (another worker) is seen at once, so a deleted
        blob is a 404 as soon as its delete is acknowledged; one by
        another registry over the same storage within the TTL.  The
        content is addressed by its digest, so its size cannot change,
        only its existence: garbage collection removes the data, then
        every link to it.  A collection in this process forgets the size
        (L{forget}); one in another process is seen as soon as it removed
        the links, so a reused size can only answer a C{HEAD} with 200 in
        the instant between the two removals (where a read of the size
        just before the data went would have said the same), or, if that
        collection died between them, for at most L{SIZE_TTL} seconds.  A
        C{GET} opens the data, so it is a 404 then.  Writes (L{adopt}, a
        mount, a manifest's references) never use it: they read the link
        and size from storage.

        What this saves is both stats on the storage pool of a blob
        C{HEAD} or C{GET}: all of a C{HEAD}'s storage work.
        """
        if self._sizes is None:
            return await self.sizeIn(name, digest)
        key = (name, digest)
        if self._links is None or self._links.get(key) is None:
            epoch = self._linkEpoch
            try:
                await self._driver.stat(layout.layerLink(name, digest))
            except PathNotFoundError:
                return None
            if self._links is not None and epoch == self._linkEpoch:
                self._links.put(key, True)
        size = self._sizes.get(digest)
        if size is None:
            size = await self.size(digest)
            if size is not None:
                self._sizes.put(digest, size)
        return size

    def forget(self, digest: Digest) -> None:
        """
        Reuse no size of blob C{digest}: its data is being removed.
        """
        if self._sizes is not None:
            self._sizes.pop(digest)

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
        self._forgetLink(name, digest)
        try:
            await self._driver.delete(layout.layerLink(name, digest))
        except PathNotFoundError:
            return False
        finally:
            await self.forgetLink(name, digest)
        return True

    async def forgetLink(self, name: str, digest: Digest) -> None:
        """
        Repository C{name}'s link to C{digest} was removed (here, or by a
        collection): reuse it no more, here or in any peer.
        """
        self._forgetLink(name, digest)
        await self._peers.announce(ReferenceChange(name, blob=str(digest)))

    def _forgetLink(self, name: str, digest: Digest | None) -> None:
        self._linkEpoch += 1
        if self._links is None:
            return
        if digest is None:
            self._links.discard(lambda key, value: key[0] == name)
        else:
            self._links.pop((name, digest))

    def _forgetAnnounced(self, change: ReferenceChange) -> None:
        if change.blob is not None:
            self._forgetLink(change.name, announcedDigest(change.blob))

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
        digesting = DigestingConsumer(_Discard(), hasher, run=onHashingPool)
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
        size = await self._content.servedSizeIn(self._name, digest)
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
