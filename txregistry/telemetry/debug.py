# -*- test-case-name: tests.telemetry.test_metrics,tests.health.test_service -*-
"""
The debug listener's resources (C{http.debug.addr}, never the API's
port): C{/debug/health}, C{/debug/vars} and, when enabled, Prometheus
metrics at C{http.debug.prometheus.path}.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from twisted.web.resource import IResource, NoResource, Resource
from twisted.web.server import Site

from txregistry import __version__


def _json(request: Any, status: int, document: Any) -> bytes:
    body = json.dumps(document, sort_keys=True, indent=1).encode("utf-8") + b"\n"
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    request.setHeader(b"cache-control", b"no-cache")
    request.setHeader(b"content-length", b"%d" % len(body))
    return body


class HealthResource(Resource):
    """
    C{GET /debug/health}: 200 and C{{}} when every check passes, 503 and
    each failing check's name and reason otherwise (the reference's
    answer).
    """

    isLeaf = True

    def __init__(self, failing: Callable[[], Mapping[str, str]]) -> None:
        super().__init__()
        self._failing = failing

    def render_GET(self, request: Any) -> bytes:
        failing = dict(self._failing())
        return _json(request, 503 if failing else 200, failing)

    render_HEAD = render_GET


class VarsResource(Resource):
    """
    C{GET /debug/vars}: a JSON of the registry's counters.

    @param variables: makes the document, when asked.
    """

    isLeaf = True

    def __init__(self, variables: Callable[[], Mapping[str, Any]]) -> None:
        super().__init__()
        self._variables = variables

    def render_GET(self, request: Any) -> bytes:
        document = {"version": __version__, **self._variables()}
        return _json(request, 200, document)


class MetricsResource(Resource):
    """
    C{GET} of the Prometheus path: the text exposition of C{registry},
    made in the reactor's thread, where the figures change (so that a
    scrape never reads them half-updated).
    """

    isLeaf = True

    def __init__(self, registry: Any) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Any) -> bytes:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(self._registry)
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        request.setHeader(b"content-length", b"%d" % len(body))
        return body


class _Tree(Resource):
    """
    Resources by full path (C{/debug/health}, C{/metrics/x}): the debug
    listener has a handful, at paths the configuration chooses.
    """

    def __init__(self, paths: Mapping[str, IResource]) -> None:
        super().__init__()
        self._paths = {path.rstrip("/"): resource for path, resource in paths.items()}

    def getChildWithDefault(self, name: bytes, request: Any) -> IResource:
        path = request.path.decode("utf-8", "replace").rstrip("/")
        found = self._paths.get(path)
        if found is None:
            return NoResource()
        request.postpath = []
        return found


def debugSite(
    failing: Callable[[], Mapping[str, str]],
    variables: Callable[[], Mapping[str, Any]],
    metrics: tuple[str, Any] | None = None,
) -> Site:
    """
    The debug listener's site.

    @param metrics: the Prometheus path and L{CollectorRegistry}, or
        L{None} when metrics are off.
    """
    paths: dict[str, IResource] = {
        "/debug/health": HealthResource(failing),
        "/debug/vars": VarsResource(variables),
    }
    if metrics is not None:
        path, registry = metrics
        paths[path] = MetricsResource(registry)
    site = Site(_Tree(paths))
    site.noisy = False
    # Scrapes every few seconds would flood the log.
    site.log = lambda request: None  # type: ignore[method-assign]
    return site
