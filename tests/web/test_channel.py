"""
The streaming request path, in this process: backpressure from a slow
consumer to the socket, errors and disconnects in the middle of a body,
requests refused before their body, TLS on the plain port, HTTP/1.0 and
pipelining.

The server runs in the trial reactor; the client is a plain blocking socket
(L{tests.web.rawclient}) run in a thread, so the bytes on the wire are
exactly the ones written here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IConsumer
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from tests.support import startRegistry
from tests.web.rawclient import Connection, patterned, requestBytes, sha256Of
from txregistry.api.errors import errorBody
from txregistry.config import checkConfiguration
from txregistry.service import makeSite
from txregistry.storage.inmemory import InMemoryDriver, _MemoryWriter
from txregistry.web.body import RequestBody
from txregistry.web.channel import RegistryChannel
from txregistry.web.site import RegistrySite

MiB = 1024 * 1024


async def waitFor(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """
    Poll C{predicate} on the reactor until it holds; fail after C{timeout}
    (a guard against hanging, not a speed requirement).
    """
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await deferLater(reactor, 0.02, lambda: None)
        waited += 0.02


def hiddenFiles(root: str) -> list[str]:
    found = []
    for directory, _, files in os.walk(root):
        found += [os.path.join(directory, f) for f in files if f.startswith(".")]
    return found


def allFiles(root: str) -> list[str]:
    found = []
    for directory, _, files in os.walk(root):
        found += [os.path.relpath(os.path.join(directory, f), root) for f in files]
    return sorted(found)


# A tiny site with a route that hands its body to a slow consumer.


@implementer(IConsumer)
class SlowConsumer:
    """
    Takes a body at a fixed pace: it queues what it is given, drains
    C{rate} bytes per tick, pauses its producer above C{high} queued bytes
    and resumes it below C{low}.

    @ivar maxQueued: the most bytes it ever held.
    @ivar readingWhilePaused: for each tick while the producer was paused,
        whether the connection's transport was still being read.
    """

    def __init__(self, rate: int, high: int = MiB, low: int = 256 * 1024) -> None:
        self.rate = rate
        self.high = high
        self.low = low
        self.queued = 0
        self.maxQueued = 0
        self.total = 0
        self.hasher = hashlib.sha256()
        self.pending: list[bytes] = []
        self.producer: Any = None
        self.paused = False
        self.pauses = 0
        self.readingWhilePaused: list[bool] = []
        self.transport: Any = None
        self._loop = LoopingCall(self._drain)
        self._loop.clock = reactor
        self._loop.start(0.005, now=False)

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.pending.append(data)
        self.queued += len(data)
        self.maxQueued = max(self.maxQueued, self.queued)
        if self.queued > self.high and not self.paused and self.producer is not None:
            self.paused = True
            self.pauses += 1
            self.producer.pauseProducing()

    def _drain(self) -> None:
        if self.paused and self.transport is not None:
            self.readingWhilePaused.append(self.transport in reactor.getReaders())
        budget = self.rate
        while self.pending and budget > 0:
            chunk = self.pending.pop(0)
            if len(chunk) > budget:
                self.pending.insert(0, chunk[budget:])
                chunk = chunk[:budget]
            budget -= len(chunk)
            self.queued -= len(chunk)
            self.total += len(chunk)
            self.hasher.update(chunk)
        if self.paused and self.queued < self.low:
            self.paused = False
            if self.producer is not None:
                self.producer.resumeProducing()

    def drained(self) -> Deferred[None]:
        async def wait() -> None:
            await waitFor(lambda: not self.pending, what="the consumer to drain")
            self._loop.stop()

        return Deferred.fromCoroutine(wait())


class SinkResource(Resource):
    """
    C{POST /}: deliver the body to a L{SlowConsumer} (after C{?delay=}
    seconds), answer with its size and sha256.
    """

    isLeaf = True

    def __init__(self, rate: int) -> None:
        super().__init__()
        self.rate = rate
        self.consumers: list[SlowConsumer] = []
        self.bodies: list[Any] = []

    def render_POST(self, request: Any) -> Any:
        consumer = SlowConsumer(self.rate)
        consumer.transport = request.channel.transport
        self.consumers.append(consumer)
        self.bodies.append(request.body)
        delay = float(request.args.get(b"delay", [b"0"])[0])

        async def run() -> None:
            if delay:
                await deferLater(reactor, delay, lambda: None)
            try:
                size = await request.body.deliverTo(consumer)
            except Exception as e:
                request.setResponseCode(500)
                request.write(repr(e).encode())
                request.finish()
                return
            await consumer.drained()
            request.setHeader(b"content-type", b"text/plain")
            request.write(b"%d %s" % (size, consumer.hasher.hexdigest().encode()))
            request.finish()

        Deferred.fromCoroutine(run())
        return NOT_DONE_YET


async def listen(testCase: TestCase, site: Any) -> int:
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    testCase.addCleanup(port.stopListening)
    return port.getHost().port


class BackpressureTests(TestCase):
    async def sink(self, rate: int) -> tuple[SinkResource, int]:
        resource = SinkResource(rate)
        return resource, await listen(self, RegistrySite(resource, errorBody, accessLog=False))

    async def test_slowConsumerPausesTransport(self) -> None:
        """
        64 MiB sent as fast as the client can to a consumer that takes
        about 100 MiB/s: the body pauses the transport (it is no longer
        read) and the bytes held never exceed a few MiB; everything arrives
        intact.
        """
        resource, port = await self.sink(512 * 1024)
        total = 64 * MiB

        def client() -> tuple[str, bytes]:
            with Connection(port) as c:
                _, digest = c.sendStreaming("POST", "/", patterned(total), total)
                return digest, c.readResponse().body

        digest, answer = await deferToThread(client)
        self.assertEqual(answer, b"%d %s" % (total, digest.encode()))
        [consumer] = resource.consumers
        self.assertTrue(consumer.pauses > 0, "the consumer never had to pause")
        self.assertIn(False, consumer.readingWhilePaused, "the transport was never paused")
        self.assertTrue(consumer.maxQueued < 4 * MiB, consumer.maxQueued)

    async def test_chunkedSlowConsumer(self) -> None:
        """
        The same with a chunked body.
        """
        resource, port = await self.sink(512 * 1024)
        total = 32 * MiB

        def client() -> tuple[str, bytes]:
            with Connection(port) as c:
                _, digest = c.sendStreaming("POST", "/", patterned(total, 100_000), None)
                return digest, c.readResponse().body

        digest, answer = await deferToThread(client)
        self.assertEqual(answer, b"%d %s" % (total, digest.encode()))
        [consumer] = resource.consumers
        self.assertIn(False, consumer.readingWhilePaused, "the transport was never paused")
        self.assertTrue(consumer.maxQueued < 4 * MiB, consumer.maxQueued)

    async def test_lateConsumer(self) -> None:
        """
        A body nobody consumes yet is held only up to the body's buffer
        limit, then the transport is paused until a consumer comes.
        """
        resource, port = await self.sink(4 * MiB)
        total = 16 * MiB
        held: list[int] = []

        def sample() -> None:
            if resource.bodies:
                held.append(resource.bodies[0]._heldBytes)

        sampler = LoopingCall(sample)
        sampler.start(0.01)
        self.addCleanup(lambda: sampler.stop() if sampler.running else None)

        def client() -> tuple[str, bytes]:
            with Connection(port) as c:
                _, digest = c.sendStreaming("POST", "/?delay=0.5", patterned(total), total)
                return digest, c.readResponse().body

        digest, answer = await deferToThread(client)
        sampler.stop()
        self.assertEqual(answer, b"%d %s" % (total, digest.encode()))
        self.assertTrue(max(held) > 0, "the test never saw a held body")
        # The limit, plus at most one read from the socket past it (large
        # bodies are read RegistryChannel.bodyReceiveSize at a time).
        bound = RequestBody.bufferLimit + RegistryChannel.bodyReceiveSize
        self.assertTrue(max(held) <= bound, (max(held), bound))


# The registry itself.


class _FailingWriter(_MemoryWriter):
    failAfter = 2 * MiB

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.failAfter:
            raise OSError("disk on fire")
        super().write(data)

    def cancel(self) -> Deferred[None]:
        self._driver.cancelled.append(self.path)  # type: ignore[attr-defined]
        return super().cancel()


class FailingDriver(InMemoryDriver):
    """
    An in-memory driver whose writers fail after 2 MiB.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cancelled: list[str] = []

    def writer(self, path: str, append: bool = False) -> Deferred[Any]:
        d = super().writer(path, append)

        def wrap(w: Any) -> Any:
            return _FailingWriter(self, path, append, w.size)

        return d.addCallback(wrap)


