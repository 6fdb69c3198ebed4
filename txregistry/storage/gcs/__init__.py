# -*- test-case-name: tests.storage.test_gcs -*-
"""
The C{gcs} driver: registry content as objects in a Google Cloud Storage
bucket.

Selected by C{storage: {gcs: {...}}} with the reference registry's keys
(L{txregistry.storage.gcs.parameters}); needs the C{gcs} extra
(google-auth).  Modules: L{parameters} (the keys), L{client} (authorized
requests over treq), L{driver} (the L{IStorageDriver}), L{writer}
(resumable uploads), L{startcheck} (the bucket check at start).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from txregistry.storage.gcs.driver import GCSDriver
from txregistry.storage.gcs.parameters import parseParameters

__all__ = ["GCSDriver", "createGCSDriver"]


def createGCSDriver(parameters: Mapping[str, Any], reactor: Any) -> GCSDriver:
    """
    Build the driver from C{storage.gcs}; no I/O (L{GCSDriver.checkStart}
    checks the bucket, and credentials are otherwise loaded on a thread
    before the first request).

    @raise DriverConfigurationError: naming a bad key.
    """
    return GCSDriver(parseParameters(parameters), reactor)
