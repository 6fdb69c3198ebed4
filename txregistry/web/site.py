# -*- test-case-name: tests.web.test_channel -*-
"""
The registry's L{Site}: builds L{RegistryChannel}s and
L{RegistryRequest}s, writes one access-log event per request, and tells
its L{IRequestObserver}s (metrics, traces) when each request starts and
ends.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import IResource
from twisted.web.server import Site
from zope.interface import Interface

from txregistry.web.channel import RegistryChannel
from txregistry.web.request import RegistryRequest

# Module level: a Logger class attribute would take the class's namespace.
_accessLog = Logger(namespace="txregistry.access")


class IRequestObserver(Interface):
    """
    Sees each request of a L{RegistrySite} start and end: where metrics
    and traces are measured, at no cost to a site without observers.
    """

    def requestStarted(request: Any) -> None:
        """
        C{request}'s headers are in; it is about to be rendered.
        """

    def requestEnded(request: Any) -> None:
        """
        C{request} is over: answered (C{request.answered}), or its client
        went away first.  Called once per L{requestStarted}.
        """


class RegistrySite(Site):
    """
    @ivar accessLog: whether to log each request.
    @ivar observers: the L{IRequestObserver}s, in order.
    @ivar errorBody: makes the JSON body of an answer the HTTP layer gives
        by itself (a 400 for broken framing, a 500 for an unhandled
        failure), given its status and message; the API's one error
        writer, handed in by the composition root, since this layer
        knows no API.
    """

    protocol = RegistryChannel  # type: ignore[assignment]
    requestFactory = RegistryRequest
    displayTracebacks = False
    noisy = False

    def __init__(
        self,
        resource: IResource,
        errorBody: Callable[[int, str | None], bytes],
        accessLog: bool = True,
        timeout: float = 300,
        reactor: IReactorTime | None = None,
    ) -> None:
        super().__init__(resource, requestFactory=RegistryRequest, timeout=timeout, reactor=reactor)
        self.errorBody = errorBody
        self.accessLog = accessLog
        self.observers: list[IRequestObserver] = []
        #: Every open connection, so that a stopping registry can close them.
        self.channels: weakref.WeakSet[Any] = weakref.WeakSet()

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)
        if channel is not None:
            self.channels.add(channel)
        return channel

    def requestStarted(self, request: Any) -> None:
        """
        Called by L{RegistryRequest} when its headers are in.
        """
        for observer in self.observers:
            observer.requestStarted(request)

    def requestEnded(self, request: Any) -> None:
        """
        Called once per request, when it is answered (from L{log}) or when
        its client went away before.
        """
        if request.endSeen:
            return
        request.endSeen = True
        for observer in self.observers:
            observer.requestEnded(request)

    def log(self, request: Any) -> None:
        if self.observers and request.startedAt:
            # Called from Request.finish, before it sets finished.
            request.answered = True
            self.requestEnded(request)
        if not self.accessLog:
            return
        now = self.reactor.seconds()
        started = getattr(request, "startedAt", 0.0) or now
        address = request.getClientAddress()
        forwarded = request.getHeader(b"x-forwarded-for")
        _accessLog.info(
            '{remote} "{method} {path} {protocol}" {status} {bytes} {duration:.3f}s',
            remote=getattr(address, "host", "-"),
            forwardedFor=forwarded.decode("latin-1") if forwarded else None,
            method=(request.method or b"-").decode("latin-1"),
            path=(request.uri or b"-").decode("latin-1"),
            protocol=(request.clientproto or b"-").decode("latin-1"),
            status=request.code,
            bytes=request.sentLength,
            duration=now - started,
            userAgent=(request.getHeader(b"user-agent") or b"").decode("latin-1"),
            # Who the door let in (an IActor's name), if there is a door.
            user=getattr(getattr(request, "actor", None), "name", None),
        )
