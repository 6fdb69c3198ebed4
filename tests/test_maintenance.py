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
