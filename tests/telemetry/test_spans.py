"""
The registry's own spans (L{txregistry.telemetry.spans}) as an exporter
receives them: what the SDK's spans would carry, sampled as the
configured sampler decides.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from twisted.trial.unittest import TestCase

from txregistry.telemetry.tracing import Tracing

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class RecordedSpanTests(TestCase):
    def tracing(self) -> tuple[Tracing, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        tracing = Tracing(processor=SimpleSpanProcessor(exporter))
        self.addCleanup(tracing.shutdown)
        return tracing, exporter

    def test_requestAndStorageCall(self) -> None:
        """
        A request's span and a storage call's under it reach the exporter
        with their names, kinds, attributes, status, times and one trace,
        the storage call's parent being the request's span.
        """
        tracing, exporter = self.tracing()
        shared = {"http.request.method": "GET", "http.route": "manifest.get"}
        request = tracing.recorder.start("GET manifest.get", Context(), SpanKind.SERVER, shared)
        with trace.use_span(request):
            child = tracing.startSpan("storage stat", {"storage.action": "stat"})
            tracing.endSpan(child)
        request.set_attribute("http.response.status_code", 500)
        request.set_status(StatusCode.ERROR)
        request.end()
        stat, server = exporter.get_finished_spans()
        self.assertEqual((stat.name, stat.kind), ("storage stat", SpanKind.INTERNAL))
        self.assertEqual((server.name, server.kind), ("GET manifest.get", SpanKind.SERVER))
        self.assertEqual(stat.parent.span_id, server.context.span_id)
        self.assertEqual(stat.context.trace_id, server.context.trace_id)
        self.assertIsNone(server.parent)
        self.assertEqual(dict(server.attributes), {**shared, "http.response.status_code": 500})
        self.assertEqual(server.status.status_code, StatusCode.ERROR)
        self.assertEqual(stat.status.status_code, StatusCode.UNSET)
        self.assertLessEqual(server.start_time, stat.start_time)
        self.assertLessEqual(stat.end_time, server.end_time)
        self.assertEqual(server.resource.attributes["service.name"], "txregistry")
        self.assertEqual(server.instrumentation_scope.name, "txregistry")
        # The attributes given are every request's of the route: not changed.
        self.assertNotIn("http.response.status_code", shared)

    def test_remoteParent(self) -> None:
        """
        A request whose C{traceparent} names a sampled parent joins its
        trace, the parent remote.
        """
        tracing, exporter = self.tracing()
        parent = TraceContextTextMapPropagator().extract({"traceparent": PARENT})
        tracing.recorder.start("GET base", parent).end()
        (span,) = exporter.get_finished_spans()
        self.assertEqual(format(span.context.trace_id, "032x"), PARENT.split("-")[1])
        self.assertEqual(format(span.parent.span_id, "016x"), PARENT.split("-")[2])
        self.assertTrue(span.parent.is_remote)

    def test_samplerDecides(self) -> None:
        """
        A trace the sampler leaves out records nothing, and neither do
        storage calls under it, whichever sampler is set (a ratio one
        decides each root); an unsampled remote parent is followed.
        """
        tracing, exporter = self.tracing()
        tracing.recorder.sampler = ALWAYS_OFF
        request = tracing.recorder.start("GET base", Context())
        self.assertFalse(request.is_recording())
        with trace.use_span(request):
            self.assertIsNone(tracing.startSpan("storage stat"))
        request.end()
        tracing.recorder.sampler = ParentBased(TraceIdRatioBased(0.0))
        self.assertFalse(tracing.recorder.start("GET base", Context()).is_recording())
        tracing.recorder.sampler = ParentBased(TraceIdRatioBased(1.0))
        unsampled = TraceContextTextMapPropagator().extract({"traceparent": PARENT[:-2] + "00"})
        self.assertFalse(tracing.recorder.start("GET base", unsampled).is_recording())
        self.assertEqual(exporter.get_finished_spans(), ())

    def test_endedSpanIsFinal(self) -> None:
        """
        What is set after the end is not exported, and a second end sends
        nothing more; an OK status is not replaced.
        """
        tracing, exporter = self.tracing()
        span = tracing.recorder.start("GET base", Context())
        span.set_status(StatusCode.OK)
        span.set_status(StatusCode.ERROR, "late")
        span.record_exception(ValueError("bad"))
        span.end()
        span.set_attribute("late", True)
        span.update_name("renamed")
        span.end()
        (exported,) = exporter.get_finished_spans()
        self.assertEqual(exported.name, "GET base")
        self.assertEqual(exported.status.status_code, StatusCode.OK)
        self.assertNotIn("late", exported.attributes)
        self.assertEqual([e.name for e in exported.events], ["exception"])
        self.assertEqual(exported.events[0].attributes["exception.type"], "ValueError")
