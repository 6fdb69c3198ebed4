"""
The C{inmemory} driver runs the shared driver suite.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from txregistry.storage.factories import createDriver
from txregistry.storage.interfaces import IStorageDriver
from txregistry.storage.testing import DriverSuiteMixin


class InMemoryDriverTests(DriverSuiteMixin, TestCase):
    # Its writers keep everything they are given: they never fall behind.
    backpressure = False

    def makeDriver(self) -> IStorageDriver:
        driver = createDriver("inmemory", {}, reactor)
        self.assertEqual(driver.name, "inmemory")
        return driver
