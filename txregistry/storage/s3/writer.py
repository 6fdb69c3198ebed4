# -*- test-case-name: tests.storage.test_s3 -*-
"""
L{S3Writer}: a value written as a multipart upload, fed with backpressure.

Bytes are cut into parts as they arrive (equal within each thousand, as
L{partSize} says: the part size doubles after every L{TIER} parts, so a
value of any size fits S3's 10 000 parts; a value below C{1000 *
chunksize} is all equal parts, as stores such as R2 require) and each full
part is uploaded while the next fills; the writer pauses its producer while
more than two parts wait, so memory stays a few parts per writer whatever
the value's size.

A replacing writer's value shorter than one part is one C{PUT}; a longer
one is completed at L{S3Writer.commit}, which S3 makes appear whole.

An appending writer goes on with an I{open value}
(L{txregistry.storage.s3.openvalue}): its parts are numbered after the
value's committed ones, in the value's one multipart upload, and its
commit is the conditional C{PUT} of the new tail with the new state.  When
another appender committed first, a writer that has streamed no part yet
starts its commit again from the new state (its bytes are all in memory);
one that has cannot, and fails, leaving the value as the other made it.
In one process, appenders to one value never race so: the first to stream
a part holds the value's upload until it commits or cancels, and another
streams its parts to a staging object of its own (hidden from listings),
which its commit, once the first is done, appends to the value (reading
it back: a cost only such a race pays) and deletes.
L{S3Writer.cancel} leaves the value as it was: an appender's stray parts
are never committed, and a multipart upload the writer began is aborted.
"""

from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from txregistry.shielding import shielded
from txregistry.storage.errors import PathNotFoundError, StorageUnavailableError, WriterClosedError
from txregistry.storage.interfaces import IStorageWriter
from txregistry.storage.s3.client import S3Error
from txregistry.storage.s3.openvalue import (
    NONCE,
    TIER,
    OpenValue,
    chainETags,
    partSize,
    stagedReader,
    stagingKey,
)
from txregistry.storage.s3.parameters import MAX_PART

if TYPE_CHECKING:
    from txregistry.storage.s3.driver import Opened, S3Driver

__all__ = ["S3Writer", "TIER", "partSize", "splitRanges"]

#: Parts uploaded at once by one writer.
CONCURRENCY = 2
#: Commits of an append started again when the value keeps changing.
APPEND_ATTEMPTS = 10


