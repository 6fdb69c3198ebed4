# -*- test-case-name: tests.telemetry.test_metrics -*-
"""
The registry's figures: plain counters for C{/debug/vars}, and, with
C{http.debug.prometheus.enabled}, Prometheus metrics under the
reference's names.

Every label has a bounded set of values: route names, a fixed set of
methods, status codes, driver names and actions, cache names.  No
repository or tag is ever a label.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from txregistry.registry.cache import CACHE_STATS

#: The methods that are labels; any other is C{OTHER}.
METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})

#: Seconds: a manifest GET takes milliseconds, a layer push minutes.
DURATION_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25, 60, 300)

#: Bytes: a manifest is kilobytes, a layer up to gigabytes.
SIZE_BUCKETS = tuple(float(4 ** n) for n in range(5, 16))


def methodLabel(method: bytes | None) -> str:
    name = (method or b"").decode("latin-1")
    return name if name in METHODS else "OTHER"


class Counters:
    """
    The counters of C{/debug/vars}: kept whether or not Prometheus is on,
    since incrementing an C{int} costs nothing.
    """

    def __init__(self) -> None:
        self.requests = 0
        self.inFlight = 0
        self.requestBytes = 0
        self.responseBytes = 0
        self.byHandler: Tally[str] = Tally()
        self.byStatus: Tally[int] = Tally()
        self.storageCalls: Tally[str] = Tally()
        self.storageErrors: Tally[str] = Tally()
        self.storageSeconds: defaultdict[str, float] = defaultdict(float)

    def snapshot(self) -> dict[str, Any]:
        return {
            "http": {
                "requests": self.requests,
                "in_flight": self.inFlight,
                "request_bytes": self.requestBytes,
                "response_bytes": self.responseBytes,
                "by_handler": dict(self.byHandler),
                "by_status": {str(k): v for k, v in self.byStatus.items()},
            },
            "storage": {
                action: {
                    "calls": self.storageCalls[action],
                    "errors": self.storageErrors[action],
                    "seconds": round(self.storageSeconds[action], 6),
                }
                for action in sorted(self.storageCalls)
            },
            "caches": {
                name: {"requests": stats.requests, "hits": stats.hits}
                for name, stats in sorted(CACHE_STATS.items())
            },
        }


class _CacheCollector(Collector):
    """
    C{registry_storage_cache_*_total{cache}} from the process's
    L{txregistry.registry.cache.CACHE_STATS}.  The in-process caches never
    fail a lookup, so C{errors} stays 0; it is there because the
    reference's dashboards read it.
    """

    def collect(self) -> Iterator[CounterMetricFamily]:
        families = {
            name: CounterMetricFamily(
                f"registry_storage_cache_{name}", f"The number of cache {name}", labels=["cache"]
            )
            for name in ("requests", "hits", "errors")
        }
        for cache, stats in sorted(CACHE_STATS.items()):
            families["requests"].add_metric([cache], stats.requests)
            families["hits"].add_metric([cache], stats.hits)
            families["errors"].add_metric([cache], 0)
        yield from families.values()


class PrometheusMetrics:
    """
    The registry's Prometheus metrics, on their own L{CollectorRegistry}
    (one per registry: two registries in one process, as in the tests, do
    not collide).
    """

    def __init__(self) -> None:
        # The reference exposes no *_created series; they would double the
        # scrape for nothing.
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "registry_http_requests", "The number of HTTP requests answered",
            ["handler", "code", "method"], registry=r,
        )
        self.duration = Histogram(
            "registry_http_request_duration_seconds", "The HTTP request latencies in seconds",
            ["handler", "method"], buckets=DURATION_BUCKETS, registry=r,
        )
        self.requestSize = Histogram(
            "registry_http_request_size_bytes", "The HTTP request body sizes in bytes",
            ["handler"], buckets=SIZE_BUCKETS, registry=r,
        )
        self.responseSize = Histogram(
            "registry_http_response_size_bytes", "The HTTP response body sizes in bytes",
            ["handler"], buckets=SIZE_BUCKETS, registry=r,
        )
        self.inFlight = Gauge(
            "registry_http_in_flight_requests", "The HTTP requests being served",
            ["handler"], registry=r,
        )
        self.storageAction = Histogram(
            "registry_storage_action_seconds", "The number of seconds that the storage action takes",
            ["driver", "action"], buckets=DURATION_BUCKETS, registry=r,
        )
        r.register(_CacheCollector())
        # Labelled children, looked up once: .labels() costs a lock and a
        # tuple on every call.
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """
        C{metric.labels(*labels)}, cached (the label sets are bounded).
        """
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found
