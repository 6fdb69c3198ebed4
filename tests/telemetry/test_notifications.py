"""
The webhook endpoints' figures (C{registry_notifications_*}) of a running
registry, and the W3C trace context its deliveries carry.
"""

from __future__ import annotations

import os
from typing import Any

import treq
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from twisted.trial.unittest import TestCase

from tests.api.helpers import pushImage
from tests.notifications.helpers import endpoint, startReceiver, waitUntil
from tests.support import startService
from tests.telemetry.test_metrics import DEBUG, samples, value
from txregistry.service import Telemetry
from txregistry.telemetry.metrics import Counters, PrometheusMetrics
from txregistry.telemetry.notifications import statusLabel
from txregistry.telemetry.tracing import Tracing

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


class NotificationMetricsTests(TestCase):
    async def start(self, endpoints: list[dict[str, Any]], **kwargs: Any) -> Any:
        return await startService(self, {
            "storage": {"inmemory": {}},
            "http": DEBUG,
            "notifications": {"endpoints": endpoints,
                              "outbox": {"directory": os.path.abspath(self.mktemp())}},
        }, **kwargs)

    async def scrape(self, registry: Any) -> dict[Any, float]:
        response = await registry.debug("/metrics")
        return samples((await treq.content(response)).decode())

    async def test_perEndpoint(self) -> None:
        """
        One endpoint that takes every event and one that answers 500: the
        events for each, those delivered, failed and pending, the answers
        by status, and when each last succeeded or failed.
        """
        good = await startReceiver(self)
        bad = await startReceiver(self, status=500)
        registry = await self.start([endpoint(good, "good"), endpoint(bad, "bad", backoff="10s")])
        await pushImage(self, registry, "team/app", "1")
        notifier = registry.service.notifier
        await waitUntil(lambda: all(d.pending == 0 for d in notifier.dispatchers[:1])
                        and notifier.dispatchers[1].lastFailure is not None)
        scraped = await self.scrape(registry)
        events = "registry_notifications_events_total"
        # Two blob pushes and the manifest's.
        self.assertEqual(value(scraped, events, type="Events", endpoint="good"), 3)
        self.assertEqual(value(scraped, events, type="Successes", endpoint="good"), 3)
        self.assertEqual(value(scraped, events, type="Failures", endpoint="good"), 0)
        self.assertEqual(value(scraped, events, type="Events", endpoint="bad"), 3)
        self.assertEqual(value(scraped, events, type="Successes", endpoint="bad"), 0)
        self.assertGreater(value(scraped, events, type="Failures", endpoint="bad"), 0)
        self.assertEqual(value(scraped, "registry_notifications_pending_total", endpoint="good"), 0)
        self.assertEqual(value(scraped, "registry_notifications_pending_total", endpoint="bad"), 3)
        self.assertGreater(value(scraped, "registry_notifications_status_total",
                                 code="200 OK", endpoint="good"), 0)
        self.assertGreater(value(scraped, "registry_notifications_status_total",
                                 code="500 Internal Server Error", endpoint="bad"), 0)
        success = "registry_notifications_last_success_timestamp_seconds"
        failure = "registry_notifications_last_failure_timestamp_seconds"
        self.assertGreater(value(scraped, success, endpoint="good"), 1e9)
        self.assertGreater(value(scraped, failure, endpoint="bad"), 1e9)
        self.assertNotIn((success, frozenset({("endpoint", "bad")})), scraped)
        self.assertNotIn((failure, frozenset({("endpoint", "good")})), scraped)

    async def test_unanswered(self) -> None:
        """
        Events sent where nothing answers are errors, not failures.
        """
        receiver = await startReceiver(self)
        await receiver.stop()
        registry = await self.start([endpoint(receiver, "gone", backoff="10s")])
        await pushImage(self, registry, "team/app", "1")
        await waitUntil(lambda: registry.service.notifier.dispatchers[0].lastFailure is not None)
        scraped = await self.scrape(registry)
        events = "registry_notifications_events_total"
        self.assertGreater(value(scraped, events, type="Errors", endpoint="gone"), 0)
        self.assertEqual(value(scraped, events, type="Failures", endpoint="gone"), 0)

    async def test_traceparentPropagated(self) -> None:
        """
        A push sent with a W3C traceparent: its event's delivery carries a
        traceparent of that trace, naming the manifest PUT's server span.
        """
        receiver = await startReceiver(self)
        exporter = InMemorySpanExporter()
        tracing = Tracing(processor=SimpleSpanProcessor(exporter))
        self.addCleanup(tracing.shutdown)
        registry = await self.start(
            [endpoint(receiver)],
            telemetry=Telemetry(Counters(), PrometheusMetrics(), tracing),
        )
        manifest, _ = await pushImage(self, registry, "team/app", "1")
        await waitUntil(lambda: len(receiver.events) == 3)
        response = await registry.request(
            "GET", "/v2/team/app/manifests/1",
            headers={"traceparent": [f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"],
                     "Accept": ["application/vnd.oci.image.manifest.v1+json"]})
        self.assertEqual(await treq.content(response), manifest)
        await waitUntil(lambda: len(receiver.events) == 4)
        headers, _ = receiver.requests[-1]
        version, trace, span, flags = headers["traceparent"].split("-")
        self.assertEqual((version, trace), ("00", PARENT_TRACE))
        self.assertTrue(int(flags, 16) & 1, flags)
        [server] = [s for s in exporter.get_finished_spans()
                    if s.kind == SpanKind.SERVER and s.name == "GET manifest.get"]
        self.assertEqual(span, format(server.context.span_id, "016x"))
        # The push's deliveries carry their own requests' traces.
        self.assertIn("traceparent", receiver.requests[0][0])


class StatusLabelTests(TestCase):
    def test_reference(self) -> None:
        """
        Statuses are labelled as the reference labels them.
        """
        self.assertEqual(statusLabel(204), "204 No Content")
        self.assertEqual(statusLabel(599), "599")
