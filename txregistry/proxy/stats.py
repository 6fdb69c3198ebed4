# -*- test-case-name: tests.proxy.test_stats -*-
"""
What the pull-through cache did: requests, hits and misses, and the bytes
it pulled from each upstream and served, by kind (C{blob}, C{manifest})
and upstream (a configured prefix: a bounded set).

Kept as plain counters (an addition costs nothing), and exposed, with
Prometheus on, under the reference's names: C{registry_proxy_requests_total},
C{registry_proxy_hits_total}, C{registry_proxy_misses_total},
C{registry_proxy_pulled_bytes_total} and C{registry_proxy_pushed_bytes_total}.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = ["ProxyStats", "ProxyCollector", "BLOB", "MANIFEST"]

BLOB = "blob"
MANIFEST = "manifest"

#: The reference's counters: name and help text.
_FAMILIES = (
    ("requests", "The number of total incoming proxy requests received"),
    ("hits", "The number of total proxy request hits"),
    ("misses", "The number of total proxy request misses"),
    ("pulled_bytes", "The size of total bytes pulled from the upstream"),
    ("pushed_bytes", "The size of total bytes pushed to the client"),
)


class ProxyStats:
    """
    The counters, by (kind, upstream).
    """

    def __init__(self) -> None:
        self.counters: dict[str, Counter[tuple[str, str]]] = {
            name: Counter() for name, _ in _FAMILIES}

    def hit(self, kind: str, upstream: str) -> None:
        self.counters["requests"][kind, upstream] += 1
        self.counters["hits"][kind, upstream] += 1

    def miss(self, kind: str, upstream: str) -> None:
        self.counters["requests"][kind, upstream] += 1
        self.counters["misses"][kind, upstream] += 1

    def pulled(self, kind: str, upstream: str, size: int) -> None:
        self.counters["pulled_bytes"][kind, upstream] += size

    def pushed(self, kind: str, upstream: str, size: int) -> None:
        self.counters["pushed_bytes"][kind, upstream] += size

    def value(self, name: str, kind: str, upstream: str) -> int:
        return self.counters[name][kind, upstream]


class ProxyCollector(Collector):
    """
    L{ProxyStats} as C{registry_proxy_*_total{type,upstream}}.
    """

    def __init__(self, stats: ProxyStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, documentation in _FAMILIES:
            family = CounterMetricFamily(f"registry_proxy_{name}", documentation,
                                         labels=["type", "upstream"])
            for (kind, upstream), count in sorted(self.stats.counters[name].items()):
                family.add_metric([kind, upstream], count)
            yield family
