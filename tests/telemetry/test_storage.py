"""
L{ObservedDriver} is a driver: it passes the one driver suite, and it
counts and times every call.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.factories import createDriver
from txregistry.storage.interfaces import IStorageDriver
from txregistry.storage.testing import DriverSuiteMixin
from txregistry.telemetry.metrics import Counters, PrometheusMetrics
from txregistry.telemetry.storage import ObservedDriver


class ObservedDriverSuiteTests(DriverSuiteMixin, TestCase):
    backpressure = False

    def makeDriver(self) -> IStorageDriver:
        return ObservedDriver(createDriver("inmemory", {}, reactor), Counters(), PrometheusMetrics())


class ObservedDriverTests(TestCase):
    async def test_countsAndTimes(self) -> None:
        """
        Each call is counted by action, its failures too, and observed in
        C{registry_storage_action_seconds{driver,action}}.
        """
        counters, prometheus = Counters(), PrometheusMetrics()
        driver = ObservedDriver(createDriver("inmemory", {}, reactor), counters, prometheus)
        await driver.putContent("/a", b"x")
        self.assertEqual(await driver.getContent("/a"), b"x")
        await self.assertFailure(driver.getContent("/missing"), PathNotFoundError)
        self.assertEqual(counters.storageCalls["getContent"], 2)
        self.assertEqual(counters.storageErrors["getContent"], 1)
        self.assertEqual(counters.storageErrors["putContent"], 0)
        row = prometheus.storageAction.series[("inmemory", "getContent")]
        self.assertEqual(sum(row[:-1]), 2)
        self.assertEqual(driver.name, "inmemory")

    async def test_passesTheClientOn(self) -> None:
        """
        Over a driver whose URLs depend on the client (the cloudfront
        middleware's IP filter), the client reaches it, timed as urlFor;
        over any other, the observed driver does not ask for one.
        """
        from tests.storage.middleware.test_forwarding import _KeyedDriver
        from txregistry.storage.interfaces import IClientRoutedURLs
        from txregistry.storage.middleware.forwarding import directURL

        counters = Counters()
        driver = ObservedDriver(_KeyedDriver(), counters)
        self.assertTrue(IClientRoutedURLs.providedBy(driver))
        self.assertEqual(await directURL(driver, "/p", client="192.0.2.1"),
                         "https://store.example/p?for=192.0.2.1")
        self.assertEqual(counters.storageCalls["urlFor"], 1)
        self.assertFalse(IClientRoutedURLs.providedBy(ObservedDriver(createDriver("inmemory", {}, reactor))))
