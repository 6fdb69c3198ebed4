"""
Delivery (L{txregistry.notifications.dispatcher}) to real receivers:
each endpoint's filters, no redirects, one endpoint's failure never
holding up another, retries across an outage in order, the journal's
bound, and a restart resuming what was not delivered.
"""

from __future__ import annotations

import glob
import json
import os

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.api.helpers import LAYER, pushBlob, pushImage, sha256
from tests.notifications.helpers import (
    NotifyingRegistry,
    Receiver,
    endpoint,
    startNotifyingRegistry,
    startReceiver,
    summary,
    waitUntil,
)

#: How long the receiver is down in the outage test: the acceptance's
#: 20 s unless TXREGISTRY_NOTIFY_OUTAGE says otherwise (any outage that
#: spans several failed attempts proves the same thing).
OUTAGE = float(os.environ.get("TXREGISTRY_NOTIFY_OUTAGE", "20"))


def blob(i: int) -> bytes:
    return b"blob number %d\n" % i


def firstArrivals(events: list[dict]) -> list[dict]:
    seen, ordered = set(), []
    for event in events:
        if event["id"] not in seen:
            seen.add(event["id"])
            ordered.append(event)
    return ordered


class FilterTests(TestCase):
    async def test_ignoreAndOnly(self) -> None:
        """
        Each endpoint gets what its filters let through: ignored actions,
        ignored media types, repository globs to ignore or to keep.
        """
        everything, noPulls, noBlobs, onlyTeam, notScratch = [
            await startReceiver(self) for _ in range(5)
        ]
        registry = await startNotifyingRegistry(self, [
            endpoint(everything, "everything"),
            endpoint(noPulls, "nopulls", ignore={"actions": ["pull"]}),
            endpoint(noBlobs, "noblobs", ignoredmediatypes=["application/octet-stream"]),
            endpoint(onlyTeam, "onlyteam", only={"repositories": ["team/*"]}),
            endpoint(notScratch, "notscratch", ignore={"repositories": ["scratch/**"]}),
        ])
        await pushImage(self, registry, "team/app", "1")
        await pushBlob(self, registry, "scratch/deep/x", LAYER)
        response = await registry.request("GET", f"/v2/team/app/blobs/{sha256(LAYER)}")
        await response.content()
        await waitUntil(lambda: len(everything.events) >= 5)
        # The others have had their chance once "everything" has all: each
        # dispatcher reads the same journal, and is idle once past its end.
        await waitUntil(lambda: all(
            d.cursor == d.journal.end and d.pending == 0 for d in registry.dispatchers
        ))
        actions = lambda r: [(a, repo, kind) for a, repo, kind, _, _ in summary(r.events)]  # noqa: E731
        self.assertEqual(actions(everything), [
            ("push", "team/app", "blobs"), ("push", "team/app", "blobs"),
            ("push", "team/app", "manifests"), ("push", "scratch/deep/x", "blobs"),
            ("pull", "team/app", "blobs"),
        ])
        self.assertEqual(actions(noPulls), actions(everything)[:4])
        self.assertEqual(actions(noBlobs), [("push", "team/app", "manifests")])
        self.assertEqual(actions(onlyTeam), [a for a in actions(everything) if a[1] == "team/app"])
        self.assertEqual(actions(notScratch), [a for a in actions(everything) if a[1] != "scratch/deep/x"])


class DeliveryTests(TestCase):
    async def test_redirectsNotFollowed(self) -> None:
        """
        A 3xx is a failure, retried: the registry never sends its events
        where a redirect points.
        """
        receiver = await startReceiver(self, status=307)
        registry = await startNotifyingRegistry(self, [endpoint(receiver)])
        await pushBlob(self, registry, "r", LAYER)
        (dispatcher,) = registry.dispatchers
        await waitUntil(lambda: dispatcher.failures >= 2)
        self.assertIn("HTTP 307 to http://127.0.0.1", dispatcher.lastFailure[1])
        self.assertIn("redirects are not followed", dispatcher.lastFailure[1])
        self.assertEqual(receiver.events, [])
        self.assertEqual(dispatcher.pending, 1)
        receiver.status = 202
        await waitUntil(lambda: len(receiver.events) == 1)
        self.assertEqual(receiver.events[0]["target"]["digest"], sha256(LAYER))

    async def test_deadEndpointDoesNotHoldUpAnother(self) -> None:
        """
        With one endpoint refusing connections, the other gets every event
        as if it were alone, and pushes are answered.
        """
        live = await startReceiver(self)
        dead = Receiver()  # never listening
        registry = await startNotifyingRegistry(self, [
            endpoint(dead, "dead"), endpoint(live, "live"),
        ])
        digests = [await pushBlob(self, registry, "two", blob(i)) for i in range(10)]
        await waitUntil(lambda: len(live.events) == 10)
        self.assertEqual([e["target"]["digest"] for e in live.events], digests)
        deadDispatcher = registry.dispatchers[0]
        self.assertEqual(deadDispatcher.pending, 10)
        await waitUntil(lambda: deadDispatcher.lastFailure is not None)
        self.assertIn("refused", deadDispatcher.lastFailure[1].lower())

    async def test_outage(self) -> None:
        """
        The receiver down for the first L{OUTAGE} seconds of a run of 50
        pushes, then up: every event arrives, each id at least once, in
        push order.
        """
        receiver = Receiver()
        self.addCleanup(lambda: Deferred.fromCoroutine(receiver.stop()))
        registry = await startNotifyingRegistry(self, [endpoint(receiver)])
        (dispatcher,) = registry.dispatchers
        back = deferLater(reactor, OUTAGE, lambda: Deferred.fromCoroutine(receiver.start()))
        digests = [await pushBlob(self, registry, "outage", blob(i)) for i in range(25)]
        await waitUntil(lambda: dispatcher.failures >= 3)
        await back
        digests += [await pushBlob(self, registry, "outage", blob(i)) for i in range(25, 50)]
        await waitUntil(lambda: len({e["id"] for e in receiver.events}) == 50)
        self.assertEqual([e["target"]["digest"] for e in firstArrivals(receiver.events)], digests)
        self.assertIsNotNone(dispatcher.lastFailure)
        # The receiver has them all: the dispatcher takes its answers and
        # has nothing left.
        await waitUntil(lambda: dispatcher.cursor == dispatcher.journal.end)
        self.assertEqual(dispatcher.pending, 0)

    test_outage.timeout = OUTAGE * 3 + 120  # type: ignore[attr-defined]

    async def test_restartResumes(self) -> None:
        """
        Events journaled while the receiver was down are sent by the next
        registry on the same outbox; the journal is compacted once they
        are delivered.
        """
        receiver = Receiver()
        self.addCleanup(lambda: Deferred.fromCoroutine(receiver.stop()))
        first = await NotifyingRegistry(self, [endpoint(receiver)]).start()
        digests = [await pushBlob(self, first, "restart", blob(i)) for i in range(5)]
        await first.stop()
        await receiver.start()
        second = await startNotifyingRegistry(self, [endpoint(receiver)], outbox=first.outbox)
        await waitUntil(lambda: len(receiver.events) >= 5)
        self.assertEqual([e["target"]["digest"] for e in firstArrivals(receiver.events)], digests)
        (dispatcher,) = second.dispatchers
        await waitUntil(lambda: dispatcher.cursor == dispatcher.journal.end)


