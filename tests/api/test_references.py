"""
Resolved references are reused for C{storage.cache.tagttl}: this process's
own writes show at once, another process's within the TTL, and a missing
reference is never cached.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    header,
    imageManifest,
    pushBlob,
    pushImage,
    pushManifest,
    sha256,
)
from tests.support import startRegistry

NAME = "cache/repo"


class ReferenceCacheTests(TestCase):
    async def twoRegistries(self, ttl: str) -> tuple:
        """
        Two registries over one filesystem root: C{first} with the TTL under
        test, C{second} standing for another registry process.
        """
        root = self.mktemp()
        storage = {"filesystem": {"rootdirectory": root}, "delete": {"enabled": True}}
        first = await startRegistry(self, {"storage": {**storage, "cache": {"tagttl": ttl}}})
        second = await startRegistry(self, {"storage": {**storage, "cache": {"tagttl": "0s"}}})
        return first, second

    async def digestOf(self, registry, reference: str) -> str | None:
        response = await registry.request("GET", f"/v2/{NAME}/manifests/{reference}")
        await response.content()
        return header(response, "docker-content-digest") if response.code == 200 else None

    async def retag(self, registry, tag: str, author: str) -> str:
        from tests.api.helpers import config

        configContent = config(author)
        await pushBlob(self, registry, NAME, configContent)
        manifest = imageManifest(configContent)
        await pushManifest(self, registry, NAME, tag, manifest)
        return sha256(manifest)

    async def test_ownWritesAtOnce(self) -> None:
        """
        Retagging, deleting a tag and deleting a manifest through the same
        registry show on the very next GET.
        """
        registry, _ = await self.twoRegistries("1h")
        _, first = await pushImage(self, registry, NAME, "latest")
        self.assertEqual(await self.digestOf(registry, "latest"), first)
        self.assertEqual(await self.digestOf(registry, first), first)
        second = await self.retag(registry, "latest", "someone else")
        self.assertEqual(await self.digestOf(registry, "latest"), second)

        response = await registry.request("DELETE", f"/v2/{NAME}/manifests/latest")
        self.assertEqual(response.code, 202)
        self.assertIsNone(await self.digestOf(registry, "latest"))

        response = await registry.request("DELETE", f"/v2/{NAME}/manifests/{first}")
        self.assertEqual(response.code, 202)
        self.assertIsNone(await self.digestOf(registry, first))

    async def test_otherProcessWithinTTL(self) -> None:
        """
        A tag moved by another process over the same storage is seen once
        the TTL has passed (and not served stale for ever).
        """
        first, second = await self.twoRegistries("0.3s")
        _, old = await pushImage(self, first, NAME, "latest")
        self.assertEqual(await self.digestOf(first, "latest"), old)
        new = await self.retag(second, "latest", "other process")
        self.assertEqual(await self.digestOf(second, "latest"), new)
        await deferLater(reactor, 0.5, lambda: None)
        self.assertEqual(await self.digestOf(first, "latest"), new)

    async def test_zeroTTLReadsEveryTime(self) -> None:
        first, second = await self.twoRegistries("0s")
        await pushImage(self, first, NAME, "latest")
        await self.digestOf(first, "latest")
        new = await self.retag(second, "latest", "other process")
        self.assertEqual(await self.digestOf(first, "latest"), new)

    async def test_missingNeverCached(self) -> None:
        """
        A tag that did not exist is looked up again: pushed elsewhere, it is
        found at once.
        """
        first, second = await self.twoRegistries("1h")
        self.assertIsNone(await self.digestOf(first, "later"))
        _, digest = await pushImage(self, second, NAME, "later")
        self.assertEqual(await self.digestOf(first, "later"), digest)
