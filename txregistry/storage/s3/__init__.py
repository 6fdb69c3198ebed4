# -*- test-case-name: tests.storage.test_s3 -*-
"""
The C{s3} driver: registry content in an S3 (or S3-compatible) bucket.

Selected by C{storage: {s3: {...}}} with the reference registry's keys
(L{txregistry.storage.s3.parameters}); needs the C{s3} extra (botocore and
treq).  Modules: L{parameters} (the keys), L{client} (signed requests),
L{driver} (the L{IStorageDriver}), L{writer} (multipart uploads),
L{reader} (ranged streamed reads), L{startcheck} (the bucket check at
start).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from txregistry.storage.s3.driver import S3Driver
from txregistry.storage.s3.parameters import parseParameters

__all__ = ["S3Driver", "createS3Driver"]


def createS3Driver(parameters: Mapping[str, Any], reactor: Any) -> S3Driver:
    """
    Build the driver from C{storage.s3}; no I/O (L{S3Driver.checkStart}
    checks the bucket, and credentials are otherwise resolved on a thread
    before the first request).

    @raise DriverConfigurationError: naming a bad key.
    """
    return S3Driver(parseParameters(parameters), reactor)
