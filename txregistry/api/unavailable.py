# -*- test-case-name: tests.health.test_service -*-
"""
The API's answer while a health check fails: 503 C{UNAVAILABLE} with the
error envelope, as the reference's C{health.Handler} answers, so that a
load balancer (or a client's retry) goes elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.web.resource import IResource, Resource

from txregistry.api.errors import UNAVAILABLE, APIError, writeError

#: The reference's detail.
DETAIL = "health check failed: please see /debug/health"


class UnavailableWhileFailing(Resource):
    """
    Wraps the registry's root resource: answers every request with 503
    while C{failing()} names any check.

    @param failing: the failing checks' names and reasons
        (L{txregistry.health.monitor.HealthMonitor.failing}).
    """

    isLeaf = True

    def __init__(self, resource: IResource, failing: Callable[[], Mapping[str, str]]) -> None:
        super().__init__()
        self._resource = resource
        self._failing = failing

    def render(self, request: Any) -> Any:
        if self._failing():
            return writeError(request, APIError(UNAVAILABLE, detail=DETAIL))
        return self._resource.render(request)
