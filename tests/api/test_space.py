"""
Immutable tags (C{storage.tags.immutable}) and quotas (C{storage.quotas})
through the API: what they refuse, with which error and message, and
what still passes; and C{/v2/<name>/_usage}.
"""

from __future__ import annotations

import io
from typing import Any

from twisted.trial.unittest import TestCase
from twisted.web.client import FileBodyProducer
from twisted.web.iweb import UNKNOWN_LENGTH

from tests.api.helpers import (
    LAYER,
    OCI_MANIFEST,
    assertError,
    config,
    deletingRegistry,
    header,
    imageManifest,
    pushBlob,
    pushImage,
    pushManifest,
    relative,
    sha256,
    withQuery,
)
from tests.support import inProcess
from txregistry.config import ConfigurationError, checkConfiguration


class ImmutableTagTests(TestCase):
    async def setUp(self) -> None:
        self.registry = await deletingRegistry(self, storage={"inmemory": {}, "tags": {
            "immutable": [{"repository": "release/**", "tags": ["v*", "stable"]}]}})
        self.manifest, self.digest = await pushImage(self, self.registry, "release/app", "v1")

    async def test_moveRefused(self) -> None:
        """
        Pushing another manifest under an immutable tag is 403 DENIED,
        naming the rule; the tag still names the first.
        """
        configContent = config()
        await pushBlob(self, self.registry, "release/app", configContent)
        other = imageManifest(configContent)
        response = await self.registry.request(
            "PUT", "/v2/release/app/manifests/v1", data=other,
            headers={"Content-Type": [OCI_MANIFEST]})
        body = await assertError(self, response, 403, "DENIED")
        message = body["errors"][0]["message"]
        self.assertIn("tag v1 of release/app is immutable", message)
        self.assertIn("release/** v*, stable", message)
        response = await self.registry.request(
            "HEAD", "/v2/release/app/manifests/v1", headers={"Accept": [OCI_MANIFEST]})
        self.assertEqual(header(response, "docker-content-digest"), self.digest)

    async def test_samePushPasses(self) -> None:
        """
        The same manifest under the same tag again is no change.
        """
        await pushManifest(self, self.registry, "release/app", "v1", self.manifest)

    async def test_deletesRefused(self) -> None:
        """
        Neither the tag nor the manifest it names can be deleted.
        """
        for path in ("/v2/release/app/manifests/v1", f"/v2/release/app/manifests/{self.digest}"):
            response = await self.registry.request("DELETE", path)
            await assertError(self, response, 403, "DENIED")

    async def test_otherTagsAndRepositoriesMove(self) -> None:
        """
        A tag no pattern names moves, and so does v1 outside release/.
        """
        for name, tag in (("release/app", "latest"), ("team/app", "v1")):
            await pushImage(self, self.registry, name, tag)
            await pushImage(self, self.registry, name, tag)
        response = await self.registry.request("DELETE", "/v2/release/app/manifests/latest")
        self.assertEqual(response.code, 202)


