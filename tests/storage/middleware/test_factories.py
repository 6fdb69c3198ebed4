"""
C{middleware.storage}: the built-in middleware are found as plugins, each
entry's middleware checks its options (one line naming the key), and the
entries wrap the driver in the order they are listed.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from txregistry.config import StorageMiddlewareEntry, checkConfiguration
from txregistry.storage.errors import DriverConfigurationError
from txregistry.storage.inmemory import InMemoryDriver
from txregistry.storage.interfaces import IStorageMiddlewareFactory
from txregistry.storage.middleware.factories import (
    checkStorageMiddleware,
    middlewareFactories,
    wrapDriver,
)


def entries(*listed: dict[str, Any]) -> tuple[StorageMiddlewareEntry, ...]:
    """
    C{listed} as the configuration gives them.
    """
    return checkConfiguration({"middleware": {"storage": list(listed)}}).storageMiddleware


class FactoryTests(TestCase):
    def test_builtinPlugins(self) -> None:
        factories = middlewareFactories()
        for name in ("cloudfront", "redirect", "rewrite"):
            self.assertTrue(IStorageMiddlewareFactory.providedBy(factories[name]), name)

    def test_refused(self) -> None:
        """
        A middleware that is not installed, or options it refuses, are one
        error naming the key.
        """
        cases: dict[str, Any] = {
            "middleware.storage[1].name: no storage middleware named 'akamai' is installed"
            " (installed: cloudfront, redirect, rewrite": [
                {"name": "redirect", "options": {"baseurl": "https://b.example"}}, {"name": "akamai"}],
            "middleware.storage[0].options.baseurl: required": [{"name": "redirect"}],
        }
        for message, listed in cases.items():
            e = self.assertRaises(DriverConfigurationError, checkStorageMiddleware, entries(*listed))
            self.assertTrue(str(e).startswith(message), str(e))
            e = self.assertRaises(DriverConfigurationError, wrapDriver, InMemoryDriver(),
                                  entries(*listed), None)
            self.assertTrue(str(e).startswith(message), str(e))

    async def test_disabledIsCheckedAndLeftOut(self) -> None:
        listed = [
            {"name": "redirect", "disabled": True, "options": {"baseurl": "https://off.example"}},
            {"name": "redirect", "disabled": False, "options": {"baseurl": "https://on.example"}},
        ]
        driver = wrapDriver(InMemoryDriver(), entries(*listed), None)
        self.assertEqual(await driver.urlFor("/a"), "https://on.example/a")
        listed[0]["options"] = {}
        self.assertRaises(DriverConfigurationError, wrapDriver, InMemoryDriver(), entries(*listed), None)

    async def test_firstListedIsInnermost(self) -> None:
        """
        Each entry wraps what the ones before it made: a rewrite listed
        after a redirect rewrites the redirect's URL.
        """
        driver = wrapDriver(InMemoryDriver(), entries(
            {"name": "redirect", "options": {"baseurl": "https://origin.example/root"}},
            {"name": "rewrite", "options": {"host": "cdn.example"}},
        ), None)
        self.assertEqual(await driver.urlFor("/a"), "https://cdn.example/root/a")
        self.assertEqual(driver.name, "inmemory")

    def test_noneIsTheDriver(self) -> None:
        driver = InMemoryDriver()
        self.assertIs(wrapDriver(driver, (), None), driver)
