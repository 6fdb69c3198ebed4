# -*- test-case-name: tests.web.test_drain -*-
"""
L{InFlight}: the requests a site is serving, so that a stopping registry
lets them finish (up to C{http.draintimeout}) before it goes.
"""

from __future__ import annotations

import weakref
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from zope.interface import implementer

from txregistry.web.site import IRequestObserver

_log = Logger()

#: How often a drain looks whether the last answers are out.
_POLL = 0.05


@implementer(IRequestObserver)
class InFlight:
    """
    Knows a site's requests between their start and end.

    @param channels: the site's open connections (L{RegistrySite.channels}).
    """

    def __init__(self, channels: weakref.WeakSet[Any]) -> None:
        self.requests: set[Any] = set()
        self._channels = channels

    def requestStarted(self, request: Any) -> None:
        self.requests.add(request)

    def requestEnded(self, request: Any) -> None:
        self.requests.discard(request)

    async def drain(self, timeout: float, reactor: Any) -> None:
        """
        Wait until no request is in flight and their answers are written
        out, for at most C{timeout} seconds; then abort the connections
        of those still running.  Idle connections are closed.
        """
        deadline = reactor.seconds() + timeout
        if self.requests:
            _log.info("Waiting up to {timeout:g}s for {count} request(s) in flight",
                      timeout=timeout, count=len(self.requests))
        while self.requests and reactor.seconds() < deadline:
            await _sleep(reactor)
        if self.requests:
            _log.warn("{count} request(s) still in flight after the drain timeout: closing them",
                      count=len(self.requests))
            for request in list(self.requests):
                transport = getattr(request.channel, "transport", None)
                if transport is not None:
                    transport.abortConnection()
            self.requests.clear()
        # Closed gracefully: what an answer left in the buffer is written
        # before the connection goes (the reactor's shutdown would cut it).
        for transport in self._openTransports():
            transport.loseConnection()
        while self._openTransports() and reactor.seconds() < deadline:
            await _sleep(reactor)
        for transport in self._openTransports():
            transport.abortConnection()

    def _openTransports(self) -> list[Any]:
        transports = [getattr(channel, "transport", None) for channel in list(self._channels)]
        return [t for t in transports if t is not None and getattr(t, "connected", False)]


def _sleep(reactor: Any) -> Deferred[None]:
    return deferLater(reactor, _POLL, lambda: None)