class _FilesystemRegistryTestCase(TestCase):
    """
    Tests against an in-process registry over a filesystem root of their own.
    """

    async def filesystemRegistry(self) -> tuple[Any, str]:
        root = os.path.abspath(self.mktemp())
        self.addCleanup(shutil.rmtree, root, True)
        registry = await startRegistry(
            self, {"storage": {"filesystem": {"rootdirectory": root}}}
        )
        return registry, root

    def port(self, registry: Any) -> int:
        return int(registry.url.rsplit(":", 1)[1])



class RegistryStreamingTests(_FilesystemRegistryTestCase):
    async def test_noTemporaryFile(self) -> None:
        """
        twisted.web's request body file (a temporary file above 100 kB) is
        never created for a body: it streams.
        """
        import twisted.web.http

        calls: list[Any] = []
        original = twisted.web.http._getContentFile

        def recording(length: Any) -> Any:
            calls.append(length)
            return original(length)

        self.patch(twisted.web.http, "_getContentFile", recording)
        registry, root = await self.filesystemRegistry()
        port = self.port(registry)
        content = b"".join(patterned(3 * MiB, seed=3))
        digest = hashlib.sha256(content).hexdigest()

        def client() -> list[int]:
            codes = []
            with Connection(port) as c:
                c.sendRequest("POST", f"/v2/a/blobs/uploads/?digest=sha256:{digest}", body=content)
                codes.append(c.readResponse().status)
                c.sendRequest("POST", "/v2/a/blobs/uploads/")
                location = c.readResponse().header("location")
                assert location is not None
                path = location[location.index("/v2/") :]
                c.sendStreaming("PATCH", path, iter([content]), None)
                codes.append(c.readResponse().status)
            return codes

        self.assertEqual(await deferToThread(client), [201, 202])
        self.assertEqual(calls, [])
        # The recorder works: a stock request would have used it.
        twisted.web.http._getContentFile(10)  # type: ignore[attr-defined]
        self.assertEqual(calls, [10])

    async def test_consumerErrorIsAnErrorResponse(self) -> None:
        """
        When the storage writer raises in the middle of a body, the client
        gets a 500 with the error envelope (not a dropped connection), the
        writer is cancelled, nothing is stored, and the connection serves
        the next request.
        """
        driver = FailingDriver()
        site = makeSite(checkConfiguration({"storage": {"inmemory": {}},
                                            "log": {"accesslog": {"disabled": True}}}), driver)
        port = await listen(self, site)
        total = 4 * MiB
        digest = sha256Of(patterned(total))

        def client() -> tuple[Any, Any]:
            with Connection(port) as c:
                c.sendStreaming(
                    "POST", f"/v2/a/blobs/uploads/?digest=sha256:{digest}", patterned(total), total
                )
                first = c.readResponse()
                c.sendRequest("GET", "/v2/")
                return first, c.readResponse()

        first, second = await deferToThread(client)
        self.assertEqual(first.status, 500)
        self.assertIn(b'"UNKNOWN"', first.body)
        self.assertEqual(second.status, 200)
        self.assertEqual(len(driver.cancelled), 1)
        self.assertEqual([p for p in driver._files if "_uploads" in p or "blobs" in p], [])
        # The error is logged once, as an unexpected one.
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    async def test_disconnectCancelsWriter(self) -> None:
        """
        A client that goes away in the middle of a monolithic upload leaves
        no file behind: the writer's temporary file is removed and no blob
        appears.
        """
        registry, root = await self.filesystemRegistry()
        port = self.port(registry)
        total = 64 * MiB
        digest = "0" * 64
        connection = await deferToThread(Connection, port)
        headers = {"Content-Length": str(total)}
        await deferToThread(
            connection.send, requestBytes("POST", f"/v2/a/blobs/uploads/?digest=sha256:{digest}",
                                          headers)
        )
        await deferToThread(connection.sendBody, patterned(8 * MiB), False)
        await waitFor(lambda: bool(hiddenFiles(root)), what="the upload's temporary file")
        connection.close()
        await waitFor(lambda: not hiddenFiles(root), what="the temporary file to go")
        self.assertEqual(allFiles(root), [])

    async def test_disconnectDuringCommit(self) -> None:
        """
        A client that sends a whole monolithic body and goes away while the
        registry commits it leaves no orphaned upload behind: the blob is
        either stored or cleaned up.

        (The commit is slowed down so the disconnect lands during it.)
        """
        from txregistry.storage import filesystem

        real = filesystem._FileWriter._makeDurable

        def slow(writer: Any) -> Any:
            time.sleep(0.5)
            return real(writer)

        self.patch(filesystem._FileWriter, "_makeDurable", slow)
        registry, root = await self.filesystemRegistry()
        port = self.port(registry)
        total = 4 * MiB
        digest = sha256Of(patterned(total, seed=8))

        def client() -> None:
            c = Connection(port)
            c.send(requestBytes("POST", f"/v2/a/blobs/uploads/?digest=sha256:{digest}",
                                {"Content-Length": str(total)}))
            c.sendBody(patterned(total, seed=8), False)
            c.close()

        await deferToThread(client)
        # The whole body arrived, so the registry finishes the push: the
        # blob appears, and nothing of the upload is left.
        blob = f"docker/registry/v2/blobs/sha256/{digest[:2]}/{digest}/data"
        await waitFor(lambda: blob in allFiles(root), what="the blob to be stored")
        await waitFor(
            lambda: not [f for f in allFiles(root) if "_uploads" in f],
            what="the upload to be cleaned up",
        )


    async def test_disconnectDuringChunkLeavesUpload(self) -> None:
        """
        A PATCH cut off by a disconnect leaves the upload as it was before
        that PATCH: its size and content do not change.
        """
        registry, root = await self.filesystemRegistry()
        port = self.port(registry)
        first = b"".join(patterned(MiB, seed=4))

        def start() -> str:
            with Connection(port) as c:
                c.sendRequest("POST", "/v2/a/blobs/uploads/")
                location = c.readResponse().header("location")
                assert location is not None
                path = location[location.index("/v2/") :]
                c.sendRequest("PATCH", path, body=first)
                response = c.readResponse()
                assert response.status == 202, response
                return path

        path = await deferToThread(start)
        connection = await deferToThread(Connection, port)
        await deferToThread(
            connection.send, requestBytes("PATCH", path, {"Content-Length": str(32 * MiB)})
        )
        await deferToThread(connection.sendBody, patterned(8 * MiB, seed=5), False)
        await waitFor(lambda: bool(hiddenFiles(root)), what="the chunk's temporary file")
        connection.close()
        await waitFor(lambda: not hiddenFiles(root), what="the temporary file to go")

        def status() -> Any:
            with Connection(port) as c:
                c.sendRequest("GET", path)
                return c.readResponse()

        response = await deferToThread(status)
        self.assertEqual(response.status, 204)
        self.assertEqual(response.header("range"), f"0-{MiB - 1}")
        [data] = [f for f in allFiles(root) if f.endswith("/data")]
        with open(os.path.join(root, data), "rb") as f:
            self.assertEqual(f.read(), first)

    async def test_refusedBeforeBody(self) -> None:
        """
        A PATCH to an unknown upload is answered 404 BLOB_UPLOAD_UNKNOWN
        while most of its 64 MiB body is still unsent; since that body is
        past the drain limit, the server then closes the connection rather
        than read it all.
        """
        registry = await startRegistry(self)
        port = self.port(registry)
        path = f"/v2/a/blobs/uploads/{uuid.uuid4()}"

        def client() -> tuple[Any, bool]:
            with Connection(port) as c:
                c.send(requestBytes("PATCH", path, {"Content-Length": str(64 * MiB)}))
                c.sendBody(patterned(MiB), False)
                response = c.readResponse()
                try:
                    c.sendBody(patterned(32 * MiB), False)
                except OSError:
                    pass
                try:
                    closed = c.atEOF()
                except ConnectionResetError:
                    closed = True
                return response, closed

        response, closed = await deferToThread(client)
        self.assertEqual(response.status, 404)
        self.assertIn(b"BLOB_UPLOAD_UNKNOWN", response.body)
        self.assertTrue(closed)

    async def test_halfClosedClientGetsItsAnswer(self) -> None:
        """
        A client that sends its request and then shuts down its sending
        side (C{shutdown(SHUT_WR)}, as C{nc -N} and some proxies do) still
        gets the answer, also for routes that wait on storage, and the
        connection is closed after it.
        """
        X_DIGEST = "sha256:" + hashlib.sha256(b"x").hexdigest()
        Y_DIGEST = "sha256:" + hashlib.sha256(b"y").hexdigest()
        registry, _ = await self.filesystemRegistry()
        port = self.port(registry)
        response = await registry.request("POST", "/v2/half/closed/blobs/uploads/?digest=" + X_DIGEST, data=b"x")
        self.assertEqual(response.code, 201)

        def client(method: str, path: str, body: bytes = b"") -> tuple[Any, bool]:
            with Connection(port) as c:
                c.sendRequest(method, path, {"Content-Length": str(len(body))} if body else None, body)
                c.sock.shutdown(socket.SHUT_WR)
                answer = c.readResponse(method)
                return answer, c.atEOF()

        for method, path, body, status in (
            ("GET", "/v2/half/closed/tags/list", b"", 200),
            ("HEAD", "/v2/half/closed/blobs/" + X_DIGEST, b"", 200),
            ("GET", "/v2/half/closed/blobs/" + X_DIGEST, b"", 200),
            ("POST", "/v2/half/closed/blobs/uploads/?digest=" + Y_DIGEST, b"y", 201),
        ):
            answer, closed = await deferToThread(client, method, path, body)
            self.assertEqual(answer.status, status, (method, path))
            self.assertTrue(closed, (method, path))

    async def test_refusedSmallBodyThenPipelined(self) -> None:
        """
        After refusing a request with a small body, the server reads and
        drops that body and answers the next request on the connection,
        even when both were sent at once.
        """
        registry = await startRegistry(self)
        port = self.port(registry)
        body = b"x" * 200_000
        unknown = f"/v2/a/blobs/uploads/{uuid.uuid4()}"

        def client() -> list[Any]:
            with Connection(port) as c:
                c.send(
                    requestBytes("PATCH", unknown, body=body)
                    + requestBytes("GET", "/v2/")
                    + requestBytes("PUT", unknown + "?digest=sha256:" + "1" * 64, body=body)
                    + requestBytes("GET", "/v2/_catalog")
                )
                return [c.readResponse() for _ in range(4)]

        responses = await deferToThread(client)
        self.assertEqual([r.status for r in responses], [404, 200, 404, 200])
        self.assertEqual(responses[1].body, b"{}")
        self.assertIn(b"repositories", responses[3].body)

    async def test_expectContinueRefused(self) -> None:
        """
        With C{Expect: 100-continue}, a request refused at once gets its
        answer and no C{100 Continue}.
        """
        registry = await startRegistry(self)
        port = self.port(registry)
        path = f"/v2/a/blobs/uploads/{uuid.uuid4()}"

        def client() -> Any:
            with Connection(port) as c:
                c.send(requestBytes(
                    "PATCH", path, {"Content-Length": str(64 * MiB), "Expect": "100-continue"}
                ))
                return c.readResponse()

        response = await deferToThread(client)
        self.assertEqual(response.status, 404)
        self.assertIn(b"BLOB_UPLOAD_UNKNOWN", response.body)

    async def test_expectContinueAccepted(self) -> None:
        """
        With C{Expect: 100-continue}, a request that is going ahead gets
        C{100 Continue}, then its answer once the body is in.
        """
        registry, root = await self.filesystemRegistry()
        port = self.port(registry)
        body = b"y" * MiB

        def client() -> list[Any]:
            with Connection(port) as c:
                c.sendRequest("POST", "/v2/a/blobs/uploads/")
                location = c.readResponse().header("location")
                assert location is not None
                path = location[location.index("/v2/") :]
                c.send(requestBytes(
                    "PATCH", path, {"Content-Length": str(len(body)), "Expect": "100-continue"}
                ))
                interim = c.readResponse()
                c.send(body)
                return [interim, c.readResponse()]

        interim, final = await deferToThread(client)
        self.assertEqual(interim.status, 100)
        self.assertEqual(final.status, 202)
        self.assertEqual(final.header("range"), f"0-{len(body) - 1}")

    async def test_tlsOnPlainPort(self) -> None:
        """
        A TLS ClientHello on the plain HTTP port is answered with a 400 and
        the connection is closed, at once (the client's timeout here is far
        below the server's idle timeout).
        """
        registry = await startRegistry(self)
        port = self.port(registry)
        hello = bytes.fromhex("16030100a5010000a10303") + os.urandom(32) + b"\x00" * 100

        def client() -> bytes:
            with Connection(port, timeout=20) as c:
                c.send(hello)
                data = b""
                while True:
                    more = c.sock.recv(65536)
                    if not more:
                        return data
                    data += more

        answer = await deferToThread(client)
        self.assertTrue(answer.startswith(b"HTTP/1.0 400 "), answer)
        self.assertIn(b"HTTPS", answer)

    async def test_http10(self) -> None:
        """
        HTTP/1.0 requests (what nginx sends upstream) work, with and without
        bodies, and each connection is closed after its response.
        """
        registry = await startRegistry(self)
        port = self.port(registry)
        content = b"".join(patterned(300_000, seed=6))
        digest = hashlib.sha256(content).hexdigest()

        def request(method: str, path: str, body: bytes = b"") -> tuple[Any, bool]:
            with Connection(port) as c:
                c.sendRequest(method, path, body=body, version="HTTP/1.0",
                              headers={"Content-Length": str(len(body))} if body else None)
                response = c.readResponse(method)
                return response, c.atEOF()

        def client() -> list[tuple[Any, bool]]:
            return [
                request("GET", "/v2/"),
                request("POST", f"/v2/a/blobs/uploads/?digest=sha256:{digest}", content),
                request("HEAD", f"/v2/a/blobs/sha256:{digest}"),
                request("GET", f"/v2/a/blobs/sha256:{digest}"),
                request("POST", "/v2/a/blobs/uploads/"),
            ]

        results = await deferToThread(client)
        self.assertEqual([r.status for r, _ in results], [200, 201, 200, 200, 202])
        self.assertEqual([closed for _, closed in results], [True] * 5)
        self.assertEqual(results[0][0].body, b"{}")
        self.assertEqual(results[1][0].header("docker-content-digest"), f"sha256:{digest}")
        self.assertEqual(results[2][0].header("content-length"), str(len(content)))
        self.assertEqual(results[3][0].body, content)

    async def test_pipelined(self) -> None:
        """
        Requests sent back to back on one keep-alive connection, bodies
        included, are answered in order.
        """
        registry = await startRegistry(self)
        port = self.port(registry)
        contents = [b"".join(patterned(n, seed=n)) for n in (10, 200_000, 1)]
        digests = [hashlib.sha256(c).hexdigest() for c in contents]
        data = requestBytes("GET", "/v2/")
        for content, digest in zip(contents, digests, strict=True):
            data += requestBytes("POST", f"/v2/a/blobs/uploads/?digest=sha256:{digest}",
                                 body=content)
        for digest in digests:
            data += requestBytes("HEAD", f"/v2/a/blobs/sha256:{digest}")
            data += requestBytes("GET", f"/v2/a/blobs/sha256:{digest}")
        data += requestBytes("GET", "/v2/nope/blobs/sha256:" + "2" * 64)
        data += requestBytes("POST", "/v2/a/blobs/uploads/")
        methods = ["GET"] + ["POST"] * 3 + ["HEAD", "GET"] * 3 + ["GET", "POST"]

        def client() -> list[Any]:
            with Connection(port) as c:
                c.send(data)
                return [c.readResponse(m) for m in methods]

        responses = await deferToThread(client)
        self.assertEqual(
            [r.status for r in responses], [200, 201, 201, 201] + [200] * 6 + [404, 202]
        )
        for i, content in enumerate(contents):
            self.assertEqual(responses[4 + 2 * i].header("content-length"), str(len(content)))
            self.assertEqual(responses[5 + 2 * i].body, content)


