# -*- test-case-name: tests.telemetry.test_spans -*-
"""
L{RecordedSpan}: the registry's own spans, an OpenTelemetry API span that
becomes the SDK's L{ReadableSpan} when it ends, for the SDK's span
processors and exporters.

Every request is a span and so is every storage call under it: a
manifest GET makes four or five.  The SDK's own span (its sampler call,
bounded attribute and event lists, a lock, then a second, readable copy
at its end) cost about 30 CPU-microseconds each, so tracing took half the
CPU of a manifest GET.  These spans hold what the registry sets (a name,
a few attributes, a status, rarely an event) and make the readable span
once, at their end: about 5.  The sampler is still the SDK's, asked once
per trace root (a request), as the SDK asks it; a storage call's span
follows its request's decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from random import getrandbits
from time import time_ns
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    get_current_span,
)
from opentelemetry.trace.status import Status, StatusCode

__all__ = ["RecordedSpan", "SpanRecorder"]

_UNSET = Status(StatusCode.UNSET)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_NO_ATTRIBUTES: Mapping[str, Any] = {}


class SpanRecorder:
    """
    Makes L{RecordedSpan}s and hands each, ended, to C{processor}.

    @param sampler: decides for each trace root (the SDK's, as
        C{OTEL_TRACES_SAMPLER} configures it).
    """

    def __init__(
        self, processor: SpanProcessor, resource: Resource, sampler: Sampler, scope: InstrumentationScope
    ) -> None:
        self.processor = processor
        self.resource = resource
        self.sampler = sampler
        self.scope = scope

    @property
    def sampler(self) -> Sampler:
        return self._sampler

    @sampler.setter
    def sampler(self, sampler: Sampler) -> None:
        self._sampler = sampler
        # The default sampler (parent-based, every root recorded) decides
        # a trace root without being asked: what it would answer, at a
        # few microseconds less per request.
        description = sampler.get_description()
        self._recordsEveryRoot = (
            description == "AlwaysOnSampler" or description.startswith("ParentBased{root:AlwaysOnSampler,")
        )

    def start(
        self, name: str, parent: Context | None, kind: SpanKind = SpanKind.SERVER,
        attributes: Mapping[str, Any] | None = None,
    ) -> Span:
        """
        A span whose parent is the current span of C{parent} (a remote
        parent a request's C{traceparent} named), or a new trace's root
        when it has none; sampled as the sampler decides.
        """
        found = get_current_span(parent).get_span_context()
        parentContext: SpanContext | None = found
        if found.is_valid:
            traceID = found.trace_id
            random = found.trace_flags.random_trace_id
        else:
            traceID = getrandbits(128)
            if self._recordsEveryRoot:
                return RecordedSpan(
                    self, name, SpanContext(traceID, getrandbits(64), False, _SAMPLED_RANDOM),
                    None, kind, attributes,
                )
            parentContext = None
            random = True
        sampled = self._sampler.should_sample(parent, traceID, name, kind, attributes)
        flags = TraceFlags.SAMPLED if sampled.decision.is_sampled() else TraceFlags.DEFAULT
        if random:
            flags |= TraceFlags.RANDOM_TRACE_ID
        context = SpanContext(traceID, getrandbits(64), False, TraceFlags(flags), sampled.trace_state)
        if not sampled.decision.is_recording():
            return NonRecordingSpan(context)
        if sampled.attributes:
            attributes = {**(attributes or {}), **sampled.attributes}
        return RecordedSpan(self, name, context, parentContext, kind, attributes)

    def child(self, parent: Span, name: str, attributes: Mapping[str, Any] | None = None) -> RecordedSpan:
        """
        An internal span under C{parent}, a recorded span: its decision is
        its parent's.
        """
        context = parent.get_span_context()
        return RecordedSpan(
            self, name, SpanContext(context.trace_id, getrandbits(64), False, context.trace_flags,
                                    context.trace_state),
            context, SpanKind.INTERNAL, attributes,
        )


class RecordedSpan(Span):
    """
    One span being recorded.  Its C{attributes} mapping is the caller's
    until one is set: the registry gives the same few for every span of a
    kind, made once.
    """

    def __init__(
        self, recorder: SpanRecorder, name: str, context: SpanContext, parent: SpanContext | None,
        kind: SpanKind, attributes: Mapping[str, Any] | None,
    ) -> None:
        self._recorder = recorder
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes if attributes is not None else _NO_ATTRIBUTES
        self._owned = False
        self._events: list[Event] = []
        self._status = _UNSET
        self._start = time_ns()
        self._ended = False

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return not self._ended

    def _own(self) -> dict[str, Any]:
        if not self._owned:
            self._attributes = dict(self._attributes)
            self._owned = True
        return self._attributes  # type: ignore[return-value]

    def set_attribute(self, key: str, value: Any) -> None:
        if not self._ended:
            self._own()[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if not self._ended:
            self._own().update(attributes)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        if not self._ended:
            self._events.append(Event(name, attributes, timestamp if timestamp is not None else time_ns()))

    def update_name(self, name: str) -> None:
        if not self._ended:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._ended:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        # As the SDK: OK is final, and UNSET never replaces another.
        if self._status.status_code is not StatusCode.OK and status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self, exception: BaseException, attributes: Any = None, timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        self.add_event("exception", {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.escaped": escaped,
            **(attributes or {}),
        }, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        recorder = self._recorder
        recorder.processor.on_end(ReadableSpan(
            name=self._name, context=self._context, parent=self._parent, resource=recorder.resource,
            attributes=self._attributes, events=tuple(self._events), kind=self._kind,
            status=self._status, start_time=self._start,
            end_time=end_time if end_time is not None else time_ns(),
            instrumentation_scope=recorder.scope,
        ))

    def __repr__(self) -> str:
        return f"RecordedSpan({self._name!r}, trace_id=0x{self._context.trace_id:032x})"

