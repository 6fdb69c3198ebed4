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

from bisect import bisect_left
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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


class Histogram:
    """
    One histogram family's observations by label values: a list of bucket
    counts and the sum per label set, updated with a bisection and two
    additions.  prometheus_client's own take a lock and walk every bucket
    on each observation; the registry observes on its one reactor thread
    and is scraped there too, so it needs neither.
    """

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...],
                 buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self.bounds = buckets
        self.series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, key: tuple[str, ...], value: float) -> None:
        row = self.series.get(key)
        if row is None:
            row = self.series[key] = [0.0] * (len(self.bounds) + 2)
        row[bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        names = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        for key, row in sorted(self.series.items()):
            cumulative = list(accumulate(row[:-1]))
            family.add_metric(list(key), list(zip(names, cumulative, strict=True)), row[-1])
        return family


class PrometheusMetrics(Collector):
    """
    The registry's Prometheus metrics, on their own L{CollectorRegistry}
    (one per registry: two registries in one process, as in the tests, do
    not collide).  Updating one is a dictionary operation: the figures are
    turned into metric families only when scraped.

    @ivar requests: C{registry_http_requests_total} by (handler, code,
        method).
    @ivar inFlight: C{registry_http_in_flight_requests} by handler.
    """

    def __init__(self) -> None:
        self.requests: Tally[tuple[str, str, str]] = Tally()
        self.inFlight: Tally[str] = Tally()
        self.duration = Histogram(
            "registry_http_request_duration_seconds", "The HTTP request latencies in seconds",
            ("handler", "method"), DURATION_BUCKETS,
        )
        self.requestSize = Histogram(
            "registry_http_request_size_bytes", "The HTTP request body sizes in bytes",
            ("handler",), SIZE_BUCKETS,
        )
        self.responseSize = Histogram(
            "registry_http_response_size_bytes", "The HTTP response body sizes in bytes",
            ("handler",), SIZE_BUCKETS,
        )
        self.storageAction = Histogram(
            "registry_storage_action_seconds", "The number of seconds that the storage action takes",
            ("driver", "action"), DURATION_BUCKETS,
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.registry.register(_CacheCollector())

    def collect(self) -> Iterator[Any]:
        requests = CounterMetricFamily(
            "registry_http_requests", "The number of HTTP requests answered",
            labels=["handler", "code", "method"],
        )
        for key, count in sorted(self.requests.items()):
            requests.add_metric(list(key), count)
        yield requests
        inFlight = GaugeMetricFamily(
            "registry_http_in_flight_requests", "The HTTP requests being served", labels=["handler"]
        )
        for handler, count in sorted(self.inFlight.items()):
            inFlight.add_metric([handler], count)
        yield inFlight
        for histogram in (self.duration, self.requestSize, self.responseSize, self.storageAction):
            yield histogram.family()
