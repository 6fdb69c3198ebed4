"""
One upstream read shared by the clients that asked meanwhile, streamed
into the cache: paced by the slowest side, visible in the cache only once
its digest is checked.  The upstream here is a storage reader (the same
producer interface as a response's body), the cache a real namespace.
"""

from __future__ import annotations

import hashlib
import os

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from txregistry.errors import BlobUnknown, DigestInvalid
from txregistry.proxy.fetch import BlobFetch, Flights
from txregistry.registry.digest import Digest
from txregistry.registry.namespace import StorageNamespace
from txregistry.storage.inmemory import InMemoryDriver

SIZE = 4 * 1024 * 1024


async def turns(count: int = 20) -> None:
    for _ in range(count):
        await deferLater(reactor, 0, lambda: None)


class BlobFetchTests(TestCase):
    async def setUp(self) -> None:
        self.driver = InMemoryDriver()
        self.content = os.urandom(SIZE)
        await self.driver.putContent("/upstream", self.content)
        self.blobs = StorageNamespace(self.driver, reactor).repository("cache/app").blobs()

    async def fetch(self, digest: Digest) -> BlobFetch:
        source = await self.driver.reader("/upstream")
        writer = await self.blobs.put(digest, SIZE)
        return BlobFetch(source, writer, lambda: self.blobs.reader(digest))  # type: ignore[arg-type]

    async def test_slowestClientPaces(self) -> None:
        """
        While one client is paused the upstream is too: what arrived stays
        well short of the blob, and nothing is in the cache; once it
        resumes both clients get every byte and the cache has the blob.
        """
        digest = Digest("sha256", hashlib.sha256(self.content).hexdigest())
        fetch = await self.fetch(digest)
        fast, slow = StringTransport(), StringTransport()
        fastReader, slowReader = fetch.reader(), fetch.reader()
        fastDone = fastReader.startProducing(fast)
        slowDone = slowReader.startProducing(slow)
        slowReader.pauseProducing()
        fetch.start()
        await turns()
        self.assertLess(fetch.received, SIZE // 4)
        with self.assertRaises(BlobUnknown):
            await self.blobs.stat(digest)
        slowReader.resumeProducing()
        await fastDone
        await slowDone
        self.assertEqual((fast.value(), slow.value()), (self.content, self.content))
        self.assertTrue(await fetch.whenCached())
        self.assertEqual((await self.blobs.stat(digest)).size, SIZE)

    async def test_lateClientReadsCache(self) -> None:
        """
        A client asking after the first byte reads the cache once the blob
        is stored.
        """
        digest = Digest("sha256", hashlib.sha256(self.content).hexdigest())
        fetch = await self.fetch(digest)
        first = StringTransport()
        done = fetch.reader().startProducing(first)
        fetch.start()
        while not fetch.received:
            await turns(1)
        late = StringTransport()
        lateDone = fetch.reader().startProducing(late)
        await done
        await lateDone
        self.assertEqual((first.value(), late.value()), (self.content, self.content))

    async def test_wrongDigestNotCached(self) -> None:
        """
        Content that does not match its digest never becomes visible, and
        the clients' reads fail (their connections are cut).
        """
        digest = Digest("sha256", "0" * 64)
        fetch = await self.fetch(digest)
        done = fetch.reader().startProducing(StringTransport())
        fetch.start()
        with self.assertRaises(DigestInvalid):
            await done
        self.assertFalse(await fetch.whenCached())
        with self.assertRaises(BlobUnknown):
            await self.blobs.stat(digest)
        self.assertEqual(len(self.flushLoggedErrors(DigestInvalid)), 1)


class FlightsTests(TestCase):
    def test_shared(self) -> None:
        """
        Callers of one key while it is in flight share its one call; a
        caller after it landed makes a new one.
        """
        flights: Flights[str, int] = Flights()
        calls: list[Deferred[int]] = []

        async def work() -> int:
            d: Deferred[int] = Deferred()
            calls.append(d)
            return await d

        results: list[int] = []
        for _ in range(3):
            flights.run("k", work).addCallback(results.append)
        self.assertEqual(len(calls), 1)
        calls[0].callback(7)
        self.assertEqual(results, [7, 7, 7])
        flights.run("k", work)
        self.assertEqual(len(calls), 2)
