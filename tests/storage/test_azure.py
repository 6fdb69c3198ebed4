"""
The C{azure} driver runs the shared driver suite against azurite, which
the tests start, and keeps the promises only a blob store's driver makes:
appends committed as block lists under a lease, resumable from the
container by another process, and a start that fails in one line on a
wrong key or a missing container.
"""

from __future__ import annotations

from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from tests.storage.emulators import ACCOUNT, Azurite, documentedDriver, emulator
from tests.storage.memory import LIMIT, roundTripGrowth
from tests.storage.servers import freePort
from txregistry.storage.azure.parameters import KNOWN, parseParameters
from txregistry.storage.errors import DriverConfigurationError, StorageError
from txregistry.storage.factories import createDriver
from txregistry.storage.interfaces import IStorageDriver
from txregistry.storage.testing import (
    ChunkProducer,
    DriverSuiteMixin,
    HashingConsumer,
    MiB,
    chunks,
    digestOf,
)


class AzureDriverTests(DriverSuiteMixin, TestCase):
    def makeDriver(self) -> IStorageDriver:
        driver: Any = createDriver("azure", emulator(Azurite).parameters(self), reactor)
        self.assertEqual(driver.name, "azure")
        return driver  # type: ignore[no-any-return]


class ParameterTests(TestCase):
    """
    C{storage.azure} is checked at start: a bad key stops it, naming the key.
    """

    def refuses(self, parameters: dict[str, Any], key: str) -> None:
        base = {"accountname": "a", "accountkey": "a2V5", "container": "c"}
        base.update(parameters)
        error = self.assertRaises(DriverConfigurationError, createDriver, "azure", base, reactor)
        self.assertIn(f"storage.azure.{key}", str(error))
        self.assertNotIn("\n", str(error))

    def test_refused(self) -> None:
        self.refuses({"bucket": "x"}, "bucket")
        self.refuses({"accountname": ""}, "accountname")
        self.refuses({"accountkey": "not base64!"}, "accountkey")
        self.refuses({"container": None}, "container")
        self.refuses({"serviceurl": "ftp://x"}, "serviceurl")
        self.refuses({"rootdirectory": "/a/../b"}, "rootdirectory")
        self.refuses({"max_retries": "many"}, "max_retries")
        self.refuses({"retry_delay": "soon"}, "retry_delay")
        self.refuses({"credentials": {"type": "client_secret"}}, "credentials.type")


class AzureOnlyTests(TestCase):
    """
    Behaviour of the azure driver beyond the suite, against azurite.
    """

    def setUp(self) -> None:
        self.server = emulator(Azurite)
        self.parameters = self.server.parameters(self)
        self.driver: Any = self.makeDriver()

    def makeDriver(self, **overrides: Any) -> Any:
        driver = createDriver("azure", dict(self.parameters, **overrides), reactor)
        self.addCleanup(driver.close)  # type: ignore[attr-defined]
        return driver

    async def test_uploadResumesInAnotherProcess(self) -> None:
        """
        Each committed append is in the container: a driver started afresh
        (a restarted registry, another instance) appends the next chunk to
        it, whatever wrote the value first.
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

    async def test_appendAfterPutAndMove(self) -> None:
        """
        A value stored whole (C{Put Blob}) or by a move (C{Copy Blob}) has
        no block list of its own: appending to it keeps its bytes.
        """
        first = b"".join(chunks(5, seed=7))
        await self.driver.putContent("/m/src", first)
        await self.driver.move("/m/src", "/m/dst")
        writer = await self.driver.writer("/m/dst", append=True)
        writer.write(b"more")
        self.assertEqual(await writer.commit(), len(first) + 4)
        self.assertEqual(await self.driver.getContent("/m/dst"), first + b"more")

    async def test_appenderWaitsForAnotherInstancesLease(self) -> None:
        """
        An appender of another instance waits while one stages blocks on
        the value (its lease), then lands after it: neither loses bytes.
        """
        other = self.makeDriver()
        await self.driver.putContent("/l/v", b"head-")
        first = await self.driver.writer("/l/v", append=True)
        await ChunkProducer(chunks(5, seed=8), first).start()
        await self.leased("/l/v")  # its first block staged under its lease
        second = await other.writer("/l/v", append=True)
        second.write(b"-second")
        waiting = second.commit()
        await deferLater(reactor, 0.5, lambda: None)
        self.assertFalse(waiting.called)
        self.assertEqual(await first.commit(), 5 + 5 * MiB)
        self.assertEqual(await waiting, 5 + 5 * MiB + 7)
        value = await self.driver.getContent("/l/v")
        self.assertEqual(value, b"head-" + b"".join(chunks(5, seed=8)) + b"-second")

    async def leased(self, path: str) -> None:
        for _ in range(100):
            response = await self.driver.client.request("HEAD", self.driver._objectName(path))
            await response.content()
            if response.headers.getRawHeaders("x-ms-lease-state", [""])[0] == "leased":
                return
            await deferLater(reactor, 0.05, lambda: None)
        self.fail(f"{path} never leased")

    async def test_startChecksContainer(self) -> None:
        """
        The start check passes for the right key and an existing container,
        and fails in one line for a wrong key, a missing container or a
        service that does not answer.
        """
        def check(**overrides: Any) -> Deferred[Any]:
            return deferToThread(self.makeDriver(**overrides).checkStart)

        await check()
        error = await self.assertFailure(check(accountkey="d3Jvbmc="), StorageError)
        self.assertIn("key is refused", str(error))
        self.assertNotIn("\n", str(error))
        error = await self.assertFailure(check(container="missing"), StorageError)
        self.assertIn("no such container", str(error))
        error = await self.assertFailure(
            check(serviceurl=f"http://127.0.0.1:{freePort()}/{ACCOUNT}"), StorageError
        )
        self.assertIn("cannot be reached", str(error))

    async def test_roundTripMemoryBounded(self) -> None:
        """
        256 MiB written and read back through the driver grow this
        process's RSS by a few blocks at most, not by the value.
        """
        growth = await roundTripGrowth(self, self.driver, "azure")
        self.assertLess(growth, LIMIT, f"RSS grew by {growth:.1f} MiB")


class DocumentationTests(TestCase):
    def test_everyParameterDocumented(self) -> None:
        """
        etc/config.yml shows every C{storage.azure} key (on its C{#:}
        lines), and the block it shows is a valid C{storage.azure}.
        """
        example = documentedDriver("azure")
        self.assertEqual(sorted(example), sorted(KNOWN))
        parseParameters(example)


class SASTests(TestCase):
    async def test_urlForIsASAS(self) -> None:
        """
        C{urlFor} is a service SAS URL anyone may GET for a while, without
        the key: what C{storage.redirect} sends clients to.
        """
        driver: Any = createDriver("azure", emulator(Azurite).parameters(self), reactor)
        self.addCleanup(driver.close)
        await driver.putContent("/u/v", b"direct")
        url = await driver.urlFor("/u/v")
        self.assertIn("sig=", url)
        response = await treq.get(url, persistent=False)
        self.assertEqual((response.code, await response.content()), (200, b"direct"))
        response = await treq.get(url.replace("sp=r", "sp=rw"), persistent=False)
        self.assertEqual(response.code, 403)
        await response.content()
        self.assertIsNone(await driver.urlFor("/u/v", method="PUT"))
