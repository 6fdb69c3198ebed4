# -*- test-case-name: tests.client.test_registry -*-
"""
Blob content between the network and the model's producer/consumer
interfaces, with backpressure both ways.

L{ResponseReader} is an L{IBlobReader} over an HTTP response: its consumer
pausing it pauses the connection (TCP flow control reaches the registry),
and the content is checked against its digest.  A large body is hashed on
a thread of its own (L{txregistry.client.hashing.HashingThread}) while the
reactor thread passes it on; a small one, as it arrives (a thread is not
worth its start for a config).  L{BodyWriter} is an
L{IBlobWriter} that is also the request's L{IBodyProducer}: what its
producer writes goes onto the connection, and the connection's pauses go
back to that producer.  A copy between two registries is one of each,
connected: nothing is kept but what the sockets hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IResponse
from zope.interface import implementer

from txregistry import errors as model
from txregistry.client.errors import NetworkError
from txregistry.client.hashing import HashingThread
from txregistry.client.http import describe
from txregistry.interfaces import IBlobReader, IBlobWriter
from txregistry.registry.digest import Digest

__all__ = ["ResponseReader", "BodyWriter"]


class _Body(Protocol):
    def __init__(self, reader: "ResponseReader") -> None:
        self.reader = reader

    def connectionMade(self) -> None:
        self.reader._connected()

    def dataReceived(self, data: bytes) -> None:
        self.reader._received(data)

    def connectionLost(self, reason: Failure = ResponseDone()) -> None:  # type: ignore[assignment]
        self.reader._ended(reason)


@implementer(IBlobReader)
class ResponseReader:
    """
    A response's body as an L{IBlobReader}.

    @param expected: the digest the whole body must have, or L{None} (a
        range of a blob) to check only its length.
    """

    #: Bodies at least this long are hashed on a L{HashingThread}.
    threadedFrom = 1024 * 1024

    def __init__(self, response: IResponse, length: int, expected: Digest | None,
                 what: str) -> None:
        self.response = response
        self.length = length
        self.expected = expected
        self.what = what
        self._protocol: _Body | None = None
        self._consumer: Any = None
        self._hasher: Any = None
        self._thread: HashingThread | None = None
        self._done: Deferred[None] = Deferred()
        self._received_ = 0
        # Who wants the connection paused: the consumer, the hash, or both.
        self._holders: set[str] = set()

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        if self.expected is not None:
            self._hasher = hashlib.new(self.expected.algorithm)
            if self.length >= self.threadedFrom:
                self._thread = HashingThread(self._hasher, lambda: self._release("hash"))
        self._consumer = consumer
        consumer.registerProducer(self, True)
        self._protocol = _Body(self)
        self.response.deliverBody(self._protocol)
        return self._done

    def _connected(self) -> None:
        # A consumer that paused before the body came (a request body not
        # yet wanted) holds the connection from its start.
        transport = self._transport()
        if self._holders and transport is not None:
            transport.pauseProducing()

    def _received(self, data: bytes) -> None:
        self._received_ += len(data)
        if self._thread is not None:
            if self._thread.update(data):
                self._hold("hash")
        elif self._hasher is not None:
            self._hasher.update(data)
        self._consumer.write(data)

    def _ended(self, reason: Failure) -> None:
        ensureDeferred(self._finish(reason)).addBoth(self._fire)

    def _fire(self, result: Any) -> None:
        self._done.callback(None) if not isinstance(result, Failure) else self._done.errback(result)

    async def _finish(self, reason: Failure) -> None:
        self._consumer.unregisterProducer()
        if self._thread is not None:
            self._thread.stop()
        if not reason.check(ResponseDone, PotentialDataLoss):
            raise NetworkError(f"{self.what}: the connection dropped after "
                               f"{self._received_} of {self.length} bytes ({describe(reason.value)})")
        if self._received_ != self.length:
            raise NetworkError(f"{self.what}: {self._received_} bytes came, not {self.length}")
        if self._hasher is not None and self.expected is not None:
            hexdigest = (await self._thread.hexdigest() if self._thread is not None
                         else self._hasher.hexdigest())
            actual = Digest(self.expected.algorithm, hexdigest)
            if actual != self.expected:
                raise model.DigestInvalid(
                    f"{self.what}: the content's digest is {actual}", str(self.expected), str(actual))

    def _transport(self) -> Any:
        return getattr(self._protocol, "transport", None)

    def _hold(self, holder: str) -> None:
        if not self._holders:
            transport = self._transport()
            if transport is not None:
                transport.pauseProducing()
        self._holders.add(holder)

    def _release(self, holder: str) -> None:
        if holder in self._holders:
            self._holders.discard(holder)
            transport = self._transport()
            if not self._holders and transport is not None:
                transport.resumeProducing()

    def pauseProducing(self) -> None:
        self._hold("consumer")

    def resumeProducing(self) -> None:
        self._release("consumer")

    def stopProducing(self) -> None:
        transport = self._transport()
        if transport is not None:
            transport.stopProducing()


@implementer(IBlobWriter, IBodyProducer, IPushProducer)
class BodyWriter:
    """
    Bytes written to it become the body of a request being sent.

    @param send: starts the request with this object as its body
        producer; its result is the answer.
    @param finish: what the answer means: the size now stored, or the
        model's error.
    @param length: the body's length if known (sent as C{Content-Length};
        otherwise the body is chunked).
    """

    def __init__(self, send: Callable[["BodyWriter"], Awaitable[IResponse]],
                 finish: Callable[[IResponse], Awaitable[int]],
                 length: int | None = None,
                 abandon: Callable[[], Awaitable[None]] | None = None) -> None:
        self.length = UNKNOWN_LENGTH if length is None else length
        self._finish = finish
        self._abandon = abandon
        self._consumer: Any = None
        self._producer: Any = None
        self._pending: list[bytes] = []
        self._bodyDone: Deferred[None] | None = None
        self._stopped = False
        self._transportPaused = False
        self._response: Deferred[IResponse] = ensureDeferred(send(self))  # type: ignore[arg-type]
        self._response.addErrback(self._failedEarly)
        self.failure: Failure | None = None

    def _failedEarly(self, failure: Failure) -> Failure:
        self.failure = failure
        if self._producer is not None:
            self._producer.stopProducing()
        return failure

    # IBodyProducer, for the HTTP client

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        self._consumer = consumer
        self._bodyDone = Deferred()
        pending, self._pending = self._pending, []
        for data in pending:
            consumer.write(data)
        if self._producer is not None and not self._transportPaused:
            self._producer.resumeProducing()
        if self._closing:
            self._bodyDone.callback(None)
        return self._bodyDone

    def pauseProducing(self) -> None:
        self._transportPaused = True
        if self._producer is not None:
            self._producer.pauseProducing()

    def resumeProducing(self) -> None:
        self._transportPaused = False
        if self._producer is not None:
            self._producer.resumeProducing()

    def stopProducing(self) -> None:
        # The request went away (the registry answered early, or the
        # connection dropped): the producer has nowhere to write.
        self._stopped = True
        if self._producer is not None:
            self._producer.stopProducing()

    # IBlobWriter, for whoever writes the blob

    _closing = False

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer = producer
        if self._consumer is None:
            # Not connected yet: hold the producer until the body is wanted.
            producer.pauseProducing()

    def unregisterProducer(self) -> None:
        self._producer = None

    def write(self, data: bytes) -> None:
        if self._stopped:
            return
        if self._consumer is None:
            self._pending.append(data)
        else:
            self._consumer.write(data)

    def close(self) -> Deferred[int]:
        return ensureDeferred(self._close())

    async def _close(self) -> int:
        self._closing = True
        if self._bodyDone is not None and not self._bodyDone.called:
            self._bodyDone.callback(None)
        response = await self._response
        return await self._finish(response)

    def abort(self) -> Deferred[None]:
        return ensureDeferred(self._abort())

    async def _abort(self) -> None:
        self._stopped = True
        if self._bodyDone is None:
            self._response.cancel()
        elif not self._bodyDone.called:
            self._bodyDone.errback(Failure(model.BlobUploadInvalid("the upload was abandoned")))
        try:
            await self._response
        except Exception:
            pass
        if self._abandon is not None:
            await self._abandon()

