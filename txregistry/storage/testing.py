# -*- test-case-name: tests.storage -*-
"""
The test suite every storage driver must pass, for drivers in and out of
txregistry.

A driver author mixes L{DriverSuiteMixin} into a
L{twisted.trial.unittest.TestCase} and gives it a factory for the driver,
L{DriverSuiteMixin.makeDriver}; trial then runs every test of the contract
against a fresh driver each time::

    from twisted.internet import reactor
    from twisted.trial.unittest import TestCase

    from txregistry.storage import createDriver
    from txregistry.storage.testing import DriverSuiteMixin


    class MyDriverTests(DriverSuiteMixin, TestCase):
        def makeDriver(self):
            return createDriver("mydriver", {"bucket": "test"}, reactor)

Looking the driver up with L{createDriver} (rather than instantiating its
class) also checks that its L{twisted.plugin} plugin is installed and
found.  The suite only calls L{IStorageDriver} methods, so whatever passes
it can back a registry; a driver with promises of its own (a filesystem
driver's files, an object store's multipart uploads) tests those in its own
test cases, and may use the helpers here (L{ChunkProducer}, L{chunks},
L{HashingConsumer}, L{BAD_PATHS}) to do so.

The suite writes a few hundred MiB through the driver (L{MiB}-sized chunks,
never held whole by the test), so a driver for a remote store should be
pointed at a scratch bucket or an emulator.

This module imports L{twisted.trial} and L{txregistry.storage} only, so a
driver package can depend on it without depending on the rest of
txregistry.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txregistry.storage.errors import (
    InvalidOffsetError,
    InvalidPathError,
    PathNotFoundError,
    StorageError,
    WriterClosedError,
)
from txregistry.storage.interfaces import (
    FileInfo,
    IStorageDriver,
    IStorageReader,
    IStorageWriter,
)

__all__ = [
    "BAD_PATHS",
    "ChunkProducer",
    "CollectingConsumer",
    "DriverSuiteMixin",
    "HashingConsumer",
    "MiB",
    "chunks",
    "digestOf",
]

if TYPE_CHECKING:
    # The mixin is only ever used with a TestCase: let the type checker
    # see its assertions without making the mixin a TestCase itself (trial
    # would then run the suite with no driver).
    _TestCaseBase = TestCase
else:
    _TestCaseBase = object

MiB = 1024 * 1024

#: Paths that no driver may accept, for any operation.
BAD_PATHS = [
    "",
    "a",
    "a/b",
    "/",  # only list, walk and stat may name the root
    "//a",
    "/a//b",
    "/a/",
    "/a/../b",
    "/..",
    "/a/.",
    "/./a",
    "/.hidden",
    "/a/.hidden",
    "/\u00e9t\u00e9",
    "/a/b\u00ff",
    "/a\n",
    "/a\x00b",
    "/a b",
    "/a\\b",
]


def chunks(count: int, size: int = MiB, seed: int = 1) -> Iterator[bytes]:
    """
    C{count} deterministic chunks of C{size} bytes, each distinct (its
    index is stamped on a shared random block), so the stream can be
    regenerated for checking without ever holding all of it.
    """
    base = random.Random(seed).randbytes(size)
    for i in range(count):
        yield i.to_bytes(8, "big") + base[8:]


def digestOf(stream: Iterator[bytes]) -> str:
    """
    The hex sha256 of everything C{stream} yields (of L{chunks}, say).
    """
    hasher = hashlib.sha256()
    for chunk in stream:
        hasher.update(chunk)
    return hasher.hexdigest()


@implementer(IConsumer)
class HashingConsumer:
    """
    Hashes what it is given; keeps only the digest and the size.
    """

    def __init__(self) -> None:
        self.hasher = hashlib.sha256()
        self.size = 0
        self.producer: Any = None

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.hasher.update(data)
        self.size += len(data)


@implementer(IConsumer)
class CollectingConsumer:
    """
    Keeps everything it is given, for small values.
    """

    def __init__(self) -> None:
        self.data: list[bytes] = []

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.data.append(bytes(data))

    def value(self) -> bytes:
        return b"".join(self.data)


@implementer(IPushProducer)
class ChunkProducer:
    """
    A push producer that writes C{source}'s chunks to a consumer as fast
    as the consumer lets it, honouring pause and resume.

    @ivar pauses: how many times it was paused.
    @ivar resumes: how many times it was resumed after a pause.
    """

    def __init__(self, source: Iterator[bytes], consumer: IConsumer) -> None:
        self._source = source
        self._consumer = consumer
        self.paused = False
        self.pauses = 0
        self.resumes = 0
        self.written = 0
        self.done: Deferred[int] = Deferred()
        self._running = False
        self._finished = False

    def start(self) -> Deferred[int]:
        self._consumer.registerProducer(self, True)
        self._run()
        return self.done

    def pauseProducing(self) -> None:
        if not self.paused:
            self.pauses += 1
        self.paused = True

    def resumeProducing(self) -> None:
        if self.paused:
            self.resumes += 1
        self.paused = False
        if not self._running:
            # Resume from a fresh stack: never re-enter the consumer.
            reactor.callLater(0, self._run)  # type: ignore[attr-defined]

    def stopProducing(self) -> None:
        self._finish()

    def _run(self) -> None:
        if self._running or self._finished:
            return
        self._running = True
        try:
            while not self.paused:
                chunk = next(self._source, None)
                if chunk is None:
                    self._consumer.unregisterProducer()
                    self._finish()
                    return
                self.written += len(chunk)
                self._consumer.write(chunk)
        finally:
            self._running = False

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self.done.callback(self.written)


class DriverSuiteMixin(_TestCaseBase):
    """
    The behaviour every L{IStorageDriver} must have.

    Mix into a L{TestCase} (before it, so that this C{setUp} runs) and
    implement L{makeDriver}.  Each test gets a fresh driver in
    C{self.driver}, closed at cleanup.

    @cvar backpressure: whether the driver's writers pause their producer
        when they fall behind.  Set it to C{False} for a driver whose writers
        take everything at once (the in-memory one); every other test still
        runs.
    """

    backpressure = True

    def makeDriver(self) -> IStorageDriver:
        """
        Build a new, empty driver for one test.

        Called from C{setUp}; it may call C{self.mktemp()} and
        C{self.addCleanup()} for anything the driver needs (a directory, a
        bucket to empty).  The suite closes the driver itself.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement makeDriver")

    def setUp(self) -> None:
        self.driver = self.makeDriver()
        self.addCleanup(self.driver.close)

    async def assertFails(self, result: Any, *errors: type[BaseException]) -> BaseException:
        """
        C{result} must be a L{Deferred} (never a synchronous exception: the
        caller already has that) that fails with one of C{errors}.
        """
        self.assertIsInstance(result, Deferred)
        return await self.assertFailure(result, *errors)

    async def write(self, path: str, parts: list[bytes], append: bool = False) -> int:
        writer = await self.driver.writer(path, append=append)
        for part in parts:
            writer.write(part)
        return await writer.commit()

    async def readAll(self, path: str, offset: int = 0, length: int | None = None) -> bytes:
        reader = await self.driver.reader(path, offset, length)
        consumer = CollectingConsumer()
        await reader.startProducing(consumer)
        return consumer.value()

    # Interface

    def test_provides(self) -> None:
        """
        The driver provides L{IStorageDriver} and has a name.
        """
        verifyObject(IStorageDriver, self.driver)
        self.assertIsInstance(self.driver.name, str)

    async def test_writerAndReaderProvide(self) -> None:
        writer = await self.driver.writer("/a/b")
        verifyObject(IStorageWriter, writer)
        writer.write(b"x")
        await writer.commit()
        reader = await self.driver.reader("/a/b")
        verifyObject(IStorageReader, reader)
        self.assertEqual(reader.length, 1)
        await reader.startProducing(CollectingConsumer())

    # Whole values

    async def test_putGetRoundTrip(self) -> None:
        for path, content in [
            ("/a", b"hello"),
            ("/deep/er/and/deeper/file.txt", b"x" * 100_000),
            ("/empty", b""),
            ("/binary", bytes(range(256)) * 17),
        ]:
            await self.driver.putContent(path, content)
            self.assertEqual(await self.driver.getContent(path), content)

    async def test_putOverwrites(self) -> None:
        await self.driver.putContent("/a/b", b"first value, longer")
        await self.driver.putContent("/a/b", b"second")
        self.assertEqual(await self.driver.getContent("/a/b"), b"second")
        info = await self.driver.stat("/a/b")
        self.assertEqual(info.size, 6)

    async def test_putAcceptsBytesLike(self) -> None:
        """
        A C{memoryview} or C{bytearray} is stored as its bytes (and the
        stored value does not change when the caller's buffer does).
        """
        buffer = bytearray(b"abc")
        await self.driver.putContent("/a", buffer)  # type: ignore[arg-type]
        buffer[0:1] = b"z"
        self.assertEqual(await self.driver.getContent("/a"), b"abc")

    # Streams

    async def test_writerRoundTrip(self) -> None:
        size = await self.write("/w/x", [b"abc", b"", b"def", bytes(range(256))])
        self.assertEqual(size, 262)
        self.assertEqual(await self.driver.getContent("/w/x"), b"abcdef" + bytes(range(256)))
        self.assertEqual(await self.readAll("/w/x"), b"abcdef" + bytes(range(256)))

    async def test_writerEmpty(self) -> None:
        """
        A committed writer that was given nothing stores an empty value.
        """
        self.assertEqual(await self.write("/e", []), 0)
        self.assertEqual(await self.driver.getContent("/e"), b"")
        self.assertEqual(await self.readAll("/e"), b"")
        self.assertEqual((await self.driver.stat("/e")).size, 0)

    async def test_writerSize(self) -> None:
        """
        C{size} counts what was written (plus the existing bytes when
        appending), before and after commit.
        """
        writer = await self.driver.writer("/s")
        self.assertEqual(writer.size, 0)
        self.assertEqual(writer.path, "/s")
        writer.write(b"12345")
        self.assertEqual(writer.size, 5)
        self.assertEqual(await writer.commit(), 5)
        appender = await self.driver.writer("/s", append=True)
        self.assertEqual(appender.size, 5)
        appender.write(b"678")
        self.assertEqual(appender.size, 8)
        self.assertEqual(await appender.commit(), 8)

    async def test_writerInvisibleUntilCommit(self) -> None:
        """
        Nothing written shows at the path before commit: a new path stays
        absent, an existing one keeps its old value, and nothing else
        shows in a listing or walk meanwhile.
        """
        await self.driver.putContent("/old", b"old")
        fresh = await self.driver.writer("/new")
        replacing = await self.driver.writer("/old")
        appending = await self.driver.writer("/old", append=True)
        for w in (fresh, replacing, appending):
            w.write(b"x" * 100_000)
        # Several round trips through the driver, so any write it started
        # has had every chance to land.
        for _ in range(3):
            await self.assertFails(self.driver.getContent("/new"), PathNotFoundError)
            self.assertEqual(await self.driver.getContent("/old"), b"old")
            self.assertEqual((await self.driver.stat("/old")).size, 3)
            self.assertEqual(await self.driver.list("/"), ["/old"])
            # A driver's own staging objects are never listed or walked.
            self.assertEqual([info.path for info in await self.driver.walk("/")], ["/old"])
        await replacing.cancel()
        await appending.cancel()
        await fresh.commit()
        self.assertEqual(len(await self.driver.getContent("/new")), 100_000)

    async def test_largeStream(self) -> None:
        """
        256 MiB written in 1 MiB chunks through a writer come back intact
        through a reader, checked by digest; the test never holds more than
        a chunk of it.
        """
        count = 256
        writer = await self.driver.writer("/large/blob")
        producer = ChunkProducer(chunks(count), writer)
        written = await producer.start()
        self.assertEqual(written, count * MiB)
        self.assertEqual(await writer.commit(), count * MiB)
        self.assertEqual((await self.driver.stat("/large/blob")).size, count * MiB)
        reader = await self.driver.reader("/large/blob")
        self.assertEqual(reader.length, count * MiB)
        consumer = HashingConsumer()
        await reader.startProducing(consumer)
        self.assertEqual(consumer.size, count * MiB)
        self.assertEqual(consumer.hasher.hexdigest(), digestOf(chunks(count)))
        # A range from the middle, across chunk boundaries.
        reader = await self.driver.reader("/large/blob", 100 * MiB - 3, 2 * MiB + 6)
        consumer = HashingConsumer()
        await reader.startProducing(consumer)
        expected = hashlib.sha256()
        for i, chunk in enumerate(chunks(103)):
            if i == 99:
                expected.update(chunk[-3:])
            elif i in (100, 101):
                expected.update(chunk)
            elif i == 102:
                expected.update(chunk[:3])
        self.assertEqual(consumer.size, 2 * MiB + 6)
        self.assertEqual(consumer.hasher.hexdigest(), expected.hexdigest())
        await self.driver.delete("/large")

    async def test_readerOffsets(self) -> None:
        content = bytes(range(256)) * 4
        await self.driver.putContent("/r", content)
        for offset, length in [
            (0, None),
            (0, 0),
            (1, None),
            (1023, None),
            (1024, None),
            (1024, 0),
            (10, 20),
            (0, 1024),
            (500, 524),
        ]:
            reader = await self.driver.reader("/r", offset, length)
            expected = content[offset:] if length is None else content[offset : offset + length]
            self.assertEqual(reader.length, len(expected), (offset, length))
            consumer = CollectingConsumer()
            await reader.startProducing(consumer)
            self.assertEqual(consumer.value(), expected, (offset, length))

    async def test_readerBadOffsets(self) -> None:
        await self.driver.putContent("/r", b"0123456789")
        for offset, length in [(-1, None), (11, None), (0, 11), (5, 6), (2, -1), (-1, 1)]:
            failure = await self.assertFails(
                self.driver.reader("/r", offset, length), InvalidOffsetError
            )
            self.assertEqual(failure.path, "/r")  # type: ignore[attr-defined]

    async def test_readerPauseResume(self) -> None:
        """
        A paused reader writes nothing until resumed.
        """
        await self.driver.putContent("/p", b"z" * (4 * MiB))
        reader = await self.driver.reader("/p")
        consumer = HashingConsumer()
        done = reader.startProducing(consumer)
        reader.pauseProducing()
        before = consumer.size
        for _ in range(5):
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(consumer.size, before)
        self.assertFalse(done.called)
        reader.resumeProducing()
        await done
        self.assertEqual(consumer.size, 4 * MiB)

    async def test_readerStop(self) -> None:
        """
        A stopped reader writes nothing more; the value is untouched.
        """
        await self.driver.putContent("/p", b"z" * (4 * MiB))
        reader = await self.driver.reader("/p")
        consumer = HashingConsumer()
        reader.startProducing(consumer)
        reader.stopProducing()
        size = consumer.size
        for _ in range(5):
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(consumer.size, size)
        self.assertEqual(len(await self.driver.getContent("/p")), 4 * MiB)

    async def test_appendWriter(self) -> None:
        await self.driver.putContent("/ap", b"head-")
        self.assertEqual(await self.write("/ap", [b"mid-", b"tail"], append=True), 13)
        self.assertEqual(await self.driver.getContent("/ap"), b"head-mid-tail")
        self.assertEqual(await self.write("/ap", [], append=True), 13)
        self.assertEqual(await self.driver.getContent("/ap"), b"head-mid-tail")

    async def test_appendToEmpty(self) -> None:
        await self.driver.putContent("/ap", b"")
        self.assertEqual(await self.write("/ap", [b"abc"], append=True), 3)
        self.assertEqual(await self.driver.getContent("/ap"), b"abc")

    async def test_appendersLandAtCommit(self) -> None:
        """
        Two appenders opened on one value both land, each at the end the
        value has when it commits (not when it was opened), and each commit
        fires with the size the value then has.
        """
        await self.driver.putContent("/ap", b"head-")
        first = await self.driver.writer("/ap", append=True)
        second = await self.driver.writer("/ap", append=True)
        first.write(b"first-")
        second.write(b"second-")
        self.assertEqual(await second.commit(), 12)
        self.assertEqual(await first.commit(), 18)
        self.assertEqual(await self.driver.getContent("/ap"), b"head-second-first-")
        self.assertEqual((await self.driver.stat("/ap")).size, 18)

    async def test_simultaneousAppendCommits(self) -> None:
        """
        Two appenders committed at once (the second commit begun before
        the first has fired) both land, whole, one after the other.
        """
        await self.driver.putContent("/ap", b"head-")
        # Megabytes each, so that the two commits overlap for as long as
        # copying them takes.
        parts = {b"A": [b"A" * MiB] * 8, b"B": [b"B" * MiB] * 6}
        writers = {}
        for name, chunks_ in parts.items():
            writers[name] = await self.driver.writer("/ap", append=True)
            for chunk in chunks_:
                writers[name].write(chunk)
        results = await DeferredList(
            [writers[b"A"].commit(), writers[b"B"].commit()], consumeErrors=True
        )
        self.assertTrue(all(ok for ok, _ in results), results)
        self.assertEqual(max(size for _, size in results), 5 + 14 * MiB)
        self.assertIn(min(size for _, size in results), (5 + 8 * MiB, 5 + 6 * MiB))
        value = await self.driver.getContent("/ap")
        self.assertIn(
            value,
            (
                b"head-" + b"".join(parts[b"A"]) + b"".join(parts[b"B"]),
                b"head-" + b"".join(parts[b"B"]) + b"".join(parts[b"A"]),
            ),
        )

    async def test_concurrentWriters(self) -> None:
        """
        Two writers to one path both commit; the value is exactly one of
        theirs, never a mix.
        """
        a = [b"A" * 300_000 for _ in range(10)]
        b = [b"B" * 250_000 for _ in range(10)]
        for order in ((0, 1), (1, 0)):
            first = await self.driver.writer("/c/d")
            second = await self.driver.writer("/c/d")
            for partA, partB in zip(a, b, strict=True):
                first.write(partA)
                second.write(partB)
            writers = [first, second]
            results = await DeferredList(
                [writers[order[0]].commit(), writers[order[1]].commit()],
                consumeErrors=True,
            )
            self.assertEqual(sorted(r[1] for r in results), [2_500_000, 3_000_000])
            self.assertTrue(all(ok for ok, _ in results))
            value = await self.driver.getContent("/c/d")
            self.assertIn(value, (b"".join(a), b"".join(b)))
            self.assertEqual(await self.driver.list("/c"), ["/c/d"])

    async def test_cancelNew(self) -> None:
        """
        Cancelling a writer for a new path leaves nothing there.
        """
        writer = await self.driver.writer("/x/y/z")
        writer.write(b"data" * 100_000)
        await writer.cancel()
        await self.assertFails(self.driver.stat("/x/y/z"), PathNotFoundError)
        await self.assertFails(self.driver.getContent("/x/y/z"), PathNotFoundError)
        await self.driver.putContent("/other", b"1")
        walked = [info.path for info in await self.driver.walk("/")]
        self.assertFalse([p for p in walked if p.startswith("/x/y/z")], walked)

    async def test_cancelReplace(self) -> None:
        await self.driver.putContent("/k", b"keep")
        writer = await self.driver.writer("/k")
        writer.write(b"new" * 100_000)
        await writer.cancel()
        self.assertEqual(await self.driver.getContent("/k"), b"keep")
        self.assertEqual(await self.driver.list("/"), ["/k"])

    async def test_cancelAppend(self) -> None:
        """
        Cancelling an appending writer leaves the value unchanged.
        """
        await self.driver.putContent("/k", b"keep")
        writer = await self.driver.writer("/k", append=True)
        for _ in range(10):
            writer.write(b"more" * 100_000)
        await writer.cancel()
        self.assertEqual(await self.driver.getContent("/k"), b"keep")
        self.assertEqual((await self.driver.stat("/k")).size, 4)
        self.assertEqual(await self.readAll("/k"), b"keep")

    async def test_closedWriter(self) -> None:
        """
        A committed writer refuses more data and a second commit.
        """
        writer = await self.driver.writer("/w")
        writer.write(b"a")
        await writer.commit()
        self.assertRaises(WriterClosedError, writer.write, b"b")
        await self.assertFails(writer.commit(), WriterClosedError)
        self.assertEqual(await self.driver.getContent("/w"), b"a")

    async def test_cancelAfterCancel(self) -> None:
        writer = await self.driver.writer("/w")
        await writer.cancel()
        await writer.cancel()
        await self.assertFails(self.driver.stat("/w"), PathNotFoundError)

    # Metadata

    async def test_stat(self) -> None:
        await self.driver.putContent("/dir/file", b"12345")
        info = await self.driver.stat("/dir/file")
        self.assertEqual((info.path, info.size, info.isDirectory), ("/dir/file", 5, False))
        self.assertIsInstance(info.modified, float)
        info = await self.driver.stat("/dir")
        self.assertEqual((info.path, info.isDirectory), ("/dir", True))
        info = await self.driver.stat("/")
        self.assertTrue(info.isDirectory)

    async def deepTree(self) -> dict[str, bytes]:
        files = {
            "/t/a/b/c/d/e/f": b"f",
            "/t/a/b/c/x": b"xx",
            "/t/a/b/y": b"yyy",
            "/t/a-b/z": b"zzzz",
            "/t/a0": b"",
            "/t/A": b"A",
            "/t/_u/v": b"v",
            "/u": b"u",
        }
        for path, content in files.items():
            await self.driver.putContent(path, content)
        return files

    async def test_list(self) -> None:
        await self.deepTree()
        self.assertEqual(await self.driver.list("/"), ["/t", "/u"])
        self.assertEqual(
            await self.driver.list("/t"), ["/t/A", "/t/_u", "/t/a", "/t/a-b", "/t/a0"]
        )
        self.assertEqual(await self.driver.list("/t/a/b"), ["/t/a/b/c", "/t/a/b/y"])
        self.assertEqual(await self.driver.list("/t/a/b/c/d/e"), ["/t/a/b/c/d/e/f"])

    async def test_walk(self) -> None:
        """
        Walk lists every file and directory below a path, with full paths,
        sizes and kinds, in lexical order of path.
        """
        files = await self.deepTree()
        walked = await self.driver.walk("/t")
        for info in walked:
            self.assertIsInstance(info, FileInfo)
        paths = [info.path for info in walked]
        self.assertEqual(paths, sorted(paths))
        directories = {
            "/t/a", "/t/a/b", "/t/a/b/c", "/t/a/b/c/d", "/t/a/b/c/d/e", "/t/a-b", "/t/_u",
        }
        expected = sorted(directories | {p for p in files if p.startswith("/t/")})
        self.assertEqual(paths, expected)
        for info in walked:
            if info.path in directories:
                self.assertTrue(info.isDirectory, info)
            else:
                self.assertFalse(info.isDirectory, info)
                self.assertEqual(info.size, len(files[info.path]), info)
        everything = [info.path for info in await self.driver.walk("/")]
        self.assertEqual(everything, sorted(["/t", "/u"] + expected))
        self.assertEqual(
            [info.path for info in await self.driver.walk("/t/a/b/c/d")],
            ["/t/a/b/c/d/e", "/t/a/b/c/d/e/f"],
        )

    async def test_walkEmptyRoot(self) -> None:
        """
        The root of an empty driver lists and walks as empty.
        """
        self.assertEqual(await self.driver.list("/"), [])
        self.assertEqual(await self.driver.walk("/"), [])

    async def test_move(self) -> None:
        await self.driver.putContent("/m/src", b"moved")
        await self.driver.move("/m/src", "/n/o/dst")
        self.assertEqual(await self.driver.getContent("/n/o/dst"), b"moved")
        await self.assertFails(self.driver.getContent("/m/src"), PathNotFoundError)

    async def test_moveOverExisting(self) -> None:
        await self.driver.putContent("/src", b"new")
        await self.driver.putContent("/dst", b"old and longer")
        await self.driver.move("/src", "/dst")
        self.assertEqual(await self.driver.getContent("/dst"), b"new")
        self.assertEqual(await self.driver.list("/"), ["/dst"])

    async def test_moveOntoItself(self) -> None:
        await self.driver.putContent("/same", b"kept")
        await self.driver.move("/same", "/same")
        self.assertEqual(await self.driver.getContent("/same"), b"kept")

    async def test_concurrentMovesToOneDestination(self) -> None:
        """
        Two moves of the same content to one destination at once (two
        pushes of one blob finishing together) both succeed: the
        destination holds the content, whole, and both sources are gone.
        """
        content = b"blob" * 250_000
        await self.driver.putContent("/up/1", content)
        await self.driver.putContent("/up/2", content)
        results = await DeferredList(
            [self.driver.move("/up/1", "/blobs/b"), self.driver.move("/up/2", "/blobs/b")],
            consumeErrors=True,
        )
        self.assertEqual([ok for ok, _ in results], [True, True], results)
        self.assertEqual(await self.driver.getContent("/blobs/b"), content)
        self.assertEqual(await self.driver.list("/blobs"), ["/blobs/b"])
        for source in ("/up/1", "/up/2"):
            await self.assertFails(self.driver.stat(source), PathNotFoundError)

    async def test_moveMissing(self) -> None:
        await self.driver.putContent("/dst", b"old")
        await self.assertFails(self.driver.move("/nothing", "/dst"), PathNotFoundError)
        self.assertEqual(await self.driver.getContent("/dst"), b"old")

    async def test_fileOrDirectory(self) -> None:
        """
        A path is a file or a directory, never both: storing a file below a
        file, or at a directory's path (by put, writer or move), fails and
        changes nothing.
        """
        await self.driver.putContent("/f", b"file")
        await self.driver.putContent("/d/x", b"x")

        async def committed(path: str) -> int:
            writer = await self.driver.writer(path)
            writer.write(b"new")
            return await writer.commit()

        attempts: list[Callable[[], Deferred[Any]]] = [
            lambda: self.driver.putContent("/f/c", b"c"),
            lambda: self.driver.putContent("/d", b"d"),
            lambda: Deferred.fromCoroutine(committed("/d")),
            lambda: Deferred.fromCoroutine(committed("/f/c")),
            lambda: self.driver.move("/f", "/d"),
            lambda: self.driver.move("/d/x", "/f/y"),
        ]
        for attempt in attempts:
            await self.assertFailure(attempt(), StorageError)
            self.assertEqual(await self.driver.list("/"), ["/d", "/f"])
            self.assertEqual(await self.driver.list("/d"), ["/d/x"])
            self.assertEqual(await self.driver.getContent("/f"), b"file")
            self.assertEqual(await self.driver.getContent("/d/x"), b"x")
            self.assertTrue((await self.driver.stat("/d")).isDirectory)
        self.assertEqual(
            [info.path for info in await self.driver.walk("/")], ["/d", "/d/x", "/f"]
        )

    async def test_delete(self) -> None:
        await self.deepTree()
        await self.driver.delete("/t/a/b/y")
        await self.assertFails(self.driver.stat("/t/a/b/y"), PathNotFoundError)
        await self.driver.delete("/t/a")
        await self.assertFails(self.driver.stat("/t/a/b/c/x"), PathNotFoundError)
        await self.assertFails(self.driver.stat("/t/a"), PathNotFoundError)
        self.assertEqual(await self.driver.list("/t"), ["/t/A", "/t/_u", "/t/a-b", "/t/a0"])

    async def test_missing(self) -> None:
        """
        Every operation on a missing path fails with L{PathNotFoundError}
        naming it (through a directory that is missing, too, and through a
        file used as a directory).
        """
        await self.driver.putContent("/file", b"x")
        for path in ["/missing", "/no/such/dir/file", "/file/child"]:
            for call in [
                lambda p: self.driver.getContent(p),
                lambda p: self.driver.stat(p),
                lambda p: self.driver.list(p),
                lambda p: self.driver.walk(p),
                lambda p: self.driver.delete(p),
                lambda p: self.driver.reader(p),
                lambda p: self.driver.reader(p, 0, 0),
                lambda p: self.driver.writer(p, append=True),
                lambda p: self.driver.move(p, "/elsewhere"),
            ]:
                error = await self.assertFails(call(path), PathNotFoundError)
                self.assertEqual(error.path, path)  # type: ignore[attr-defined]
        await self.assertFails(self.driver.list("/file"), PathNotFoundError)
        await self.assertFails(self.driver.walk("/file"), PathNotFoundError)

    async def test_readDirectory(self) -> None:
        """
        A directory has no content.
        """
        await self.driver.putContent("/d/f", b"x")
        await self.assertFails(self.driver.getContent("/d"), PathNotFoundError)
        await self.assertFails(self.driver.reader("/d"), PathNotFoundError)

    async def test_badPaths(self) -> None:
        """
        Every method refuses every bad path with L{InvalidPathError}, as a
        failed L{Deferred}, and stores nothing.
        """
        await self.driver.putContent("/good", b"g")
        calls: list[tuple[str, Callable[[str], Any]]] = [
            ("getContent", lambda p: self.driver.getContent(p)),
            ("putContent", lambda p: self.driver.putContent(p, b"x")),
            ("reader", lambda p: self.driver.reader(p)),
            ("writer", lambda p: self.driver.writer(p)),
            ("append", lambda p: self.driver.writer(p, append=True)),
            ("stat", lambda p: self.driver.stat(p)),
            ("list", lambda p: self.driver.list(p)),
            ("walk", lambda p: self.driver.walk(p)),
            ("moveFrom", lambda p: self.driver.move(p, "/elsewhere")),
            ("moveTo", lambda p: self.driver.move("/good", p)),
            ("delete", lambda p: self.driver.delete(p)),
            ("urlFor", lambda p: self.driver.urlFor(p)),
        ]
        for path in BAD_PATHS:
            for name, call in calls:
                if path == "/" and name in ("stat", "list", "walk"):
                    continue
                try:
                    result = call(path)
                except Exception as e:
                    self.fail(f"{name}({path!r}) raised {e!r} instead of failing a Deferred")
                self.assertIsInstance(result, Deferred, (name, path))
                try:
                    await result
                except InvalidPathError as e:
                    self.assertEqual(e.path, path)
                except Exception as e:
                    self.fail(f"{name}({path!r}) failed with {e!r}")
                else:
                    self.fail(f"{name}({path!r}) accepted a bad path")
        self.assertEqual(await self.driver.list("/"), ["/good"])
        self.assertEqual(await self.driver.getContent("/good"), b"g")

    async def test_goodPaths(self) -> None:
        """
        Names may hold letters, digits, '.', '_' and '-' (but not start
        with '.').
        """
        for path in ["/a.b", "/_x", "/-y", "/9/Z_z-z.z", "/a..b"]:
            await self.driver.putContent(path, path.encode())
            self.assertEqual(await self.driver.getContent(path), path.encode())

    async def test_urlFor(self) -> None:
        await self.driver.putContent("/u", b"x")
        url = await self.driver.urlFor("/u")
        self.assertTrue(url is None or isinstance(url, str))

    # Backpressure

    async def test_writerBackpressure(self) -> None:
        """
        A writer far behind its producer pauses it, and resumes it once it
        catches up; everything arrives.
        """
        if not self.backpressure:
            raise SkipTest("this driver never falls behind")
        count = 64
        writer = await self.driver.writer("/bp")
        producer = ChunkProducer(chunks(count, seed=2), writer)
        await producer.start()
        self.assertTrue(producer.pauses >= 1, "the writer never paused its producer")
        self.assertEqual(producer.resumes, producer.pauses)
        self.assertEqual(await writer.commit(), count * MiB)
        reader = await self.driver.reader("/bp")
        consumer = HashingConsumer()
        await reader.startProducing(consumer)
        self.assertEqual(consumer.hasher.hexdigest(), digestOf(chunks(count, seed=2)))
