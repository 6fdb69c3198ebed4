"""
A full disk, as the model sees it: L{InsufficientStorage}, logged once as
an error, with nothing partial left behind.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import TestCase

from tests.registry.test_store import digestOf, write
from tests.tmpfs import smallFilesystem
from txregistry.errors import BlobUnknown, InsufficientStorage
from txregistry.registry.namespace import StorageNamespace
from txregistry.storage.filesystem import FilesystemDriver


class FullDiskTests(TestCase):
    async def test_fullDiskIsInsufficientStorage(self) -> None:
        root = smallFilesystem(self, "1m")
        driver = FilesystemDriver(root, reactor)
        self.addCleanup(driver.close)
        namespace = StorageNamespace(driver, Clock())
        events: list[dict] = []  # type: ignore[type-arg]
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        blobs = namespace.repository("full/disk").blobs()
        big = b"x" * (2 * 1024 * 1024)
        writer = await blobs.put(digestOf(big))
        error = await self.assertFailure(Deferred.fromCoroutine(write(writer, big)), InsufficientStorage)
        self.assertIn("storage is full", error.message)
        await self.assertFailure(blobs.stat(digestOf(big)), BlobUnknown)
        self.assertTrue(any(
            e.get("log_level") == LogLevel.error and "Storage is full" in e.get("log_format", "")
            for e in events
        ))
        # The failed write left nothing behind: a small blob still fits.
        small = b"small"
        self.assertEqual(await write(await blobs.put(digestOf(small)), small), 5)
