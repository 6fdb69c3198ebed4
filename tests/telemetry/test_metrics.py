"""
Prometheus metrics and C{/debug/vars} of a running registry: a push and a
pull, scraped from the debug listener.
"""

from __future__ import annotations

import json
from typing import Any

import treq
from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import TestCase

from tests.api.helpers import LAYER, config, pushImage
from tests.support import startService
from txregistry.registry.cache import BoundedCache
from txregistry.telemetry.metrics import methodLabel

DEBUG = {"debug": {"addr": "127.0.0.1:0", "prometheus": {"enabled": True}}}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """
    Every sample of a scrape, by name and labels.
    """
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(scraped: dict[Any, float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


class MetricsTests(TestCase):
    async def scrape(self, registry: Any, path: str = "/metrics") -> dict[Any, float]:
        response = await registry.debug(path)
        self.assertEqual(response.code, 200)
        return samples((await treq.content(response)).decode())

    async def test_pushAndPull(self) -> None:
        """
        After a push and a pull the requests are counted by route, status
        and method, the layer's bytes are in the request sizes, the
        manifest's in the response sizes, nothing is in flight, and the
        storage calls are timed by driver and action.
        """
        registry = await startService(self, {"storage": {"inmemory": {}}, "http": DEBUG})
        manifest, digest = await pushImage(self, registry, "team/app", "1")
        response = await registry.request("GET", "/v2/team/app/manifests/1")
        self.assertEqual(await treq.content(response), manifest)
        scraped = await self.scrape(registry)

        total = "registry_http_requests_total"
        self.assertEqual(value(scraped, total, handler="upload.start", code="202", method="POST"), 2)
        self.assertEqual(value(scraped, total, handler="upload.complete", code="201", method="PUT"), 2)
        self.assertEqual(value(scraped, total, handler="manifest.put", code="201", method="PUT"), 1)
        self.assertEqual(value(scraped, total, handler="manifest.get", code="200", method="GET"), 1)
        self.assertEqual(
            value(scraped, "registry_http_request_size_bytes_sum", handler="upload.complete"),
            len(LAYER) + len(config()),
        )
        self.assertEqual(
            value(scraped, "registry_http_response_size_bytes_sum", handler="manifest.get"),
            len(manifest),
        )
        self.assertEqual(value(scraped, "registry_http_request_duration_seconds_count",
                               handler="manifest.get", method="GET"), 1)
        self.assertEqual(value(scraped, "registry_http_in_flight_requests", handler="manifest.get"), 0)
        self.assertGreater(value(scraped, "registry_storage_action_seconds_count",
                                 driver="inmemory", action="putContent"), 0)
        self.assertGreater(value(scraped, "registry_storage_cache_requests_total", cache="manifests"), 0)

    async def test_unmatchedIsOther(self) -> None:
        """
        A path no route serves is C{other}, never its own label value.
        """
        registry = await startService(self, {"storage": {"inmemory": {}}, "http": DEBUG})
        for path in ("/nope", "/v2/a/nope/x", "/v3/"):
            response = await registry.request("GET", path)
            await treq.content(response)
        scraped = await self.scrape(registry)
        self.assertEqual(
            value(scraped, "registry_http_requests_total", handler="other", code="404", method="GET"), 3
        )

    async def test_vars(self) -> None:
        """
        C{/debug/vars}: the counters, without Prometheus; then the metrics
        path is not served.
        """
        registry = await startService(self, {
            "storage": {"inmemory": {}}, "http": {"debug": {"addr": "127.0.0.1:0"}},
        })
        await pushImage(self, registry, "team/app", "1")
        response = await registry.debug("/debug/vars")
        document = json.loads(await treq.content(response))
        self.assertEqual(document["http"]["by_handler"]["upload.complete"], 2)
        self.assertEqual(document["http"]["in_flight"], 0)
        self.assertGreaterEqual(document["http"]["request_bytes"], len(LAYER) + len(config()))
        self.assertGreater(document["storage"]["putContent"]["calls"], 0)
        self.assertEqual(document["storage_driver"], "inmemory")
        response = await registry.debug("/metrics")
        self.assertEqual(response.code, 404)
        await treq.content(response)


class UnitTests(TestCase):
    def test_methodLabel(self) -> None:
        self.assertEqual(methodLabel(b"GET"), "GET")
        self.assertEqual(methodLabel(b"BREW"), "OTHER")

    def test_cacheStats(self) -> None:
        from txregistry.registry.cache import CACHE_STATS

        cache: BoundedCache[str, int] = BoundedCache(4, name="test-stats")
        cache.put("a", 1)
        cache.get("a")
        cache.get("b")
        self.assertEqual((CACHE_STATS["test-stats"].requests, CACHE_STATS["test-stats"].hits), (2, 1))


class HistogramTests(TestCase):
    def test_buckets(self) -> None:
        """
        A value on a bound counts in that bound's bucket (Prometheus's
        C{le}); buckets are cumulative, with C{+Inf} holding every one.
        """
        from txregistry.telemetry.metrics import Histogram

        histogram = Histogram("h", "test", ("a",), (1.0, 2.0))
        for observed in (1.0, 1.5, 7.0):
            histogram.observe(("x",), observed)
        [sample_1, sample_2, inf, count, total] = histogram.family().samples
        self.assertEqual((sample_1.labels["le"], sample_1.value), ("1.0", 1))
        self.assertEqual((sample_2.labels["le"], sample_2.value), ("2.0", 2))
        self.assertEqual((inf.labels["le"], inf.value), ("+Inf", 3))
        self.assertEqual((count.name, count.value), ("h_count", 3))
        self.assertEqual((total.name, total.value), ("h_sum", 9.5))
