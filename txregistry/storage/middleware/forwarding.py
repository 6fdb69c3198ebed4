# -*- test-case-name: tests.storage.middleware.test_forwarding -*-
"""
L{ForwardingDriver}: the base of every storage middleware, and
L{directURL}, how a layer asks a driver for a direct URL on a client's
behalf.
"""

from __future__ import annotations

import builtins
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import alsoProvides, implementer

from txregistry.storage.interfaces import (
    FileInfo,
    IBucketKeyed,
    IClientRoutedURLs,
    IStartChecked,
    IStorageDriver,
    IStorageReader,
    IStorageWriter,
)

__all__ = ["ForwardingDriver", "directURL"]


def directURL(
    driver: IStorageDriver,
    path: str,
    method: str = "GET",
    expiry: float = 1200.0,
    client: str | None = None,
) -> Deferred[str | None]:
    """
    C{driver}'s direct URL for C{path}, for the client at C{client}: through
    L{IClientRoutedURLs.urlForClient} when the driver routes by client and
    the client is known, L{IStorageDriver.urlFor} otherwise.
    """
    if client and IClientRoutedURLs.providedBy(driver):
        return IClientRoutedURLs(driver).urlForClient(path, method, expiry, client)
    return driver.urlFor(path, method, expiry)


@implementer(IStorageDriver)
class ForwardingDriver:
    """
    Forwards every call to C{inner}; a middleware subclasses it and
    overrides what it changes (for URLs, L{urlForClient}: L{urlFor} is
    L{urlForClient} for an unknown client).

    It provides what C{inner} provides of L{IStartChecked},
    L{IBucketKeyed} and L{IClientRoutedURLs}, so a middleware hides
    neither the start check of an object store, nor its keys, nor a
    middleware below it that routes by client.

    @ivar inner: the wrapped driver.
    """

    def __init__(self, inner: IStorageDriver) -> None:
        self.inner = inner
        self.name = inner.name
        for interface in (IStartChecked, IBucketKeyed, IClientRoutedURLs):
            if interface.providedBy(inner):
                alsoProvides(self, interface)

    def __getattr__(self, name: str) -> Any:
        # Whatever else a driver offers (its root, its client) is its own.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def getContent(self, path: str) -> Deferred[bytes]:
        return self.inner.getContent(path)

    def putContent(self, path: str, content: bytes) -> Deferred[None]:
        return self.inner.putContent(path, content)

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> Deferred[IStorageReader]:
        return self.inner.reader(path, offset, length)

    def writer(self, path: str, append: bool = False) -> Deferred[IStorageWriter]:
        return self.inner.writer(path, append)

    def stat(self, path: str) -> Deferred[FileInfo]:
        return self.inner.stat(path)

    def list(self, path: str) -> Deferred[builtins.list[str]]:
        return self.inner.list(path)

    def walk(self, path: str) -> Deferred[builtins.list[FileInfo]]:
        return self.inner.walk(path)

    def move(self, source: str, destination: str) -> Deferred[None]:
        return self.inner.move(source, destination)

    def delete(self, path: str) -> Deferred[None]:
        return self.inner.delete(path)

    def urlFor(self, path: str, method: str = "GET", expiry: float = 1200.0) -> Deferred[str | None]:
        return self.urlForClient(path, method, expiry, None)

    def urlForClient(
        self, path: str, method: str = "GET", expiry: float = 1200.0, client: str | None = None
    ) -> Deferred[str | None]:
        return directURL(self.inner, path, method, expiry, client)

    def bucketKey(self, path: str) -> str:
        return IBucketKeyed(self.inner).bucketKey(path)  # type: ignore[no-any-return]

    def checkStart(self) -> None:
        IStartChecked(self.inner).checkStart()

    def close(self) -> Deferred[None]:
        return self.inner.close()
