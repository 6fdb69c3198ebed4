"""
C{storage.cache.blobdescriptor: redis}: two registry instances on one
storage and one real C{redis-server}.  Reads come from Redis; a tag move,
an untag or a delete through one instance is what the other serves on the
very next request; with Redis down both serve from storage.
"""

from __future__ import annotations

from typing import Any

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
from tests.rediscache.redisserver import RedisServer
from tests.support import InProcessRegistry, startRegistry
from txregistry.rediscache.layer import RedisCachedNamespace
from txregistry.registry import layout
from txregistry.registry.digest import Digest
from txregistry.storage.inmemory import InMemoryDriver

NAME = "cached/repo"


class TwoInstancesTests(TestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        self.redis = RedisServer(self).start()
        self.driver = InMemoryDriver()
        document: dict[str, Any] = {
            "storage": {
                "inmemory": {},
                "delete": {"enabled": True},
                # No in-process tag cache: what one instance sees of the
                # other's writes is Redis's doing.
                "cache": {"blobdescriptor": "redis", "tagttl": 0},
            },
            "redis": self.redis.section,
        }
        self.a = await startRegistry(self, document, self.driver)
        self.b = await startRegistry(self, document, self.driver)

    async def push(self, registry: InProcessRegistry, tag: str) -> str:
        content = config()
        await pushBlob(self, registry, NAME, content)
        await pushBlob(self, registry, NAME, LAYER)
        manifest = imageManifest(content)
        await pushManifest(self, registry, NAME, tag, manifest)
        return sha256(manifest)

    async def digestOf(self, registry: InProcessRegistry, tag: str) -> tuple[int, str | None]:
        response = await registry.request("HEAD", f"/v2/{NAME}/manifests/{tag}")
        await response.content()
        return response.code, header(response, "docker-content-digest")

    def test_layered(self) -> None:
        """
        The configuration puts the Redis layer in the namespace.
        """
        layer: Any = self.a.namespace
        while layer is not None and not isinstance(layer, RedisCachedNamespace):
            layer = getattr(layer, "inner", None)
        self.assertIsNotNone(layer)

    async def test_readsComeFromRedis(self) -> None:
        """
        Once one instance has resolved a tag, the other resolves it from
        Redis: even with the tag's link gone from storage behind the
        registry's back.
        """
        digest = await self.push(self.a, "t")
        self.assertEqual(await self.digestOf(self.a, "t"), (200, digest))
        self.assertIn(digest.encode(), self.redis.command("KEYS", "*") + self.redis.command(
            "GET", f"txregistry:tag:{NAME}\x00t"))
        await self.driver.delete(layout.tagCurrentLink(NAME, "t"))
        self.assertEqual(await self.digestOf(self.b, "t"), (200, digest))

    async def test_tagMoveSeenAtOnce(self) -> None:
        first = await self.push(self.a, "t")
        self.assertEqual(await self.digestOf(self.b, "t"), (200, first))
        second = await self.push(self.a, "t")
        self.assertNotEqual(first, second)
        self.assertEqual(await self.digestOf(self.b, "t"), (200, second))

    async def test_untagAndDeleteSeenAtOnce(self) -> None:
        """
        An untag, and a manifest delete (with the tags naming it), through
        one instance: the other answers 404 on its next request, though
        it had both cached.
        """
        digest = await self.push(self.a, "t")
        await self.push(self.a, "u")
        for reference in ("t", "u", digest):
            self.assertEqual((await self.digestOf(self.b, reference))[0], 200)
        response = await self.a.request("DELETE", f"/v2/{NAME}/manifests/u")
        self.assertEqual(response.code, 202, await response.content())
        self.assertEqual((await self.digestOf(self.b, "u"))[0], 404)
        response = await self.a.request("DELETE", f"/v2/{NAME}/manifests/{digest}")
        self.assertEqual(response.code, 202, await response.content())
        self.assertEqual((await self.digestOf(self.b, digest))[0], 404)
        self.assertEqual((await self.digestOf(self.b, "t"))[0], 404)
        response = await self.b.request("GET", f"/v2/{NAME}/manifests/{digest}")
        self.assertEqual(response.code, 404)

    async def test_blobDeleteSeenAtOnce(self) -> None:
        content = b"a blob to delete"
        digest = await pushBlob(self, self.a, NAME, content)
        response = await self.b.request("HEAD", f"/v2/{NAME}/blobs/{digest}")
        self.assertEqual(response.code, 200)
        self.assertIn(b"16", self.redis.command("GET", f"txregistry:blob:{NAME}\x00{digest}"))
        response = await self.a.request("DELETE", f"/v2/{NAME}/blobs/{digest}")
        self.assertEqual(response.code, 202)
        response = await self.b.request("HEAD", f"/v2/{NAME}/blobs/{digest}")
        self.assertEqual(response.code, 404)

    async def test_redisDown(self) -> None:
        """
        With Redis stopped, both instances go on serving (and writing)
        from storage.
        """
        digest = await self.push(self.a, "t")
        self.redis.stop()
        self.assertEqual(await self.digestOf(self.b, "t"), (200, digest))
        moved = await self.push(self.b, "t")
        self.assertEqual(await self.digestOf(self.a, "t"), (200, moved))
        response = await self.a.request("GET", f"/v2/{NAME}/manifests/{moved}")
        self.assertEqual(response.code, 200)
        self.assertEqual(str(Digest.of(await response.content())), moved)
