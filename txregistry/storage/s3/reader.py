# -*- test-case-name: tests.storage.test_s3 -*-
"""
L{S3Reader}: one ranged C{GET}, streamed to a consumer with backpressure.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from zope.interface import implementer

from txregistry.storage.errors import StorageError
from txregistry.storage.interfaces import IStorageReader
from txregistry.storage.s3.client import S3Client, S3Error

__all__ = ["S3Reader"]


class _Body(Protocol):
    """
    Hands the response body to the reader as it arrives.
    """

    def __init__(self, reader: S3Reader) -> None:
        self._reader = reader

    def connectionMade(self) -> None:
        self._reader._connected(self.transport)

    def dataReceived(self, data: bytes) -> None:
        self._reader._received(data)

    def connectionLost(self, reason: Failure = ResponseDone()) -> None:  # type: ignore[assignment]
        self._reader._ended(reason)


@implementer(IStorageReader)
class S3Reader:
    """
    Streams C{length} bytes of C{key} from C{offset}: one C{GET} with a
    C{Range}, made only when production starts, conditional on the ETag
    the driver saw when it opened the reader (so a value replaced
    meanwhile fails the stream instead of mixing two values).  Pausing the
    reader pauses the connection: TCP's window holds S3 back.
    """

    def __init__(
        self, client: S3Client, path: str, key: str, etag: str, offset: int, length: int
    ) -> None:
        self._client = client
        self._path = path
        self._key = key
        self._etag = etag
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
        response = await self._client.request(
            "GET",
            self._key,
            headers={"Range": f"bytes={self._offset}-{last}", "If-Match": self._etag},
            expect=(200, 206),
            what=f"GET {self._path}",
        )
        if response.code == 200 and self._offset != 0 and not self._stopped:
            raise StorageError(f"S3 GET {self._path}: the store ignored the range")
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
                        f"S3 GET {self._path}: the stream ended after "
                        f"{self._received_} of {self.length} bytes ({reason.getErrorMessage()})"
                    )
                )
            )

    def _failed(self, failure: Failure) -> None:
        if self._stopped:
            return
        self._stopped = True
        if failure.check(S3Error) and failure.value.status == 412:  # type: ignore[union-attr]
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
