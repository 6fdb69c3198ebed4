"""
The cache's figures: in its stats, and as the reference's
C{registry_proxy_*} Prometheus metrics.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from tests.api.helpers import sha256
from tests.proxy.helpers import pushLayeredImage, settle, startUpstream
from tests.support import startService
from tests.telemetry.test_metrics import DEBUG, samples


class MetricsTests(TestCase):
    async def test_hitsMissesBytes(self) -> None:
        """
        A first pull is a miss that pulls the bytes from the upstream, a
        second a hit; both count the bytes served.
        """
        upstream, _ = await startUpstream(self)
        layer = os.urandom(100_000)
        manifest, digest = await pushLayeredImage(self, upstream, "app", "v1", layer)
        registry = await startService(self, {
            "storage": {"inmemory": {}}, "http": DEBUG,
            "proxy": {"upstreams": [{"prefix": "up.example", "url": upstream.url}]}})
        for _ in range(2):
            response = await registry.request("GET", f"/v2/up.example/app/blobs/{sha256(layer)}")
            self.assertEqual(await response.content(), layer)
            response = await registry.request("GET", f"/v2/up.example/app/manifests/{digest}")
            self.assertEqual(await response.content(), manifest)
            await settle(registry.service)
        text = (await (await registry.debug("/metrics")).content()).decode()
        found = samples(text)

        def value(name: str, kind: str) -> float:
            return found[name, frozenset({("type", kind), ("upstream", "up.example")})]

        self.assertEqual(value("registry_proxy_requests_total", "blob"), 2)
        self.assertEqual(value("registry_proxy_hits_total", "blob"), 1)
        self.assertEqual(value("registry_proxy_misses_total", "blob"), 1)
        self.assertEqual(value("registry_proxy_pulled_bytes_total", "blob"), len(layer))
        self.assertEqual(value("registry_proxy_pushed_bytes_total", "blob"), 2 * len(layer))
        self.assertEqual(value("registry_proxy_misses_total", "manifest"), 1)
        self.assertEqual(value("registry_proxy_hits_total", "manifest"), 1)
        self.assertEqual(value("registry_proxy_pulled_bytes_total", "manifest"), len(manifest))
