"""
What a process tells the other processes caching its storage's references
(L{txregistry.registry.peers}), and what it does when told.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txregistry.errors import BlobUnknown, ManifestUnknown
from txregistry.registry import layout
from txregistry.registry.digest import Digest
from txregistry.registry.namespace import StorageNamespace
from txregistry.registry.peers import NO_PEERS, IReferencePeers, ReferenceChange
from txregistry.storage.inmemory import InMemoryDriver


def digestOf(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


@implementer(IReferencePeers)
class Peers:
    """
    Peers that acknowledge an announcement when the test says so, and
    announce what the test tells them to.
    """

    def __init__(self) -> None:
        self.announced: list[tuple[ReferenceChange, Deferred[None]]] = []
        self._listeners: list[Callable[[ReferenceChange], None]] = []
        self.acknowledge = True

    def announce(self, change: ReferenceChange) -> Deferred[None]:
        forgotten: Deferred[None] = Deferred()
        self.announced.append((change, forgotten))
        if self.acknowledge:
            forgotten.callback(None)
        return forgotten

    def listen(self, forget: Callable[[ReferenceChange], None]) -> None:
        self._listeners.append(forget)

    def tell(self, change: ReferenceChange) -> None:
        for listener in self._listeners:
            listener(change)

    def changes(self) -> list[ReferenceChange]:
        return [change for change, _ in self.announced]


class GatedDriver(InMemoryDriver):
    """
    The in-memory driver, whose reads wait for the test to open the gate
    while C{gate} is set.
    """

    gate: Deferred[None] | None = None

    def getContent(self, path: str) -> Deferred[bytes]:
        gate = self.gate
        if gate is None:
            return super().getContent(path)
        read = super().getContent(path)
        return gate.addCallback(lambda _: read)


class ChangeTests(SynchronousTestCase):
    def test_roundTrip(self) -> None:
        """
        A change crosses to another process as a mapping and back.
        """
        for change in (ReferenceChange("a/b", tag="v1"), ReferenceChange("a", digest=str(digestOf(b"x"))),
                       ReferenceChange("a", blob=str(digestOf(b"y")))):
            self.assertEqual(ReferenceChange.fromDict(change.asDict()), change)
        for bad in (None, [], {}, {"name": 1}, {"name": "a", "tag": 3}, {"name": "a", "digest": []},
                    {"name": "a", "blob": 1}):
            self.assertRaises(ValueError, ReferenceChange.fromDict, bad)

    def test_noPeers(self) -> None:
        """
        A lone process's announcements are acknowledged at once.
        """
        verifyObject(IReferencePeers, NO_PEERS)
        self.assertIsNone(self.successResultOf(NO_PEERS.announce(ReferenceChange("a", tag="t"))))


class AnnouncementTests(TestCase):
    def setUp(self) -> None:
        self.driver = GatedDriver()
        self.peers = Peers()
        self.clock = Clock()
        self.namespace = StorageNamespace(self.driver, self.clock, tagTTL=60.0, peers=self.peers)
        # Another process over the same storage, caching nothing.
        self.other = StorageNamespace(self.driver, self.clock)

    def tags(self, namespace: StorageNamespace | None = None) -> object:
        return (namespace or self.namespace).repository("r").tags()

    async def test_tagAcknowledgedOncePeersForgot(self) -> None:
        """
        A tag moved here is announced, and the move is not done until the
        peers have forgotten it.
        """
        self.peers.acknowledge = False
        moved = self.tags().tag("v", digestOf(b"1"))  # type: ignore[attr-defined]
        self.assertEqual(self.peers.changes(), [ReferenceChange("r", tag="v")])
        self.assertNoResult(moved)
        self.peers.announced[0][1].callback(None)
        await moved

    async def test_deletesAnnounced(self) -> None:
        """
        A tag deleted is announced, and so is a revision deleted (with
        each tag that named it).
        """
        tags = self.tags()
        await tags.tag("gone", digestOf(b"1"))  # type: ignore[attr-defined]
        await tags.untag("gone")  # type: ignore[attr-defined]
        self.assertEqual(self.peers.changes()[-1], ReferenceChange("r", tag="gone"))
        # Even a tag that was not there: a peer may still hold it.
        await self.assertFailure(tags.untag("never"), ManifestUnknown)  # type: ignore[attr-defined]
        self.assertEqual(self.peers.changes()[-1], ReferenceChange("r", tag="never"))

    async def test_announcedChangeForgotten(self) -> None:
        """
        What a peer announces is read from storage next, however long the
        TTL: a tag moved and a revision deleted by another worker.
        """
        first, second = digestOf(b"1"), digestOf(b"2")
        await self.tags(self.other).tag("v", first)  # type: ignore[attr-defined]
        self.assertEqual(await self.tags().get("v"), first)  # type: ignore[attr-defined]
        await self.tags(self.other).tag("v", second)  # type: ignore[attr-defined]
        self.assertEqual(await self.tags().get("v"), first)  # type: ignore[attr-defined]
        self.peers.tell(ReferenceChange("r", tag="v"))
        self.assertEqual(await self.tags().get("v"), second)  # type: ignore[attr-defined]

        await self.driver.delete(layout.tagDirectory("r", "v"))
        self.peers.tell(ReferenceChange("r", digest=str(second)))
        await self.assertFailure(self.tags().get("v"), ManifestUnknown)  # type: ignore[attr-defined]

    async def test_blobChangeKeepsReferences(self) -> None:
        """
        A peer's removed blob link leaves the resolved tags alone (a
        collection announces thousands).
        """
        first = digestOf(b"1")
        await self.tags(self.other).tag("v", first)  # type: ignore[attr-defined]
        self.assertEqual(await self.tags().get("v"), first)  # type: ignore[attr-defined]
        await self.tags(self.other).tag("v", digestOf(b"2"))  # type: ignore[attr-defined]
        self.peers.tell(ReferenceChange("r", blob=str(first)))
        self.assertEqual(await self.tags().get("v"), first)  # type: ignore[attr-defined]

    async def test_readAcrossAChangeNotKept(self) -> None:
        """
        A read that started before an announced change and ended after it
        answers what it read, but keeps nothing: the next read goes to
        storage again.
        """
        first, second = digestOf(b"1"), digestOf(b"2")
        await self.tags(self.other).tag("v", first)  # type: ignore[attr-defined]
        self.driver.gate = Deferred()
        reading = self.tags().get("v")  # type: ignore[attr-defined]
        await self.tags(self.other).tag("v", second)  # type: ignore[attr-defined]
        self.peers.tell(ReferenceChange("r", tag="v"))
        gate, self.driver.gate = self.driver.gate, None
        gate.callback(None)
        self.assertIn(await reading, (first, second))
        self.assertEqual(await self.tags().get("v"), second)  # type: ignore[attr-defined]

    async def test_tagListCachedLikeTags(self) -> None:
        """
        The tags list is reused as tags are: this process's tag moves and
        deletes show at once, a peer's once announced, and another
        registry's once the TTL has passed.
        """
        tags = self.tags()
        await tags.tag("a", digestOf(b"1"))  # type: ignore[attr-defined]
        self.assertEqual((await tags.list(None, None)).items, ["a"])  # type: ignore[attr-defined]
        await tags.tag("b", digestOf(b"1"))  # type: ignore[attr-defined]
        self.assertEqual((await tags.list(None, None)).items, ["a", "b"])  # type: ignore[attr-defined]
        await tags.untag("a")  # type: ignore[attr-defined]
        self.assertEqual((await tags.list(None, None)).items, ["b"])  # type: ignore[attr-defined]

        await self.tags(self.other).tag("c", digestOf(b"1"))  # type: ignore[attr-defined]
        self.assertEqual((await tags.list(None, None)).items, ["b"])  # type: ignore[attr-defined]
        self.peers.tell(ReferenceChange("r", tag="c"))
        self.assertEqual((await tags.list(None, None)).items, ["b", "c"])  # type: ignore[attr-defined]

        await self.tags(self.other).tag("d", digestOf(b"1"))  # type: ignore[attr-defined]
        self.clock.advance(61)
        self.assertEqual((await tags.list(None, None)).items, ["b", "c", "d"])  # type: ignore[attr-defined]

    async def test_manifestDeleteListsStorage(self) -> None:
        """
        Deleting a manifest removes every tag naming it, even one another
        registry added since this one last listed the tags.
        """
        namespace = StorageNamespace(self.driver, self.clock, tagTTL=60.0, peers=self.peers)
        manifests = namespace.repository("r").manifests()
        config = b"{}"
        await self.driver.putContent(layout.blobData(digestOf(config)), config)
        await self.driver.putContent(layout.layerLink("r", digestOf(config)), str(digestOf(config)).encode())
        manifest = (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",'
                    b' "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "'
                    + str(digestOf(config)).encode() + b'", "size": 2}, "layers": []}')
        put = await manifests.put(manifest, None, None)
        tags = namespace.repository("r").tags()
        await tags.tag("mine", put.digest)
        self.assertEqual((await tags.list(None, None)).items, ["mine"])
        await self.tags(self.other).tag("theirs", put.digest)  # type: ignore[attr-defined]
        await manifests.delete(put.digest)
        self.assertEqual((await self.tags(self.other).list(None, None)).items, [])  # type: ignore[attr-defined]

    async def test_listingAcrossATagWriteNotKept(self) -> None:
        """
        A listing made while a tag was being written is not kept: the next
        one lists storage again.
        """
        tags = self.tags()
        await tags.tag("a", digestOf(b"1"))  # type: ignore[attr-defined]
        listing = self.driver.list

        def listThenAddTag(path: str) -> Deferred[list[str]]:
            listed = listing(path)
            # A peer tags while this listing is on its way.
            self.peers.tell(ReferenceChange("r", tag="b"))
            return listed

        self.driver.list = listThenAddTag  # type: ignore[method-assign]
        await self.tags(self.other).tag("b", digestOf(b"1"))  # type: ignore[attr-defined]
        self.clock.advance(61)
        self.assertEqual((await tags.list(None, None)).items, ["a", "b"])  # type: ignore[attr-defined]
        del self.driver.list
        await self.tags(self.other).tag("c", digestOf(b"1"))  # type: ignore[attr-defined]
        self.assertEqual((await tags.list(None, None)).items, ["a", "b", "c"])  # type: ignore[attr-defined]


class BlobLinkTests(TestCase):
    """
    A repository's link to a blob is reused for the TTL as a tag is, and
    every removal is announced.
    """

    def setUp(self) -> None:
        self.driver = InMemoryDriver()
        self.peers = Peers()
        self.clock = Clock()
        self.namespace = StorageNamespace(self.driver, self.clock, tagTTL=60.0, peers=self.peers)
        self.content = b"a blob"
        self.digest = digestOf(self.content)

    async def linked(self, name: str = "r") -> None:
        await self.driver.putContent(layout.blobData(self.digest), self.content)
        await self.driver.putContent(layout.layerLink(name, self.digest), str(self.digest).encode())

    def blobs(self) -> Any:
        return self.namespace.repository("r").blobs()

    async def test_linkReusedForTheTTL(self) -> None:
        """
        A link another registry removed is still served within the TTL,
        and a 404 after it.
        """
        await self.linked()
        self.assertEqual((await self.blobs().stat(self.digest)).size, len(self.content))
        await self.driver.delete(layout.layerLink("r", self.digest))
        self.assertEqual((await self.blobs().stat(self.digest)).size, len(self.content))
        self.clock.advance(61)
        await self.assertFailure(self.blobs().stat(self.digest), BlobUnknown)

    async def test_deleteAnnounced(self) -> None:
        """
        A blob deleted here is a 404 at once, and announced before the
        delete returns; one a peer announces is a 404 at once too.
        """
        await self.linked()
        await self.blobs().stat(self.digest)
        self.peers.acknowledge = False
        deleting = self.blobs().delete(self.digest)
        self.assertEqual(self.peers.changes(), [ReferenceChange("r", blob=str(self.digest))])
        self.assertNoResult(deleting)
        self.peers.announced[0][1].callback(None)
        await deleting
        await self.assertFailure(self.blobs().stat(self.digest), BlobUnknown)

        self.peers.acknowledge = True
        await self.linked()
        await self.blobs().stat(self.digest)
        await self.driver.delete(layout.layerLink("r", self.digest))
        self.peers.tell(ReferenceChange("r", blob=str(self.digest)))
        await self.assertFailure(self.blobs().stat(self.digest), BlobUnknown)

    async def test_collectionAnnouncesUnlinks(self) -> None:
        """
        A collection that removes a blob announces each repository's link
        it removed: no worker serves the blob from its cache afterwards.
        """
        await self.linked("r")
        await self.linked("s")
        await self.blobs().stat(self.digest)
        report = await self.namespace.collectGarbage()
        self.assertEqual(sorted(report.unlinked), [("r", self.digest), ("s", self.digest)])
        self.assertEqual(sorted((c.name, c.blob) for c in self.peers.changes()),
                         [("r", str(self.digest)), ("s", str(self.digest))])
        await self.assertFailure(self.blobs().stat(self.digest), BlobUnknown)
