"""
OpenTelemetry traces: the spans of a push, in an in-memory exporter, and
when tracing is on at all.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from typing import Any

import bcrypt
import treq
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from twisted.trial.unittest import TestCase

from tests.api.helpers import pushImage
from tests.support import startService
from txregistry.config import ConfigurationError, checkConfiguration
from txregistry.service import Telemetry, telemetryFor
from txregistry.telemetry.tracing import (
    QuietExporter,
    Tracing,
    TracingConfigurationError,
    exporterName,
    tracingFromEnvironment,
)

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


class TracedPushTests(TestCase):
    async def start(self, document: dict[str, Any] | None = None) -> tuple[Any, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        tracing = Tracing(processor=SimpleSpanProcessor(exporter))
        self.addCleanup(tracing.shutdown)
        # No upload purger: its walk would be a trace of its own.
        storage = {"inmemory": {}, "maintenance": {"uploadpurging": {"enabled": False}}}
        registry = await startService(self, {"storage": storage, **(document or {})},
                                      telemetry=Telemetry(tracing=tracing))
        return registry, exporter

    def assertTree(self, spans: Sequence[Any]) -> dict[int, Any]:
        """
        Every storage span is the child of a server span of the same trace.
        """
        servers = {s.context.span_id: s for s in spans if s.kind == SpanKind.SERVER}
        storage = [s for s in spans if s.name.startswith("storage ")]
        self.assertTrue(storage)
        for span in storage:
            self.assertIsNotNone(span.parent, span.name)
            parent = servers.get(span.parent.span_id)
            self.assertIsNotNone(parent, span.name)
            self.assertEqual(span.context.trace_id, parent.context.trace_id)
        return servers

    async def test_pushSpans(self) -> None:
        """
        A push is a server span per request, named by method and route,
        with its status; each storage call is a child span of its request.
        """
        registry, exporter = await self.start()
        await pushImage(self, registry, "team/app", "1")
        spans = exporter.get_finished_spans()
        servers = self.assertTree(spans)
        names = sorted(s.name for s in servers.values())
        self.assertEqual(names, ["POST upload.start", "POST upload.start", "PUT manifest.put",
                                 "PUT upload.complete", "PUT upload.complete"])
        put = next(s for s in servers.values() if s.name == "PUT manifest.put")
        self.assertEqual(put.attributes["http.response.status_code"], 201)
        self.assertEqual(put.attributes["http.route"], "manifest.put")
        children = [s.name for s in spans if s.parent is not None
                    and s.parent.span_id == put.context.span_id]
        self.assertIn("storage putContent", children)
        # Separate requests, separate traces.
        self.assertEqual(len({s.context.trace_id for s in servers.values()}), 5)

    async def test_traceparentHonoured(self) -> None:
        """
        A request with a W3C traceparent joins that trace, under that span.
        """
        registry, exporter = await self.start()
        response = await registry.request(
            "GET", "/v2/team/app/manifests/1",
            headers={"traceparent": [f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"]},
        )
        await treq.content(response)
        [server] = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
        self.assertEqual(format(server.context.trace_id, "032x"), PARENT_TRACE)
        self.assertEqual(format(server.parent.span_id, "016x"), PARENT_SPAN)
        self.assertTrue(server.parent.is_remote)
        self.assertEqual(server.attributes["http.response.status_code"], 404)

    async def test_afterAsynchronousLogin(self) -> None:
        """
        Behind htpasswd (a bcrypt check in a thread, so the route runs in a
        later turn), storage calls are still children of their request.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "wb") as f:
            f.write(b"alice:" + bcrypt.hashpw(b"wonderland", bcrypt.gensalt(rounds=4)) + b"\n")
        registry, exporter = await self.start(
            {"auth": {"htpasswd": {"realm": "Registry Realm", "path": path}}})
        auth = {"Authorization": [b"Basic " + base64.b64encode(b"alice:wonderland")]}
        response = await registry.request("GET", "/v2/team/app/tags/list", headers=auth)
        self.assertEqual(response.code, 404)
        await treq.content(response)
        self.assertTree(exporter.get_finished_spans())


