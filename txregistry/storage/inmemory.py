# -*- test-case-name: tests.storage.test_inmemory -*-
"""
The C{inmemory} driver: content in a dictionary, gone when the process
exits.  For tests and throw-away registries; it follows the same contract
as every other driver, so the shared driver suite runs against it too.
"""

from __future__ import annotations

import builtins
import io
import time
from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.web.client import FileBodyProducer
from zope.interface import implementer

from txregistry.storage.errors import (
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
from txregistry.storage.paths import checkPath


@implementer(IStorageReader)
class _MemoryReader(FileBodyProducer):
    """
    Streams a byte string cooperatively, honouring pause and resume.
    """


@implementer(IStorageDriver)
class InMemoryDriver:
    """
    Keeps every value in C{self._files}, keyed by path.  Directories are the
    prefixes of stored paths.
    """

    name = "inmemory"

    def __init__(self) -> None:
        self._files: dict[str, tuple[bytes, float]] = {}

    def _children(self, path: str) -> dict[str, bool]:
        """
        Direct children of directory C{path}: full path to is-directory.
        """
        prefix = "/" if path == "/" else path + "/"
        children: dict[str, bool] = {}
        for stored in self._files:
            if stored.startswith(prefix):
                head, sep, _ = stored[len(prefix) :].partition("/")
                children[prefix + head] = children.get(prefix + head, False) or bool(sep)
        return children

    def _isDirectory(self, path: str) -> bool:
        if path == "/":
            # The root exists even when nothing is stored, as a
            # filesystem driver's root directory does.
            return True
        prefix = "/" if path == "/" else path + "/"
        return any(p.startswith(prefix) for p in self._files)

    def _get(self, path: str) -> bytes:
        checkPath(path)
        try:
            return self._files[path][0]
        except KeyError:
            raise PathNotFoundError(path) from None

    def _checkPlace(self, path: str) -> None:
        """
        Refuse to store a file where a filesystem could not: at a
        directory's path, or below a file.

        @raise PathNotFoundError: as the filesystem driver does.
        """
        if self._isDirectory(path):
            raise PathNotFoundError(path)
        ancestor = path.rsplit("/", 1)[0]
        while ancestor:
            if ancestor in self._files:
                raise PathNotFoundError(path)
            ancestor = ancestor.rsplit("/", 1)[0]

    def _store(self, path: str, content: bytes) -> None:
        self._checkPlace(path)
        self._files[path] = (content, time.time())

    @asynchronousErrors
    def getContent(self, path: str) -> Deferred[bytes]:
        return succeed(self._get(path))

    @asynchronousErrors
    def putContent(self, path: str, content: bytes) -> Deferred[None]:
        checkPath(path)
        self._store(path, bytes(content))
        return succeed(None)

    @asynchronousErrors
    def reader(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> Deferred[IStorageReader]:
        content = self._get(path)
        count = len(content) - offset if length is None else length
        if offset < 0 or count < 0 or offset + count > len(content):
            raise InvalidOffsetError(path, offset)
        return succeed(_MemoryReader(io.BytesIO(content[offset : offset + count])))

    @asynchronousErrors
    def writer(self, path: str, append: bool = False) -> Deferred[IStorageWriter]:
        checkPath(path)
        existing = len(self._get(path)) if append else 0
        return succeed(_MemoryWriter(self, path, append, existing))

    @asynchronousErrors
    def stat(self, path: str) -> Deferred[FileInfo]:
        checkPath(path, allowRoot=True)
        if path in self._files:
            content, modified = self._files[path]
            return succeed(FileInfo(path, len(content), modified, False))
        if self._isDirectory(path):
            return succeed(FileInfo(path, 0, time.time(), True))
        raise PathNotFoundError(path)

    def _checkDirectory(self, path: str) -> None:
        checkPath(path, allowRoot=True)
        if not self._isDirectory(path):
            raise PathNotFoundError(path)

    @asynchronousErrors
    def list(self, path: str) -> Deferred[list[str]]:
        self._checkDirectory(path)
        return succeed(sorted(self._children(path)))

    @asynchronousErrors
    def walk(self, path: str) -> Deferred[builtins.list[FileInfo]]:
        self._checkDirectory(path)
        found: list[FileInfo] = []

        # Visited depth-first, then sorted: the interface promises lexical
        # order of the full paths ("/a-b" before "/a/x").
        def visit(directory: str) -> None:
            for child, isDir in sorted(self._children(directory).items()):
                if isDir:
                    found.append(FileInfo(child, 0, time.time(), True))
                    visit(child)
                else:
                    content, modified = self._files[child]
                    found.append(FileInfo(child, len(content), modified, False))

        visit(path)
        found.sort(key=lambda info: info.path)
        return succeed(found)

    @asynchronousErrors
    def move(self, source: str, destination: str) -> Deferred[None]:
        checkPath(destination)
        content = self._get(source)
        if source == destination:
            return succeed(None)
        self._checkPlace(destination)
        del self._files[source]
        self._store(destination, content)
        return succeed(None)

    @asynchronousErrors
    def delete(self, path: str) -> Deferred[None]:
        checkPath(path)
        if not self._remove(path):
            raise PathNotFoundError(path)
        return succeed(None)

    def _remove(self, path: str) -> bool:
        prefix = path + "/"
        doomed = [p for p in self._files if p == path or p.startswith(prefix)]
        for p in doomed:
            del self._files[p]
        return bool(doomed)

    @asynchronousErrors
    def urlFor(
        self, path: str, method: str = "GET", expiry: float = 1200.0
    ) -> Deferred[str | None]:
        checkPath(path)
        return succeed(None)

    def close(self) -> Deferred[None]:
        return succeed(None)


@implementer(IStorageWriter)
class _MemoryWriter:
    """
    Collects chunks; the value appears in the driver only on commit.  An
    appending writer adds them to the value as it is at commit, so an
    append committed since this writer was opened is kept.
    """

    def __init__(self, driver: InMemoryDriver, path: str, append: bool, existing: int) -> None:
        self._driver = driver
        self.path = path
        self._append = append
        self._chunks: list[bytes] = []
        self.size = existing
        self._closed = False
        self._cancelled = False
        self._producer: IPushProducer | None = None

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer = producer

    def unregisterProducer(self) -> None:
        self._producer = None

    def write(self, data: bytes) -> None:
        if self._cancelled:
            return
        if self._closed:
            raise WriterClosedError(self.path)
        self._chunks.append(bytes(data))
        self.size += len(data)

    def commit(self) -> Deferred[int]:
        if self._closed:
            return fail(WriterClosedError(self.path))
        self._closed = True
        chunks, self._chunks = self._chunks, []
        try:
            if self._append:
                chunks.insert(0, self._driver._get(self.path))
            content = b"".join(chunks)
            self._driver._store(self.path, content)
        except Exception:
            return fail()
        return succeed(len(content))

    def cancel(self) -> Deferred[None]:
        self._closed = self._cancelled = True
        self._chunks = []
        return succeed(None)


def createInMemoryDriver(parameters: Mapping[str, Any], reactor: Any) -> InMemoryDriver:
    """
    Build the driver; it takes no parameters.
    """
    checkParameters("inmemory", parameters, ())
    return InMemoryDriver()
