"""
L{txregistry.client.http.Session}'s retries, against a real twisted.web
server that fails as registries and proxies do.
"""

from __future__ import annotations

import time

import treq
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from txregistry.client.errors import NetworkError
from txregistry.client.http import Session


class Flaky(Resource):
    """
    Answers each request with the next of C{script}: a status (with
    C{Retry-After} for 429), C{"drop"} to close the connection unanswered,
    or C{"hang"} never to answer.
    """

    isLeaf = True

    def __init__(self, script: list) -> None:
        super().__init__()
        self.script = script
        self.times: list[float] = []

    def render(self, request):
        self.times.append(time.monotonic())
        step = self.script.pop(0) if self.script else 200
        if step == "hang":
            return NOT_DONE_YET
        if step == "drop":
            request.transport.abortConnection()
            return NOT_DONE_YET
        request.setResponseCode(step)
        if step == 429:
            request.setHeader("retry-after", "1")
        return b"ok" if step == 200 else b"no"


class RetryTests(TestCase):
    async def serve(self, script: list) -> tuple[Flaky, str]:
        resource = Flaky(script)
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(resource))
        self.addCleanup(port.stopListening)
        session = Session()
        session.backoff = 0.01
        self.addCleanup(session.close)
        self.session = session
        return resource, f"http://127.0.0.1:{port.getHost().port}/v2/"

    async def test_serverErrorsRetried(self) -> None:
        resource, url = await self.serve([503, 500, 502])
        response = await self.session.request("GET", url)
        self.assertEqual((response.code, await treq.content(response)), (200, b"ok"))
        self.assertEqual(len(resource.times), 4)

    async def test_notImplementedNotRetried(self) -> None:
        resource, url = await self.serve([501])
        response = await self.session.request("GET", url)
        self.assertEqual(response.code, 501)
        await treq.content(response)
        self.assertEqual(len(resource.times), 1)

    async def test_retryAfterHonoured(self) -> None:
        resource, url = await self.serve([429])
        response = await self.session.request("GET", url)
        await treq.content(response)
        self.assertEqual(response.code, 200)
        self.assertGreaterEqual(resource.times[1] - resource.times[0], 0.9)

    async def test_droppedConnectionRetried(self) -> None:
        resource, url = await self.serve(["drop", "drop"])
        response = await self.session.request("GET", url)
        self.assertEqual((response.code, await treq.content(response)), (200, b"ok"))

    async def test_givesUp(self) -> None:
        resource, url = await self.serve(["drop"] * 10)
        with self.assertRaises(NetworkError):
            await self.session.request("GET", url)
        self.assertEqual(len(resource.times), Session.attempts)

    async def test_cancelledNotRetried(self) -> None:
        """
        A request its caller cancels (a time limit) fails with
        L{CancelledError} and is not sent again.
        """
        resource, url = await self.serve(["hang"])
        d = Deferred.fromCoroutine(self.session.request("GET", url))
        reactor.callLater(0.2, d.cancel)
        with self.assertRaises(CancelledError):
            await d
        self.assertEqual(len(resource.times), 1)

    async def test_lastAnswerReturned(self) -> None:
        resource, url = await self.serve([503] * 10)
        response = await self.session.request("GET", url)
        await treq.content(response)
        self.assertEqual(response.code, 503)
        self.assertEqual(len(resource.times), Session.attempts)


class ChunkedBlob(Resource):
    """
    A registry's blob route that answers GET chunked (no
    C{Content-Length}), as some proxies do, and HEAD with the size.
    """

    isLeaf = True

    def __init__(self, content: bytes) -> None:
        super().__init__()
        self.content = content

    def render_HEAD(self, request):
        request.setHeader("content-length", str(len(self.content)))
        return b""

    def render_GET(self, request):
        for start in range(0, len(self.content), 10000):
            request.write(self.content[start:start + 10000])
        request.finish()
        return NOT_DONE_YET


class ChunkedAnswerTests(TestCase):
    async def test_chunkedBlobVerified(self) -> None:
        """
        A blob answered chunked is read whole and checked against its
        digest and its size (from a HEAD).
        """
        import hashlib
        import os

        from txregistry.client.registry import Registry
        from txregistry.registry.digest import Digest

        content = os.urandom(123456)
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(ChunkedBlob(content)))
        self.addCleanup(port.stopListening)
        registry = Registry(f"127.0.0.1:{port.getHost().port}")
        self.addCleanup(registry.close)
        digest = Digest("sha256", hashlib.sha256(content).hexdigest())
        reader = await registry.repository("a/b").blobs().reader(digest)
        self.assertEqual(reader.length, len(content))
        chunks: list[bytes] = []

        class Consumer:
            def registerProducer(self, producer, streaming):
                pass

            def unregisterProducer(self):
                pass

            def write(self, data):
                chunks.append(data)

        await reader.startProducing(Consumer())
        self.assertEqual(b"".join(chunks), content)
