# -*- test-case-name: tests.storage.test_s3 -*-
"""
L{S3Writer}: a value written as a multipart upload, fed with backpressure.

Bytes are cut into equal parts of C{chunksize} as they arrive and each full
part is uploaded while the next fills; the writer pauses its producer while
more than two parts wait, so memory stays a few parts per writer whatever
the value's size.  So that a value of any size fits S3's 10 000 parts, the
part size doubles after every L{TIER} parts (10 MiB parts reach 10 GiB in
the first thousand, 30 GiB in the second, 9 TiB before the limit): parts
are equal within each thousand, and a value below C{1000 * chunksize} is
all equal parts, as stores such as R2 require (give such a store a
C{chunksize} to match the largest blobs).

A value shorter than one part is one C{PUT}.  Nothing is visible before
L{S3Writer.commit} completes the upload, which S3 makes appear whole;
L{S3Writer.cancel} aborts it.

An appending writer (see L{IStorageWriter}) keeps its first new part in
memory, uploads the rest as parts numbered from L{FIRST_STREAMED}, and at
commit reads the current object's size and ETag and puts it in front:
copied server-side into parts 1..999 (C{UploadPartCopy}, conditional on
that ETag) when it is at least S3's minimum part, else read and
re-uploaded together with the first new part as part L{HEAD_PART}.  The
upload is completed with C{If-Match} on the ETag, and the commit starts
again from the read if the object changed meanwhile; commits of appends to
one key in this process also take turns.  The registry's upload, then,
is in the bucket after every committed chunk: a restarted registry (or
another instance) resumes it from there.
"""

from __future__ import annotations

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
from txregistry.storage.s3.parameters import MAX_PART, MIN_PART

if TYPE_CHECKING:
    from txregistry.storage.s3.driver import S3Driver

__all__ = ["FIRST_STREAMED", "HEAD_PART", "S3Writer", "TIER", "partSize", "splitRanges"]

#: Parts per size tier: the part size doubles after each.
TIER = 1000
#: An appending writer's part for its first new bytes (and, when the
#: existing object is below S3's minimum part, that object before them).
HEAD_PART = 1000
#: The first part number an appending writer streams to.
FIRST_STREAMED = 1001
#: Parts uploaded at once by one writer.
CONCURRENCY = 2
#: Commits of an append retried when the object keeps changing under them.
APPEND_ATTEMPTS = 10


def partSize(chunkSize: int, index: int) -> int:
    """
    The size of the C{index}th (from 0) streamed part of a writer.
    """
    return min(MAX_PART, chunkSize << (index // TIER))


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
    """

    def __init__(
        self, driver: S3Driver, path: str, key: str, append: bool, startSize: int
    ) -> None:
        self._driver = driver
        self.path = path
        self._key = key
        self._append = append
        self._startSize = startSize
        self.size = startSize
        self._chunkSize = driver.parameters.chunkSize
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._first = FIRST_STREAMED if append else 1
        self._next = self._first
        self._head: bytes | None = None
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queuedBytes = 0
        self._inflight = 0
        self._inflightBytes = 0
        self._uploadID: str | None = None
        self._creating = False
        self._parts: dict[int, str] = {}
        self._failure: Failure | None = None
        self._closed = False
        self._cancelled = False
        self._producer: Any = None
        self._producerPaused = False
        self._idleWaiters: list[Deferred[None]] = []

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
        return partSize(self._chunkSize, self._next - self._first)

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
            if self._append and self._head is None:
                self._head = part
                continue
            self._queue.append((self._next, part))
            self._queuedBytes += len(part)
            self._next += 1
        self._pump()

    def _pump(self) -> None:
        if self._failure is not None or not self._queue:
            return
        if self._uploadID is None:
            if not self._creating:
                self._creating = True
                self._driver.createUpload(self._key).addCallbacks(
                    self._created, self._partFailed
                )
            return
        while self._queue and self._inflight < CONCURRENCY:
            number, data = self._queue.popleft()
            self._queuedBytes -= len(data)
            self._inflight += 1
            self._inflightBytes += len(data)
            d = self._driver.uploadPart(self._key, self._uploadID, number, data)
            d.addCallback(self._uploaded, number)
            d.addErrback(self._partFailed)
            d.addBoth(self._partDone, len(data))

    def _created(self, uploadID: str) -> None:
        self._creating = False
        self._uploadID = uploadID
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
        await self._idle()
        try:
            if self._failure is not None:
                self._failure.raiseException()
            if self._append:
                return await self._driver.appendLock(self._key, self._commitAppend)
            return await self._commitReplace()
        except BaseException:
            await self._abort()
            raise

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
        tail = self._tail()
        added = self.size - self._startSize
        for _ in range(APPEND_ATTEMPTS):
            found = await self._driver.head(self._key)
            if found is None:
                raise PathNotFoundError(self.path)
            existing, etag = found.size, found.etag
            if added == 0:
                await self._abort()
                return existing
            try:
                if self._head is None and existing < MIN_PART:
                    # Small on both sides: one PUT of the two together.
                    old = await self._driver.getBytes(self._key, etag)
                    await self._driver.putObject(self._key, old + tail, ifMatch=etag)
                else:
                    await self._completeAppend(existing, etag, tail)
            except S3Error as e:
                if e.status in (409, 412):
                    continue
                raise
            return existing + added
        raise StorageUnavailableError(
            f"{self.path}: changed under {APPEND_ATTEMPTS} attempts to append to it"
        )

    async def _completeAppend(self, existing: int, etag: str, tail: bytes) -> None:
        if self._uploadID is None:
            self._uploadID = await self._driver.createUpload(self._key)
        uploadID = self._uploadID
        parts = {n: e for n, e in self._parts.items() if n >= FIRST_STREAMED}
        head = self._head if self._head is not None else b""
        if existing >= MIN_PART:
            ranges = splitRanges(
                existing, self._driver.parameters.copyChunkSize, HEAD_PART - 1
            )
            copied = await self._driver.gather(
                [
                    self._driver.copyPart(self._key, uploadID, number, self._key, start, end, etag)
                    for number, (start, end) in enumerate(ranges, 1)
                ]
            )
            parts.update(enumerate(copied, 1))
        elif existing:
            head = await self._driver.getBytes(self._key, etag) + head
        if head:
            parts[HEAD_PART] = await self._driver.uploadPart(self._key, uploadID, HEAD_PART, head)
        if tail:
            if self._next not in self._parts:
                self._parts[self._next] = await self._driver.uploadPart(
                    self._key, uploadID, self._next, tail
                )
            parts[self._next] = self._parts[self._next]
        await self._driver.completeUpload(self._key, uploadID, parts, ifMatch=etag)
        self._uploadID = None

    def cancel(self) -> Deferred[None]:
        return shielded(Deferred.fromCoroutine(self._cancel()))

    async def _cancel(self) -> None:
        if self._closed:
            await self._abort()
            return
        self._closed = self._cancelled = True
        self._queue.clear()
        self._queuedBytes = 0
        self._buffer = []
        self._buffered = 0
        self._head = None
        await self._idle()
        await self._abort()

    async def _abort(self) -> None:
        uploadID, self._uploadID = self._uploadID, None
        if uploadID is not None:
            await self._driver.abortUpload(self._key, uploadID)
