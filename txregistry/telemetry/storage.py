# -*- test-case-name: tests.telemetry.test_storage -*-
"""
L{ObservedDriver}: a storage driver layer that times each call
(C{registry_storage_action_seconds{driver,action}}, the C{/debug/vars}
storage counters) and, with tracing on, makes it a span.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

from txregistry.storage.interfaces import IClientRoutedURLs, IStorageDriver
from txregistry.storage.middleware.forwarding import directURL
from txregistry.telemetry.metrics import Counters, PrometheusMetrics

#: The calls that are measured: every one that does I/O.
ACTIONS = ("getContent", "putContent", "reader", "writer", "stat", "list", "walk",
           "move", "delete", "urlFor")


@implementer(IStorageDriver)
class ObservedDriver:
    """
    Forwards every call to C{driver}; measures those of L{ACTIONS}.  A
    reader's or writer's streaming is not in its call's time: that is the
    HTTP body's, and in the request's figures.

    @param tracing: a L{txregistry.telemetry.tracing.Tracing}, or L{None}.
    """

    def __init__(
        self,
        driver: IStorageDriver,
        counters: Counters | None = None,
        prometheus: PrometheusMetrics | None = None,
        tracing: Any = None,
    ) -> None:
        self.driver = driver
        self.name = driver.name
        self._counters = counters
        self._prometheus = prometheus
        self._tracing = tracing
        # Each action's span name and attributes, made once.
        self._spans = {action: (f"storage {action}", {"storage.driver": self.name,
                                                      "storage.action": action})
                       for action in ACTIONS}
        if IClientRoutedURLs.providedBy(driver):
            alsoProvides(self, IClientRoutedURLs)

    def __getattr__(self, name: str) -> Any:
        # Whatever else a driver offers (its root, its pool) is its own.
        return getattr(self.driver, name)

    def _call(self, action: str, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self._timed(action, lambda: getattr(self.driver, action)(*args, **kwargs))

    def _timed(self, action: str, call: Any) -> Deferred[Any]:
        span = self._tracing.startSpan(*self._spans[action]) if self._tracing is not None else None
        started = time.perf_counter()
        try:
            result: Deferred[Any] = call()
        except Exception as e:
            result = fail(e)
        return result.addBoth(self._ended, action, started, span)

    def _ended(self, result: Any, action: str, started: float, span: Any) -> Any:
        seconds = time.perf_counter() - started
        failed = isinstance(result, Failure)
        counters = self._counters
        if counters is not None:
            counters.storageCalls[action] += 1
            counters.storageSeconds[action] += seconds
            if failed:
                counters.storageErrors[action] += 1
        p = self._prometheus
        if p is not None:
            p.storageAction.observe((self.name, action), seconds)
        if span is not None:
            self._tracing.endSpan(span, result if failed else None)
        return result

    def getContent(self, path: str) -> Deferred[bytes]:
        return self._call("getContent", path)

    def putContent(self, path: str, content: bytes) -> Deferred[None]:
        return self._call("putContent", path, content)

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> Deferred[Any]:
        return self._call("reader", path, offset, length)

    def writer(self, path: str, append: bool = False) -> Deferred[Any]:
        return self._call("writer", path, append)

    def stat(self, path: str) -> Deferred[Any]:
        return self._call("stat", path)

    def list(self, path: str) -> Deferred[Any]:
        return self._call("list", path)

    def walk(self, path: str) -> Deferred[Any]:
        return self._call("walk", path)

    def move(self, source: str, destination: str) -> Deferred[None]:
        return self._call("move", source, destination)

    def delete(self, path: str) -> Deferred[None]:
        return self._call("delete", path)

    def urlFor(self, path: str, method: str = "GET", expiry: float = 1200.0) -> Deferred[str | None]:
        return self._call("urlFor", path, method, expiry)

    def urlForClient(
        self, path: str, method: str = "GET", expiry: float = 1200.0, client: str | None = None
    ) -> Deferred[str | None]:
        # Timed as the urlFor it is.
        return self._timed("urlFor", lambda: directURL(self.driver, path, method, expiry, client))

    def close(self) -> Deferred[None]:
        return self.driver.close()
