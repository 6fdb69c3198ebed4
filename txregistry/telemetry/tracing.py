# -*- test-case-name: tests.telemetry.test_tracing -*-
"""
OpenTelemetry traces: a span per request (the parent a W3C
C{traceparent} header names, when one is sent) and a span per storage
call below it.

Off unless the standard variables ask for an exporter:
C{OTEL_TRACES_EXPORTER} (C{otlp}, C{console}, or any installed
C{opentelemetry_traces_exporter} entry point), or an
C{OTEL_EXPORTER_OTLP_ENDPOINT} / C{OTEL_EXPORTER_OTLP_TRACES_ENDPOINT},
which means C{otlp}.  C{OTEL_SDK_DISABLED=true} turns it off whatever
else is set.  Nothing is exported to a default address nobody listens on,
and an exporter that fails is reported once, not on every batch.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any

from twisted.logger import Logger
from zope.interface import implementer

from txregistry.web.site import IRequestObserver

_log = Logger()

#: The C{opentelemetry} packages are the C{tracing} extra's.
INSTALL_HINT = "pip install 'txregistry[tracing]'"


class TracingConfigurationError(Exception):
    """
    The C{OTEL_*} variables ask for something that cannot be had; the
    message names the variable.
    """


def exporterName(environ: Mapping[str, str]) -> str | None:
    """
    The entry point name of the span exporter C{environ} asks for, or
    L{None} when tracing is off.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names and (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                      or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        names = ["otlp"]
    names = [n for n in names if n != "none"]
    if not names:
        return None
    if len(names) > 1:
        raise TracingConfigurationError(
            f"OTEL_TRACES_EXPORTER: one exporter is supported, got {', '.join(names)}"
        )
    name = names[0]
    if name == "otlp":
        protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
        if protocol not in ("http/protobuf", "grpc"):
            raise TracingConfigurationError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL: expected http/protobuf or grpc, got {protocol!r}"
            )
        return "otlp_proto_grpc" if protocol == "grpc" else "otlp_proto_http"
    return name


def tracingFromEnvironment(environ: Mapping[str, str]) -> "Tracing | None":
    """
    The registry's L{Tracing} as C{environ} configures it, or L{None}.

    @raise TracingConfigurationError: for an exporter that is not
        installed, or a package missing.
    """
    name = exporterName(environ)
    if name is None:
        return None
    try:
        from opentelemetry.sdk.trace.export import SpanExporter  # noqa: F401
    except ImportError:
        raise TracingConfigurationError(
            f"OTEL_TRACES_EXPORTER: tracing needs the OpenTelemetry SDK ({INSTALL_HINT})"
        ) from None
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        package = {"otlp_proto_http": "opentelemetry-exporter-otlp-proto-http",
                   "otlp_proto_grpc": "opentelemetry-exporter-otlp-proto-grpc"}.get(name)
        hint = f" (pip install {package})" if package else ""
        raise TracingConfigurationError(
            f"OTEL_TRACES_EXPORTER: no span exporter named {name!r} is installed{hint}"
        )
    exporter = next(iter(found)).load()()
    return Tracing(QuietExporter(exporter, name))


def _quietOpenTelemetryLoggers() -> None:
    # The SDK and its exporters log every failed batch (and each retry, and
    # each span dropped from a full queue) through the standard library,
    # which would land on stderr unformatted: QuietExporter reports
    # failures once, in the registry's own log.
    for name in ("opentelemetry.exporter", "opentelemetry.sdk.trace.export",
                 "opentelemetry.sdk._shared_internal"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


class QuietExporter:
    """
    A span exporter around another that logs the first failure of a run of
    failures and the recovery, and nothing in between.
    """

    def __init__(self, exporter: Any, name: str) -> None:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self._exporter = exporter
        self._name = name
        self._failing = False
        self._success = SpanExportResult.SUCCESS
        self._failure = SpanExportResult.FAILURE
        _quietOpenTelemetryLoggers()

    def export(self, spans: Sequence[Any]) -> Any:
        try:
            result = self._exporter.export(spans)
        except Exception as e:
            result, reason = self._failure, str(e)
        else:
            reason = "the exporter reported a failure"
        if result == self._success:
            if self._failing:
                self._failing = False
                _log.info("Trace export ({name}) works again", name=self._name)
        elif not self._failing:
            self._failing = True
            _log.warn("Trace export ({name}) is failing: {reason}; spans are dropped until it"
                      " works again (logged once)", name=self._name, reason=reason)
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._exporter.force_flush(timeout_millis))