class BodyEdgeTests(_FilesystemRegistryTestCase):
    async def test_malformedChunkedMidBody(self) -> None:
        """
        A chunked body that turns to garbage half-way gets a 400 and a
        closed connection; the writer it was feeding is cancelled and its
        temporary file removed.
        """
        registry, root = await self.filesystemRegistry()
        port = self.port(registry)
        connection = await deferToThread(Connection, port)
        self.addCleanup(connection.close)
        await deferToThread(
            connection.send,
            requestBytes("POST", "/v2/b/blobs/uploads/?digest=sha256:" + "3" * 64,
                         {"Transfer-Encoding": "chunked"}),
        )

        def sendSome() -> None:
            for chunk in patterned(4 * MiB):
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))

        await deferToThread(sendSome)
        await waitFor(lambda: bool(hiddenFiles(root)), what="the upload's temporary file")

        def garbage() -> tuple[Any, bool]:
            connection.send(b"this is not a chunk size\r\n")
            response = connection.readResponse()
            return response, connection.atEOF()

        response, closed = await deferToThread(garbage)
        self.assertEqual(response.status, 400)
        self.assertTrue(closed)
        await waitFor(lambda: not hiddenFiles(root), what="the temporary file to go")
        self.assertEqual([f for f in allFiles(root) if "blobs" in f], [])

    async def test_refusedChunkedBodyDrained(self) -> None:
        """
        A refused request with a small chunked body is drained, and the
        connection carries the next request.
        """
        registry = await startRegistry(self)
        port = self.port(registry)
        unknown = f"/v2/a/blobs/uploads/{uuid.uuid4()}"

        def client() -> list[Any]:
            with Connection(port) as c:
                c.sendStreaming("PATCH", unknown, patterned(MiB, 10_000), None)
                first = c.readResponse()
                c.sendRequest("GET", "/v2/")
                return [first, c.readResponse()]

        first, second = await deferToThread(client)
        self.assertEqual(first.status, 404)
        self.assertEqual(second.status, 200)

    async def test_cancelDelivery(self) -> None:
        """
        A route that stops waiting for its body (cancels the L{Deferred}
        from C{deliverTo}) stops the delivery: the consumer is unregistered
        and gets nothing more, the rest of the body is discarded, and the
        connection goes on.
        """
        consumers: list[Any] = []
        atCancel: list[tuple[int, Any]] = []

        class Cancelling(Resource):
            isLeaf = True

            def render_POST(self, request: Any) -> Any:
                consumer = SlowConsumer(64 * MiB)
                consumers.append(consumer)
                delivered = request.body.deliverTo(consumer)

                def cancelled(failure: Any) -> None:
                    # What the consumer had when it was let go, and whether
                    # it was let go.
                    atCancel.append((consumer.queued + consumer.total, consumer.producer))

                    def answer() -> None:
                        request.setResponseCode(409)
                        request.write(failure.type.__name__.encode())
                        request.finish()

                    reactor.callLater(0.3, answer)  # type: ignore[attr-defined]

                delivered.addErrback(cancelled)

                def cancel() -> None:
                    if consumer.queued + consumer.total > 0:
                        delivered.cancel()
                    else:
                        reactor.callLater(0.01, cancel)  # type: ignore[attr-defined]

                reactor.callLater(0.01, cancel)  # type: ignore[attr-defined]
                return NOT_DONE_YET

            def render_GET(self, request: Any) -> bytes:
                return b"next"

        port = await listen(self, RegistrySite(Cancelling(), errorBody, accessLog=False))
        total = 8 * MiB

        def client() -> list[Any]:
            with Connection(port) as c:
                c.send(requestBytes("POST", "/", {"Content-Length": str(total)}))
                c.sendBody(patterned(total), False)
                first = c.readResponse()
                c.sendRequest("GET", "/")
                return [first, c.readResponse()]

        first, second = await deferToThread(client)
        self.assertEqual((first.status, first.body), (409, b"CancelledError"))
        self.assertEqual((second.status, second.body), (200, b"next"))
        [consumer] = consumers
        await consumer.drained()
        [(had, producer)] = atCancel
        self.assertIsNone(producer, "the consumer was still registered after the cancel")
        self.assertTrue(0 < had < total)
        self.assertEqual(consumer.total, had, "the consumer got data after the cancel")


    async def test_http10LargeBody(self) -> None:
        """
        An HTTP/1.0 request streams a large body like an HTTP/1.1 one.
        """
        registry, root = await self.filesystemRegistry()
        port = self.port(registry)
        total = 48 * MiB
        digest = sha256Of(patterned(total, seed=7))

        def client() -> tuple[Any, bool]:
            with Connection(port) as c:
                c.send(requestBytes(
                    "POST", f"/v2/a/blobs/uploads/?digest=sha256:{digest}",
                    {"Content-Length": str(total), "Connection": "close"}, version="HTTP/1.0",
                ))
                c.sendBody(patterned(total, seed=7), False)
                return c.readResponse(), c.atEOF()

        response, closed = await deferToThread(client)
        self.assertEqual(response.status, 201)
        self.assertEqual(response.header("docker-content-digest"), f"sha256:{digest}")
        self.assertTrue(closed)
        blob = os.path.join(root, "docker/registry/v2/blobs/sha256", digest[:2], digest, "data")
        self.assertEqual(os.path.getsize(blob), total)


