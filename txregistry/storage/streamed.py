# -*- test-case-name: tests.storage.test_azure,tests.storage.test_gcs -*-
"""
L{StreamedReader}: one ranged C{GET} of a remote store, streamed to a
consumer with backpressure.  A driver gives it the request to make
(L{StreamedReader.__init__}'s C{open}); the rest is the same for every
store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from zope.interface import implementer

from txregistry.storage.errors import StorageError
from txregistry.storage.interfaces import IStorageReader

__all__ = ["Opener", "StreamedReader"]

#: Makes the ranged request: called with the first and the last byte
#: (inclusive) when production starts; returns the response, its body not
#: yet read.
Opener = Callable[[int, int], Awaitable[Any]]


class _Body(Protocol):
    """
    Hands the response body to the reader as it arrives.
    """

    def __init__(self, reader: StreamedReader) -> None:
        self._reader = reader

    def connectionMade(self) -> None:
        self._reader._connected(self.transport)

    def dataReceived(self, data: bytes) -> None:
        self._reader._received(data)

    def connectionLost(self, reason: Failure = ResponseDone()) -> None:  # type: ignore[assignment]
        self._reader._ended(reason)


@implementer(IStorageReader)
class StreamedReader:
    """
    Streams C{length} bytes of a stored value from C{offset}: one ranged
    C{GET}, made only when production starts, which the driver makes
    conditional on the version it saw when it opened the reader (an ETag, a
    generation), so that a value replaced meanwhile fails the stream (the
    store answers 412) instead of mixing two values.  Pausing the reader
    pauses the connection: TCP's window holds the store back.

    @param store: the store's name, for messages.
    """

    def __init__(
        self, store: str, open: Opener, path: str, offset: int, length: int
    ) -> None:
        self._store = store
        self._open = open
        self._path = path
        self._offset = offset
        self.length = length
        self._received_ = 0
        self._consumer: IConsumer | None = None
        self._transport: Any = None
        self._paused = False
        self._stopped = False
        self._held: list[bytes] = []
        self._ended_: Failure | None = None
        self._finished: Deferred[None] = Deferred()

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        self._consumer = consumer
        if self.length == 0:
            self._stopped = True
            return succeed(None)
        Deferred.fromCoroutine(self._get()).addErrback(self._failed)
        return self._finished

    async def _get(self) -> None:
        last = self._offset + self.length - 1
        response = await self._open(self._offset, last)
        if response.code == 200 and self._offset != 0 and not self._stopped:
            raise StorageError(f"{self._store} GET {self._path}: the store ignored the range")
        # Even when stopped meanwhile: the protocol then drops the
        # connection as soon as it has it.
        response.deliverBody(_Body(self))

    def _connected(self, transport: Any) -> None:
        self._transport = transport
        if self._stopped:
            transport.stopProducing()
        elif self._paused:
            transport.pauseProducing()

    def _received(self, data: bytes) -> None:
        if self._stopped or self._consumer is None:
            return
        room = self.length - self._received_
        if len(data) > room:
            data = data[:room]
        self._received_ += len(data)
        if self._paused or self._held:
            # Read before the pause reached the connection: hold it until
            # the consumer wants more.
            self._held.append(data)
            return
        self._consumer.write(data)

    def _ended(self, reason: Failure) -> None:
        if self._stopped:
            return
        if self._held:
            self._ended_ = reason
            return
        self._stopped = True
        if self._received_ == self.length:
            self._finished.callback(None)
        else:
            self._finished.errback(
                Failure(
                    StorageError(
                        f"{self._store} GET {self._path}: the stream ended after "
                        f"{self._received_} of {self.length} bytes ({reason.getErrorMessage()})"
                    )
                )
            )

    def _failed(self, failure: Failure) -> None:
        if self._stopped:
            return
        self._stopped = True
        # A store's refusal carries its HTTP status (RemoteError, S3Error).
        if failure.check(StorageError) and getattr(failure.value, "status", None) == 412:
            failure = Failure(StorageError(f"{self._path} changed while it was being read"))
        self._finished.errback(failure)

    def pauseProducing(self) -> None:
        self._paused = True
        if self._transport is not None:
            self._transport.pauseProducing()

    def resumeProducing(self) -> None:
        self._paused = False
        while self._held and not self._paused and not self._stopped:
            assert self._consumer is not None
            self._consumer.write(self._held.pop(0))
        if self._paused or self._stopped:
            return
        if self._ended_ is not None:
            self._ended(self._ended_)
        elif self._transport is not None:
            self._transport.resumeProducing()

    def stopProducing(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._held = []
        if self._transport is not None:
            self._transport.stopProducing()
