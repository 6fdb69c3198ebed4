"""
The C{gcs} driver runs the shared driver suite against
gcp-storage-emulator, which the tests start, and keeps the promises only an
object store's driver makes: resumable uploads in chunks, appends composed
server-side and resumable from the bucket by another process, and
parameters checked at start.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from tests.storage.emulators import GCSEmulator, documentedDriver, emulator
from tests.storage.memory import LIMIT, roundTripGrowth
from tests.storage.servers import freePort
from txregistry.storage.errors import DriverConfigurationError, StorageError
from txregistry.storage.factories import createDriver
from txregistry.storage.gcs.parameters import KNOWN, parseParameters
from txregistry.storage.interfaces import IStorageDriver
from txregistry.storage.testing import (
    ChunkProducer,
    DriverSuiteMixin,
    HashingConsumer,
    MiB,
    chunks,
    digestOf,
)

#: Seconds a test may take: the emulator (pure Python, rewriting an
#: upload's file for each chunk) takes a minute or two for 256 MiB.
SLOW = 600


class GCSDriverTests(DriverSuiteMixin, TestCase):
    timeout = SLOW

    def makeDriver(self) -> IStorageDriver:
        driver: Any = createDriver("gcs", emulator(GCSEmulator).parameters(self), reactor)
        self.assertEqual(driver.name, "gcs")
        return driver  # type: ignore[no-any-return]


class ParameterTests(TestCase):
    """
    C{storage.gcs} is checked at start: a bad key stops it, naming the key.
    """

    def refuses(self, parameters: dict[str, Any], key: str) -> None:
        base: dict[str, Any] = {"bucket": "b"}
        base.update(parameters)
        error = self.assertRaises(DriverConfigurationError, createDriver, "gcs", base, reactor)
        self.assertIn(f"storage.gcs.{key}", str(error))
        self.assertNotIn("\n", str(error))

    def test_refused(self) -> None:
        self.refuses({"bucketname": "x"}, "bucketname")
        self.refuses({"bucket": ""}, "bucket")
        self.refuses({"chunksize": 1000}, "chunksize")
        self.refuses({"chunksize": 5 * 1024 * 1024 + 1}, "chunksize")
        self.refuses({"credentials": {"type": "authorized_user"}}, "credentials")
        self.refuses({"rootdirectory": "/a/../b"}, "rootdirectory")

    def test_defaults(self) -> None:
        """
        The reference's 5 MiB chunks and Google's endpoint, unless
        C{STORAGE_EMULATOR_HOST} names an emulator.
        """
        p = parseParameters({"bucket": "b", "rootdirectory": "/r/"}, environ={})
        self.assertEqual((p.chunkSize, p.prefix), (5 * 1024 * 1024, "r/"))
        self.assertEqual((p.endpoint, p.anonymous), ("https://storage.googleapis.com", False))
        p = parseParameters({"bucket": "b"}, environ={"STORAGE_EMULATOR_HOST": "127.0.0.1:9023"})
        self.assertEqual((p.endpoint, p.anonymous), ("http://127.0.0.1:9023", True))


class GCSOnlyTests(TestCase):
    """
    Behaviour of the gcs driver beyond the suite, against the emulator.
    """

    timeout = SLOW

    def setUp(self) -> None:
        self.server = emulator(GCSEmulator)
        self.parameters = self.server.parameters(self)
        self.driver: Any = self.makeDriver()

    def makeDriver(self, **overrides: Any) -> Any:
        driver = createDriver("gcs", dict(self.parameters, **overrides), reactor)
        self.addCleanup(driver.close)  # type: ignore[attr-defined]
        return driver

    async def test_uploadResumesInAnotherProcess(self) -> None:
        """
        Each committed append is in the bucket: a driver started afresh (a
        restarted registry, another instance) appends the next chunk to it,
        and no staging object is left behind.
        """
        await self.driver.putContent("/up/data", b"")
        writer = await self.driver.writer("/up/data", append=True)
        await ChunkProducer(chunks(7, seed=4), writer).start()
        await writer.commit()
        await self.driver.close()
        other = self.makeDriver()
        writer = await other.writer("/up/data", append=True)
        self.assertEqual(writer.size, 7 * MiB)
        await ChunkProducer((c for i, c in enumerate(chunks(13, seed=4)) if i >= 7), writer).start()
        self.assertEqual(await writer.commit(), 13 * MiB)
        reader = await other.reader("/up/data")
        consumer = HashingConsumer()
        await reader.startProducing(consumer)
        self.assertEqual(consumer.hasher.hexdigest(), digestOf(chunks(13, seed=4)))
        objects, _ = await other._listing(other._directoryPrefix("/up"), None, private=True)
        self.assertEqual([name.rsplit("/", 1)[1] for name, _, _ in objects], ["data"])

    async def test_startChecksBucket(self) -> None:
        """
        The start check passes for an existing bucket, and fails in one
        line for a missing one or a GCS that does not answer.
        """
        def check(**overrides: Any) -> Deferred[Any]:
            return deferToThread(self.makeDriver(**overrides).checkStart)

        await check()
        error = await self.assertFailure(check(bucket="missing"), StorageError)
        self.assertIn("no such bucket", str(error))
        self.assertNotIn("\n", str(error))
        self.patch(os, "environ", dict(os.environ, STORAGE_EMULATOR_HOST=f"127.0.0.1:{freePort()}"))
        error = await self.assertFailure(check(), StorageError)
        self.assertIn("cannot be reached", str(error))

    def test_noCredentials(self) -> None:
        """
        Without an emulator, a key file that is not there stops the start
        in one line.
        """
        self.patch(os, "environ", {})
        driver = self.makeDriver(keyfile=self.mktemp())
        error = self.assertRaises(StorageError, driver.checkStart)
        self.assertIn("storage.gcs: no usable credentials", str(error))
        self.assertNotIn("\n", str(error))

    async def test_roundTripMemoryBounded(self) -> None:
        """
        256 MiB written and read back through the driver grow this
        process's RSS by a few chunks at most, not by the value.
        """
        growth = await roundTripGrowth(self, self.driver, "gcs")
        self.assertLess(growth, LIMIT, f"RSS grew by {growth:.1f} MiB")


class DocumentationTests(TestCase):
    def test_everyParameterDocumented(self) -> None:
        """
        etc/config.yml shows every C{storage.gcs} key (on its C{#:} lines),
        and the block it shows is a valid C{storage.gcs}.
        """
        example = documentedDriver("gcs")
        self.assertEqual(sorted(example), sorted(KNOWN))
        example.pop("credentials")
        parseParameters(example, environ={})
