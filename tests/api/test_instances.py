"""
Two registries on one storage, as behind a load balancer: one shared
filesystem root, and S3 (SeaweedFS) with a Redis cache (a real
redis-server).  A tag written through one is read through the other on the
next request; two instances pushing one tag at once: one wins, and nothing
is corrupt.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    LAYER,
    config,
    header,
    imageManifest,
    pushBlob,
    pushManifest,
    sha256,
)
from tests.support import InProcessRegistry, startRegistry

NAME = "many/app"


class _TwoInstances:
    def storage(self) -> dict[str, Any]:
        raise NotImplementedError

    async def setUp(self) -> None:
        testCase: Any = self
        document = {
            "http": {"secret": "shared"},
            "storage": dict(self.storage(), delete={"enabled": True},
                            cache=dict(self.cache(), tagttl=0)),
            "log": {"accesslog": {"disabled": True}},
            **self.extra(),
        }
        self.a = await startRegistry(testCase, document)
        self.b = await startRegistry(testCase, document)

    def cache(self) -> dict[str, Any]:
        return {}

    def extra(self) -> dict[str, Any]:
        return {}

    async def image(self, registry: InProcessRegistry) -> bytes:
        content = config()
        await pushBlob(self, registry, NAME, content)
        await pushBlob(self, registry, NAME, LAYER)
        return imageManifest(content)

    async def tagged(self, registry: InProcessRegistry, tag: str) -> bytes | None:
        response = await registry.request("GET", f"/v2/{NAME}/manifests/{tag}",
                                          headers={"Accept": ["application/vnd.oci.image.manifest.v1+json"]})
        body: bytes = await response.content()
        return body if response.code == 200 else None

    async def test_tagReadBackThroughTheOther(self) -> None:
        """
        A tag pushed, then moved, through one instance is read through the
        other on the very next request.
        """
        testCase: Any = self
        for registry, other in ((self.a, self.b), (self.b, self.a)):
            manifest = await self.image(registry)
            await pushManifest(self, registry, NAME, "latest", manifest)
            testCase.assertEqual(await self.tagged(other, "latest"), manifest)

    async def test_sameTagAtOnce(self) -> None:
        """
        Two instances storing different manifests under one tag at once:
        both pushes succeed, both instances then name the same one of the
        two, and both manifests are whole, by digest, on both.
        """
        testCase: Any = self
        for round_ in range(3):
            tag = f"race{round_}"
            manifests = [await self.image(self.a), await self.image(self.b)]
            await gatherResults([
                ensureDeferred(pushManifest(self, self.a, NAME, tag, manifests[0])),
                ensureDeferred(pushManifest(self, self.b, NAME, tag, manifests[1])),
            ])
            seen = [await self.tagged(r, tag) for r in (self.a, self.b)]
            testCase.assertEqual(seen[0], seen[1])
            testCase.assertIn(seen[0], manifests)
            for registry in (self.a, self.b):
                for manifest in manifests:
                    response = await registry.request(
                        "GET", f"/v2/{NAME}/manifests/{sha256(manifest)}",
                        headers={"Accept": ["application/vnd.oci.image.manifest.v1+json"]})
                    testCase.assertEqual((response.code, await response.content()), (200, manifest))
                    testCase.assertEqual(header(response, "docker-content-digest"), sha256(manifest))


class SharedFilesystemTests(_TwoInstances, TestCase):
    def storage(self) -> dict[str, Any]:
        if not hasattr(self, "root"):
            self.root = self.mktemp()
        return {"filesystem": {"rootdirectory": self.root}}


class S3AndRedisTests(_TwoInstances, TestCase):
    def storage(self) -> dict[str, Any]:
        from tests.storage.servers import SeaweedFS, server

        if not hasattr(self, "parameters"):
            self.parameters = server(SeaweedFS).parameters(self)
        return {"s3": self.parameters, "redirect": {"disable": True}}

    def cache(self) -> dict[str, Any]:
        return {"blobdescriptor": "redis"}

    def extra(self) -> dict[str, Any]:
        from tests.rediscache.redisserver import RedisServer

        if not hasattr(self, "redis"):
            self.redis = RedisServer(self).start()
        return {"redis": self.redis.section}
