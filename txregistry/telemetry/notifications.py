# -*- test-case-name: tests.telemetry.test_notifications -*-
"""
C{registry_notifications_*}: each webhook endpoint's figures, under the
reference's names (distribution's C{notifications/metrics.go}):

    registry_notifications_events_total{type,endpoint}   Events (journaled for it),
                                                         Successes (delivered),
                                                         Failures (in envelopes answered
                                                         with a status other than 2xx),
                                                         Errors (in envelopes not answered)
    registry_notifications_pending_total{endpoint}       events waiting for it (a gauge,
                                                         named as the reference names it)
    registry_notifications_status_total{code,endpoint}   answers by status ("204 No Content")

and, beyond the reference (its queue is in memory and has neither),
C{registry_notifications_dead_lettered_total{endpoint}} and the POSIX
times of the last success and the last failure
(C{registry_notifications_last_success_timestamp_seconds},
C{registry_notifications_last_failure_timestamp_seconds}; absent until
there is one).

The figures are read from the dispatchers when scraped, so delivering
an event costs nothing more for being measured.  Telemetry knows no
dispatcher: it is given a callable returning each endpoint's status
(L{txregistry.notifications.dispatcher.EndpointDispatcher.status}).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["NotificationsCollector", "statusLabel"]


def statusLabel(code: int) -> str:
    """
    C{code} as the reference labels it: C{"204 No Content"}.
    """
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


class NotificationsCollector(Collector):
    """
    @param statuses: each endpoint's status dict (C{name}, C{pending},
        C{events}, C{delivered}, C{failedEvents}, C{erroredEvents},
        C{deadLettered}, C{statuses}, C{lastSuccess}, C{lastFailure}).
    """

    def __init__(self, statuses: Callable[[], list[dict[str, Any]]]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterator[Any]:
        events = CounterMetricFamily(
            "registry_notifications_events", "The number of total events", labels=["type", "endpoint"]
        )
        pending = GaugeMetricFamily(
            "registry_notifications_pending_total", "The gauge of pending events in queue",
            labels=["endpoint"],
        )
        statuses = CounterMetricFamily(
            "registry_notifications_status", "The number of status code", labels=["code", "endpoint"]
        )
        dead = CounterMetricFamily(
            "registry_notifications_dead_lettered",
            "The number of undelivered events moved to the endpoint's dead-letter file",
            labels=["endpoint"],
        )
        success = GaugeMetricFamily(
            "registry_notifications_last_success_timestamp_seconds",
            "When a delivery to the endpoint last succeeded (POSIX time)", labels=["endpoint"],
        )
        failure = GaugeMetricFamily(
            "registry_notifications_last_failure_timestamp_seconds",
            "When a delivery to the endpoint last failed (POSIX time)", labels=["endpoint"],
        )
        for status in self._statuses():
            name = status["name"]
            for kind, key in (("Events", "events"), ("Successes", "delivered"),
                              ("Failures", "failedEvents"), ("Errors", "erroredEvents")):
                events.add_metric([kind, name], status[key])
            pending.add_metric([name], status["pending"])
            for code, count in sorted(status["statuses"].items()):
                statuses.add_metric([statusLabel(code), name], count)
            dead.add_metric([name], status["deadLettered"])
            if status["lastSuccess"] is not None:
                success.add_metric([name], status["lastSuccess"])
            if status["lastFailure"] is not None:
                failure.add_metric([name], status["lastFailure"][0])
        yield from (events, pending, statuses, dead, success, failure)
