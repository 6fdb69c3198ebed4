"""
Upload, garbage collection and quota figures of a running registry, in
the Prometheus metrics and C{/debug/vars}.
"""

from __future__ import annotations

import json
from hashlib import sha256

import treq
from twisted.trial.unittest import TestCase

from tests.api.helpers import LAYER, config, pushImage
from tests.support import startService
from tests.telemetry.test_metrics import DEBUG, samples, value


def digestOf(data: bytes) -> str:
    return "sha256:" + sha256(data).hexdigest()


class ActivityTests(TestCase):
    async def scrape(self, registry: object) -> dict[object, float]:
        response = await registry.debug("/metrics")  # type: ignore[attr-defined]
        return samples((await treq.content(response)).decode())

    async def test_uploads(self) -> None:
        """
        An image push's two blob uploads (sessions) and a monolithic push
        are counted as begun and stored, with their bytes.
        """
        registry = await startService(self, {"storage": {"inmemory": {}}, "http": DEBUG})
        await pushImage(self, registry, "team/app", "1")
        blob = b"monolithic"
        response = await registry.request(
            "POST", f"/v2/team/app/blobs/uploads/?digest={digestOf(blob)}", data=blob)
        self.assertEqual(response.code, 201)
        await treq.content(response)
        scraped = await self.scrape(registry)
        self.assertEqual(value(scraped, "registry_uploads_started_total"), 3)
        self.assertEqual(value(scraped, "registry_uploads_completed_total"), 3)
        self.assertEqual(value(scraped, "registry_uploads_bytes_total"),
                         len(LAYER) + len(config()) + len(blob))
        response = await registry.debug("/debug/vars")
        document = json.loads(await treq.content(response))
        self.assertEqual(document["uploads"], {
            "started": 3, "completed": 3, "bytes": len(LAYER) + len(config()) + len(blob)})

    async def test_quotaRefusals(self) -> None:
        """
        A push refused by a quota's bytes and one refused by its tags are
        each counted under their limit; a refused upload is not counted
        as begun or stored (the image's two blobs, pushed twice, are).
        """
        registry = await startService(self, {
            "storage": {"inmemory": {}, "quotas": [
                {"repository": "small/*", "maxbytes": 1000, "maxtags": 1}]},
            "http": DEBUG,
        })
        big = b"x" * 1001
        response = await registry.request(
            "POST", f"/v2/small/app/blobs/uploads/?digest={digestOf(big)}", data=big)
        self.assertEqual(response.code, 403)
        await treq.content(response)
        await pushImage(self, registry, "small/app", "1")
        manifest, _ = await pushImage(self, registry, "small/app", "1")
        response = await registry.request(
            "PUT", "/v2/small/app/manifests/2", data=manifest,
            headers={"Content-Type": ["application/vnd.oci.image.manifest.v1+json"]})
        self.assertEqual(response.code, 403)
        await treq.content(response)
        scraped = await self.scrape(registry)
        self.assertEqual(value(scraped, "registry_quota_refusals_total", limit="bytes"), 1)
        self.assertEqual(value(scraped, "registry_quota_refusals_total", limit="tags"), 1)
        self.assertEqual(value(scraped, "registry_uploads_started_total"), 4)
        self.assertEqual(value(scraped, "registry_uploads_completed_total"), 4)

    async def test_collections(self) -> None:
        """
        A garbage collection is counted with its time and what it removed.
        """
        registry = await startService(self, {
            "storage": {"inmemory": {}, "delete": {"enabled": True}}, "http": DEBUG,
        })
        manifest, digest = await pushImage(self, registry, "team/app", "1")
        response = await registry.request("DELETE", f"/v2/team/app/manifests/{digest}")
        self.assertEqual(response.code, 202)
        await treq.content(response)
        report = await registry.service.namespace.collectGarbage()  # type: ignore[attr-defined]
        scraped = await self.scrape(registry)
        self.assertEqual(value(scraped, "registry_gc_runs_total"), 1)
        self.assertEqual(value(scraped, "registry_gc_duration_seconds_count"), 1)
        # The manifest's own blob, its config and its layer.
        self.assertEqual(len(report.blobs), 3)
        self.assertEqual(value(scraped, "registry_gc_removed_blobs_total"), 3)
        self.assertEqual(value(scraped, "registry_gc_removed_manifests_total"), len(report.manifests))
        self.assertEqual(value(scraped, "registry_gc_removed_bytes_total"),
                         len(LAYER) + len(config()) + len(manifest))