class DiscardingExporter:
    """
    A span exporter that drops every span: the C{txregistry_discard}
    entry point, to measure what tracing itself costs (C{bench/}).
    """

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Tracing:
    """
    The registry's tracer, over a span exporter (batched in the SDK's own
    thread, never the reactor's) or a given processor (tests).
    """

    def __init__(self, exporter: Any = None, processor: Any = None) -> None:
        from opentelemetry.propagators.textmap import DefaultGetter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanKind, Status, StatusCode, get_current_span
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        from txregistry.telemetry.spans import SpanRecorder

        resource = Resource.create({"service.name": "txregistry"})
        self.provider = TracerProvider(resource=resource)
        if processor is None:
            processor = BatchSpanProcessor(exporter)
        self.provider.add_span_processor(processor)
        # The SDK's tracer makes spans for whatever else asks for one; the
        # registry's own (a request's, a storage call's) are recorded
        # more cheaply (L{txregistry.telemetry.spans}).
        self._tracer = self.provider.get_tracer("txregistry")
        self.recorder = SpanRecorder(processor, resource, self.provider.sampler,
                                     InstrumentationScope("txregistry"))
        self._propagator = TraceContextTextMapPropagator()
        self._getter = DefaultGetter()
        self._server = SpanKind.SERVER
        self._error = Status(StatusCode.ERROR)
        self._statusCode = StatusCode
        self._currentSpan = get_current_span

    def startSpan(self, name: str, attributes: Mapping[str, Any] | None = None) -> Any:
        """
        A span, child of the current one (the request's, in its context),
        or L{None} when the current span is not recorded (a request the
        sampler left out, or none at all): its children would not be
        either, and making them costs as much as a recorded one.
        """
        current = self._currentSpan()
        if not current.is_recording():
            return None
        return self.recorder.child(current, name, attributes)

    def endSpan(self, span: Any, failure: Any = None) -> None:
        if failure is not None:
            span.set_status(self._statusCode.ERROR, failure.getErrorMessage())
        span.end()

    def traceparent(self) -> str | None:
        """
        The W3C C{traceparent} of the current span (the request's, while
        it is handled), or L{None} outside any: what the notifications
        keep with each event, so that its webhook delivery joins the trace
        of the request that made it.
        """
        context = self._currentSpan().get_span_context()
        if not context.is_valid:
            return None
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"

    def shutdown(self) -> None:
        """
        Export what is pending and stop (blocks: call it in a thread).
        """
        self.provider.shutdown()




@implementer(IRequestObserver)
class RequestSpans:
    """
    A server span per request, named after its route
    (C{request.handlerName}, from L{RequestMetrics
    <txregistry.telemetry.http.RequestMetrics>} when that observes first),
    made current in C{request.context}, the C{contextvars} context the
    request is rendered in (L{txregistry.web.request.RegistryRequest}).
    """

    def __init__(self, tracing: Tracing, handlerOf: Any = None) -> None:
        from opentelemetry.context import Context, attach
        from opentelemetry.trace import set_span_in_context

        self._tracing = tracing
        self._handlerOf = handlerOf
        self._attach = attach
        self._inSpan = set_span_in_context
        # A request without a traceparent starts a trace: its parent is
        # the empty context, given rather than looked up.
        self._root = Context()
        self._names: dict[tuple[str, str | None], tuple[str, dict[str, str]]] = {}

    def requestStarted(self, request: Any) -> None:
        tracing = self._tracing
        parent = None
        traceparent = request.getHeader(b"traceparent")
        if traceparent is not None:
            carrier = {"traceparent": traceparent.decode("latin-1")}
            tracestate = request.getHeader(b"tracestate")
            if tracestate is not None:
                carrier["tracestate"] = tracestate.decode("latin-1")
            parent = tracing._propagator.extract(carrier)
        else:
            parent = self._root
        method = (request.method or b"").decode("latin-1")
        handler = getattr(request, "handlerName", None)
        if handler is None and self._handlerOf is not None:
            handler = request.handlerName = self._handlerOf(request.method, request.path)
        # The name and attributes of each (method, route), made once: both
        # are bounded sets.
        named = self._names.get((method, handler))
        if named is None:
            named = (f"{method} {handler}" if handler else method,
                     {"http.request.method": method, "http.route": handler or ""})
            if len(self._names) < 1024:
                self._names[method, handler] = named
        span = tracing.recorder.start(named[0], parent, tracing._server, named[1])
        request.span = span
        running = contextvars.copy_context()
        running.run(self._attach, self._inSpan(span, parent))
        request.context = running

    def requestEnded(self, request: Any) -> None:
        span = getattr(request, "span", None)
        if span is None:
            return
        code = request.code if request.answered else 499
        span.set_attribute("http.response.status_code", code)
        if code >= 500:
            span.set_status(self._tracing._error)
        span.end()
