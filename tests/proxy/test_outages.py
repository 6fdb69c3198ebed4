"""
The upstream answering 503 (a txregistry whose health check fails), or
not answering at all (a listener that never replies): cached content is
served with a Warning, what is not cached is 503 UNAVAILABLE within the
upstream's timeout, never a hang.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.api.helpers import assertError, header, pushBlob, pushManifest, sha256
from tests.proxy.helpers import Recorder, pushLayeredImage, startCache
from tests.support import startService

LAYER = os.urandom(64 * 1024)


class UpstreamFailingTests(TestCase):
    async def setUp(self) -> None:
        self.down = os.path.abspath(self.mktemp())
        self.upstream = await startService(self, {
            "storage": {"inmemory": {}},
            "health": {"file": [{"file": self.down, "interval": "100ms"}]}})
        self.seen = Recorder()
        self.upstream.service.site.observers.append(self.seen)
        self.manifest, self.digest = await pushLayeredImage(self, self.upstream, "app", "v1", LAYER)
        self.cache = await startCache(self, {"upstreams": [
            {"prefix": "up.example", "url": self.upstream.url}]})

    async def fail(self) -> None:
        with open(self.down, "w"):
            pass
        while not self.upstream.service.health.failing():
            await deferLater(reactor, 0.05, lambda: None)

    async def test_staleOn503(self) -> None:
        """
        With the upstream answering 503, a pulled tag is served from the
        cache with a Warning; its tag list too; a tag never pulled is 503.
        """
        response = await self.cache.request("GET", "/v2/up.example/app/manifests/v1")
        self.assertEqual(await response.content(), self.manifest)
        await self.fail()
        response = await self.cache.request("GET", "/v2/up.example/app/manifests/v1")
        self.assertEqual((response.code, await response.content()), (200, self.manifest))
        self.assertIn("110 - \"stale", header(response, "warning") or "")
        self.assertGreater(self.seen.count("HEAD", "/manifests/v1"), 1)
        response = await self.cache.request("GET", "/v2/up.example/app/manifests/v2")
        await assertError(self, response, 503, "UNAVAILABLE")

    async def test_referrersFromCache(self) -> None:
        """
        Referrers are the upstream's; while it fails, those the cache
        holds, with a Warning.
        """
        referrer = (
            b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
            b'"artifactType":"application/example","config":{"mediaType":"application/vnd.oci.empty.v1+json",'
            b'"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},'
            b'"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"'
            + self.digest.encode() + b'","size":' + str(len(self.manifest)).encode() + b'}}')
        await pushBlob(self, self.upstream, "app", b"{}")
        await pushManifest(self, self.upstream, "app", sha256(referrer), referrer)
        path = f"/v2/up.example/app/referrers/{self.digest}"
        response = await self.cache.request("GET", path)
        self.assertIn(sha256(referrer).encode(), await response.content())
        response = await self.cache.request("GET", f"/v2/up.example/app/manifests/{sha256(referrer)}")
        self.assertEqual(await response.content(), referrer)
        await self.fail()
        response = await self.cache.request("GET", path)
        self.assertEqual(response.code, 200)
        self.assertIn(sha256(referrer).encode(), await response.content())
        self.assertIn("stale", header(response, "warning") or "")


class _Silent(Protocol):
    """
    Takes a connection and never answers.
    """


class SilentUpstreamTests(TestCase):
    async def test_timeout(self) -> None:
        """
        An upstream that never answers is 503 UNAVAILABLE after its
        timeout.
        """
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            Factory.forProtocol(_Silent))
        self.addCleanup(port.stopListening)
        cache = await startCache(self, {"upstreams": [
            {"prefix": "up.example", "url": f"http://127.0.0.1:{port.getHost().port}",
             "timeout": "1s"}]})
        response = await cache.request("GET", "/v2/up.example/app/manifests/v1")
        body = await assertError(self, response, 503, "UNAVAILABLE")
        self.assertIn("did not answer", body["errors"][0]["message"])
