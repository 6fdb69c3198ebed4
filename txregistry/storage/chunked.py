# -*- test-case-name: tests.storage.test_azure,tests.storage.test_gcs -*-
"""
L{ChunkedWriter}: the part of a remote store's writer that does not depend
on the store: written bytes cut into equal chunks as they arrive, each full
chunk sent (staged) while the next fills, the producer paused while more
than two chunks wait, so memory stays a few chunks per writer whatever the
value's size.

A driver's writer subclasses it and says how to begin staging
(L{ChunkedWriter._begin}: a resumable upload session, a lease) and how to
stage one chunk (L{ChunkedWriter._stage}: a block, a range of the
session); its C{commit} waits for L{ChunkedWriter._idle} and sends what is
left (L{ChunkedWriter._tail}).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure

from txregistry.storage.errors import WriterClosedError

__all__ = ["ChunkedWriter"]


class ChunkedWriter:
    """
    See the module's docstring.

    @cvar concurrency: chunks staged at once (1 for a store that takes
        them in order).
    @ivar size: the size the value will have (bytes there before, plus
        every byte written).
    """

    concurrency = 2

    def __init__(self, path: str, chunkSize: int, startSize: int = 0) -> None:
        self.path = path
        self.size = startSize
        self._chunkSize = chunkSize
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._next = 0
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queuedBytes = 0
        self._inflight = 0
        self._inflightBytes = 0
        self._begun = False
        self._beginning = False
        self._failure: Failure | None = None
        self._closed = False
        self._cancelled = False
        self._producer: Any = None
        self._producerPaused = False
        self._idleWaiters: list[Deferred[None]] = []

    # What a store's writer says

    def _begin(self) -> Deferred[None]:
        """
        Get ready to stage the first chunk.
        """
        return succeed(None)

    def _stage(self, number: int, data: bytes) -> Deferred[None]:
        """
        Send chunk C{number} (from 0), of exactly the chunk size.
        """
        raise NotImplementedError

    # IConsumer

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        if not streaming:
            raise ValueError("these writers take push producers only")
        self._producer = producer
        self._producerPaused = False

    def unregisterProducer(self) -> None:
        self._producer = None

    def write(self, data: bytes) -> None:
        if self._cancelled or self._failure is not None:
            return
        if self._closed:
            raise WriterClosedError(self.path)
        if not data:
            return
        self._buffer.append(bytes(data))
        self._buffered += len(data)
        self.size += len(data)
        self._cut()
        if (
            self._waiting() > 2 * self._chunkSize
            and self._producer is not None
            and not self._producerPaused
        ):
            self._producerPaused = True
            IPushProducer(self._producer).pauseProducing()

    def _waiting(self) -> int:
        return self._buffered + self._queuedBytes + self._inflightBytes

    def _cut(self) -> None:
        """
        Turn the buffer's full chunks into queued stagings.
        """
        while self._buffered >= self._chunkSize:
            data = b"".join(self._buffer)
            chunk, rest = data[: self._chunkSize], data[self._chunkSize :]
            self._buffer = [rest] if rest else []
            self._buffered = len(rest)
            self._queue.append((self._next, chunk))
            self._queuedBytes += len(chunk)
            self._next += 1
        self._pump()

    def _pump(self) -> None:
        if self._failure is not None or not self._queue:
            return
        if not self._begun:
            if not self._beginning:
                self._beginning = True
                self._begin().addCallbacks(self._began, self._failed)
            return
        while self._queue and self._inflight < self.concurrency:
            number, data = self._queue.popleft()
            self._queuedBytes -= len(data)
            self._inflight += 1
            self._inflightBytes += len(data)
            d = self._stage(number, data)
            d.addErrback(self._failed)
            d.addBoth(self._staged, len(data))

    def _began(self, _: object) -> None:
        self._beginning = False
        self._begun = True
        if not self._cancelled:
            self._pump()
        self._notifyIdle()

    def _failed(self, failure: Failure) -> None:
        self._beginning = False
        if self._failure is None and not self._cancelled:
            self._failure = failure
        self._queue.clear()
        self._queuedBytes = 0
        self._buffer = []
        self._buffered = 0
        # Let the producer run on: what it sends is dropped, and whoever
        # drives it learns of the failure from commit().
        self._resumeProducer()
        self._notifyIdle()

    def _staged(self, _: object, size: int) -> None:
        self._inflight -= 1
        self._inflightBytes -= size
        self._pump()
        if self._producerPaused and self._waiting() <= self._chunkSize:
            self._resumeProducer()
        self._notifyIdle()

    def _resumeProducer(self) -> None:
        if self._producerPaused and self._producer is not None:
            self._producerPaused = False
            self._producer.resumeProducing()

    def _busy(self) -> bool:
        return bool(self._inflight or self._beginning or (self._queue and self._failure is None))

    def _notifyIdle(self) -> None:
        if self._busy():
            return
        waiters, self._idleWaiters = self._idleWaiters, []
        for d in waiters:
            d.callback(None)

    def _idle(self) -> Deferred[None]:
        """
        Fires when no chunk is being staged or waits to be.
        """
        if not self._busy():
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idleWaiters.append(d)
        return d

    async def _close(self) -> None:
        """
        Close the writer for a commit: wait for the staging in flight, and
        raise the failure that stopped any.
        """
        if self._closed:
            raise WriterClosedError(self.path)
        self._closed = True
        await self._idle()
        if self._failure is not None:
            self._failure.raiseException()

    async def _discard(self) -> bool:
        """
        Drop everything not yet staged and wait for what is in flight.

        @return: whether the writer was open (else it was committed or
            cancelled already).
        """
        wasOpen = not self._closed
        self._closed = self._cancelled = True
        self._queue.clear()
        self._queuedBytes = 0
        self._buffer = []
        self._buffered = 0
        await self._idle()
        return wasOpen

    def _tail(self) -> bytes:
        """
        The bytes written after the last full chunk (taken: the buffer is
        empty after).
        """
        tail = b"".join(self._buffer)
        self._buffer = []
        self._buffered = 0
        return tail
