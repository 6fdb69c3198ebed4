# -*- test-case-name: tests.storage.test_azure -*-
"""
The C{azure} driver: registry content as block blobs in an Azure Blob
Storage container.

Selected by C{storage: {azure: {...}}} with the reference registry's keys
(L{txregistry.storage.azure.parameters}).  Modules: L{parameters} (the
keys), L{client} (Shared Key signed requests over treq), L{driver} (the
L{IStorageDriver}), L{writer} (block uploads), L{startcheck} (the
container check at start).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from txregistry.storage.azure.driver import AzureDriver
from txregistry.storage.azure.parameters import parseParameters

__all__ = ["AzureDriver", "createAzureDriver"]


def createAzureDriver(parameters: Mapping[str, Any], reactor: Any) -> AzureDriver:
    """
    Build the driver from C{storage.azure}; no I/O (L{AzureDriver.checkStart}
    checks the container).

    @raise DriverConfigurationError: naming a bad key.
    """
    return AzureDriver(parseParameters(parameters), reactor)
