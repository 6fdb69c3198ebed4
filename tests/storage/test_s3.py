"""
The C{s3} driver runs the shared driver suite against two real S3
servers the tests start (SeaweedFS, a distributed object store, and moto,
which models AWS), and keeps the promises only an object store's driver
makes: multipart uploads in equal parts, appends composed server-side,
multipart copies, retries, presigned URLs, and a start that fails in one
line on a wrong key or a missing bucket.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import psutil
import treq
import yaml
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.threads import deferToThread
from twisted.python import log
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from tests.storage.servers import BUCKET, Moto, S3Server, SeaweedFS, freePort, server
from txregistry.storage import remote
from txregistry.storage.errors import (
    DriverConfigurationError,
    PathNotFoundError,
    StorageError,
    StorageUnavailableError,
)
from txregistry.storage.factories import createDriver
from txregistry.storage.interfaces import IStorageDriver
from txregistry.storage.s3.openvalue import NONCE, partsBytes, wholePartsIn
from txregistry.storage.s3.parameters import KNOWN, parseParameters
from txregistry.storage.s3.writer import TIER, partSize, splitRanges
from txregistry.storage.testing import (
    ChunkProducer,
    DriverSuiteMixin,
    HashingConsumer,
    MiB,
    chunks,
    digestOf,
)

if TYPE_CHECKING:
    _TestCaseBase = TestCase
else:
    _TestCaseBase = object


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


class ParameterTests(TestCase):
    """
    C{storage.s3} is checked at start: a bad key stops it, naming the key.
    """

    def refuses(self, parameters: dict[str, Any], key: str) -> None:
        base = {"bucket": "b", "region": "us-east-1"}
        base.update(parameters)
        error = self.assertRaises(DriverConfigurationError, createDriver, "s3", base, reactor)
        self.assertIn(f"storage.s3.{key}", str(error))

    def test_refused(self) -> None:
        self.refuses({"bucketname": "x"}, "bucketname")
        self.refuses({"bucket": ""}, "bucket")
        self.refuses({"region": None}, "region")
        self.refuses({"chunksize": 1024}, "chunksize")
        self.refuses({"chunksize": "big"}, "chunksize")
        self.refuses({"multipartcopychunksize": 10}, "multipartcopychunksize")
        self.refuses({"multipartcopymaxconcurrency": 0}, "multipartcopymaxconcurrency")
        self.refuses({"secure": "maybe"}, "secure")
        self.refuses({"keyid": "k"}, "keyid")
        self.refuses({"accesskey": "a"}, "accesskey")
        self.refuses({"storageclass": "CHEAP"}, "storageclass")
        self.refuses({"objectacl": "everyone"}, "objectacl")
        self.refuses({"regionendpoint": "http://host/path"}, "regionendpoint")
        self.refuses({"rootdirectory": "/a/../b"}, "rootdirectory")

    def test_defaults(self) -> None:
        p = parseParameters({"bucket": "b", "region": "eu-west-1"})
        self.assertEqual(p.endpoint, "https://s3.eu-west-1.amazonaws.com")
        self.assertEqual((p.chunkSize, p.copyChunkSize, p.copyThreshold), (10 * MiB, 32 * MiB, 32 * MiB))
        self.assertEqual((p.storageClass, p.objectACL, p.v4auth), ("STANDARD", "private", True))
        p = parseParameters(
            {"bucket": "b", "region": "r", "regionendpoint": "minio:9000", "secure": False,
             "rootdirectory": "/registry/"}
        )
        self.assertEqual((p.endpoint, p.prefix), ("http://minio:9000", "registry/"))


class PartTests(TestCase):
    def test_equalPartsThenGrowing(self) -> None:
        """
        Parts are equal within each thousand, and grow so that 100 GiB (and
        9 TiB) fit S3's 10 000 parts at the default 10 MiB.
        """
        sizes = [partSize(10 * MiB, i) for i in range(10_000)]
        self.assertEqual(set(sizes[:TIER]), {10 * MiB})
        total, count = 0, 0
        while total < 100 * 1024 * MiB:
            total += sizes[count]
            count += 1
        self.assertLess(count, 4000)
        # Appends go on in the same numbering: a value appended to chunk
        # by chunk reaches the same size in its 10 000 parts.
        self.assertGreater(partsBytes(10 * MiB, 10_000), 9 * 1024 * 1024 * MiB)
        self.assertEqual(partsBytes(10 * MiB, 1500), sum(sizes[:1500]))
        self.assertEqual(wholePartsIn(10 * MiB, sum(sizes[:1500]) + 1), 1500)
        self.assertEqual(wholePartsIn(10 * MiB, 10 * MiB - 1), 0)

    def test_splitRanges(self) -> None:
        """
        Copy ranges cover the object exactly, none under the chunk size
        (none under S3's 5 MiB minimum), within the part limit.
        """
        for size, chunk, limit in [
            (5 * MiB, 5 * MiB, 999), (33 * MiB, 32 * MiB, 999), (100 * MiB + 7, 32 * MiB, 999),
            (40 * 1024 * MiB, 32 * MiB, 999), (6 * 1024 * 1024 * MiB, 32 * MiB, 10_000),
        ]:
            ranges = splitRanges(size, chunk, limit)
            self.assertLessEqual(len(ranges), limit)
            self.assertEqual(ranges[0][0], 0)
            self.assertEqual(ranges[-1][1], size - 1)
            for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False):
                self.assertEqual(start, end + 1)
            self.assertTrue(all(chunk <= e - s + 1 <= 5 * 1024 * MiB for s, e in ranges), ranges[:3])


class _S3Only(_TestCaseBase):
    """
    Behaviour of the s3 driver beyond the suite, against a real server.
    """

    serverKind: type[S3Server]

    def setUp(self) -> None:
        self.server = server(self.serverKind)
        self.parameters = self.server.parameters(self)
        self.driver: Any = self.makeDriver()

    def makeDriver(self, **overrides: Any) -> Any:
        parameters = dict(self.parameters, **overrides)
        driver = createDriver("s3", parameters, reactor)
        self.addCleanup(driver.close)  # type: ignore[attr-defined]
        return driver

    def key(self, path: str) -> str:
        return str(self.parameters["rootdirectory"]).lstrip("/") + path

    def uploads(self) -> list[dict[str, Any]]:
        found = self.server.client().list_multipart_uploads(
            Bucket=BUCKET, Prefix=self.key("/")
        )
        return list(found.get("Uploads", []))

    async def partsUploaded(self, count: int) -> list[dict[str, Any]]:
        """
        The parts of the test's one multipart upload, once there are
        C{count} (or after five seconds).
        """
        parts: list[dict[str, Any]] = []
        for _ in range(100):
            uploads = self.uploads()
            if uploads:
                parts = self.server.client().list_parts(
                    Bucket=BUCKET, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]
                ).get("Parts", [])
            if len(parts) >= count:
                break
            await deferLater(reactor, 0.05, lambda: None)
        return parts

    async def test_equalParts(self) -> None:
        """
        A writer uploads its bytes as parts of exactly C{chunksize} while
        they arrive (a multipart upload nobody sees until commit), and the
        last part takes the rest.
        """
        chunk = self.parameters["chunksize"]
        writer = await self.driver.writer("/p/v")
        await ChunkProducer(chunks(3 * chunk // MiB), writer).start()
        writer.write(b"tail")
        parts = await self.partsUploaded(3)
        self.assertEqual([p["Size"] for p in parts], [chunk] * 3)
        await self.assertFailure(self.driver.stat("/p/v"), PathNotFoundError)
        self.assertEqual(await writer.commit(), 3 * chunk + 4)
        self.assertEqual((await self.driver.stat("/p/v")).size, 3 * chunk + 4)
        self.assertEqual(self.uploads(), [])

    async def append(self, driver: Any, path: str, data: list[bytes]) -> int:
        writer = await driver.writer(path, append=True)
        await ChunkProducer(iter(data), writer).start()
        return await writer.commit()  # type: ignore[no-any-return]

    async def test_appendsShareOneUpload(self) -> None:
        """
        Appends to one value go on in ONE multipart upload, each copying
        nothing: after three appends of a part and a half, the value's
        full parts are in one upload, in equal sizes, the rest is the tail
        object, and C{stat} tells the whole size; reading it completes the
        upload, with the right bytes.
        """
        chunk = self.parameters["chunksize"]
        third = 3 * chunk // 2
        whole = b"".join(chunks(3 * third // MiB + 1, seed=5))[: 3 * third]
        await self.driver.putContent("/c/data", b"")
        for i in range(3):
            size = await self.append(self.driver, "/c/data", [whole[i * third:(i + 1) * third]])
            self.assertEqual(size, (i + 1) * third)
            self.assertEqual((await self.driver.stat("/c/data")).size, size)
            uploads = self.uploads()
            self.assertEqual(len(uploads), 1 if size >= chunk else 0, uploads)
        parts = await self.partsUploaded(4)
        self.assertEqual([p["Size"] for p in parts], [chunk] * 4)
        head = self.server.client().head_object(Bucket=BUCKET, Key=self.key("/c/data"))
        self.assertEqual(head["ContentLength"], len(whole) - 4 * chunk + NONCE)
        self.assertEqual(await self.driver.getContent("/c/data"), whole)
        self.assertEqual(self.uploads(), [])
        head = self.server.client().head_object(Bucket=BUCKET, Key=self.key("/c/data"))
        self.assertEqual(head["ContentLength"], len(whole))
        self.assertEqual(head.get("Metadata", {}), {})

    async def test_appendAfterSealCopiesOnce(self) -> None:
        """
        Appending to a plain value of at least one part (one put whole, or
        an open value read meanwhile) opens it again: its full parts are
        copied server-side into a new upload, and the bytes are right.
        """
        first = b"".join(chunks(6, seed=3))
        await self.driver.putContent("/a/v", first)
        self.assertEqual(await self.append(self.driver, "/a/v", [b"more"]), len(first) + 4)
        self.assertEqual(len(await self.partsUploaded(1)), 1)
        self.assertEqual(await self.driver.getContent("/a/v"), first + b"more")
        self.assertEqual(self.uploads(), [])

    async def test_uploadResumesInAnotherProcess(self) -> None:
        """
        Each committed append is in the bucket: a driver started afresh (a
        restarted registry, another instance) appends the next chunk to it.
        """
        await self.driver.putContent("/up/data", b"")
        self.assertEqual(await self.append(self.driver, "/up/data", list(chunks(7, seed=4))),
                         7 * MiB)
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

    async def test_deadAppenderLeavesValue(self) -> None:
        """
        An appender whose process died after uploading parts (never
        committed) leaves the value as it was; the next appender's parts
        replace its strays, and the value completes right.
        """
        chunk = self.parameters["chunksize"]
        await self.driver.putContent("/k/data", b"")
        start = b"".join(chunks(chunk // MiB + 1, seed=6))
        await self.append(self.driver, "/k/data", [start])
        dead = await self.driver.writer("/k/data", append=True)
        await ChunkProducer(chunks(3 * chunk // MiB, seed=7), dead).start()
        self.assertEqual(len(await self.partsUploaded(4)), 4)
        self.assertEqual((await self.driver.stat("/k/data")).size, len(start))
        other = self.makeDriver()
        self.assertEqual(await self.append(other, "/k/data", [b"end"]), len(start) + 3)
        self.assertEqual(await other.getContent("/k/data"), start + b"end")

    async def test_racingAppendersRefused(self) -> None:
        """
        Two appenders that both stream parts to one value (a misbehaving
        client on two instances): the first to commit wins, the other's
        commit fails, and if its parts overwrote the winner's, reading the
        value fails rather than give wrong bytes.
        """
        chunk = self.parameters["chunksize"]
        await self.driver.putContent("/r/data", b"")
        other = self.makeDriver()
        first = await self.driver.writer("/r/data", append=True)
        second = await other.writer("/r/data", append=True)
        await ChunkProducer(chunks(chunk // MiB, seed=8), first).start()
        self.assertEqual(await first.commit(), chunk)
        await ChunkProducer(chunks(chunk // MiB, seed=9), second).start()
        await self.assertFailure(second.commit(), StorageError)
        self.assertEqual((await self.driver.stat("/r/data")).size, chunk)
        # second's part 1 went into first's upload?  Each made its own
        # (the value had none): the winner's part is intact.
        self.assertEqual(await self.driver.getContent("/r/data"), b"".join(chunks(chunk // MiB, seed=8)))

    async def test_abandonedUploadsAborted(self) -> None:
        """
        A writer whose process died leaves a multipart upload; deleting the
        directory it was below aborts it.
        """
        chunk = self.parameters["chunksize"]
        await self.driver.putContent("/d/up/data", b"")
        writer = await self.driver.writer("/d/up/data", append=True)
        await ChunkProducer(chunks(3 * chunk // MiB), writer).start()
        # Its parts up: then the process "dies".
        self.assertEqual(len(await self.partsUploaded(3)), 3)
        await self.driver.delete("/d")
        self.assertEqual(self.uploads(), [])

    async def test_presignedURL(self) -> None:
        """
        C{urlFor} is a presigned GET anyone may fetch for a while, without
        credentials.
        """
        await self.driver.putContent("/u/v", b"direct")
        url = await self.driver.urlFor("/u/v")
        self.assertIn("X-Amz-Signature=", url)
        response = await treq.get(url, persistent=False)
        self.assertEqual((response.code, await response.content()), (200, b"direct"))

    async def test_roundTripMemoryBounded(self) -> None:
        """
        256 MiB written and read back through the driver grow this
        process's RSS by a few parts at most, not by the value.
        """
        process = psutil.Process()
        before = process.memory_info().rss
        peak = [before]

        def sample() -> None:
            peak[0] = max(peak[0], process.memory_info().rss)

        sampler = LoopingCall(sample)
        sampler.start(0.05)
        try:
            writer = await self.driver.writer("/big")
            await ChunkProducer(chunks(256, seed=5), writer).start()
            self.assertEqual(await writer.commit(), 256 * MiB)
            reader = await self.driver.reader("/big")
            consumer = HashingConsumer()
            await reader.startProducing(consumer)
        finally:
            sampler.stop()
        self.assertEqual(consumer.hasher.hexdigest(), digestOf(chunks(256, seed=5)))
        growth = (peak[0] - before) / MiB
        log.msg(f"s3 256 MiB round trip: RSS grew by {growth:.1f} MiB")
        self.assertLess(growth, 64, f"RSS grew by {growth:.1f} MiB")


class SeaweedFSOnlyTests(_S3Only, TestCase):
    serverKind = SeaweedFS

    def checkStart(self, **overrides: Any) -> Deferred[Any]:
        driver = self.makeDriver(**overrides)
        return deferToThread(driver.checkStart)

    async def test_startChecksBucket(self) -> None:
        """
        The start check passes for the right keys and an existing bucket,
        and fails in one line for wrong keys or a missing bucket.
        """
        await self.checkStart()
        error = await self.assertFailure(self.checkStart(secretkey="wrong"), StorageError)
        self.assertIn("credentials are refused", str(error))
        self.assertNotIn("\n", str(error))
        error = await self.assertFailure(self.checkStart(bucket="missing"), StorageError)
        self.assertIn("no such bucket", str(error))
        port = freePort()
        error = await self.assertFailure(
            self.checkStart(regionendpoint=f"http://127.0.0.1:{port}"), StorageError
        )
        self.assertIn("cannot be reached", str(error))


class MotoOnlyTests(_S3Only, TestCase):
    serverKind = Moto

    async def test_moveIsMultipartCopyAboveThreshold(self) -> None:
        """
        Above C{multipartcopythresholdsize} a move is a multipart copy (the
        destination is a multipart object); below, one C{CopyObject}.
        """
        driver = self.makeDriver(
            multipartcopythresholdsize=5 * MiB, multipartcopychunksize=5 * MiB
        )
        content = b"".join(chunks(12, seed=6))
        await driver.putContent("/m/src", content)
        await driver.move("/m/src", "/m/dst")
        head = self.server.client().head_object(Bucket=BUCKET, Key=self.key("/m/dst"))
        self.assertRegex(head["ETag"], r'-2"$')
        self.assertEqual(await driver.getContent("/m/dst"), content)
        await self.assertFailure(driver.stat("/m/src"), PathNotFoundError)
        await driver.putContent("/m/small", b"small")
        await driver.move("/m/small", "/m/moved")
        head = self.server.client().head_object(Bucket=BUCKET, Key=self.key("/m/moved"))
        self.assertNotIn("-", head["ETag"])

    async def test_retriesThrottling(self) -> None:
        """
        Throttling (503 SlowDown) is retried with backoff until the store
        answers; a store that never stops throttling fails the operation
        with L{StorageUnavailableError} after the retries, changing nothing.
        """
        self.patch(remote, "FIRST_DELAY", 0.001)
        proxy = ThrottlingProxy(self.server.endpoint, failures=2)
        port: Any = reactor.listenTCP(0, Site(proxy), interface="127.0.0.1")  # type: ignore[attr-defined,arg-type]
        self.addCleanup(port.stopListening)
        endpoint = f"http://127.0.0.1:{port.getHost().port}"
        driver = self.makeDriver(regionendpoint=endpoint)
        await driver.putContent("/r", b"landed")
        self.assertEqual(proxy.throttled, 2)
        self.assertEqual(await self.driver.getContent("/r"), b"landed")
        proxy.failures = 1000
        error = await self.assertFailure(driver.putContent("/r", b"lost"), StorageUnavailableError)
        self.assertIn("SlowDown", str(error))
        self.assertEqual(proxy.throttled, 2 + remote.ATTEMPTS)
        self.assertEqual(await self.driver.getContent("/r"), b"landed")

    async def test_closeCancelsRetries(self) -> None:
        """
        Closing the driver while an operation is being retried fails it at
        once with L{StorageUnavailableError} and leaves no retry, request
        or connection attempt behind (trial fails a test that does).
        """
        proxy = ThrottlingProxy(self.server.endpoint, failures=10**9)
        port: Any = reactor.listenTCP(0, Site(proxy), interface="127.0.0.1")  # type: ignore[attr-defined,arg-type]
        self.addCleanup(port.stopListening)
        driver = self.makeDriver(regionendpoint=f"http://127.0.0.1:{port.getHost().port}")
        put = driver.putContent("/r", b"never")
        while proxy.throttled < 2:
            await deferLater(reactor, 0.01, lambda: None)
        await driver.close()
        error = await self.assertFailure(put, StorageUnavailableError)
        self.assertIn("closed", str(error))
        await self.assertFailure(driver.getContent("/r"), StorageUnavailableError)


class ThrottlingProxy(Resource):
    """
    A real HTTP front for an S3 server that answers the first C{failures}
    requests with S3's C{503 SlowDown}, and forwards the others.
    """

    isLeaf = True

    def __init__(self, upstream: str, failures: int) -> None:
        super().__init__()
        self.upstream = upstream
        self.failures = failures
        self.throttled = 0

    def render(self, request: Any) -> Any:
        if self.throttled < self.failures:
            self.throttled += 1
            request.setResponseCode(503)
            # Each refusal closes its connection, so that none is left
            # open when the test ends (the driver's pool would keep it).
            request.setHeader(b"connection", b"close")
            return (
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
                b"<Message>Please reduce your request rate.</Message></Error>"
            )
        body = request.content.read()
        headers = {
            k: v for k, v in request.requestHeaders.getAllRawHeaders()
            if k.lower() not in (b"host", b"content-length", b"connection")
        }
        d = treq.request(
            request.method.decode(), self.upstream + request.uri.decode(),
            headers=headers, data=body or None, persistent=False,
        )

        async def relay(response: Any) -> None:
            content = await response.content()
            request.setResponseCode(response.code)
            for k, v in response.headers.getAllRawHeaders():
                if k.lower() not in (b"content-length", b"connection", b"transfer-encoding"):
                    request.responseHeaders.setRawHeaders(k, v)
            if request.method != b"HEAD":
                request.write(content)
            else:
                request.responseHeaders.setRawHeaders(b"content-length", [str(len(content)).encode()])
            request.finish()

        d.addCallback(lambda r: Deferred.fromCoroutine(relay(r)))
        return NOT_DONE_YET


class DocumentationTests(TestCase):
    def test_everyParameterDocumented(self) -> None:
        """
        etc/config.yml shows every C{storage.s3} key (on its C{#:} lines),
        and the block it shows is a valid C{storage.s3}.
        """
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(os.path.join(here, "etc", "config.yml")) as f:
            text = re.sub(r"^#:", "", f.read(), flags=re.M)
        example = yaml.safe_load(text)["storage"]["s3"]
        self.assertEqual(sorted(example), sorted(KNOWN))
        parseParameters(dict(example, encrypt=True, keyid="k"))
