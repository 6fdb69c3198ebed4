"""
The C{filesystem} driver runs the shared driver suite, and keeps the
promises only a filesystem driver makes: no partial file is ever visible,
nothing escapes the root, and no disk I/O blocks the reactor thread.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from txregistry.storage import filesystem
from txregistry.storage.errors import (
    DriverConfigurationError,
    InvalidPathError,
    PathNotFoundError,
)
from txregistry.storage.factories import createDriver
from txregistry.storage.interfaces import IStorageDriver
from txregistry.storage.testing import BAD_PATHS, ChunkProducer, DriverSuiteMixin, MiB, chunks


def _files(root: str) -> list[str]:
    """
    Every file and directory below C{root}, relative, hidden ones included.
    """
    found = []
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.append(os.path.relpath(os.path.join(directory, name), root))
    return sorted(found)


class FilesystemDriverTests(DriverSuiteMixin, TestCase):
    def makeDriver(self) -> IStorageDriver:
        self.root = os.path.join(os.path.abspath(self.mktemp()), "root")
        # The suite writes hundreds of MiB: do not leave them in _trial_temp.
        self.addCleanup(shutil.rmtree, self.root, True)
        driver = createDriver("filesystem", {"rootdirectory": self.root}, reactor)
        self.assertEqual(driver.name, "filesystem")
        return driver


class FilesystemOnlyTests(TestCase):
    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())
        self.root = os.path.join(self.base, "root")
        self.driver: Any = filesystem.createFilesystemDriver({"rootdirectory": self.root}, reactor)
        self.addCleanup(self.driver.close)

    def local(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    async def test_walkWhileAnotherWriterRemoves(self) -> None:
        """
        A directory removed by another writer while a walk goes on is left
        out of it, not an error: the walk lists what is there.
        """
        for path in ("/a/x/f", "/a/y/g", "/a/z"):
            await self.driver.putContent(path, b"1")
        realScandir = os.scandir
        gone = self.local("/a/y")

        def scandir(directory: Any) -> Any:
            entries = realScandir(directory)
            if directory == self.local("/a"):
                # Listed, then removed before the walk goes into it.
                shutil.rmtree(gone)
            return entries

        self.patch(filesystem.os, "scandir", scandir)
        found = [info.path for info in await self.driver.walk("/a")]
        self.assertIn("/a/x/f", found)
        self.assertIn("/a/z", found)
        self.assertNotIn("/a/y/g", found)

    async def test_noPartialFileVisible(self) -> None:
        """
        While a writer runs, its data is in a hidden temporary file beside
        the target, which list and walk never show; the target appears only
        on commit, whole, and the temporary file is gone.
        """
        await self.driver.putContent("/d/old", b"old")
        writer = await self.driver.writer("/d/old")
        fresh = await self.driver.writer("/d/new")
        await self.driver.putContent("/d/app", b"app")
        appender = await self.driver.writer("/d/app", append=True)
        for _ in range(4):
            writer.write(b"n" * MiB)
            fresh.write(b"f" * MiB)
            appender.write(b"a" * MiB)
        for _ in range(3):
            await self.driver.stat("/d/old")
        with open(self.local("/d/old"), "rb") as f:
            self.assertEqual(f.read(), b"old")
        with open(self.local("/d/app"), "rb") as f:
            self.assertEqual(f.read(), b"app")
        self.assertFalse(os.path.exists(self.local("/d/new")))
        onDisk = os.listdir(self.local("/d"))
        hidden = [n for n in onDisk if n.startswith(".")]
        self.assertTrue(hidden, "the writers' data is somewhere on disk")
        self.assertEqual(sorted(n for n in onDisk if not n.startswith(".")), ["app", "old"])
        self.assertEqual(await self.driver.list("/d"), ["/d/app", "/d/old"])
        self.assertEqual(
            [i.path for i in await self.driver.walk("/")], ["/d", "/d/app", "/d/old"]
        )
        self.assertEqual(await writer.commit(), 4 * MiB)
        self.assertEqual(await fresh.commit(), 4 * MiB)
        self.assertEqual(await appender.commit(), 3 + 4 * MiB)
        self.assertEqual(sorted(os.listdir(self.local("/d"))), ["app", "new", "old"])
        self.assertEqual(os.path.getsize(self.local("/d/old")), 4 * MiB)

    async def test_failedReplaceRemovesTemporary(self) -> None:
        """
        A put or commit onto a directory fails without leaving its
        temporary file behind.
        """
        await self.driver.putContent("/d/x", b"x")
        await self.assertFailure(self.driver.putContent("/d", b"d"), PathNotFoundError)
        writer = await self.driver.writer("/d")
        writer.write(b"d")
        await self.assertFailure(writer.commit(), PathNotFoundError)
        self.assertEqual(_files(self.root), ["d", "d/x"])

    async def test_cancelRemovesTemporary(self) -> None:
        writer = await self.driver.writer("/d/x")
        writer.write(b"x" * MiB)
        await writer.cancel()
        self.assertEqual(_files(self.root), ["d"])

    async def test_putContentLeavesNoTemporary(self) -> None:
        await self.driver.putContent("/a/b", b"x" * MiB)
        self.assertEqual(_files(self.root), ["a", "a/b"])

    async def test_pathsStayInRoot(self) -> None:
        """
        No path, however spelled, reads or writes outside the root.
        """
        os.makedirs(self.base, exist_ok=True)
        with open(os.path.join(self.base, "secret"), "wb") as f:
            f.write(b"secret")
        outside = _files(self.base)
        for path in BAD_PATHS + ["/../secret", "/../../secret", "/..%2fsecret", "/a/../../secret"]:
            calls: list[Callable[[str], Any]] = [
                lambda p: self.driver.getContent(p),
                lambda p: self.driver.putContent(p, b"x"),
                lambda p: self.driver.delete(p),
                lambda p: self.driver.writer(p),
                lambda p: self.driver.move(p, "/x"),
            ]
            for call in calls:
                try:
                    await call(path)
                except InvalidPathError:
                    pass
                else:
                    self.fail(f"{path!r} was accepted")
        self.assertEqual(_files(self.base), outside)
        with open(os.path.join(self.base, "secret"), "rb") as f:
            self.assertEqual(f.read(), b"secret")

    async def test_rootItself(self) -> None:
        """
        The root may be listed, walked and stat'd, not deleted or written.
        """
        await self.driver.putContent("/a", b"1")
        self.assertEqual(await self.driver.list("/"), ["/a"])
        rootCalls: list[Callable[[], Any]] = [
            lambda: self.driver.delete("/"),
            lambda: self.driver.putContent("/", b""),
            lambda: self.driver.writer("/"),
        ]
        for call in rootCalls:
            await self.assertFailure(call(), InvalidPathError)
        self.assertTrue(os.path.isdir(self.root))

    async def test_offReactorThread(self) -> None:
        """
        Every system call that can wait on the disk runs on a pool thread,
        never on the reactor's.
        """
        calls: dict[str, list[bool]] = {}
        mainThread = threading.current_thread()

        class RecordingOS:
            def __getattr__(self, name: str) -> Any:
                real = getattr(os, name)
                if name in {
                    "open", "close", "fsync", "writev", "write", "pread", "read", "replace",
                    "rename", "unlink", "mkdir", "listdir", "scandir", "stat", "fstat",
                    "ftruncate", "rmdir", "copy_file_range", "pwrite",
                }:

                    def wrapper(*args: Any, **kwargs: Any) -> Any:
                        calls.setdefault(name, []).append(
                            threading.current_thread() is mainThread
                        )
                        return real(*args, **kwargs)

                    return wrapper
                return real

        self.patch(filesystem, "os", RecordingOS())
        driver = filesystem.FilesystemDriver(self.root, reactor, 4)
        self.addCleanup(driver.close)
        await driver.putContent("/a/b", b"content")
        await driver.getContent("/a/b")
        writer = await driver.writer("/a/c")
        await ChunkProducer(chunks(12), writer).start()
        await writer.commit()
        appender = await driver.writer("/a/c", append=True)
        appender.write(b"more")
        await appender.commit()
        cancelled = await driver.writer("/a/d")
        cancelled.write(b"gone")
        await cancelled.cancel()
        reader = await driver.reader("/a/c", 5)
        from txregistry.storage.testing import HashingConsumer

        await reader.startProducing(HashingConsumer())
        await driver.stat("/a/c")
        await driver.list("/a")
        await driver.walk("/")
        await driver.move("/a/c", "/e/f")
        await driver.delete("/e")
        await driver.delete("/a/b")
        for name in ("open", "fsync", "writev", "pread", "replace", "close", "mkdir", "unlink"):
            self.assertIn(name, calls, f"os.{name} was never called: the test is broken")
        onMain = sorted(name for name, threads in calls.items() if any(threads))
        self.assertEqual(onMain, [], "called on the reactor thread")

    async def test_permissions(self) -> None:
        """
        Files are readable and writable by their owner, readable by others,
        executable by nobody and writable by no one else; directories are
        searchable.
        """
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)
        await self.driver.putContent("/p/put", b"x")
        writer = await self.driver.writer("/p/q/written")
        writer.write(b"y")
        await writer.commit()
        for path in ("/p/put", "/p/q/written"):
            mode = stat.S_IMODE(os.stat(self.local(path)).st_mode)
            self.assertEqual(mode, 0o644, (path, oct(mode)))
        for path in ("/p", "/p/q"):
            mode = stat.S_IMODE(os.stat(self.local(path)).st_mode)
            self.assertEqual(mode, 0o755, (path, oct(mode)))

    def test_configuration(self) -> None:
        for parameters in [
            {},
            {"rootdirectory": ""},
            {"rootdirectory": 5},
            {"rootdirectory": self.root, "maxthreads": 0},
            {"rootdirectory": self.root, "maxthreads": True},
            {"rootdirectory": self.root, "maxthreads": "4"},
        ]:
            self.assertRaises(
                DriverConfigurationError, createDriver, "filesystem", parameters, reactor
            )
        self.assertRaises(
            DriverConfigurationError, createDriver, "no-such-driver", {}, reactor
        )

    def test_unknownParameter(self) -> None:
        """
        A misspelt parameter stops the start, naming it, rather than being
        ignored.
        """
        error = self.assertRaises(
            DriverConfigurationError, createDriver, "filesystem",
            {"rootdirectory": self.root, "rootdir": "/elsewhere"}, reactor,
        )
        self.assertIn("storage.filesystem.rootdir: unknown parameter", str(error))
        error = self.assertRaises(
            DriverConfigurationError, createDriver, "inmemory", {"size": 1}, reactor
        )
        self.assertIn("storage.inmemory.size", str(error))

    def test_rootCreated(self) -> None:
        root = os.path.join(self.base, "new", "root")
        driver = createDriver("filesystem", {"rootdirectory": root}, reactor)
        self.addCleanup(driver.close)
        self.assertTrue(os.path.isdir(root))

    async def test_closeReleasesThreads(self) -> None:
        """
        After close, the driver's threads are gone.
        """
        driver = filesystem.FilesystemDriver(self.root, reactor, 3)
        await driver.putContent("/a", b"x")

        def names() -> list[str]:
            return [t.name for t in threading.enumerate() if "txregistry-filesystem" in t.name]

        self.assertTrue(names())
        await driver.close()
        for t in threading.enumerate():
            if "txregistry-filesystem" in t.name:
                t.join(5)
        self.assertEqual(names(), [])


class FailingDiskTests(TestCase):
    """
    A write that fails on the disk (it is full, say) fails the commit, and
    leaves nothing behind.
    """

    def setUp(self) -> None:
        self.root = os.path.abspath(self.mktemp())
        self.driver: Any = filesystem.createFilesystemDriver({"rootdirectory": self.root}, reactor)
        self.addCleanup(self.driver.close)
        real = filesystem._writeAll
        self.writes = 0

        def failing(fd: int, chunks: list[bytes]) -> None:
            self.writes += 1
            if self.writes > 2:
                raise OSError(28, "No space left on device")
            real(fd, chunks)

        self.patch(filesystem, "_writeAll", failing)

    async def check(self, path: str, append: bool, before: bytes | None) -> None:
        writer = await self.driver.writer(path, append=append)
        producer = ChunkProducer(chunks(32), writer)
        # The producer runs to its end even though the writes failed: the
        # writer resumes it and drops what it sends.
        await producer.start()
        error = await self.assertFailure(writer.commit(), OSError)
        self.assertEqual(error.errno, 28)
        if before is None:
            await self.assertFailure(self.driver.stat(path), filesystem.PathNotFoundError)
        else:
            self.assertEqual(await self.driver.getContent(path), before)
        self.assertEqual([f for f in _files(self.root) if os.path.basename(f).startswith(".")], [])

    async def test_new(self) -> None:
        await self.check("/a/new", False, None)

    async def test_replace(self) -> None:
        await self.driver.putContent("/a/old", b"old")
        await self.check("/a/old", False, b"old")

    async def test_append(self) -> None:
        await self.driver.putContent("/a/old", b"old")
        await self.check("/a/old", True, b"old")
