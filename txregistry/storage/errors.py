# -*- test-case-name: tests.storage -*-
"""
Typed storage failures, shared by every driver.

Callers branch on the type (a missing path is an ordinary answer, not an
error to log), so every driver must raise exactly these.
"""

import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail

__all__ = [
    "DriverConfigurationError",
    "InvalidOffsetError",
    "InvalidPathError",
    "PathNotFoundError",
    "StorageError",
    "StorageFullError",
    "StorageUnavailableError",
    "WriterClosedError",
    "asynchronousErrors",
    "checkParameters",
]

F = TypeVar("F", bound=Callable[..., Deferred[Any]])


def asynchronousErrors(method: F) -> F:
    """
    Make a driver method report a synchronous exception (an invalid path,
    checked before any I/O; a missing value in a driver that needs no I/O)
    as a failed L{Deferred}, as L{IStorageDriver} promises, instead of
    raising it at the caller.

    Meant for drivers: decorate each L{IStorageDriver} method that checks
    its arguments (with L{txregistry.storage.paths.checkPath}) before it
    has a L{Deferred} to fail.
    """

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Deferred[Any]:
        try:
            return method(*args, **kwargs)
        except Exception:
            return fail()

    return call  # type: ignore[return-value]


class StorageError(Exception):
    """
    A storage operation failed.
    """


class StorageFullError(StorageError, OSError):
    """
    The storage has no room (or no quota) left for what was written.  It
    is the L{OSError} the system gave (C{errno} kept), so code that looks
    at the OS error still sees it.
    """


class StorageUnavailableError(StorageError):
    """
    The store did not answer, or answered that it is overloaded or broken
    (a remote store's throttling or server errors), after the driver's
    retries: nothing was changed, and the client may try again later.
    """


class PathNotFoundError(StorageError):
    """
    Nothing exists at C{path}.
    """

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def __str__(self) -> str:
        return f"path not found: {self.path}"


class InvalidPathError(StorageError):
    """
    C{path} is not a path a driver accepts (it is relative, has empty or
    dot components, or characters outside the allowed set).
    """

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def __str__(self) -> str:
        return f"invalid path: {self.path!r}"


class InvalidOffsetError(StorageError):
    """
    A read or append started at an offset the content does not have.
    """

    def __init__(self, path: str, offset: int) -> None:
        super().__init__(path, offset)
        self.path = path
        self.offset = offset

    def __str__(self) -> str:
        return f"invalid offset {self.offset} for {self.path}"


class WriterClosedError(StorageError):
    """
    A writer was used after it was committed or cancelled.
    """


class DriverConfigurationError(StorageError):
    """
    A driver's parameters are wrong; the message names the parameter.
    """


def checkParameters(driver: str, parameters: Mapping[str, Any], known: Collection[str]) -> None:
    """
    Refuse a parameter the driver does not know: a misspelt one must stop
    the start, never be silently ignored.

    @raise DriverConfigurationError: naming C{storage.<driver>.<key>}.
    """
    for key in parameters:
        if key not in known:
            expected = ", ".join(sorted(known)) or "none"
            raise DriverConfigurationError(
                f"storage.{driver}.{key}: unknown parameter (known: {expected})"
            )