class BatchingTests(TestCase):
    async def test_steadyEventsInFewEnvelopes(self) -> None:
        """
        Events that keep coming (a blob push every few milliseconds, each
        synced on its own) go out at most one envelope per
        L{BATCH_WINDOW}, rather than a request each; one after a quiet
        spell goes at once, alone.
        """
        from txregistry.notifications.dispatcher import BATCH_WINDOW

        receiver = await startReceiver(self)
        registry = await startNotifyingRegistry(self, [endpoint(receiver)])
        await pushBlob(self, registry, "steady", blob(0))
        await waitUntil(lambda: len(receiver.events) == 1)
        started = reactor.seconds()
        for i in range(1, 41):
            await pushBlob(self, registry, "steady", blob(i))
            await deferLater(reactor, 0.002, lambda: None)
        await waitUntil(lambda: len(receiver.events) == 41)
        took = reactor.seconds() - started
        self.assertEqual([e["action"] for e in receiver.events], ["push"] * 41)
        self.assertLessEqual(len(receiver.envelopes) - 1, took / BATCH_WINDOW + 2)
        await deferLater(reactor, BATCH_WINDOW * 2, lambda: None)
        before = len(receiver.envelopes)
        await pushBlob(self, registry, "steady", blob(41))
        await waitUntil(lambda: len(receiver.events) == 42)
        self.assertEqual(len(receiver.envelopes), before + 1)
        self.assertEqual(len(receiver.envelopes[-1]["events"]), 1)


def journalBytes(outbox: str) -> int:
    """
    The size of the journal's segments; one compacted away between the
    listing and its C{stat} (the dispatcher runs meanwhile) counts 0.
    """
    total = 0
    for path in glob.glob(os.path.join(outbox, "journal-*.log")):
        try:
            total += os.path.getsize(path)
        except FileNotFoundError:
            pass
    return total


class BoundTests(TestCase):
    async def test_maxBytes(self) -> None:
        """
        With a receiver that always answers 500 and a small C{maxbytes},
        the journal never holds more than C{maxbytes} when a push is
        answered; the oldest events are in the dead-letter file, and
        together with what the journal still holds they are every push.
        """
        receiver = await startReceiver(self, status=500)
        limit = 16 * 1024
        registry = await startNotifyingRegistry(self, [endpoint(receiver, maxbytes=limit)])
        digests, sizes = [], []
        for i in range(80):
            digests.append(await pushBlob(self, registry, "bounded", blob(i)))
            sizes.append(journalBytes(registry.outbox))
        self.assertLessEqual(max(sizes), limit)
        with open(os.path.join(registry.outbox, "dead", "hook.jsonl"), "rb") as f:
            dead = [json.loads(line) for line in f]
        self.assertGreater(len(dead), 0)
        (dispatcher,) = registry.dispatchers
        journal = await dispatcher.journal.read(dispatcher.cursor, maxRecords=1000)
        kept = [r.event()["target"]["digest"] for r in journal]  # type: ignore[index]
        pushed = [e["target"]["digest"] for e in dead] + kept
        self.assertEqual(pushed, digests)
        self.assertEqual(dispatcher.deadLettered, len(dead))
        self.assertEqual(receiver.events, [])

    async def test_maxAge(self) -> None:
        """
        An event older than C{maxage} is not sent but moved to the
        dead-letter file.
        """
        receiver = await startReceiver(self, status=500)
        registry = await startNotifyingRegistry(self, [endpoint(receiver, maxage="500ms")])
        digest = await pushBlob(self, registry, "aged", LAYER)
        (dispatcher,) = registry.dispatchers
        await waitUntil(lambda: dispatcher.deadLettered == 1)
        with open(os.path.join(registry.outbox, "dead", "hook.jsonl"), "rb") as f:
            (line,) = f.read().splitlines()
        self.assertEqual(json.loads(line)["target"]["digest"], digest)
        self.assertEqual((dispatcher.pending, dispatcher.cursor), (0, dispatcher.journal.end))