class _Failing:
    def __init__(self) -> None:
        self.fail = True

    def export(self, spans: Sequence[Any]) -> Any:
        if self.fail:
            raise ConnectionRefusedError("nobody listens on 127.0.0.1:4318")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class EnvironmentTests(TestCase):
    def test_offByDefault(self) -> None:
        """
        Without OTEL_* variables there is no tracing: nothing is sent to a
        default address nobody listens on.
        """
        self.assertIsNone(tracingFromEnvironment({}))
        self.assertIsNone(exporterName({"OTEL_TRACES_EXPORTER": "none"}))
        self.assertIsNone(exporterName({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}))
        self.assertIsNone(telemetryFor(checkConfiguration({}), {}).tracing)

    def test_exporterNames(self) -> None:
        self.assertEqual(exporterName({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}), "otlp_proto_http")
        self.assertEqual(exporterName({"OTEL_TRACES_EXPORTER": "otlp",
                                       "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}), "otlp_proto_grpc")
        self.assertEqual(exporterName({"OTEL_TRACES_EXPORTER": "console"}), "console")

    def test_console(self) -> None:
        tracing = tracingFromEnvironment({"OTEL_TRACES_EXPORTER": "console"})
        self.assertIsInstance(tracing, Tracing)
        tracing.shutdown()  # type: ignore[union-attr]

    def test_missingExporterNamesTheVariable(self) -> None:
        """
        An exporter that is not installed stops the start, naming the
        variable and the package.
        """
        with self.assertRaises(TracingConfigurationError) as raised:
            tracingFromEnvironment({"OTEL_TRACES_EXPORTER": "zipkin"})
        self.assertEqual(str(raised.exception),
                         "OTEL_TRACES_EXPORTER: no span exporter named 'zipkin' is installed")
        with self.assertRaises(ConfigurationError):
            telemetryFor(checkConfiguration({}), {"OTEL_TRACES_EXPORTER": "a,b"})

    def test_failingExporterLogsOnce(self) -> None:
        """
        An exporter that cannot reach its collector is reported once, not
        on every batch, and its recovery once.
        """
        events: list[dict[str, Any]] = []
        from twisted.logger import globalLogPublisher

        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        inner = _Failing()
        exporter = QuietExporter(inner, "otlp_proto_http")
        for _ in range(5):
            self.assertEqual(exporter.export([]), SpanExportResult.FAILURE)
        inner.fail = False
        exporter.export([])
        exporter.export([])
        mine = [e["log_format"] for e in events if "Trace export" in e.get("log_format", "")]
        self.assertEqual(len(mine), 2)
        self.assertIn("is failing", mine[0])
        self.assertIn("works again", mine[1])


class TraceparentTests(TestCase):
    def test_currentSpan(self) -> None:
        """
        L{Tracing.traceparent} is the current span's W3C header (what an
        event keeps for its webhook delivery), and L{None} without one.
        """
        from opentelemetry import trace

        tracing = Tracing(processor=SimpleSpanProcessor(InMemorySpanExporter()))
        self.addCleanup(tracing.shutdown)
        self.assertIsNone(tracing.traceparent())
        span = tracing._tracer.start_span("request")
        with trace.use_span(span, end_on_exit=True):
            header = tracing.traceparent()
            carrier: dict[str, str] = {}
            tracing._propagator.inject(carrier)
        # As the SDK's own W3C propagator writes it.
        self.assertEqual(header, carrier["traceparent"])
        context = span.get_span_context()
        self.assertTrue(header.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-"))

    def test_storageSpansOnlyUnderARecordedSpan(self) -> None:
        """
        A storage call outside a recorded span (in no request, or in one
        the sampler left out) makes no span: it would not be recorded.
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

        exporter = InMemorySpanExporter()
        tracing = Tracing(processor=SimpleSpanProcessor(exporter))
        self.addCleanup(tracing.shutdown)
        self.assertIsNone(tracing.startSpan("storage stat"))
        request = tracing._tracer.start_span("request")
        with trace.use_span(request, end_on_exit=True):
            child = tracing.startSpan("storage stat")
            tracing.endSpan(child)
        self.assertEqual([s.name for s in exporter.get_finished_spans()], ["storage stat", "request"])
        unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t").start_span("request")
        with trace.use_span(unsampled):
            self.assertIsNone(tracing.startSpan("storage stat"))
