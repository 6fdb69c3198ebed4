# -*- test-case-name: tests.storage.test_filesystem -*-
"""
The C{filesystem} driver: content in files under a root directory.

Durability rules: a committed value is written to a hidden temporary file
in the target's directory, fsync'd, renamed over the target, and the
directory is fsync'd; new directories are fsync'd into their parents.  A
crash at any moment leaves either the old value or the new one, never a
partial file.  Every system call that can wait on the disk runs on the
driver's L{BlockingPool}.
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import os
import shutil
import stat as statmod
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from txregistry.shielding import shielded
from txregistry.storage.blocking import BlockingPool
from txregistry.storage.errors import (
    DriverConfigurationError,
    InvalidOffsetError,
    PathNotFoundError,
    WriterClosedError,
    asynchronousErrors,
    checkParameters,
)
from txregistry.storage.interfaces import (
    FileInfo,
    IStorageDriver,
    IStorageReader,
    IStorageWriter,
)
from txregistry.storage.paths import checkPath, isHidden

T = TypeVar("T")

#: Bytes read from a file per block when streaming it out.
READ_BLOCK = 1024 * 1024

#: A writer pauses its producer above this many queued bytes...
HIGH_WATER = 8 * 1024 * 1024
#: ...and resumes it below this many.
LOW_WATER = 2 * 1024 * 1024

_IOV_MAX = 1024


def _fsyncDirectory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _makeDirectories(path: str) -> None:
    """
    Create C{path} and missing ancestors, fsyncing each new directory into
    its parent so that it survives a crash.
    """
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            continue
        _fsyncDirectory(os.path.dirname(directory))


def _writeAll(fd: int, chunks: list[bytes]) -> None:
    """
    Write every chunk to C{fd} with as few system calls as possible.
    """
    views = [memoryview(c) for c in chunks if c]
    while views:
        batch = views[:_IOV_MAX]
        written = os.writev(fd, batch)
        # Drop what was written; keep the unwritten tail of a short write.
        consumed = 0
        for view in batch:
            if written >= len(view):
                written -= len(view)
                consumed += 1
            else:
                views[consumed] = view[written:]
                break
        del views[:consumed]


def _translateMissing(f: Callable[..., T], path: str) -> Callable[..., T]:
    """
    Wrap C{f} so that the ways the OS says "nothing there" (no such entry,
    a file where a directory was expected, a directory where a file was)
    all become L{PathNotFoundError} for C{path}.
    """

    def call(*args: Any) -> T:
        try:
            return f(*args)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFoundError(path) from None

    return call


@implementer(IStorageDriver)
class FilesystemDriver:
    """
    Stores each path as a file below C{root}.
    """

    name = "filesystem"

    def __init__(self, root: str, reactor: Any, maxThreads: int = 16) -> None:
        self.root = os.path.abspath(root)
        self._pool = BlockingPool(reactor, "txregistry-filesystem", maxThreads)

    def _local(self, path: str, allowRoot: bool = False) -> str:
        checkPath(path, allowRoot)
        return os.path.join(self.root, path.lstrip("/"))

    def _run(self, path: str, f: Callable[..., T], *args: Any) -> Deferred[T]:
        return self._pool.run(_translateMissing(f, path), *args)

    # Whole values

    @asynchronousErrors
    def getContent(self, path: str) -> Deferred[bytes]:
        local = self._local(path)

        def read() -> bytes:
            with open(local, "rb") as f:
                return f.read()

        return self._run(path, read)

    @asynchronousErrors
    def putContent(self, path: str, content: bytes) -> Deferred[None]:
        local = self._local(path)
        # Copied now: the caller may reuse its buffer while a thread writes.
        return self._run(path, _replaceFile, local, [bytes(content)])

    # Streams

    @asynchronousErrors
    def reader(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> Deferred[IStorageReader]:
        local = self._local(path)

        def open_() -> tuple[int, int]:
            fd = os.open(local, os.O_RDONLY)
            info = os.fstat(fd)
            if statmod.S_ISDIR(info.st_mode):
                os.close(fd)
                raise PathNotFoundError(path)
            return fd, info.st_size

        def opened(result: tuple[int, int]) -> IStorageReader:
            fd, size = result
            count = size - offset if length is None else length
            if offset < 0 or count < 0 or offset + count > size:
                self._pool.run(os.close, fd)
                raise InvalidOffsetError(path, offset)
            return _FileReader(self._pool, fd, offset, count)

        return self._run(path, open_).addCallback(opened)

    @asynchronousErrors
    def writer(self, path: str, append: bool = False) -> Deferred[IStorageWriter]:
        local = self._local(path)
        directory, name = os.path.split(local)

        def open_() -> IStorageWriter:
            size = 0
            if append:
                # The new bytes are staged in a hidden file and added to the
                # target only on commit, so until then readers see the old
                # value, and a cancelled (or killed) append leaves it as is.
                info = os.stat(local)
                if statmod.S_ISDIR(info.st_mode):
                    raise PathNotFoundError(path)
                size = info.st_size
            else:
                _makeDirectories(directory)
            temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
            fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            return _FileWriter(self._pool, path, local, temporary, fd, size, append)

        return self._run(path, open_)

    # Metadata

    @asynchronousErrors
    def stat(self, path: str) -> Deferred[FileInfo]:
        local = self._local(path, allowRoot=True)

        def stat_() -> FileInfo:
            info = os.stat(local)
            isDir = statmod.S_ISDIR(info.st_mode)
            return FileInfo(path, 0 if isDir else info.st_size, info.st_mtime, isDir)

        return self._run(path, stat_)

    @asynchronousErrors
    def list(self, path: str) -> Deferred[list[str]]:
        local = self._local(path, allowRoot=True)
        prefix = "" if path == "/" else path

        def list_() -> list[str]:
            # isHidden, inlined: a listing of a repository's tags runs it
            # once per tag, on every tags/list.
            names = sorted(n for n in os.listdir(local) if n[:1] != ".")
            return [f"{prefix}/{n}" for n in names]

        return self._run(path, list_)

    @asynchronousErrors
    def walk(self, path: str) -> Deferred[builtins.list[FileInfo]]:
        local = self._local(path, allowRoot=True)
        prefix = "" if path == "/" else path

        def walk_() -> list[FileInfo]:
            if not os.path.isdir(local):
                os.listdir(local)  # raises the right not-found error
            found: list[FileInfo] = []

            def visit(directory: str, logical: str) -> None:
                try:
                    with os.scandir(directory) as entries:
                        children = sorted(
                            (e for e in entries if not isHidden(e.name)),
                            key=lambda e: e.name,
                        )
                except FileNotFoundError:
                    if directory == local:
                        raise
                    # Removed while the walk went on (another writer):
                    # what is gone is simply not listed.
                    return
                for entry in children:
                    childPath = f"{logical}/{entry.name}"
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    isDir = entry.is_dir(follow_symlinks=False)
                    found.append(
                        FileInfo(childPath, 0 if isDir else info.st_size, info.st_mtime, isDir)
                    )
                    if isDir:
                        visit(entry.path, childPath)

            visit(local, prefix)
            # Depth-first order puts "/a/x" before "/a-b"; the interface
            # promises plain lexical order of the full paths.
            found.sort(key=lambda info: info.path)
            return found

        return self._run(path, walk_)

    @asynchronousErrors
    def move(self, source: str, destination: str) -> Deferred[None]:
        localSource = self._local(source)
        localDestination = self._local(destination)

        def move_() -> None:
            if not os.path.lexists(localSource):
                raise PathNotFoundError(source)
            destinationDirectory = os.path.dirname(localDestination)
            _makeDirectories(destinationDirectory)
            if os.path.isdir(localDestination) and os.path.isdir(localSource):
                shutil.rmtree(localDestination)
            os.replace(localSource, localDestination)
            _fsyncDirectory(destinationDirectory)
            sourceDirectory = os.path.dirname(localSource)
            if sourceDirectory != destinationDirectory:
                _fsyncDirectory(sourceDirectory)

        return self._run(source, move_)

    @asynchronousErrors
    def delete(self, path: str) -> Deferred[None]:
        local = self._local(path)

        def delete_() -> None:
            try:
                os.unlink(local)
            except IsADirectoryError:
                shutil.rmtree(local)
            except OSError as e:
                if e.errno == errno.EISDIR or (
                    e.errno == errno.EPERM and os.path.isdir(local)
                ):
                    shutil.rmtree(local)
                else:
                    raise
            _fsyncDirectory(os.path.dirname(local))

        return self._run(path, delete_)

    @asynchronousErrors
    def urlFor(
        self, path: str, method: str = "GET", expiry: float = 1200.0
    ) -> Deferred[str | None]:
        checkPath(path)
        return succeed(None)

    def close(self) -> Deferred[None]:
        return self._pool.close()


def _replaceFile(local: str, chunks: list[bytes]) -> None:
    """
    Atomically and durably replace C{local} with C{chunks}.
    """
    directory, name = os.path.split(local)
    _makeDirectories(directory)
    temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _writeAll(fd, chunks)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(temporary)
        raise
    os.close(fd)
    _replaceWith(temporary, local)
    _fsyncDirectory(directory)


def _replaceWith(temporary: str, local: str) -> None:
    """
    Rename C{temporary} over C{local}; if that fails (C{local} is a
    directory, say), remove C{temporary} rather than leave it behind.
    """
    try:
        os.replace(temporary, local)
    except BaseException:
        _unlinkQuietly(temporary)
        raise


@implementer(IStorageReader)
class _FileReader:
    """
    Streams a byte range of an open file, reading one block ahead on the
    pool while the consumer sends the previous one.
    """

    def __init__(self, pool: BlockingPool, fd: int, offset: int, length: int) -> None:
        self._pool = pool
        self._fd: int | None = fd
        self.length = length
        self._readOffset = offset
        self._toRead = length
        self._toWrite = length
        self._ready: deque[bytes] = deque()
        self._reading = False
        self._paused = False
        self._stopped = False
        self._consumer: IConsumer | None = None
        self._finished: Deferred[None] = Deferred()

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        self._consumer = consumer
        self._pump()
        return self._finished

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._pump()

    def stopProducing(self) -> None:
        self._stopped = True
        self._ready.clear()
        if not self._reading:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            self._pool.run(os.close, fd)

    def _pump(self) -> None:
        if self._stopped or self._consumer is None:
            return
        while self._ready and not self._paused:
            block = self._ready.popleft()
            self._toWrite -= len(block)
            self._consumer.write(block)
            if self._stopped:
                return
        if self._toWrite == 0:
            self._stopped = True
            self._close()
            self._finished.callback(None)
            return
        if not self._reading and self._toRead > 0 and len(self._ready) < 2:
            self._reading = True
            size = min(READ_BLOCK, self._toRead)
            assert self._fd is not None
            d = self._pool.run(os.pread, self._fd, size, self._readOffset)
            d.addCallbacks(self._gotBlock, self._readFailed)

    def _gotBlock(self, block: bytes) -> None:
        self._reading = False
        if self._stopped:
            self._close()
            return
        if not block:
            self._readFailed(Failure(OSError("file shrank while it was being read")))
            return
        self._toRead -= len(block)
        self._readOffset += len(block)
        self._ready.append(block)
        self._pump()

    def _readFailed(self, failure: Failure) -> None:
        self._reading = False
        wasStopped = self._stopped
        self._stopped = True
        self._close()
        if not wasStopped:
            self._finished.errback(failure)


@implementer(IStorageWriter)
class _FileWriter:
    """
    Writes to an open file on the pool, in batches: while one batch is being
    written, later chunks queue up and go in the next (one C{writev}).
    """

    def __init__(
        self,
        pool: BlockingPool,
        path: str,
        local: str,
        temporary: str,
        fd: int,
        size: int,
        append: bool = False,
    ) -> None:
        self._pool = pool
        self.path = path
        self._local = local
        self._temporary = temporary
        self._append = append
        self._fd = fd
        self._startSize = size
        self.size = size
        self._queue: list[bytes] = []
        self._queued = 0
        self._writing = False
        self._closed = False
        self._cancelled = False
        self._failure: Failure | None = None
        self._producer: Any = None
        self._producerPaused = False
        self._drainWaiters: list[Deferred[None]] = []

    # IConsumer

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        if not streaming:
            raise ValueError("filesystem writers take push producers only")
        self._producer = producer
        self._producerPaused = False

    def unregisterProducer(self) -> None:
        self._producer = None

    def write(self, data: bytes) -> None:
        if self._cancelled or self._failure is not None:
            return
        if self._closed:
            raise WriterClosedError(self.path)
        self._queue.append(data)
        self._queued += len(data)
        self.size += len(data)
        if not self._writing:
            self._flush()
        if (
            self._queued > HIGH_WATER
            and self._producer is not None
            and not self._producerPaused
        ):
            self._producerPaused = True
            IPushProducer(self._producer).pauseProducing()

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        count = sum(len(c) for c in batch)
        self._writing = True
        self._pool.run(_writeAll, self._fd, batch).addCallbacks(
            self._flushed, self._flushFailed, callbackArgs=(count,)
        )

    def _flushed(self, _: None, count: int) -> None:
        self._writing = False
        self._queued -= count
        if self._queue:
            self._flush()
        else:
            self._notifyDrained()
        if self._producerPaused and self._queued < LOW_WATER:
            self._resumeProducer()

    def _flushFailed(self, failure: Failure) -> None:
        self._writing = False
        self._failure = failure
        self._queue = []
        self._queued = 0
        # Let the producer run on: what it sends is discarded, and whoever
        # drives it learns of the failure from commit().
        self._resumeProducer()
        self._notifyDrained()

    def _resumeProducer(self) -> None:
        if self._producerPaused and self._producer is not None:
            self._producerPaused = False
            self._producer.resumeProducing()

    def _notifyDrained(self) -> None:
        waiters, self._drainWaiters = self._drainWaiters, []
        for d in waiters:
            d.callback(None)

    def _drained(self) -> Deferred[None]:
        if not self._writing:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._drainWaiters.append(d)
        return d

    # Completion

    def commit(self) -> Deferred[int]:
        return shielded(self._commit())

    @inlineCallbacks
    def _commit(self) -> Any:
        if self._closed:
            raise WriterClosedError(self.path)
        self._closed = True
        yield self._drained()
        if self._failure is not None:
            yield self._pool.run(self._discard)
            self._failure.raiseException()
        size = yield self._pool.run(self._makeDurable)
        return size

    def _makeDurable(self) -> int:
        if self._append:
            try:
                return self._appendStaged()
            finally:
                os.close(self._fd)
                _unlinkQuietly(self._temporary)
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
        try:
            _replaceWith(self._temporary, self._local)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFoundError(self.path) from None
        _fsyncDirectory(os.path.dirname(self._local))
        return self.size

    def _appendStaged(self) -> int:
        """
        Add the staged bytes to the end of the target and fsync it; on any
        error, cut the target back to what it was.

        @return: the target's new size.
        """
        count = self.size - self._startSize
        try:
            target = os.open(self._local, os.O_WRONLY)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFoundError(self.path) from None
        try:
            # The end now, not when the writer opened: another writer may
            # have appended since, and its bytes must stay.  The lock (held
            # until the target is closed) keeps an append committing at the
            # same moment, on another thread or in another process, from
            # reading the same end and writing over these bytes.
            fcntl.flock(target, fcntl.LOCK_EX)
            end = os.fstat(target).st_size
            try:
                _copyRange(self._fd, target, count, end)
                os.fsync(target)
            except BaseException:
                os.ftruncate(target, end)
                raise
            return end + count
        finally:
            os.close(target)

    def cancel(self) -> Deferred[None]:
        return shielded(self._cancel())

    @inlineCallbacks
    def _cancel(self) -> Any:
        if self._closed:
            return
        self._closed = self._cancelled = True
        self._queue = []
        yield self._drained()
        yield self._pool.run(self._discard)

    def _discard(self) -> None:
        try:
            os.close(self._fd)
        finally:
            _unlinkQuietly(self._temporary)


def _unlinkQuietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _copyRange(source: int, target: int, count: int, offset: int) -> None:
    """
    Copy the first C{count} bytes of file C{source} into file C{target} at
    C{offset}, in the kernel when it can (C{copy_file_range}), else through
    a buffer.
    """
    done = 0
    while done < count:
        try:
            copied = os.copy_file_range(source, target, count - done, done, offset + done)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            copied = 0
        if copied == 0:
            break
        done += copied
    while done < count:
        block = os.pread(source, min(READ_BLOCK, count - done), done)
        if not block:
            raise OSError(errno.EIO, "staged append data is shorter than written")
        written = os.pwrite(target, block, offset + done)
        done += written


def createFilesystemDriver(parameters: Mapping[str, Any], reactor: Any) -> FilesystemDriver:
    """
    Build the driver from C{storage.filesystem}: C{rootdirectory} (required)
    and C{maxthreads} (default 16, at least 1).
    """
    checkParameters("filesystem", parameters, ("rootdirectory", "maxthreads"))
    root = parameters.get("rootdirectory")
    if not isinstance(root, str) or not root:
        raise DriverConfigurationError(
            "storage.filesystem.rootdirectory: must be a non-empty path"
        )
    maxThreads = parameters.get("maxthreads", 16)
    if not isinstance(maxThreads, int) or isinstance(maxThreads, bool) or maxThreads < 1:
        raise DriverConfigurationError(
            "storage.filesystem.maxthreads: must be an integer of at least 1"
        )
    os.makedirs(root, exist_ok=True)
    return FilesystemDriver(root, reactor, maxThreads)
