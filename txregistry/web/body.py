# -*- test-case-name: tests.web.test_channel -*-
"""
A request body that is still arriving, as a producer.

L{twisted.web.http.Request} collects a whole body (in a temporary file
above 100 kB) before the resource sees the request.  A registry cannot
afford that for multi-gigabyte blobs, so a L{RequestBody} takes the body
from the channel chunk by chunk as it is decoded, and hands it to one
consumer that the route picks (a digesting storage writer, usually), with
the consumer's backpressure reaching the TCP transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer


class BodyTooLarge(Exception):
    """
    A body is larger than the route accepts.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class BodyAlreadyConsumed(Exception):
    """
    A body was delivered, read or discarded twice.
    """


@implementer(IPushProducer)
class RequestBody:
    """
    The body of one request.

    Until a consumer is attached with L{deliverTo} (or L{read}), arriving
    data is held, up to L{bufferLimit} bytes, after which the transport is
    paused.  Once attached, each chunk goes straight to the consumer, and
    the consumer's C{pauseProducing}/C{resumeProducing} pause and resume the
    transport.

    @ivar length: the declared C{Content-Length}, or L{None} for a chunked
        body.
    @ivar received: bytes received so far.
    @ivar complete: whether the whole body has been received.
    """

    bufferLimit = 256 * 1024

    def __init__(
        self,
        length: int | None,
        pauseTransport: Callable[[], None],
        resumeTransport: Callable[[], None],
    ) -> None:
        self.length = length
        self.received = 0
        self.complete = False
        self._pauseTransport = pauseTransport
        self._resumeTransport = resumeTransport
        self._held: list[bytes] = []
        self._heldBytes = 0
        self._consumer: IConsumer | None = None
        self._delivered: Deferred[int] | None = None
        self._used = False
        self._discarding = False
        self._discardLimit: int | None = None
        self._onDiscardOverflow: Callable[[], None] | None = None
        self._failure: Failure | None = None
        self._consumerPaused = False
        self._transportPaused = False
        self._completionWaiters: list[Deferred[None]] = []

    # Fed by the request

    def dataReceived(self, data: bytes) -> None:
        """
        A chunk of the body arrived.
        """
        self.received += len(data)
        if self._discarding:
            if self._discardLimit is not None and self.received > self._discardLimit:
                overflow, self._onDiscardOverflow = self._onDiscardOverflow, None
                if overflow is not None:
                    overflow()
            return
        if self._consumer is not None:
            self._write(self._consumer, data)
            return
        self._held.append(data)
        self._heldBytes += len(data)
        if self._heldBytes > self.bufferLimit:
            self._setTransportPaused(True)

    def bodyComplete(self) -> None:
        """
        The last byte of the body arrived.
        """
        self.complete = True
        if self._consumer is not None:
            self._finishDelivery()
        self._setTransportPaused(False)
        waiters, self._completionWaiters = self._completionWaiters, []
        for d in waiters:
            d.callback(None)

    def connectionLost(self, reason: Failure) -> None:
        """
        The connection closed; if the body was not complete, delivery fails.
        """
        if self.complete or self._failure is not None:
            return
        self._failure = reason
        self._held = []
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            consumer.unregisterProducer()
        if self._delivered is not None:
            d, self._delivered = self._delivered, None
            d.errback(reason)

    # Used by routes

    def deliverTo(self, consumer: IConsumer) -> Deferred[int]:
        """
        Write the whole body to C{consumer}, registering this body as its
        streaming producer.

        @return: a L{Deferred} that fires with the body's size once its last
            byte has been written to C{consumer} (and the producer
            unregistered), or fails if the connection is lost first.
        """
        if self._used:
            return fail(BodyAlreadyConsumed())
        self._used = True
        if self._failure is not None:
            return fail(self._failure)
        self._consumer = consumer
        self._delivered = Deferred(self._cancelDelivery)
        delivered = self._delivered
        consumer.registerProducer(self, True)
        held, self._held, self._heldBytes = self._held, [], 0
        for chunk in held:
            if self._consumer is None:
                break
            self._write(consumer, chunk)
        if self.complete and self._consumer is not None:
            self._finishDelivery()
        elif not self._consumerPaused:
            self._setTransportPaused(False)
        return delivered

    def read(self, limit: int) -> Deferred[bytes]:
        """
        Collect the whole body, refusing it once it passes C{limit} bytes.

        @return: a L{Deferred} firing with the body, or failing with
            L{BodyTooLarge} as soon as either the declared length or the
            bytes received pass C{limit}; the rest is then discarded.
        """
        if self.length is not None and self.length > limit:
            self._used = True
            self.discard()
            return fail(BodyTooLarge(limit))
        collector = _Collector(self, limit)
        return self.deliverTo(collector).addCallback(lambda _: collector.value())

    def abort(self, reason: Exception | Failure) -> None:
        """
        Stop delivering: the consumer gets nothing more, the pending
        L{deliverTo} fails with C{reason}, and the rest is discarded.
        """
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            consumer.unregisterProducer()
        self.discard()
        if self._delivered is not None:
            d, self._delivered = self._delivered, None
            d.errback(reason)

    def discard(
        self, limit: int | None = None, onOverflow: Callable[[], None] | None = None
    ) -> None:
        """
        Read and drop the rest of the body (the response no longer needs
        it, but the connection can serve another request after it).

        @param limit: once more than this many bytes of the body in all
            have arrived, call C{onOverflow} (to close the connection
            instead of reading on).
        """
        self._used = True
        self._discarding = True
        self._held, self._heldBytes = [], 0
        self._discardLimit = limit
        self._onDiscardOverflow = onOverflow
        self._setTransportPaused(False)
        if limit is not None and self.received > limit and onOverflow is not None:
            self._onDiscardOverflow = None
            onOverflow()

    def whenComplete(self) -> Deferred[None]:
        """
        @return: a L{Deferred} that fires once the whole body has arrived.
        """
        if self.complete:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._completionWaiters.append(d)
        return d

    # IPushProducer, for the consumer

    def pauseProducing(self) -> None:
        self._consumerPaused = True
        if not self.complete:
            self._setTransportPaused(True)

    def resumeProducing(self) -> None:
        self._consumerPaused = False
        self._setTransportPaused(False)

    def stopProducing(self) -> None:
        from twisted.internet.error import ConnectionAborted

        self.abort(ConnectionAborted("the consumer stopped the request body"))

    # Internals

    def _cancelDelivery(self, delivered: Deferred[int]) -> None:
        """
        The route stopped waiting for its body (it timed out, or Klein
        cancelled it because the client went away): let the consumer go
        at once -- it gets nothing more and is unregistered -- and discard
        the rest, so the connection can go on.  L{Deferred.cancel} then
        fails C{delivered} with L{CancelledError}.
        """
        if self._delivered is delivered:
            self._delivered = None
            if self._consumer is not None:
                consumer, self._consumer = self._consumer, None
                consumer.unregisterProducer()
            self.discard()

    def _write(self, consumer: IConsumer, data: bytes) -> None:
        """
        Give C{data} to C{consumer}.  If the consumer raises (a storage
        writer whose disk failed, say), the exception must not unwind into
        the channel, which would drop the connection with no response and
        leave the consumer open: delivery fails with it instead, so the
        route can clean up and answer, and the rest of the body is
        discarded.
        """
        try:
            consumer.write(data)
        except Exception:
            self.abort(Failure())

    def _setTransportPaused(self, paused: bool) -> None:
        if paused != self._transportPaused:
            self._transportPaused = paused
            if paused:
                self._pauseTransport()
            else:
                self._resumeTransport()

    def _finishDelivery(self) -> None:
        consumer, self._consumer = self._consumer, None
        assert consumer is not None
        consumer.unregisterProducer()
        if self._delivered is not None:
            d, self._delivered = self._delivered, None
            d.callback(self.received)


@implementer(IConsumer)
class _Collector:
    """
    Gathers a body into memory, refusing to grow past a limit.
    """

    def __init__(self, body: RequestBody, limit: int) -> None:
        self._body = body
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            self._chunks = []
            self._body.abort(BodyTooLarge(self._limit))
            return
        self._chunks.append(data)

    def value(self) -> bytes:
        return b"".join(self._chunks)
