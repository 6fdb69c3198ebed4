"""
Tests for L{txregistry.maintenance}: stale uploads are purged, fresh ones kept.
"""

from __future__ import annotations

import os
import time

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from txregistry.config import UploadPurging
from txregistry.maintenance import UploadPurger, purgeUploads
from txregistry.registry import layout
from txregistry.storage.filesystem import FilesystemDriver


class PurgeUploadsTests(TestCase):
    async def makeUploads(self) -> FilesystemDriver:
        driver = FilesystemDriver(self.mktemp(), reactor)
        self.addCleanup(driver.close)
        await driver.putContent(layout.uploadData("a/b", "old"), b"x")
        await driver.putContent(layout.uploadData("a/b", "new"), b"y")
        await driver.putContent(layout.layerLink("a/b", _digest()), b"link")
        old = os.path.join(driver.root, layout.uploadData("a/b", "old").lstrip("/"))
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        return driver

    async def test_purgesOnlyStale(self) -> None:
        driver = await self.makeUploads()
        purged = await purgeUploads(driver, time.time() - 60)
        self.assertEqual(purged, [f"{layout.uploadsDirectory('a/b')}/old"])
        names = await driver.list(layout.uploadsDirectory("a/b"))
        self.assertEqual(names, [f"{layout.uploadsDirectory('a/b')}/new"])
        # Nothing else in the repository is touched.
        await driver.stat(layout.layerLink("a/b", _digest()))

    async def test_dryRunKeepsEverything(self) -> None:
        driver = await self.makeUploads()
        purged = await purgeUploads(driver, time.time() - 60, dryRun=True)
        self.assertEqual(len(purged), 1)
        self.assertEqual(len(await driver.list(layout.uploadsDirectory("a/b"))), 2)

    async def test_emptyStorage(self) -> None:
        driver = FilesystemDriver(self.mktemp(), reactor)
        self.addCleanup(driver.close)
        self.assertEqual(await purgeUploads(driver, time.time()), [])

    async def test_serviceRunsOnInterval(self) -> None:
        """
        The purger runs at start and then again every interval.
        """
        driver = await self.makeUploads()
        clock = Clock()
        purger = UploadPurger(driver, UploadPurging(True, 60.0, 600.0, False), clock)
        purger.startService()
        self.addCleanup(purger.stopService)
        uploads = layout.uploadsDirectory("a/b")
        await self.waitForUploads(driver, [f"{uploads}/new"])
        newest = os.path.join(driver.root, layout.uploadData("a/b", "new").lstrip("/"))
        os.utime(newest, (time.time() - 3600, time.time() - 3600))
        clock.advance(600)
        await self.waitForUploads(driver, [])

    async def waitForUploads(self, driver: FilesystemDriver, expected: list[str]) -> None:
        for _ in range(500):
            if await driver.list(layout.uploadsDirectory("a/b")) == expected:
                return
            await _later()
        self.fail(f"uploads never became {expected}")


def _digest():
    from txregistry.registry.digest import Digest

    return Digest.of(b"blob")


def _later():
    from twisted.internet.task import deferLater

    return deferLater(reactor, 0.01, lambda: None)
