# -*- test-case-name: tests.web.test_drain -*-
"""
L{InFlight}: the requests a site is serving, so that a stopping registry
lets them finish (up to C{http.draintimeout}) before it goes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from txregistry.web.site import IRequestObserver

_log = Logger()


@implementer(IRequestObserver)
class InFlight:
    """
    Counts a site's requests between their start and end.
    """

    def __init__(self) -> None:
        self.requests: set[Any] = set()
        self._idle: list[Deferred[None]] = []

    def requestStarted(self, request: Any) -> None:
        self.requests.add(request)

    def requestEnded(self, request: Any) -> None:
        self.requests.discard(request)
        if not self.requests:
            idle, self._idle = self._idle, []
            for d in idle:
                d.callback(None)

    def drain(self, timeout: float, reactor: Any) -> Deferred[None]:
        """
        Wait until no request is in flight, or C{timeout} seconds; then
        abort the connections of those still running.

        @return: a L{Deferred} that fires when done (never fails).
        """
        if not self.requests:
            return succeed(None)
        count = len(self.requests)
        _log.info("Waiting up to {timeout:g}s for {count} request(s) in flight",
                  timeout=timeout, count=count)
        idle: Deferred[None] = Deferred()
        self._idle.append(idle)
        call = reactor.callLater(timeout, self._giveUp, idle)

        def done(result: None) -> None:
            if call.active():
                call.cancel()

        return idle.addCallback(done)

    def _giveUp(self, idle: Deferred[None]) -> None:
        if idle.called:
            return
        _log.warn("{count} request(s) still in flight after the drain timeout: closing them",
                  count=len(self.requests))
        for request in list(self.requests):
            transport = getattr(request.channel, "transport", None)
            if transport is not None:
                transport.abortConnection()
        self.requests.clear()
        if idle in self._idle:
            self._idle.remove(idle)
        idle.callback(None)
