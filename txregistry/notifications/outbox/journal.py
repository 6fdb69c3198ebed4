# -*- test-case-name: tests.notifications.outbox.test_journal -*-
"""
The outbox's journal: an append-only log of events, one JSON line each,
in segment files C{journal-<offset>.log} named by the offset (in the
whole journal) of their first byte.

An event that must not be lost (a push, mount or delete) is appended
with C{durable=True}: its L{Deferred} fires once the line is written and
C{fdatasync}'d, and appends that arrive while one sync is on the disk go
to the next one together (group commit), so a hundred concurrent pushes
cost a few syncs, not a hundred.  Other events (pulls) are written and
synced with the next durable append or within C{syncInterval} (100 ms),
whichever comes first; their append does not wait.

A durable append waits for the sync under way (if any) and then its
own: with the benchmark's 16 manifest PUTs at a time, about 2.5 appends
share a sync (L{syncs} and L{durableAppends}, in C{/debug/vars}), so a
request that appended after its storage writes would pay about one and a
half syncs more than without notifications.  A manifest push therefore
appends its event as an I{intent} before its storage write and waits for
both side by side (L{txregistry.notifications.intents} says why that
loses no acknowledged event and how a restart verifies an intent whose
outcome record the crash cut off); the outcome record
(L{txregistry.notifications.outbox.intents}) is an append that does not
wait, written with the next batch.  The journal itself knows nothing of
this: it keeps every line in the order appended, and a sync covers
every line appended before it.

A pull's event costs its request a template's formatting
(L{txregistry.notifications.events.eventLine}) and a list append here;
its write and sync are batched off the request path.

Every system call runs in a L{BlockingPool}, never in the reactor,
except L{Journal.open}, which runs once while the registry is made
(before it listens) so that a locked or unusable outbox stops the start.

Segments are written as zeros when they are made (C{segmentBytes}, 4 MiB
by default) and the records then overwrite them: syncing an overwrite
changes no file metadata, which on a journaling file system makes it
several times cheaper than syncing an append.  Where the records of the
last segment end is where its zeros begin (JSON lines hold no zero byte).

A position in the journal is a byte offset (records only: the zeros after
a full segment's records are not counted); a reader (a dispatcher)
keeps its own, and segments wholly before every reader's offset are
removed (L{Journal.compact}).

The records of the latest writes (up to C{tailBytes}, 1 MiB) are also
kept in memory once synced, and a read from among them is answered from
there: an endpoint that keeps up is sent what was just written without a
file read in a pool thread per envelope (a pull is an event on every
manifest GET, so under load that is dozens of envelopes a second).  A
reader that is further behind (a dead endpoint's, a restart's) reads the
segments.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from txregistry.storage.blocking import BlockingPool

__all__ = [
    "Journal", "Record", "OutboxLocked", "segmentName", "listSegments", "readRecords",
    "segmentDataLength",
]

_log = Logger()

_PREFIX, _SUFFIX = "journal-", ".log"


class OutboxLocked(Exception):
    """
    Another process has the outbox (its lock file names the pid).
    """


@dataclass(frozen=True)
class Record:
    """
    One journaled event.

    @ivar offset: where its line starts in the journal.
    @ivar next: where the next line starts.
    @ivar line: the event's JSON, without the newline.
    """

    offset: int
    next: int
    line: bytes

    def event(self) -> dict[str, Any] | None:
        """
        The event, or L{None} for a line that is not one (the unsynced
        tail of a crash, left as the disk kept it).
        """
        try:
            event = json.loads(self.line)
        except ValueError:
            return None
        return event if isinstance(event, dict) else None


def segmentName(base: int) -> str:
    return f"{_PREFIX}{base:020d}{_SUFFIX}"


def listSegments(directory: str) -> list[int]:
    """
    The base offsets of the segments in C{directory}, in order.
    """
    bases = []
    for name in os.listdir(directory):
        if name.startswith(_PREFIX) and name.endswith(_SUFFIX):
            number = name[len(_PREFIX):-len(_SUFFIX)]
            if number.isdigit():
                bases.append(int(number))
    return sorted(bases)


def readRecords(
    directory: str,
    segments: list[int],
    offset: int,
    limit: int,
    maxRecords: int,
    maxBytes: int,
) -> list[Record]:
    """
    Read whole records from C{offset} (rounded up to the first segment)
    up to C{limit}.  Blocking.

    @param segments: the segments' bases, in order.
    @return: at most C{maxRecords} records, stopping once C{maxBytes} are
        read (always at least one when one is there).
    """
    records: list[Record] = []
    if not segments or offset >= limit:
        return records
    offset = max(offset, segments[0])
    index = bisect.bisect_right(segments, offset) - 1
    read = 0
    while index < len(segments) and offset < limit:
        base = segments[index]
        end = min(segments[index + 1], limit) if index + 1 < len(segments) else limit
        if offset < end:
            try:
                f = open(os.path.join(directory, segmentName(base)), "rb")
            except FileNotFoundError:
                # Compacted away under us: what follows is in the next one.
                offset = end
                index += 1
                continue
            with f:
                f.seek(offset - base)
                while offset < end and len(records) < maxRecords and read < maxBytes:
                    line = f.readline(end - offset)
                    if not line.endswith(b"\n"):
                        break
                    records.append(Record(offset, offset + len(line), line[:-1]))
                    offset += len(line)
                    read += len(line)
            if len(records) >= maxRecords or read >= maxBytes:
                break
            if offset < end:
                break
        index += 1
    return records


class Journal:
    """
    The append-only journal in C{directory}.

    @ivar start: the offset of the first byte still kept.
    @ivar end: the offset just past the last line written and synced:
        what readers may read up to.
    @ivar flushed: callables given the new L{end} after each sync, before
        the durable appends it covered are acknowledged; one that returns
        a L{Deferred} (a bound being enforced) delays the acknowledgment
        until it fires.
    @ivar syncs: how many writes (each one C{fdatasync}) were made.
    @ivar durableAppends: how many appends waited for one: with group
        commit, the two tell how well concurrent pushes share a sync.
    """

    def __init__(
        self,
        directory: str,
        reactor: Any,
        pool: BlockingPool,
        segmentBytes: int = 4 * 1024 * 1024,
        syncInterval: float = 0.1,
        tailBytes: int = 1024 * 1024,
    ) -> None:
        self.directory = directory
        self.segmentBytes = segmentBytes
        self.syncInterval = syncInterval
        self.start = 0
        self.end = 0
        self.flushed: list[Callable[[int], Deferred[Any] | None]] = []
        self._reactor = reactor
        self._pool = pool
        self._segments: list[int] = []
        self._segmentsLock = threading.Lock()
        self._fd: int | None = None
        self._lockFD: int | None = None
        self._segmentBase = 0
        self._segmentSize = 0
        self._segmentCapacity = 0
        self._pending: list[bytes] = []
        self._waiters: list[Deferred[None]] = []
        self._writing = False
        self._timer: Any = None
        self._idle: list[Deferred[None]] = []
        #: The latest synced lines (each with its newline) and their
        #: offsets, oldest first, from L{_tailFirst} on (what is before it
        #: is dropped), and their bytes.  A L{Record} is made of one only
        #: when it is read.
        self.tailBytes = tailBytes
        self._tailLines: list[bytes] = []
        self._tailOffsets: list[int] = []
        self._tailFirst = 0
        self._tailSize = 0
        self.syncs = 0
        self.durableAppends = 0

    # Opening and closing

    def open(self) -> None:
        """
        Take the outbox's lock, find the segments and cut a torn last line
        (a crash mid-write) off the last one.  Blocking: called once,
        while the registry is made.

        @raise OutboxLocked: when another process holds the lock.
        @raise OSError: when the directory cannot be used.
        """
        os.makedirs(self.directory, exist_ok=True)
        lockPath = os.path.join(self.directory, "lock")
        fd = os.open(lockPath, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.read(fd, 64).decode("ascii", "replace").strip()
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise OutboxLocked(
                    f"{self.directory} is in use by another registry process"
                    + (f" (pid {holder})" if holder else "")
                    + "; each instance needs its own outbox"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
        self._lockFD = fd
        segments = listSegments(self.directory)
        if not segments:
            segments = [0]
            os.close(self._preallocate(0, self.segmentBytes))
            _syncDirectory(self.directory)
        last = segments[-1]
        path = os.path.join(self.directory, segmentName(last))
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        kept, dirty = _recover(self._fd)
        if dirty:
            _log.warn(
                "notifications: cleared {cut} bytes of a torn last write in {path}",
                cut=dirty, path=path,
            )
        self._segments = segments
        self._segmentBase = last
        self._segmentSize = kept
        self._segmentCapacity = max(os.fstat(self._fd).st_size, kept)
        self.start = segments[0]
        self.end = last + kept

    def _preallocate(self, base: int, size: int) -> int:
        """
        Create the segment starting at C{base} as C{size} zero bytes,
        written and synced: overwriting blocks already on the disk syncs
        without a metadata change, several times faster than appending.

        @return: its file descriptor.
        """
        fd = os.open(os.path.join(self.directory, segmentName(base)), os.O_RDWR | os.O_CREAT, 0o644)
        zeros = bytes(min(size, 1 << 20))
        written = 0
        while written < size:
            written += os.pwrite(fd, zeros[: size - written], written)
        os.fsync(fd)
        return fd

    def close(self) -> Deferred[None]:
        """
        Write and sync what is pending, then release the files and the
        lock.
        """
        d: Deferred[None] = Deferred()
        self._idle.append(d)
        if self._pending:
            self._kick()
        elif not self._writing:
            self._finishClose()
        return d

    def _finishClose(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        for fd in (self._fd, self._lockFD):
            if fd is not None:
                os.close(fd)
        self._fd = self._lockFD = None
        idle, self._idle = self._idle, []
        for d in idle:
            d.callback(None)

    # Appending

    def append(self, line: bytes, durable: bool) -> Deferred[None]:
        """
        Add one event's JSON line.

        @param durable: whether to wait for it to be synced.
        @return: a L{Deferred} that fires once the line is synced (at once
            when not C{durable}), or fails with the write's error.
        """
        if self._fd is None or self._idle:
            raise RuntimeError("the notifications journal is not open")
        self._pending.append(line + b"\n")
        if durable:
            self.durableAppends += 1
            d: Deferred[None] = Deferred()
            self._waiters.append(d)
            self._kick()
            return d
        if self._timer is None and not self._writing:
            self._timer = self._reactor.callLater(self.syncInterval, self._timed)
        return succeed(None)

    def _timed(self) -> None:
        self._timer = None
        self._kick()

    def _kick(self) -> None:
        if self._writing or not self._pending:
            return
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        lines = self._pending
        data = b"".join(lines)
        waiters = self._waiters
        self._pending, self._waiters = [], []
        self._writing = True
        self.syncs += 1
        self._pool.run(self._write, data).addCallbacks(
            self._written, self._failed, callbackArgs=(waiters, lines), errbackArgs=(waiters,)
        )

    def _write(self, data: bytes) -> int:
        """
        Write C{data} at the end and sync it (in a pool thread; one at a
        time), starting a new segment first when the current one is full.

        @return: the new end.
        """
        assert self._fd is not None
        if self._segmentSize and self._segmentSize + len(data) > self._segmentCapacity:
            base = self._segmentBase + self._segmentSize
            capacity = max(self.segmentBytes, len(data))
            fd = self._preallocate(base, capacity)
            _syncDirectory(self.directory)
            os.close(self._fd)
            self._fd, self._segmentBase, self._segmentSize = fd, base, 0
            self._segmentCapacity = capacity
            with self._segmentsLock:
                self._segments.append(base)
        before = self._segmentSize
        try:
            view = memoryview(data)
            position = before
            while view:
                written = os.pwrite(self._fd, view, position)
                view = view[written:]
                position += written
            os.fdatasync(self._fd)
        except BaseException:
            # Leave no torn line behind: the events were not acknowledged.
            try:
                os.pwrite(self._fd, bytes(len(data)), before)
            except OSError:
                pass
            raise
        self._segmentSize = before + len(data)
        self._segmentCapacity = max(self._segmentCapacity, self._segmentSize)
        return self._segmentBase + self._segmentSize

    def _written(self, end: int, waiters: list[Deferred[None]], lines: list[bytes]) -> None:
        self._remember(end, lines)
        self.end = end
        enforcing = [d for d in (listener(end) for listener in self.flushed) if d is not None]
        if enforcing:
            DeferredList(enforcing, consumeErrors=True).addCallback(
                lambda _: self._acknowledge(waiters)
            )
        else:
            self._acknowledge(waiters)

    def _acknowledge(self, waiters: list[Deferred[None]]) -> None:
        for d in waiters:
            d.callback(None)
        self._continue()

    def _failed(self, failure: Failure, waiters: list[Deferred[None]]) -> None:
        _log.failure("notifications: writing the journal failed", failure)
        for d in waiters:
            d.errback(failure)
        self._continue()

    def _continue(self) -> None:
        self._writing = False
        if self._pending and (self._waiters or self._idle):
            self._kick()
        elif self._pending:
            if self._timer is None:
                self._timer = self._reactor.callLater(self.syncInterval, self._timed)
        elif self._idle:
            self._finishClose()

    def _remember(self, end: int, lines: list[bytes]) -> None:
        """
        Keep C{lines} (each with its newline), just synced and ending at
        C{end}, in the tail; drop its oldest past C{tailBytes}.
        """
        kept, offsets = self._tailLines, self._tailOffsets
        size = sum(map(len, lines))
        offset = end - size
        for line in lines:
            offsets.append(offset)
            offset += len(line)
        kept.extend(lines)
        self._tailSize += size
        first = self._tailFirst
        while self._tailSize > self.tailBytes and first < len(kept):
            self._tailSize -= len(kept[first])
            first += 1
        if first > len(kept) // 2:
            del kept[:first], offsets[:first]
            first = 0
        self._tailFirst = first

    def _fromTail(self, offset: int, maxRecords: int, maxBytes: int) -> list[Record] | None:
        """
        The records from C{offset} on, from the tail, or L{None} when it
        does not begin there.
        """
        lines, offsets = self._tailLines, self._tailOffsets
        index = bisect.bisect_left(offsets, offset, self._tailFirst)
        if index == len(offsets) or offsets[index] != offset:
            return None
        records = []
        read = 0
        for line in lines[index:index + maxRecords]:
            records.append(Record(offset, offset + len(line), line[:-1]))
            offset += len(line)
            read += len(line)
            if read >= maxBytes:
                break
        return records

    # Reading and compacting

    @property
    def segments(self) -> list[int]:
        with self._segmentsLock:
            return list(self._segments)

    def read(
        self, offset: int, maxRecords: int = 100, maxBytes: int = 1024 * 1024
    ) -> Deferred[list[Record]]:
        """
        Records from C{offset} up to L{end}: from memory when they are
        among the latest written, else read from the segments in a pool
        thread.
        """
        if offset >= self.end:
            return succeed([])
        recent = self._fromTail(offset, maxRecords, maxBytes)
        if recent is not None:
            return succeed(recent)
        return self._pool.run(
            lambda: readRecords(self.directory, self.segments, offset, self.end, maxRecords, maxBytes)
        )

    def compactable(self, upTo: int) -> bool:
        """
        Whether L{compact} would remove a segment.
        """
        segments = self.segments
        return len(segments) > 1 and segments[1] <= upTo

    def compact(self, upTo: int) -> Deferred[None]:
        """
        Remove every segment that lies wholly before C{upTo} (never the
        one being written).
        """
        if not self.compactable(upTo):
            return succeed(None)

        def remove() -> int:
            with self._segmentsLock:
                doomed = []
                while len(self._segments) > 1 and self._segments[1] <= upTo:
                    doomed.append(self._segments.pop(0))
                start = self._segments[0]
            for base in doomed:
                try:
                    os.unlink(os.path.join(self.directory, segmentName(base)))
                except FileNotFoundError:
                    pass
            return start

        def removed(start: int) -> None:
            self.start = start

        return self._pool.run(remove).addCallback(removed)


def dataLength(data: bytes) -> int:
    """
    How much of a segment's bytes are records: up to the first zero byte
    (segments are preallocated with zeros, and JSON lines hold none),
    cut back to the last newline before it.
    """
    end = data.find(b"\0")
    if end < 0:
        end = len(data)
    return data.rfind(b"\n", 0, end) + 1


def segmentDataLength(path: str) -> int:
    """
    L{dataLength} of the segment file C{path}.  Blocking.
    """
    with open(path, "rb") as f:
        return dataLength(f.read())


def _recover(fd: int) -> tuple[int, int]:
    """
    Find where the records of the open segment C{fd} end, and zero
    anything after that (a torn write of a crash), so that the next
    records written there are followed by zeros only.

    @return: the records' length and how many bytes were zeroed.
    """
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0) if size else b""
    kept = dataLength(data)
    tail = data[kept:]
    if not tail.strip(b"\0"):
        return kept, 0
    os.pwrite(fd, bytes(len(tail)), kept)
    os.fsync(fd)
    return kept, len(tail.rstrip(b"\0"))


def _syncDirectory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
