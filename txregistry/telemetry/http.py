# -*- test-case-name: tests.telemetry.test_metrics -*-
"""
L{RequestMetrics}: the registry's HTTP figures, measured where the site
sees each request start and end (L{txregistry.web.site.IRequestObserver}),
not in the routes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zope.interface import implementer

from txregistry.telemetry.metrics import Counters, PrometheusMetrics, methodLabel
from txregistry.web.site import IRequestObserver


@implementer(IRequestObserver)
class RequestMetrics:
    """
    Counts each request in L{Counters} and, when given, the Prometheus
    C{registry_http_*} metrics.

    @param handlerOf: C{handlerOf(method, path)}, the route's name
        (L{txregistry.api.routenames.RouteNames}).
    @param clock: the reactor's time (the one C{request.startedAt} uses).
    """

    def __init__(
        self,
        handlerOf: Callable[[bytes, bytes], str],
        counters: Counters,
        clock: Any,
        prometheus: PrometheusMetrics | None = None,
    ) -> None:
        self._handlerOf = handlerOf
        self._counters = counters
        self._clock = clock
        self._prometheus = prometheus

    def requestStarted(self, request: Any) -> None:
        handler = self._handlerOf(request.method, request.path)
        request.handlerName = handler
        self._counters.inFlight += 1
        if self._prometheus is not None:
            self._prometheus.inFlight[handler] += 1

    def requestEnded(self, request: Any) -> None:
        handler = getattr(request, "handlerName", None) or self._handlerOf(request.method, request.path)
        body = getattr(request, "body", None)
        received = body.received if body is not None else 0
        sent = request.sentLength
        counters = self._counters
        counters.inFlight -= 1
        counters.requests += 1
        counters.requestBytes += received
        counters.responseBytes += sent
        counters.byHandler[handler] += 1
        # A client that left before an answer is counted as 499, nginx's
        # "client closed request".
        code = request.code if request.answered else 499
        counters.byStatus[code] += 1
        p = self._prometheus
        if p is not None:
            method = methodLabel(request.method)
            p.inFlight[handler] -= 1
            p.requests[handler, str(code), method] += 1
            p.duration.observe((handler, method), self._clock.seconds() - request.startedAt)
            key = (handler,)
            p.requestSize.observe(key, received)
            p.responseSize.observe(key, sent)
