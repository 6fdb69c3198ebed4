"""
A driver from another package, found through L{twisted.plugin} and run by
the same suite as the built-in ones.

At test time a directory holding C{twisted/plugins/txregistry_testdriver.py}
is added to C{twisted.plugins.__path__}, as installing a package that ships
that module would; L{createDriver} must find the driver by its name.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Mapping
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

import twisted.plugins
from txregistry.storage.errors import DriverConfigurationError
from txregistry.storage.factories import createDriver, driverFactories
from txregistry.storage.inmemory import InMemoryDriver
from txregistry.storage.interfaces import IStorageDriver
from txregistry.storage.testing import DriverSuiteMixin

PLUGIN_MODULE = "txregistry_testdriver"

PLUGIN_SOURCE = textwrap.dedent(
    '''
    """
    A third-party storage driver plugin, written by tests.storage.test_plugin.
    """

    from twisted.plugin import IPlugin
    from zope.interface import implementer

    from txregistry.storage.interfaces import IStorageDriverFactory


    @implementer(IPlugin, IStorageDriverFactory)
    class TestDriverFactory:
        name = "testdriver"
        description = "A driver that lives outside txregistry."

        def create(self, parameters, reactor):
            from tests.storage.test_plugin import TestDriver

            return TestDriver(parameters)


    testdriver = TestDriverFactory()
    '''
)


class TestDriver(InMemoryDriver):
    """
    The plugin's driver: the in-memory one under another name, keeping the
    parameters it was created with.
    """

    name = "testdriver"

    def __init__(self, parameters: Mapping[str, Any]) -> None:
        super().__init__()
        self.parameters = dict(parameters)


def installPlugin(testCase: TestCase) -> str:
    """
    Make the test plugin visible to L{twisted.plugin} until C{testCase}
    ends.

    @return: the C{twisted/plugins} directory holding it.
    """
    base = os.path.abspath(testCase.mktemp())
    directory = os.path.join(base, "twisted", "plugins")
    os.makedirs(directory)
    with open(os.path.join(directory, PLUGIN_MODULE + ".py"), "w") as f:
        f.write(PLUGIN_SOURCE)
    twisted.plugins.__path__.append(directory)

    def uninstall() -> None:
        twisted.plugins.__path__.remove(directory)
        sys.modules.pop(f"twisted.plugins.{PLUGIN_MODULE}", None)

    testCase.addCleanup(uninstall)
    return directory


class PluginDiscoveryTests(TestCase):
    def test_absentWithoutPlugin(self) -> None:
        """
        Without the plugin installed there is no C{testdriver}: the lookup
        really depends on the plugin.
        """
        self.assertNotIn("testdriver", driverFactories())
        error = self.assertRaises(
            DriverConfigurationError, createDriver, "testdriver", {}, reactor
        )
        self.assertIn("filesystem", str(error))
        self.assertIn("inmemory", str(error))

    def test_found(self) -> None:
        """
        An installed plugin is found by name next to the built-in drivers,
        and gets its parameters.
        """
        installPlugin(self)
        self.assertEqual(
            {"filesystem", "inmemory", "testdriver"} - set(driverFactories()), set()
        )
        driver = createDriver("testdriver", {"option": 1}, reactor)
        self.assertIsInstance(driver, TestDriver)
        self.assertEqual(driver.parameters, {"option": 1})  # type: ignore[attr-defined]


class PluginDriverTests(DriverSuiteMixin, TestCase):
    backpressure = False

    def makeDriver(self) -> IStorageDriver:
        installPlugin(self)
        driver = createDriver("testdriver", {}, reactor)
        self.assertIsInstance(driver, TestDriver)
        self.assertEqual(driver.name, "testdriver")
        return driver
