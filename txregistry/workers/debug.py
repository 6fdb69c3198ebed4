# -*- test-case-name: tests.workers.test_debug -*-
"""
The debug listener of a server with workers (C{http.debug.addr}, in the
supervisor): each of C{/debug/health}, C{/debug/vars} and the Prometheus
path asks every worker for its own figures and answers for the whole
server.

Every figure the registry keeps is a count, a sum or a gauge of what is
in flight (L{txregistry.telemetry.metrics}), so the server's figure is the
sum of the workers'; a health check fails for the server when it fails in
any worker (each runs its checks, and answers 503 itself while one fails).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.web.resource import IResource, NoResource, Resource
from twisted.web.server import NOT_DONE_YET, Site

from txregistry import __version__

_log = Logger()

#: What a worker is asked, by the resource that asks it.
HEALTH = "health"
VARS = "vars"
METRICS = "metrics"

#: Asks every listening worker one question: each answer, parsed.
Ask = Callable[[str], Awaitable[list[Any]]]


def summed(documents: Iterable[Any]) -> Any:
    """
    The documents added up: numbers summed, mappings merged key by key
    (recursively), anything else the first one's.
    """
    documents = list(documents)
    first = documents[0]
    if isinstance(first, bool) or not isinstance(first, (int, float, dict)):
        return first
    if isinstance(first, dict):
        keys: dict[Any, None] = {}
        for document in documents:
            if isinstance(document, dict):
                keys.update(dict.fromkeys(document))
        return {key: summed([d[key] for d in documents if isinstance(d, dict) and key in d])
                for key in keys}
    numbers = [d for d in documents if isinstance(d, (int, float)) and not isinstance(d, bool)]
    total = sum(numbers)
    return round(total, 6) if isinstance(total, float) else total


def summedExposition(texts: Iterable[str]) -> bytes:
    """
    The Prometheus text expositions of the workers as one: each sample
    (name and labels) summed over the workers.
    """
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest
    from prometheus_client.metrics_core import Metric
    from prometheus_client.parser import text_string_to_metric_families

    families: dict[str, Metric] = {}
    values: dict[tuple[str, str, tuple[tuple[str, str], ...]], float] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            families.setdefault(
                family.name, Metric(family.name, family.documentation, family.type, family.unit))
            for sample in family.samples:
                key = (family.name, sample.name, tuple(sorted(sample.labels.items())))
                values[key] = values.get(key, 0.0) + sample.value
    for (familyName, name, labels), value in values.items():
        families[familyName].add_sample(name, dict(labels), value)

    class _Merged:
        def collect(self) -> Iterator[Metric]:
            return iter(families.values())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged())  # type: ignore[arg-type]
    return generate_latest(registry)


class _AskingResource(Resource):
    """
    Answers a C{GET} from what every worker answered C{question}.
    """

    isLeaf = True
    question = ""

    def __init__(self, ask: Ask) -> None:
        super().__init__()
        self._ask = ask

    def render_GET(self, request: Any) -> Any:
        async def answer() -> None:
            try:
                status, contentType, body = self.answer(await self._ask(self.question))
            except Exception:
                _log.failure("Collecting the workers' {what} failed", what=self.question)
                status, contentType, body = 500, b"text/plain", b"cannot collect the workers' figures\n"
            request.setResponseCode(status)
            request.setHeader(b"content-type", contentType)
            request.setHeader(b"cache-control", b"no-cache")
            request.setHeader(b"content-length", b"%d" % len(body))
            if request.method != b"HEAD":
                request.write(body)
            request.finish()

        Deferred.fromCoroutine(answer())
        return NOT_DONE_YET

    render_HEAD = render_GET

    def answer(self, answers: list[Any]) -> tuple[int, bytes, bytes]:
        raise NotImplementedError()


def _json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, indent=1).encode("utf-8") + b"\n"


_JSON = b"application/json; charset=utf-8"


class HealthResource(_AskingResource):
    """
    C{/debug/health}: 503 and each check failing in any worker, or 200.
    """

    question = HEALTH

    def answer(self, answers: list[Any]) -> tuple[int, bytes, bytes]:
        failing: dict[str, str] = {}
        for answer in answers:
            failing.update(answer)
        return (503 if failing else 200), _JSON, _json(failing)


class VarsResource(_AskingResource):
    """
    C{/debug/vars}: the workers' counters, summed, and how many answered.
    """

    question = VARS

    def __init__(self, ask: Ask, own: Callable[[], Mapping[str, Any]]) -> None:
        super().__init__(ask)
        self._own = own

    def answer(self, answers: list[Any]) -> tuple[int, bytes, bytes]:
        document = summed(answers) if answers else {}
        document.update(self._own())
        return 200, _JSON, _json({"version": __version__, **document})


class MetricsResource(_AskingResource):
    """
    The Prometheus path: every worker's samples, summed.
    """

    question = METRICS

    def answer(self, answers: list[Any]) -> tuple[int, bytes, bytes]:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        return 200, CONTENT_TYPE_LATEST.encode("ascii"), summedExposition(answers)


class _Tree(Resource):
    def __init__(self, paths: Mapping[str, IResource]) -> None:
        super().__init__()
        self._paths = {path.rstrip("/"): resource for path, resource in paths.items()}

    def getChildWithDefault(self, name: bytes, request: Any) -> IResource:
        found = self._paths.get(request.path.decode("utf-8", "replace").rstrip("/"))
        if found is None:
            return NoResource()
        request.postpath = []
        return found


def workersDebugSite(ask: Ask, own: Callable[[], Mapping[str, Any]], metricsPath: str | None) -> Site:
    """
    The supervisor's debug site.

    @param own: the supervisor's own variables (uptime, workers).
    @param metricsPath: the Prometheus path, or L{None} when metrics are off.
    """
    paths: dict[str, IResource] = {
        "/debug/health": HealthResource(ask),
        "/debug/vars": VarsResource(ask, own),
    }
    if metricsPath is not None:
        paths[metricsPath] = MetricsResource(ask)
    site = Site(_Tree(paths))
    site.noisy = False
    site.log = lambda request: None  # type: ignore[method-assign]
    return site


def gathered(deferreds: list[Deferred[Any]]) -> Deferred[list[Any]]:
    """
    The results of C{deferreds} that succeeded (a worker that ended
    meanwhile has no answer), in order.
    """
    return DeferredList(deferreds, consumeErrors=True).addCallback(
        lambda results: [value for ok, value in results if ok])
