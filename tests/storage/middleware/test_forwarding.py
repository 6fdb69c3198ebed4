"""
L{ForwardingDriver} is a complete driver (it passes the driver suite over
the in-memory driver), hides none of the inner driver's optional
interfaces, and L{directURL} routes by client only where a driver asks.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import TestCase
from zope.interface import alsoProvides

from txregistry.storage.inmemory import InMemoryDriver
from txregistry.storage.interfaces import (
    IBucketKeyed,
    IClientRoutedURLs,
    IStartChecked,
    IStorageDriver,
)
from txregistry.storage.middleware.forwarding import ForwardingDriver, directURL
from txregistry.storage.testing import DriverSuiteMixin


class ForwardingSuiteTests(DriverSuiteMixin, TestCase):
    backpressure = False

    def makeDriver(self) -> IStorageDriver:
        return ForwardingDriver(InMemoryDriver())


class _KeyedDriver(InMemoryDriver):
    """
    An in-memory driver that says it is an object store, and routes URLs
    by client.
    """

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0
        alsoProvides(self, IBucketKeyed, IStartChecked, IClientRoutedURLs)

    def bucketKey(self, path: str) -> str:
        return "root" + path

    def checkStart(self) -> None:
        self.checked += 1

    def urlFor(self, path: str, method: str = "GET", expiry: float = 1200.0) -> Deferred[str | None]:
        return succeed(f"https://store.example{path}")

    def urlForClient(self, path: str, method: str = "GET", expiry: float = 1200.0,
                     client: str | None = None) -> Deferred[str | None]:
        return succeed(f"https://store.example{path}?for={client}")


class ForwardingTests(TestCase):
    def test_optionalInterfacesPassThrough(self) -> None:
        """
        Around an object store, a middleware still has its keys and its
        start check, and still routes by client.
        """
        inner = _KeyedDriver()
        outer = ForwardingDriver(ForwardingDriver(inner))
        self.assertTrue(IBucketKeyed.providedBy(outer))
        self.assertEqual(IBucketKeyed(outer).bucketKey("/a"), "root/a")
        IStartChecked(outer).checkStart()
        self.assertEqual(inner.checked, 1)
        self.assertTrue(IClientRoutedURLs.providedBy(outer))

    def test_plainDriverGainsNothing(self) -> None:
        outer = ForwardingDriver(InMemoryDriver())
        for interface in (IBucketKeyed, IStartChecked, IClientRoutedURLs):
            self.assertFalse(interface.providedBy(outer), interface)

    async def test_directURL(self) -> None:
        """
        The client reaches a driver that routes by client; with no client,
        or a driver that does not, it is plain L{IStorageDriver.urlFor}.
        """
        outer: Any = ForwardingDriver(_KeyedDriver())
        self.assertEqual(await directURL(outer, "/p", client="192.0.2.1"),
                         "https://store.example/p?for=192.0.2.1")
        self.assertEqual(await directURL(outer, "/p"), "https://store.example/p")
        self.assertEqual(await outer.urlFor("/p"), "https://store.example/p")
        self.assertIsNone(await directURL(ForwardingDriver(InMemoryDriver()), "/p", client="192.0.2.1"))

    async def test_closeCloses(self) -> None:
        inner = InMemoryDriver()
        closed = []
        inner.close = lambda: closed.append(True) or succeed(None)  # type: ignore[method-assign]
        await ForwardingDriver(inner).close()
        self.assertEqual(closed, [True])

    def test_otherAttributesAreTheInnerDriver(self) -> None:
        inner: Any = InMemoryDriver()
        inner.root = "/somewhere"
        self.assertEqual(ForwardingDriver(inner).root, "/somewhere")  # type: ignore[attr-defined]
