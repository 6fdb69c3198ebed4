# -*- test-case-name: tests.storage.test_exampledriver -*-
"""
Plugin factories for the drivers that ship with txregistry, and the lookup
of a driver by name among every installed plugin.

This module is imported by C{twisted/plugins/txregistry_storage.py}, so it
stays cheap: drivers are imported only when one is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from twisted.plugin import IPlugin, getPlugins
from zope.interface import implementer

from txregistry.storage.errors import DriverConfigurationError
from txregistry.storage.interfaces import IStorageDriver, IStorageDriverFactory

__all__ = [
    "BuiltinDriverFactory", "azure", "createDriver", "driverFactories", "filesystem", "gcs",
    "inmemory", "s3",
]


@implementer(IPlugin, IStorageDriverFactory)
class BuiltinDriverFactory:
    """
    A factory naming a C{create*} function by module and attribute, so the
    driver module is imported only when used.
    """

    def __init__(self, name: str, module: str, function: str, description: str) -> None:
        self.name = name
        self.description = description
        self._module = module
        self._function = function

    def create(self, parameters: Mapping[str, Any], reactor: Any) -> IStorageDriver:
        create = getattr(import_module(self._module), self._function)
        return create(parameters, reactor)


filesystem = BuiltinDriverFactory(
    "filesystem",
    "txregistry.storage.filesystem",
    "createFilesystemDriver",
    "Files below a local root directory.",
)

inmemory = BuiltinDriverFactory(
    "inmemory",
    "txregistry.storage.inmemory",
    "createInMemoryDriver",
    "A dictionary in the registry process; lost at exit.",
)


s3 = BuiltinDriverFactory(
    "s3",
    "txregistry.storage.s3",
    "createS3Driver",
    "Objects in an S3 or S3-compatible bucket (needs the s3 extra: botocore, treq).",
)


azure = BuiltinDriverFactory(
    "azure",
    "txregistry.storage.azure",
    "createAzureDriver",
    "Block blobs in an Azure Blob Storage container.",
)


gcs = BuiltinDriverFactory(
    "gcs",
    "txregistry.storage.gcs",
    "createGCSDriver",
    "Objects in a Google Cloud Storage bucket (needs the gcs extra: google-auth).",
)


def driverFactories() -> dict[str, IStorageDriverFactory]:
    """
    Every installed driver factory, by name (found through L{twisted.plugin}).
    """
    import twisted.plugins

    return {f.name: f for f in getPlugins(IStorageDriverFactory, twisted.plugins)}


def createDriver(name: str, parameters: Mapping[str, Any], reactor: Any) -> IStorageDriver:
    """
    Build the driver called C{name}.

    @raise DriverConfigurationError: when no plugin provides C{name}, or the
        driver refuses its parameters.
    """
    factories = driverFactories()
    try:
        factory = factories[name]
    except KeyError:
        known = ", ".join(sorted(factories)) or "none"
        raise DriverConfigurationError(
            f"storage: no driver named {name!r} is installed (installed: {known})"
        ) from None
    return factory.create(parameters or {}, reactor)
