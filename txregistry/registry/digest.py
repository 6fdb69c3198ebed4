# -*- test-case-name: tests.registry.test_digest -*-
"""
Content digests (C{algorithm:encoded}) and the hashers that compute them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from zope.interface import implementer

#: The algorithms this registry computes, with their encoded lengths.
ALGORITHMS = {"sha256": 64, "sha512": 128}

_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX = re.compile(r"^[a-f0-9]+$")


class InvalidDigest(ValueError):
    """
    A string is not a digest this registry can verify.
    """


@dataclass(frozen=True, order=True)
class Digest:
    """
    A checked digest.
    """

    algorithm: str
    encoded: str

    @classmethod
    def parse(cls, value: str) -> "Digest":
        """
        @raise InvalidDigest: unless C{value} follows the OCI grammar with a
            supported algorithm and the right hex encoding.
        """
        if not isinstance(value, str) or len(value) > 256 or not _GRAMMAR.match(value):
            raise InvalidDigest(f"invalid digest {value!r}")
        algorithm, encoded = value.split(":", 1)
        size = ALGORITHMS.get(algorithm)
        if size is None:
            raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
        if len(encoded) != size or not _HEX.match(encoded):
            raise InvalidDigest(f"invalid {algorithm} digest {value!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, content: bytes, algorithm: str = "sha256") -> "Digest":
        return cls(algorithm, hashlib.new(algorithm, content).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


def _update(hasher: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


@implementer(IConsumer, IPushProducer)
class DigestingConsumer:
    """
    Passes data through to C{consumer} at once, and hashes it on a thread.

    Hashing a pushed blob on the reactor thread cost more than half of the
    reactor's time per GiB; here it runs in order, in batches, beside the
    reactor and the storage writer.  While more than L{highWater} bytes
    wait to be hashed, or while C{consumer} asks it to, the producer is
    paused.  Read C{hasher} only once L{idle} has fired.

    @ivar hasher: the running hash (a L{hashlib} object).
    @ivar size: bytes seen.
    """

    highWater = 8 * 1024 * 1024
    lowWater = 2 * 1024 * 1024

    def __init__(
        self,
        consumer: IConsumer,
        hasher: Any,
        size: int = 0,
        run: Callable[..., Deferred[Any]] = deferToThread,
    ) -> None:
        self._consumer = consumer
        self.hasher = hasher
        self.size = size
        self._run = run
        self._queue: list[bytes] = []
        self._queued = 0
        self._hashing = False
        self._failure: Failure | None = None
        self._idleWaiters: list[Deferred[None]] = []
        self._producer: Any = None
        self._holders: set[str] = set()

    # IConsumer, for whoever produces the data

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer = producer
        self._consumer.registerProducer(self, True)

    def unregisterProducer(self) -> None:
        self._consumer.unregisterProducer()
        self._producer = None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._failure is None:
            self._queue.append(data)
            self._queued += len(data)
            if not self._hashing:
                self._hashNext()
            if self._queued > self.highWater:
                self._hold("hash")
        self._consumer.write(data)

    # IPushProducer, for C{consumer}

    def pauseProducing(self) -> None:
        self._hold("consumer")

    def resumeProducing(self) -> None:
        self._release("consumer")

    def stopProducing(self) -> None:
        if self._producer is not None:
            self._producer.stopProducing()

    def idle(self) -> Deferred[None]:
        """
        @return: a L{Deferred} that fires once everything written so far is
            hashed (or fails with what stopped the hashing).
        """
        if self._failure is not None:
            return fail(self._failure)
        if not self._hashing:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idleWaiters.append(d)
        return d

    # Internals

    def _hashNext(self) -> None:
        batch, self._queue = self._queue, []
        self._hashing = True
        self._run(_update, self.hasher, batch).addCallbacks(
            self._hashed, self._failed, callbackArgs=(sum(map(len, batch)),)
        )

    def _hashed(self, _: object, count: int) -> None:
        self._hashing = False
        self._queued -= count
        if self._queue:
            self._hashNext()
        else:
            self._notifyIdle()
        if self._queued < self.lowWater:
            self._release("hash")

    def _failed(self, failure: Failure) -> None:
        self._hashing = False
        self._failure = failure
        self._queue, self._queued = [], 0
        self._release("hash")
        self._notifyIdle()

    def _notifyIdle(self) -> None:
        waiters, self._idleWaiters = self._idleWaiters, []
        for d in waiters:
            if self._failure is not None:
                d.errback(self._failure)
            else:
                d.callback(None)

    def _hold(self, holder: str) -> None:
        if not self._holders and self._producer is not None:
            self._producer.pauseProducing()
        self._holders.add(holder)

    def _release(self, holder: str) -> None:
        if holder in self._holders:
            self._holders.discard(holder)
            if not self._holders and self._producer is not None:
                self._producer.resumeProducing()
