"""
Tests for L{txregistry.maintenance}: stale uploads are purged, fresh ones
kept, on the configured interval.
"""

from __future__ import annotations

import os
import time

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from txregistry.config import UploadPurging
from txregistry.maintenance import UploadPurger
from txregistry.registry import layout
from txregistry.registry.digest import Digest
from txregistry.registry.namespace import StorageNamespace
from txregistry.storage.filesystem import FilesystemDriver


class PurgeUploadsTests(TestCase):
    async def makeUploads(self) -> tuple[FilesystemDriver, StorageNamespace]:
        driver = FilesystemDriver(self.mktemp(), reactor)
        self.addCleanup(driver.close)
        await driver.putContent(layout.uploadData("a/b", "old"), b"x")
        await driver.putContent(layout.uploadData("a/b", "new"), b"y")
        await driver.putContent(layout.layerLink("a/b", Digest.of(b"blob")), b"link")
        old = os.path.join(driver.root, layout.uploadData("a/b", "old").lstrip("/"))
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        return driver, StorageNamespace(driver, reactor)

    async def test_purgesOnlyStale(self) -> None:
        driver, namespace = await self.makeUploads()
        purged = await namespace.purgeUploads(time.time() - 60)
        self.assertEqual(purged, ["a/b/old"])
        names = await driver.list(layout.uploadsDirectory("a/b"))
        self.assertEqual(names, [f"{layout.uploadsDirectory('a/b')}/new"])
        # Nothing else in the repository is touched.
        await driver.stat(layout.layerLink("a/b", Digest.of(b"blob")))

    async def test_dryRunKeepsEverything(self) -> None:
        driver, namespace = await self.makeUploads()
        purged = await namespace.purgeUploads(time.time() - 60, dryRun=True)
        self.assertEqual(len(purged), 1)
        self.assertEqual(len(await driver.list(layout.uploadsDirectory("a/b"))), 2)

    async def test_emptyStorage(self) -> None:
        driver = FilesystemDriver(self.mktemp(), reactor)
        self.addCleanup(driver.close)
        self.assertEqual(await StorageNamespace(driver, reactor).purgeUploads(time.time()), [])

    async def test_serviceRunsOnInterval(self) -> None:
        """
        The purger runs at start and then again every interval, judging
        staleness by the clock it is given.
        """
        driver, namespace = await self.makeUploads()
        clock = Clock()
        clock.advance(time.time())
        purger = UploadPurger(namespace, UploadPurging(True, 60.0, 600.0, False), clock)
        purger.startService()
        self.addCleanup(purger.stopService)
        uploads = layout.uploadsDirectory("a/b")
        await self.waitForUploads(driver, [f"{uploads}/new"])
        clock.advance(600)
        await self.waitForUploads(driver, [])

    async def waitForUploads(self, driver: FilesystemDriver, expected: list[str]) -> None:
        for _ in range(500):
            if await driver.list(layout.uploadsDirectory("a/b")) == expected:
                return
            await _later()
        self.fail(f"uploads never became {expected}")


def _later():  # type: ignore[no-untyped-def]
    from twisted.internet.task import deferLater

    return deferLater(reactor, 0.01, lambda: None)


class OnlineCollectorTests(TestCase):
    async def test_collectsOnIntervalNotAtStart(self) -> None:
        """
        The online collector skips the start, then collects every
        interval: a blob no manifest names, older than the grace window,
        goes on the first interval.
        """
        from txregistry.config import OnlineCollection
        from txregistry.maintenance import OnlineCollector

        driver = FilesystemDriver(self.mktemp(), reactor)
        self.addCleanup(driver.close)
        digest = Digest.of(b"garbage")
        await driver.putContent(layout.blobData(digest), b"garbage")
        path = os.path.join(driver.root, layout.blobData(digest).lstrip("/"))
        os.utime(path, (time.time() - 7200, time.time() - 7200))
        namespace = StorageNamespace(driver, reactor, collectionGrace=3600)
        clock = Clock()
        collector = OnlineCollector(namespace, OnlineCollection(True, 600, 3600, False), clock)
        from twisted.internet.task import deferLater

        collector.startService()
        self.addCleanup(collector.stopService)
        # Time for a collection to have run, had one started.
        await deferLater(reactor, 0.5, lambda: None)
        self.assertTrue(os.path.exists(path))
        clock.advance(600)
        # The collection runs on the real reactor's thread pool.
        for _ in range(500):
            if not os.path.exists(path):
                break
            await deferLater(reactor, 0.01, lambda: None)
        self.assertFalse(os.path.exists(path))

    def test_service(self) -> None:
        """
        C{storage.gc.enabled} puts an online collector in the registry
        service (not in read-only mode).
        """
        from txregistry.config import checkConfiguration
        from txregistry.maintenance import OnlineCollector
        from txregistry.service import RegistryService

        def collectors(document: dict) -> list:
            config = checkConfiguration({"storage": {"inmemory": {}, **document},
                                         "http": {"addr": "127.0.0.1:0"}})
            service = RegistryService(config, reactor)
            return [s for s in service if isinstance(s, OnlineCollector)]

        self.assertEqual(len(collectors({"gc": {"enabled": True}})), 1)
        self.assertEqual(collectors({"gc": {"enabled": False}}), [])
        self.assertEqual(collectors({"gc": {"enabled": True},
                                     "maintenance": {"readonly": {"enabled": True}}}), [])
