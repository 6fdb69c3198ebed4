"""
Tests for L{txregistry.registry.digest.DigestingConsumer}: data passes
through at once, is hashed off the reactor in order, and the producer is
paused while either the hashing or the downstream consumer lags.
"""

from __future__ import annotations

import hashlib
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.trial.unittest import TestCase

from txregistry.registry.digest import DigestingConsumer


class _Downstream:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.producer: Any = None

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.chunks.append(data)


class _Producer:
    def __init__(self) -> None:
        self.paused = False
        self.stopped = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        self.stopped = True


class _ManualThreads:
    """
    Stands in for deferToThread: jobs run when the test says so.
    """

    def __init__(self) -> None:
        self.jobs: list[tuple[Deferred[Any], Any, tuple[Any, ...]]] = []

    def __call__(self, f: Any, *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.jobs.append((d, f, args))
        return d

    def runOne(self, fail: bool = False) -> None:
        d, f, args = self.jobs.pop(0)
        if fail:
            d.errback(OSError("hash thread failed"))
        else:
            maybeDeferred(f, *args).chainDeferred(d)


class DigestingConsumerTests(TestCase):
    def setUp(self) -> None:
        self.downstream = _Downstream()
        self.producer = _Producer()
        self.threads = _ManualThreads()
        self.digesting = DigestingConsumer(
            self.downstream, hashlib.sha256(), run=self.threads
        )
        self.digesting.registerProducer(self.producer, True)

    async def test_hashesEverythingInOrder(self) -> None:
        """
        Every chunk reaches the consumer as it is written; once idle, the
        hash is that of all chunks in order.
        """
        digesting = DigestingConsumer(self.downstream, hashlib.sha256())
        chunks = [bytes([i]) * (1000 + i) for i in range(50)]
        for chunk in chunks:
            digesting.write(chunk)
        self.assertEqual(self.downstream.chunks, chunks)
        await digesting.idle()
        self.assertEqual(digesting.hasher.hexdigest(), hashlib.sha256(b"".join(chunks)).hexdigest())
        self.assertEqual(digesting.size, sum(map(len, chunks)))

    def test_registersItselfDownstream(self) -> None:
        self.assertIs(self.downstream.producer, self.digesting)
        self.digesting.stopProducing()
        self.assertTrue(self.producer.stopped)

    def test_hashBacklogPausesProducer(self) -> None:
        """
        Past the high-water mark of unhashed bytes the producer pauses; it
        resumes once the backlog is under the low-water mark.
        """
        block = b"x" * (1024 * 1024)
        for _ in range(9):
            self.digesting.write(block)
        self.assertTrue(self.producer.paused)
        while self.threads.jobs:
            self.threads.runOne()
        self.assertFalse(self.producer.paused)

    def test_bothHoldersMustRelease(self) -> None:
        """
        The consumer's pause and the hash backlog are separate: the
        producer resumes only when neither holds it.
        """
        for _ in range(9):
            self.digesting.write(b"x" * (1024 * 1024))
        self.digesting.pauseProducing()
        while self.threads.jobs:
            self.threads.runOne()
        self.assertTrue(self.producer.paused, "resumed while the consumer lags")
        self.digesting.resumeProducing()
        self.assertFalse(self.producer.paused)

        self.digesting.pauseProducing()
        for _ in range(9):
            self.digesting.write(b"x" * (1024 * 1024))
        self.digesting.resumeProducing()
        self.assertTrue(self.producer.paused, "resumed while hashing lags")
        while self.threads.jobs:
            self.threads.runOne()
        self.assertFalse(self.producer.paused)

    def test_hashFailureFailsIdle(self) -> None:
        self.digesting.write(b"data")
        idle = self.digesting.idle()
        self.threads.runOne(fail=True)
        self.failureResultOf(idle, OSError)
        self.failureResultOf(self.digesting.idle(), OSError)