class QuotaTests(TestCase):
    async def setUp(self) -> None:
        self.registry = await deletingRegistry(self, storage={"inmemory": {}, "quotas": [
            {"repository": "small/*", "maxbytes": 1000, "maxtags": 2}]})

    async def usage(self, name: str) -> Any:
        response = await self.registry.request("GET", f"/v2/{name}/_usage")
        self.assertEqual(response.code, 200)
        return await response.json()

    async def test_monolithicRefusedBeforeTheBody(self) -> None:
        """
        A monolithic upload whose Content-Length passes the limit is
        refused at once, naming the quota and the figures.
        """
        big = b"x" * 1001
        response = await self.registry.request(
            "POST", f"/v2/small/app/blobs/uploads/?digest={sha256(big)}", data=big)
        body = await assertError(self, response, 403, "DENIED")
        message = body["errors"][0]["message"]
        self.assertIn("quota exceeded for small/app (storage.quotas small/*)", message)
        self.assertIn("0 B of 1000 B used, this push adds 1001 B", message)
        response = await self.registry.request("HEAD", f"/v2/small/app/blobs/{sha256(big)}")
        self.assertEqual(response.code, 404)

    async def test_chunkedRefusedAtCommit(self) -> None:
        """
        A chunked upload without lengths is refused at commit and
        cancelled.
        """
        response = await self.registry.request("POST", "/v2/small/app/blobs/uploads/")
        location = relative(header(response, "location") or "")
        await response.content()
        # A body of unknown length goes chunked: no Content-Length.
        producer = FileBodyProducer(io.BytesIO(b"y" * 1200))
        producer.length = UNKNOWN_LENGTH
        response = await self.registry.request("PATCH", location, data=producer)
        self.assertEqual(response.code, 202, await response.content())
        uploadLocation = relative(header(response, "location") or location)
        response = await self.registry.request(
            "PUT", withQuery(uploadLocation, digest=sha256(b"y" * 1200)))
        await assertError(self, response, 403, "DENIED")
        response = await self.registry.request("GET", uploadLocation)
        await assertError(self, response, 404, "BLOB_UPLOAD_UNKNOWN")

    # In one process: the usage figures it compares come from each
    # worker's own cached count (storage.quotas' refresh), which another
    # worker's pushes reach only within that time.
    @inProcess
    async def test_withinTheQuota(self) -> None:
        """
        What fits is stored and counted; a blob pushed again costs
        nothing; the third tag is refused.
        """
        manifest, _ = await pushImage(self, self.registry, "small/app", "one")
        usage = await self.usage("small/app")
        self.assertEqual(usage["tags"], 1)
        self.assertEqual(usage["blobs"], 2)
        self.assertEqual(usage["quota"], {"repository": "small/*", "maxbytes": 1000, "maxtags": 2})
        await pushBlob(self, self.registry, "small/app", LAYER)
        self.assertEqual((await self.usage("small/app"))["bytes"], usage["bytes"])
        await pushManifest(self, self.registry, "small/app", "two", manifest)
        response = await self.registry.request(
            "PUT", "/v2/small/app/manifests/three", data=manifest,
            headers={"Content-Type": [OCI_MANIFEST]})
        body = await assertError(self, response, 403, "DENIED")
        self.assertIn("2 of 2 tags used, tag three would be one more", body["errors"][0]["message"])
        # Moving an existing tag is no new tag.
        await pushManifest(self, self.registry, "small/app", "two", manifest)
        # Deleting one makes room.
        response = await self.registry.request("DELETE", "/v2/small/app/manifests/two")
        self.assertEqual(response.code, 202)
        await pushManifest(self, self.registry, "small/app", "three", manifest)

    async def test_otherRepositoriesUnlimited(self) -> None:
        big = b"z" * 5000
        await pushBlob(self, self.registry, "large/app", big)
        self.assertIsNone((await self.usage("large/app"))["quota"])
        self.assertEqual((await self.usage("large/app"))["bytes"], 5000)


class SpaceConfigurationTests(TestCase):
    def refused(self, storage: dict[str, Any], *parts: str) -> None:
        with self.assertRaises(ConfigurationError) as raised:
            checkConfiguration({"storage": {"inmemory": {}, **storage}})
        for part in parts:
            self.assertIn(part, str(raised.exception))

    def test_errors(self) -> None:
        self.refused({"tags": {"immutable": [{"tags": ["v*"]}]}}, "storage.tags.immutable[0].repository")
        self.refused({"tags": {"immutable": [{"repository": "a"}]}}, "storage.tags.immutable[0].tags")
        self.refused({"tags": {"immutable": [{"repository": "a/**b", "tags": "v*"}]}}, "[0].repository")
        self.refused({"tags": {"mutable": []}}, "storage.tags.mutable")
        self.refused({"quotas": [{"repository": "a"}]}, "storage.quotas[0]", "maxbytes")
        self.refused({"quotas": [{"repository": "a", "maxbytes": "ten"}]}, "storage.quotas[0].maxbytes")
        self.refused({"quotas": [{"repository": "a", "maxtags": -1}]}, "storage.quotas[0].maxtags")
        self.refused({"quotas": [{"repository": "a", "maxbyte": 1}]}, "storage.quotas[0].maxbyte")
        self.refused({"quotas": {"repository": "a"}}, "storage.quotas: expected a list")

    def test_sizes(self) -> None:
        config = checkConfiguration({"storage": {"inmemory": {}, "quotas": [
            {"repository": "a", "maxbytes": "10GiB"}, {"repository": "b", "maxbytes": "1.5MB"},
            {"repository": "c", "maxbytes": 42}]}})
        self.assertEqual([q.maxBytes for q in config.storage.quotas], [10 * 1024**3, 1_500_000, 42])
