# -*- test-case-name: tests.client.test_files -*-
"""
Blob content from and to local files, on threads (opening, reading,
writing and syncing a file block; the reactor must not), with the same
backpressure as the network's.

L{FileReader} reads a file's range chunk by chunk, one chunk in flight,
and waits while its consumer is paused.  L{FileWriter} queues what it is
written, writes it on a thread in order, pauses its producer while more
than L{FileWriter.highWater} bytes wait, and makes the file appear under
its name only once everything is on disk and checked (a temporary file
renamed): a reader never sees half a blob.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import IO, Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IConsumer
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from zope.interface import implementer

from txregistry import errors as model
from txregistry.interfaces import IBlobReader, IBlobWriter
from txregistry.registry.digest import Digest

__all__ = ["FileReader", "FileWriter", "temporaryName"]

#: How much is read per thread hop.
CHUNK = 1024 * 1024


def temporaryName(path: str) -> str:
    """
    A name beside C{path} for what becomes C{path} when it is complete.
    """
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.partial")


@implementer(IBlobReader)
class FileReader:
    """
    C{length} bytes of C{path} from C{offset}, checked against
    C{expected} when given.
    """

    def __init__(self, path: str, offset: int = 0, length: int | None = None,
                 expected: Digest | None = None, what: str | None = None) -> None:
        self.path = path
        self.offset = offset
        self.length = length if length is not None else os.path.getsize(path) - offset
        self.expected = expected
        self.what = what or path
        self._remaining = self.length
        self._file: IO[bytes] | None = None
        self._paused = False
        self._reading = False
        self._stopped = False
        self._consumer: Any = None
        # Hashed on the reading thread, as each chunk is read.
        self._hasher = hashlib.new(expected.algorithm) if expected is not None else None
        self._done: Deferred[None] = Deferred()

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        self._consumer = consumer
        consumer.registerProducer(self, True)
        deferToThread(self._open).addCallbacks(lambda _: self._next(), self._fail)
        return self._done

    def _open(self) -> None:
        self._file = open(self.path, "rb")
        self._file.seek(self.offset)

    def _read(self, size: int) -> bytes:
        assert self._file is not None
        data = self._file.read(size)
        if self._hasher is not None:
            self._hasher.update(data)
        return data

    def _next(self) -> None:
        if self._paused or self._reading or self._done.called:
            return
        if self._stopped:
            self._fail(Failure(model.BlobUploadInvalid(f"{self.what}: reading stopped")))
            return
        if self._remaining == 0:
            ensureDeferred(self._finish()).addErrback(self._fail)
            return
        self._reading = True
        deferToThread(self._read, min(CHUNK, self._remaining)).addCallbacks(self._got, self._fail)

    def _got(self, data: bytes) -> None:
        self._reading = False
        if not data:
            self._fail(Failure(model.BlobUnknown(f"{self.what}: the file ended early")))
            return
        self._remaining -= len(data)
        self._consumer.write(data)
        self._next()

    async def _finish(self) -> None:
        self._consumer.unregisterProducer()
        self._close()
        if self._hasher is not None and self.expected is not None:
            actual = Digest(self.expected.algorithm, self._hasher.hexdigest())
            if actual != self.expected:
                raise model.DigestInvalid(f"{self.what}: the content's digest is {actual}",
                                          str(self.expected), str(actual))
        self._done.callback(None)

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _fail(self, failure: Failure) -> None:
        self._reading = False
        self._close()
        if not self._done.called:
            if self._consumer is not None:
                self._consumer.unregisterProducer()
            self._done.errback(failure)

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._next()

    def stopProducing(self) -> None:
        self._stopped = True
        self._paused = False
        self._next()


@implementer(IBlobWriter)
class FileWriter:
    """
    Writes to C{path} through a temporary file renamed over it at
    L{close}; L{abort} removes the temporary file.

    @param expected: the digest the content must have, checked at close.
    @param size: the size it must have, checked at close.
    """

    highWater = 8 * 1024 * 1024

    def __init__(self, path: str, expected: Digest | None = None, size: int | None = None) -> None:
        self.path = path
        self.expected = expected
        self.size = size
        self.temporary = temporaryName(path)
        self._hasher = hashlib.new(expected.algorithm) if expected else None
        self._file: IO[bytes] | None = None
        self._queue: list[bytes] = []
        self._queued = 0
        self._written = 0
        self._writing: Deferred[None] | None = None
        self._failure: Failure | None = None
        self._producer: Any = None
        self._held = False
        self._idle: list[Deferred[None]] = []

    # IConsumer

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer = producer

    def unregisterProducer(self) -> None:
        self._producer = None

    def write(self, data: bytes) -> None:
        self._queue.append(data)
        self._queued += len(data)
        if self._queued > self.highWater and self._producer is not None and not self._held:
            self._held = True
            self._producer.pauseProducing()
        self._drain()

    def _writeBatch(self, batch: list[bytes]) -> None:
        if self._file is None:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            self._file = open(self.temporary, "wb")
        for data in batch:
            self._file.write(data)
            if self._hasher is not None:
                self._hasher.update(data)

    def _drain(self) -> None:
        if self._writing is not None or self._failure is not None:
            return
        batch, self._queue = self._queue, []
        size = sum(len(b) for b in batch)
        self._writing = deferToThread(self._writeBatch, batch)

        def written(result: Any) -> None:
            self._writing = None
            if isinstance(result, Failure):
                self._failure = result
            self._written += size
            self._queued -= size
            if self._held and self._queued <= self.highWater // 4 and self._producer is not None:
                self._held = False
                self._producer.resumeProducing()
            if self._queue:
                self._drain()
            else:
                waiters, self._idle = self._idle, []
                for waiter in waiters:
                    waiter.callback(None)

        self._writing.addBoth(written)

    async def _flushed(self) -> None:
        while self._queue or self._writing is not None:
            waiter: Deferred[None] = Deferred()
            self._idle = [*self._idle, waiter]
            if self._writing is None:
                self._drain()
            await waiter
        if self._failure is not None:
            self._failure.raiseException()

    def _finishFile(self) -> None:
        if self._file is None:
            self._writeBatch([])
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None

    def _discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass

    def close(self) -> Deferred[int]:
        return ensureDeferred(self._close())

    async def _close(self) -> int:
        try:
            await self._flushed()
            await deferToThread(self._finishFile)
            if self.size is not None and self._written != self.size:
                raise model.DigestInvalid(
                    f"{self.path}: {self._written} bytes written, not {self.size}",
                    str(self.expected or ""))
            if self._hasher is not None and self.expected is not None:
                actual = Digest(self.expected.algorithm, self._hasher.hexdigest())
                if actual != self.expected:
                    raise model.DigestInvalid(f"{self.path}: the content's digest is {actual}",
                                              str(self.expected), str(actual))
            await deferToThread(os.replace, self.temporary, self.path)
        except BaseException:
            await deferToThread(self._discard)
            raise
        return self._written

    def abort(self) -> Deferred[None]:
        return ensureDeferred(self._abort())

    async def _abort(self) -> None:
        try:
            await self._flushed()
        except Exception:
            pass
        await deferToThread(self._discard)
