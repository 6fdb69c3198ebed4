# -*- test-case-name: tests.storage.test_exampledriver -*-
"""
The C{example} driver: registry content as objects in a L{Bucket}.

A storage path C{/a/b} is the key C{a/b}; directories are key prefixes, so
an empty directory does not exist.  The driver keeps the contract of
L{IStorageDriver} on a store that can neither rename nor append:

  - A writer uploads what it is given as staging objects, under keys
    starting with C{.} (no valid path has such a component, and list and
    walk skip them), a part each time L{PART_SIZE} bytes have arrived.
    Commit composes the parts into the target in one step: after the
    current object, for an append, on condition that the object is still
    the generation it read, starting again from the read when another
    append got there first.  Commit and cancel delete the parts.

  - L{ExampleDriver.move} copies server-side, and deletes the source only
    once the copy has succeeded.
"""

from __future__ import annotations

import builtins
import functools
import io
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ParamSpec, TypeVar

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.python.failure import Failure
from twisted.web.client import FileBodyProducer
from zope.interface import implementer

from txregistry.storage import (
    DriverConfigurationError,
    FileInfo,
    InvalidOffsetError,
    IStorageDriver,
    IStorageReader,
    IStorageWriter,
    PathNotFoundError,
    StorageError,
    WriterClosedError,
    asynchronousErrors,
    checkPath,
    isHidden,
)
from txregistry_exampledriver.bucket import Bucket, NoSuchKey, PreconditionFailed, StoredObject

P = ParamSpec("P")
T = TypeVar("T")

#: A writer uploads a staging part each time this many bytes have arrived...
PART_SIZE = 4 * 1024 * 1024
#: ...and pauses its producer while more than this many are uploading.
HIGH_WATER = 3 * PART_SIZE

#: How many times a commit composes again after losing a race to another.
COMMIT_ATTEMPTS = 10