def splitRanges(size: int, chunkSize: int, maxParts: int) -> list[tuple[int, int]]:
    """
    Inclusive byte ranges covering C{size} bytes in at most C{maxParts}
    parts of at least C{chunkSize} bytes (the last takes the remainder, so
    none but a lone part is smaller), none above S3's largest part: how an
    object is copied server-side, part by part.
    """
    chunk = max(chunkSize, -(-size // maxParts))
    count = max(1, size // chunk)
    while size // count > MAX_PART:
        count += 1
    each = size // count
    return [
        (i * each, size - 1 if i == count - 1 else (i + 1) * each - 1) for i in range(count)
    ]


@implementer(IStorageWriter)
class S3Writer:
    """
    See the module's docstring.

    @param opened: for an appending writer, the open value it goes on
        with (L{S3Driver.openForAppend}); L{None} for a replacing writer.
    """

    def __init__(
        self, driver: S3Driver, path: str, key: str, opened: Opened | None = None,
        owner: object = None,
    ) -> None:
        self._driver = driver
        self.path = path
        self._key = key
        self._append = opened is not None
        #: Who holds the value's upload for this writer (see the module).
        self._owner = owner if owner is not None else self
        self._claimed = owner is not None
        #: Where parts go: the value's key, or a staging key.
        self._target = key
        self._staging = False
        self._failure: Failure | None = None
        self._closed = False
        self._cancelled = False
        self._producer: Any = None
        self._producerPaused = False
        self._idleWaiters: list[Deferred[None]] = []
        self._inflight = 0
        self._inflightBytes = 0
        self._creating = False
        self._start(opened)

    def _start(self, opened: Opened | None) -> None:
        """
        Begin (or, for an append whose value changed, begin again) from
        C{opened}: the value's state, its ETag and its tail.
        """
        self._opened = opened
        if opened is None:
            self._state = OpenValue("", 0, 0, self._driver.parameters.chunkSize, "")
            self._ownUpload = False
            prefix = b""
        else:
            self._state = opened.state
            self._ownUpload = opened.ownUpload
            prefix = opened.tail
        self.size = self._state.size
        self._chunkSize = self._state.chunkSize
        self._uploadID: str | None = self._state.uploadID or None
        self._prefixLength = len(prefix)
        self._buffer: list[bytes] = [prefix] if prefix else []
        self._buffered = len(prefix)
        self._first = self._state.parts + 1
        self._next = self._first
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queuedBytes = 0
        self._parts: dict[int, str] = {}

    # IConsumer

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        if not streaming:
            raise ValueError("S3 writers take push producers only")
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
            self._waiting() > self._highWater()
            and self._producer is not None
            and not self._producerPaused
        ):
            self._producerPaused = True
            IPushProducer(self._producer).pauseProducing()

    def _highWater(self) -> int:
        return 2 * self._currentPartSize()

    def _waiting(self) -> int:
        return self._buffered + self._queuedBytes + self._inflightBytes

    def _currentPartSize(self) -> int:
        return partSize(self._chunkSize, self._next - 1)

    def _cut(self) -> None:
        """
        Turn the buffer's full parts into queued uploads.
        """
        while self._buffered >= self._currentPartSize():
            size = self._currentPartSize()
            data = b"".join(self._buffer)
            part, rest = data[:size], data[size:]
            self._buffer = [rest] if rest else []
            self._buffered = len(rest)
            self._prefixLength = 0
            self._queue.append((self._next, part))
            self._queuedBytes += len(part)
            self._next += 1
        self._pump()

    def _pump(self) -> None:
        if self._failure is not None or not self._queue:
            return
        if self._append and not self._claimed and not self._staging:
            if self._driver.claims.claim(self._key, self._owner):
                self._claimed = True
            else:
                self._staging = True
                self._target = stagingKey(self._driver)
                self._uploadID = None
        if self._uploadID is None:
            if not self._creating:
                self._creating = True
                self._driver.createUpload(self._target).addCallbacks(
                    self._created, self._partFailed
                )
            return
        while self._queue and self._inflight < CONCURRENCY:
            number, data = self._queue.popleft()
            self._queuedBytes -= len(data)
            self._inflight += 1
            self._inflightBytes += len(data)
            d = self._driver.uploadPart(self._target, self._uploadID, number, data)
            d.addCallback(self._uploaded, number)
            d.addErrback(self._partFailed)
            d.addBoth(self._partDone, len(data))

    def _created(self, uploadID: str) -> None:
        self._creating = False
        self._uploadID = uploadID
        self._ownUpload = True
        if self._cancelled:
            self._notifyIdle()
            return
        self._pump()
        self._notifyIdle()

    def _uploaded(self, etag: str, number: int) -> None:
        self._parts[number] = etag

    def _partFailed(self, failure: Failure) -> None:
        self._creating = False
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

    def _partDone(self, _: object, size: int) -> None:
        self._inflight -= 1
        self._inflightBytes -= size
        self._pump()
        if self._producerPaused and self._waiting() <= self._currentPartSize():
            self._resumeProducer()
        self._notifyIdle()

    def _resumeProducer(self) -> None:
        if self._producerPaused and self._producer is not None:
            self._producerPaused = False
            self._producer.resumeProducing()

    def _busy(self) -> bool:
        return bool(self._inflight or self._creating or (self._queue and self._failure is None))

    def _notifyIdle(self) -> None:
        if self._busy():
            return
        waiters, self._idleWaiters = self._idleWaiters, []
        for d in waiters:
            d.callback(None)

    def _idle(self) -> Deferred[None]:
        if not self._busy():
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idleWaiters.append(d)
        return d

    # Completion

    def commit(self) -> Deferred[int]:
        return shielded(Deferred.fromCoroutine(self._commit()))

    async def _commit(self) -> int:
        if self._closed:
            raise WriterClosedError(self.path)
        self._closed = True
        try:
            await self._idle()
            try:
                if self._failure is not None:
                    self._failure.raiseException()
                if self._staging:
                    return await self._commitStaged()
                if self._append:
                    if not self._claimed:
                        # Not while another writer here streams to it.
                        await self._driver.claims.wait(self._key, self._owner)
                        self._claimed = True
                    return await self._driver.appendLock(self._key, self._commitAppend)
                return await self._commitReplace()
            except BaseException:
                await self._abort()
                raise
        finally:
            self._unclaim()

    def _unclaim(self) -> None:
        if self._claimed and self._owner is self:
            self._claimed = False
            self._driver.claims.release(self._key, self)

    async def _commitStaged(self) -> int:
        """
        Complete the staging object, then, once no other writer in this
        process holds the value's upload, append it to the value.
        """
        assert self._uploadID is not None and self._opened is not None
        tail = self._tail()
        if tail:
            self._parts[self._next] = await self._driver.uploadPart(
                self._target, self._uploadID, self._next, tail
            )
        await self._driver.completeUpload(self._target, self._uploadID, self._parts)
        self._uploadID = None
        staged = self._target
        try:
            await self._driver.claims.wait(self._key, self)
            self._claimed = True
            again = S3Writer(self._driver, self.path, self._key,
                             await self._driver.openForAppend(self.path, self._key), owner=self)
            start = len(self._opened.tail)
            reader = await stagedReader(self._driver, self.path, staged, start)
            again.registerProducer(reader, True)
            await reader.startProducing(again)
            again.unregisterProducer()
            return await again.commit()
        finally:
            await self._driver.deleteKey(staged)

    def _tail(self) -> bytes:
        tail = b"".join(self._buffer)
        self._buffer = []
        self._buffered = 0
        return tail

    async def _commitReplace(self) -> int:
        tail = self._tail()
        await self._driver.checkPlace(self.path)
        if self._uploadID is None:
            await self._driver.putObject(self._key, tail)
            return self.size
        if tail or not self._parts:
            self._parts[self._next] = await self._driver.uploadPart(
                self._key, self._uploadID, self._next, tail
            )
        await self._driver.completeUpload(self._key, self._uploadID, self._parts)
        self._uploadID = None
        return self.size

    async def _commitAppend(self) -> int:
        for _ in range(APPEND_ATTEMPTS):
            opened = self._opened
            assert opened is not None
            await self._idle()
            if self._failure is not None:
                self._failure.raiseException()
            state = OpenValue(
                uploadID=self._uploadID or "",
                parts=self._next - 1,
                size=self.size,
                chunkSize=self._chunkSize,
                chain=chainETags(
                    self._state.chain, (self._parts[n] for n in range(self._first, self._next))
                ),
            )
            tail = b"".join(self._buffer)
            # The ETag again, under this process's lock: a store that does
            # not honour If-Match still never loses an append made here.
            found = await self._driver.head(self._key)
            if found is None:
                raise PathNotFoundError(self.path)
            if found.etag == opened.etag:
                try:
                    await self._driver.putObject(
                        self._key, tail + os.urandom(NONCE), ifMatch=opened.etag,
                        metadata=state.headers(),
                    )
                except S3Error as e:
                    if e.status not in (409, 412):
                        raise
                else:
                    self._buffer = []
                    self._buffered = 0
                    self._ownUpload = False
                    self._uploadID = None
                    return self.size
            await self._again()
        raise StorageUnavailableError(
            f"{self.path}: changed under {APPEND_ATTEMPTS} attempts to append to it"
        )

    async def _again(self) -> None:
        """
        Another appender committed first: start this commit again from the
        value it left, if this writer's bytes are all still in memory.
        """
        if self._next != self._first:
            raise StorageUnavailableError(
                f"{self.path}: another writer appended to it meanwhile; this append"
                " (already partly uploaded) is dropped"
            )
        written = b"".join(self._buffer)[self._prefixLength:]
        if self._ownUpload:
            await self._abort()
        self._start(await self._driver.openForAppend(self.path, self._key))
        self._buffer.append(written)
        self._buffered += len(written)
        self.size += len(written)
        self._cut()

    def cancel(self) -> Deferred[None]:
        return shielded(Deferred.fromCoroutine(self._cancel()))

    async def _cancel(self) -> None:
        try:
            await self._cancelled_()
        finally:
            self._unclaim()

    async def _cancelled_(self) -> None:
        if self._closed:
            await self._abort()
            return
        self._closed = self._cancelled = True
        self._queue.clear()
        self._queuedBytes = 0
        self._buffer = []
        self._buffered = 0
        await self._idle()
        await self._abort()

    async def _abort(self) -> None:
        """
        Abort the multipart upload this writer began (an appender's parts
        in the value's own upload are left: nothing commits them).
        """
        uploadID, self._uploadID = self._uploadID, None
        if uploadID is not None and self._ownUpload:
            self._ownUpload = False
            await self._driver.abortUpload(self._target, uploadID)