class PausedTimeoutTests(TestCase):
    async def test_pausedBodyIsNotIdle(self) -> None:
        """
        A connection whose body the server itself stopped reading (its
        consumer lags) is not idle: it is not timed out however long the
        consumer takes, and the idle timeout applies again afterwards.
        """
        resource = SinkResource(64 * MiB)
        site = RegistrySite(resource, errorBody, accessLog=False, timeout=0.5)
        port = await listen(self, site)
        stalls: list[float] = []

        class Stalling(SlowConsumer):
            """
            Pauses its producer for 1.5 s -- three idle timeouts -- once.
            """

            def write(self, data: bytes) -> None:
                super().write(data)
                if not stalls and self.producer is not None:
                    stalls.append(reactor.seconds())  # type: ignore[attr-defined]
                    self.producer.pauseProducing()
                    reactor.callLater(1.5, self.producer.resumeProducing)  # type: ignore[attr-defined]

        import tests.web.test_channel as thisModule

        self.patch(thisModule, "SlowConsumer", Stalling)
        total = 4 * MiB

        def client() -> tuple[str, Any, bool]:
            with Connection(port) as c:
                _, digest = c.sendStreaming("POST", "/", patterned(total), total)
                response = c.readResponse()
                # Now idle for longer than the timeout: closed.
                return digest, response, c.atEOF()

        digest, response, closed = await deferToThread(client)
        self.assertEqual(len(stalls), 1)
        self.assertEqual(response.body, b"%d %s" % (total, digest.encode()))
        self.assertTrue(closed)