def _asynchronous(f: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Deferred[T]]:
    """
    Run a coroutine method as a L{Deferred}; anything it raises, a bad path
    included, fails the L{Deferred}.
    """

    @functools.wraps(f)
    def call(*args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        return Deferred.fromCoroutine(f(*args, **kwargs))

    return call


def _key(path: str) -> str:
    return "" if path == "/" else path[1:]


def _visible(key: str) -> bool:
    return not any(isHidden(name) for name in key.split("/"))


@implementer(IStorageReader)
class _ObjectReader(FileBodyProducer):
    """
    Streams a range of an object, honouring pause and resume.  Objects are
    immutable, so it produces the value as it was when opened.
    """


@implementer(IStorageDriver)
class ExampleDriver:
    """
    Stores each path as an object in C{bucket}.
    """

    name = "example"

    def __init__(self, bucket: Bucket, bucketName: str) -> None:
        self.bucket = bucket
        self.bucketName = bucketName

    async def _head(self, path: str) -> StoredObject:
        try:
            return await self.bucket.head(_key(path))
        except NoSuchKey:
            raise PathNotFoundError(path) from None

    async def _below(self, path: str) -> list[str]:
        """
        The visible keys below directory C{path}.
        """
        prefix = "" if path == "/" else _key(path) + "/"
        return [k for k in await self.bucket.keys(prefix) if _visible(k)]

    async def _checkPlace(self, path: str) -> None:
        """
        Refuse to store a value where a filesystem could not (at a
        directory's path, or below a value), as every driver must.  An
        object store would allow it, so this checks before writing; a
        racing writer could slip past, which the registry's layout never
        provokes.
        """
        if await self._below(path):
            raise PathNotFoundError(path)
        ancestor = path.rsplit("/", 1)[0]
        while ancestor:
            try:
                await self.bucket.head(_key(ancestor))
            except NoSuchKey:
                ancestor = ancestor.rsplit("/", 1)[0]
            else:
                raise PathNotFoundError(path)

    # Whole values

    @_asynchronous
    async def getContent(self, path: str) -> bytes:
        checkPath(path)
        return (await self._head(path)).content()

    @_asynchronous
    async def putContent(self, path: str, content: bytes) -> None:
        checkPath(path)
        content = bytes(content)
        await self._checkPlace(path)
        await self.bucket.put(_key(path), content)

    # Streams

    @_asynchronous
    async def reader(self, path: str, offset: int = 0, length: int | None = None) -> IStorageReader:
        checkPath(path)
        stored = await self._head(path)
        count = stored.size - offset if length is None else length
        if offset < 0 or count < 0 or offset + count > stored.size:
            raise InvalidOffsetError(path, offset)
        return _ObjectReader(io.BytesIO(stored.content()[offset : offset + count]))

    @_asynchronous
    async def writer(self, path: str, append: bool = False) -> IStorageWriter:
        checkPath(path)
        existing = (await self._head(path)).size if append else 0
        return _ComposingWriter(self, path, append, existing)

    # Metadata

    @_asynchronous
    async def stat(self, path: str) -> FileInfo:
        checkPath(path, allowRoot=True)
        if path != "/":
            try:
                stored = await self.bucket.head(_key(path))
            except NoSuchKey:
                pass
            else:
                return FileInfo(path, stored.size, stored.modified, False)
            if not await self._below(path):
                raise PathNotFoundError(path)
        return FileInfo(path, 0, time.time(), True)

    @_asynchronous
    async def list(self, path: str) -> builtins.list[str]:
        checkPath(path, allowRoot=True)
        keys = await self._below(path)
        if not keys and path != "/":
            raise PathNotFoundError(path)
        prefix = "" if path == "/" else path
        depth = prefix.count("/")
        return sorted({"/" + "/".join(k.split("/")[: depth + 1]) for k in keys})

    @_asynchronous
    async def walk(self, path: str) -> builtins.list[FileInfo]:
        checkPath(path, allowRoot=True)
        keys = await self._below(path)
        if not keys and path != "/":
            raise PathNotFoundError(path)
        depth = 0 if path == "/" else path.count("/")
        found: dict[str, FileInfo] = {}
        for key in keys:
            names = key.split("/")
            for end in range(depth + 1, len(names)):
                directory = "/" + "/".join(names[:end])
                found.setdefault(directory, FileInfo(directory, 0, time.time(), True))
            stored = await self.bucket.head(key)
            found["/" + key] = FileInfo("/" + key, stored.size, stored.modified, False)
        return sorted(found.values(), key=lambda info: info.path)

    @_asynchronous
    async def move(self, source: str, destination: str) -> None:
        checkPath(source)
        checkPath(destination)
        await self._head(source)
        if source == destination:
            return
        await self._checkPlace(destination)
        try:
            # The copy makes the destination appear whole; only once it has
            # succeeded may the source go.
            await self.bucket.copy(_key(source), _key(destination))
        except NoSuchKey:
            raise PathNotFoundError(source) from None
        await self.bucket.delete(_key(source))

    @_asynchronous
    async def delete(self, path: str) -> None:
        checkPath(path)
        doomed = await self._below(path)
        try:
            await self.bucket.head(_key(path))
        except NoSuchKey:
            if not doomed:
                raise PathNotFoundError(path) from None
        else:
            doomed.append(_key(path))
        await gatherResults([self.bucket.delete(key) for key in doomed], consumeErrors=True)

    @asynchronousErrors
    def urlFor(
        self, path: str, method: str = "GET", expiry: float = 1200.0
    ) -> Deferred[str | None]:
        # A real object store would sign a URL for the key here.
        checkPath(path)
        return succeed(None)

    def close(self) -> Deferred[None]:
        return succeed(None)


@implementer(IStorageWriter)
class _ComposingWriter:
    """
    Uploads what it is given as staging parts; commit composes them into
    the target (after the current value, for an append).
    """

    def __init__(self, driver: ExampleDriver, path: str, append: bool, existing: int) -> None:
        self._driver = driver
        self._bucket = driver.bucket
        self.path = path
        self._append = append
        self.size = existing
        self._staging = f".staging/{uuid.uuid4().hex}"
        self._parts: list[str] = []
        self._uploads: list[Deferred[Any]] = []
        self._uploading = 0
        self._pending: list[bytes] = []
        self._pendingSize = 0
        self._failure: Failure | None = None
        self._closed = False
        self._cancelled = False
        self._producer: Any = None
        self._producerPaused = False

    # IConsumer

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer = producer
        self._producerPaused = False

    def unregisterProducer(self) -> None:
        self._producer = None

    def write(self, data: bytes) -> None:
        if self._cancelled or self._failure is not None:
            return
        if self._closed:
            raise WriterClosedError(self.path)
        self._pending.append(bytes(data))
        self._pendingSize += len(data)
        self.size += len(data)
        if self._pendingSize >= PART_SIZE:
            self._uploadPart()
        if self._uploading > HIGH_WATER and self._producer and not self._producerPaused:
            self._producerPaused = True
            self._producer.pauseProducing()

    def _uploadPart(self) -> None:
        content = b"".join(self._pending)
        self._pending, self._pendingSize = [], 0
        key = f"{self._staging}/{len(self._parts):06d}"
        self._parts.append(key)
        self._uploading += len(content)
        d = self._bucket.put(key, content)
        d.addCallbacks(
            self._uploaded,
            self._uploadFailed,
            callbackArgs=(len(content),),
            errbackArgs=(len(content),),
        )
        self._uploads.append(d)

    def _uploaded(self, stored: object, size: int) -> None:
        self._uploading -= size
        if self._producerPaused and self._uploading <= HIGH_WATER // 2:
            self._producerPaused = False
            if self._producer is not None:
                self._producer.resumeProducing()

    def _uploadFailed(self, failure: Failure, size: int) -> None:
        # Kept for commit to raise; the producer runs on, and what it
        # sends is dropped.
        self._failure = self._failure or failure
        self._uploaded(None, size)

    # Completion

    @_asynchronous
    async def commit(self) -> int:
        if self._closed:
            raise WriterClosedError(self.path)
        self._closed = True
        self._uploadPart()  # the tail; empty when nothing was written
        try:
            await gatherResults(self._uploads)
            if self._failure is not None:
                self._failure.raiseException()
            return await self._compose()
        finally:
            await self._discardParts()

    async def _compose(self) -> int:
        key = _key(self.path)
        for _ in range(COMMIT_ATTEMPTS):
            if self._append:
                current = await self._driver._head(self.path)
                sources, generation = [key, *self._parts], current.generation
            else:
                await self._driver._checkPlace(self.path)
                sources, generation = list(self._parts), None
            try:
                stored = await self._bucket.compose(sources, key, ifGenerationMatch=generation)
            except PreconditionFailed:
                # Another append committed since the read: append after it.
                continue
            except NoSuchKey:
                raise PathNotFoundError(self.path) from None
            return stored.size
        raise StorageError(f"{self.path}: gave up after {COMMIT_ATTEMPTS} racing appends")

    @_asynchronous
    async def cancel(self) -> None:
        if self._closed:
            return
        self._closed = self._cancelled = True
        self._pending, self._pendingSize = [], 0
        await gatherResults(self._uploads)
        await self._discardParts()

    async def _discardParts(self) -> None:
        parts, self._parts = self._parts, []
        await gatherResults([self._bucket.delete(key) for key in parts], consumeErrors=True)


def createExampleDriver(parameters: Mapping[str, Any], reactor: Any) -> ExampleDriver:
    """
    Build the driver from C{storage.example}: C{bucket}, the bucket's name
    (default C{"registry"}).
    """
    bucketName = parameters.get("bucket", "registry")
    if not isinstance(bucketName, str) or not bucketName:
        raise DriverConfigurationError("storage.example.bucket: must be a non-empty string")
    return ExampleDriver(Bucket(reactor), bucketName)
