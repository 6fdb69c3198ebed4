"""
A driver from another package, found through L{twisted.plugin} and run by
the public driver suite, L{txregistry.storage.testing}.

C{tests/storage/example_driver} is laid out as a driver package is: the
package C{txregistry_exampledriver} and C{twisted/plugins/
txregistry_exampledriver.py}.  Each test copies it to a temporary
directory and puts that on C{sys.path} and C{twisted.plugins.__path__}, as
installing the package would; the copy keeps the bytecode and the
C{dropin.cache} that L{twisted.plugin} writes out of the source tree, and
the cleanup forgets the modules, so no other test sees the driver.

This module, like the example package, uses only the public names of
L{txregistry.storage} and L{txregistry.storage.testing}, and a test checks
that it does.
"""

from __future__ import annotations

import ast
import os
import shutil
import sys

from twisted.internet import reactor
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

import twisted.plugins
import txregistry.storage
import txregistry.storage.testing
from txregistry.storage import (
    DriverConfigurationError,
    IStorageDriver,
    createDriver,
    driverFactories,
)
from txregistry.storage.testing import DriverSuiteMixin

HERE = FilePath(__file__).parent()
EXAMPLE = HERE.child("example_driver")
PACKAGE = "txregistry_exampledriver"
PLUGIN_MODULE = "twisted.plugins.txregistry_exampledriver"


def installExample(testCase: TestCase) -> str:
    """
    Make the example package importable, and its plugin visible to
    L{twisted.plugin}, until C{testCase} ends.

    @return: the directory it is installed in.
    """
    base = os.path.abspath(testCase.mktemp())
    shutil.copytree(
        EXAMPLE.path, base, ignore=shutil.ignore_patterns("__pycache__", "dropin.cache")
    )
    plugins = os.path.join(base, "twisted", "plugins")
    sys.path.insert(0, base)
    twisted.plugins.__path__.append(plugins)

    def uninstall() -> None:
        twisted.plugins.__path__.remove(plugins)
        sys.path.remove(base)
        for name in list(sys.modules):
            if name == PLUGIN_MODULE or name == PACKAGE or name.startswith(PACKAGE + "."):
                del sys.modules[name]

    testCase.addCleanup(uninstall)
    return base


class PluginDiscoveryTests(TestCase):
    def test_absentWithoutPlugin(self) -> None:
        """
        Without the package installed there is no C{example} driver: the
        lookup really depends on the plugin.
        """
        self.assertNotIn("example", driverFactories())
        error = self.assertRaises(DriverConfigurationError, createDriver, "example", {}, reactor)
        self.assertIn("filesystem", str(error))
        self.assertIn("inmemory", str(error))

    def test_found(self) -> None:
        """
        An installed plugin is found by name next to the built-in drivers,
        from the installed copy, and gets its parameters.
        """
        base = installExample(self)
        self.assertEqual({"filesystem", "inmemory", "example"} - set(driverFactories()), set())
        driver = createDriver("example", {"bucket": "images"}, reactor)
        self.assertTrue(IStorageDriver.providedBy(driver))
        self.assertEqual(driver.name, "example")
        self.assertEqual(driver.bucketName, "images")  # type: ignore[attr-defined]
        for module in (PLUGIN_MODULE, type(driver).__module__):
            self.assertTrue(sys.modules[module].__file__.startswith(base + os.sep), module)  # type: ignore[union-attr]

    def test_badParameter(self) -> None:
        """
        A driver refuses a bad parameter with L{DriverConfigurationError}
        naming it.
        """
        installExample(self)
        error = self.assertRaises(
            DriverConfigurationError, createDriver, "example", {"bucket": 3}, reactor
        )
        self.assertIn("storage.example.bucket", str(error))


def _txregistryImports(source: FilePath[str]) -> list[tuple[str, str | None]]:
    """
    Every C{(module, name)} that C{source} imports from txregistry (name
    L{None} for a plain C{import}).
    """
    tree = ast.parse(source.getContent(), source.path)
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.split(".")[0] == "txregistry"]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "txregistry":
                found += [(node.module, a.name) for a in node.names]
    return found


class PublicNamesTests(TestCase):
    """
    What a driver outside txregistry may use is C{__all__} of
    L{txregistry.storage} and L{txregistry.storage.testing}; the example
    uses nothing else, and the suite depends on nothing above storage.
    """

    def test_exampleUsesPublicNames(self) -> None:
        public = {
            "txregistry.storage": set(txregistry.storage.__all__),
            "txregistry.storage.testing": set(txregistry.storage.testing.__all__),
        }
        sources = [p for p in EXAMPLE.walk() if p.basename().endswith(".py")]
        sources.append(FilePath(__file__))
        self.assertTrue(len(sources) >= 5, sources)
        for source in sources:
            for module, name in _txregistryImports(source):
                self.assertIn(module, public, source.path)
                if name is not None:
                    self.assertIn(name, public[module], f"{source.path}: {module}.{name}")

    def test_publicNamesExist(self) -> None:
        """
        Every name in C{__all__} is there.
        """
        for module in (txregistry.storage, txregistry.storage.testing):
            for name in module.__all__:
                self.assertTrue(hasattr(module, name), f"{module.__name__}.{name}")

    def test_suiteImportsOnlyStorage(self) -> None:
        """
        L{txregistry.storage.testing} imports nothing from C{tests}, and
        from txregistry only the storage layer, so a driver package can
        run it without the rest of the registry.
        """
        source = FilePath(txregistry.storage.testing.__file__)
        tree = ast.parse(source.getContent())
        modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        modules += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        self.assertTrue(modules)
        for module in modules:
            top = module.split(".")[0]
            self.assertNotEqual(top, "tests", module)
            if top == "txregistry":
                self.assertTrue(module.startswith("txregistry.storage"), module)


class ExampleDriverTests(DriverSuiteMixin, TestCase):
    """
    The example driver, found through its plugin, passes the whole suite
    (backpressure included: its writers pause while parts upload).
    """

    def makeDriver(self) -> IStorageDriver:
        installExample(self)
        driver = createDriver("example", {}, reactor)
        self.assertEqual(driver.name, "example")
        return driver
