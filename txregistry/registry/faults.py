# -*- test-case-name: tests.registry.test_faults -*-
"""
L{FaultTranslatingDriver}: storage failures the model answers as its own
errors.

A driver says a disk is full with L{StorageFullError}, and a remote store
that stays unreachable or overloaded after its retries with
L{StorageUnavailableError}; the model, which the API answers from, says
L{InsufficientStorage} and L{StorageUnavailable} (both 503 on the wire).  Every driver call the
model makes goes through this wrapper, so no store has to remember to
catch it, and the storage layer still knows nothing of the model.
"""

from __future__ import annotations

import builtins
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

from txregistry.errors import InsufficientStorage, StorageUnavailable
from txregistry.storage.errors import StorageFullError, StorageUnavailableError
from txregistry.storage.interfaces import (
    FileInfo,
    IClientRoutedURLs,
    IStorageDriver,
    IStorageReader,
    IStorageWriter,
)
from txregistry.storage.middleware.forwarding import directURL

_log = Logger()
T = TypeVar("T")


def _translate(failure: Failure) -> Failure:
    if failure.check(StorageFullError):
        reason = getattr(failure.value, "strerror", None) or str(failure.value)
        _log.error("Storage is full: {reason}", reason=reason)
        return Failure(InsufficientStorage(f"the registry's storage is full: {reason}"))
    if failure.check(StorageUnavailableError):
        _log.error("Storage unavailable: {reason}", reason=str(failure.value))
        return Failure(StorageUnavailable(f"the registry's storage is unavailable: {failure.value}"))
    return failure


def _guard(d: Deferred[T]) -> Deferred[T]:
    return d.addErrback(_translate)


@implementer(IStorageWriter)
class _Writer:
    """
    A writer whose commit answers a full disk as L{InsufficientStorage}.
    """

    def __init__(self, inner: IStorageWriter) -> None:
        self._inner = inner
        self.path = inner.path

    @property
    def size(self) -> int:
        return self._inner.size  # type: ignore[no-any-return]

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._inner.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._inner.unregisterProducer()

    def write(self, data: bytes) -> None:
        self._inner.write(data)

    def commit(self) -> Deferred[int]:
        return _guard(self._inner.commit())

    def cancel(self) -> Deferred[None]:
        return _guard(self._inner.cancel())


@implementer(IStorageDriver)
class FaultTranslatingDriver:
    """
    C{inner}, with L{StorageFullError} failures turned into
    L{InsufficientStorage} (and logged once, as an error, not a crash).
    """

    def __init__(self, inner: IStorageDriver) -> None:
        self._inner = inner
        self.name = inner.name
        if IClientRoutedURLs.providedBy(inner):
            alsoProvides(self, IClientRoutedURLs)

    def getContent(self, path: str) -> Deferred[bytes]:
        return _guard(self._inner.getContent(path))

    def putContent(self, path: str, content: bytes) -> Deferred[None]:
        return _guard(self._inner.putContent(path, content))

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> Deferred[IStorageReader]:
        return _guard(self._inner.reader(path, offset, length))

    def writer(self, path: str, append: bool = False) -> Deferred[IStorageWriter]:
        return _guard(self._inner.writer(path, append)).addCallback(_Writer)

    def stat(self, path: str) -> Deferred[FileInfo]:
        return _guard(self._inner.stat(path))

    def list(self, path: str) -> Deferred[builtins.list[str]]:
        return _guard(self._inner.list(path))

    def walk(self, path: str) -> Deferred[builtins.list[FileInfo]]:
        return _guard(self._inner.walk(path))

    def move(self, source: str, destination: str) -> Deferred[None]:
        return _guard(self._inner.move(source, destination))

    def delete(self, path: str) -> Deferred[None]:
        return _guard(self._inner.delete(path))

    def urlFor(self, path: str, method: str = "GET", expiry: float = 1200.0) -> Deferred[str | None]:
        return self._inner.urlFor(path, method, expiry)

    def urlForClient(
        self, path: str, method: str = "GET", expiry: float = 1200.0, client: str | None = None
    ) -> Deferred[str | None]:
        return directURL(self._inner, path, method, expiry, client)

    def close(self) -> Deferred[None]:
        return self._inner.close()
