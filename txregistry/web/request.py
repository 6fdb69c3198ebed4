# -*- test-case-name: tests.web.test_channel -*-
"""
A L{twisted.web.server.Request} that is processed when its headers arrive
and whose body is a L{RequestBody} rather than a file.
"""

from __future__ import annotations

import contextvars
import io
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.python.failure import Failure
from twisted.web.http import parse_qs
from twisted.web.server import Request

from txregistry.web.body import RequestBody

T = TypeVar("T")


class RegistryRequest(Request):
    """
    A request whose body streams.

    @ivar body: the L{RequestBody}; routes read it, deliver it to a consumer,
        or leave it (then it is read and dropped after the response).
    @ivar startedAt: reactor time at which the headers were complete.
    @ivar actor: the L{IActor} the door let in (L{None} without auth).
    @ivar caller: the L{Caller} the model's layers see (made on first use
        by L{txregistry.api.callers.callerOf}).
    """

    body: RequestBody
    startedAt: float = 0.0
    #: The door's L{IActor}, once it let the request in.
    actor: Any = None
    #: The request's L{txregistry.interfaces.Caller}, once made.
    caller: Any = None
    #: Whether the site's observers were told that it ended.
    endSeen: bool = False
    #: Whether it ended with its answer sent (not its client gone).
    answered: bool = False
    #: The C{contextvars} context the request is rendered in (an
    #: observer's: the request's trace span), or L{None} for the caller's.
    context: contextvars.Context | None = None

    def inContext(self, function: Callable[..., T], *args: Any) -> T:
        """
        Call C{function} in the request's L{context}: what renders a part of
        the request later (after an asynchronous login) calls it through
        this, so that what it starts (coroutines copy the context they are
        made in) still belongs to the request.
        """
        if self.context is None:
            return function(*args)
        return self.context.copy().run(function, *args)

    def process(self) -> None:
        self.inContext(super().process)

    def gotLength(self, length: int | None) -> None:
        # Code in twisted.web that reads self.content finds an empty body.
        self.content = io.BytesIO()
        channel: Any = self.channel  # a RegistryChannel
        self.body = RequestBody(length, channel.pauseBody, channel.resumeBody)

    def handleContentChunk(self, data: bytes) -> None:
        self.body.dataReceived(data)

    def headersReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """
        Route and render the request, before its body.

        This is L{twisted.web.http.Request.requestReceived} without the form
        parsing, which needs the body.
        """
        channel: Any = self.channel
        self.startedAt = channel.site.reactor.seconds()
        self.args = {}
        self.method, self.uri = command, path
        self.clientproto = version
        pathPart, sep, query = self.uri.partition(b"?")
        self.path = pathPart
        if sep:
            self.args = parse_qs(query, 1)
        if channel.site.observers:
            channel.site.requestStarted(self)
        self.process()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # Called by the channel once the body is complete; the request was
        # processed when its headers arrived.
        self.body.bodyComplete()

    def connectionLost(self, reason: Failure) -> None:
        body = getattr(self, "body", None)
        if body is not None:
            body.connectionLost(reason)
        # Read before: twisted.web forgets the channel there.
        site = getattr(getattr(self, "channel", None), "site", None)
        super().connectionLost(reason)
        if site is not None and site.observers and self.startedAt and not self.finished:
            site.requestEnded(self)

    def processingFailed(self, reason: Failure) -> Any:
        # Never show a traceback to a client: log it, answer 500.
        self._log.failure("Unhandled error processing {request}", reason, request=self)
        if self.finished or self._disconnected:
            return None
        if not self.startedWriting:
            channel: Any = self.channel
            body = channel.site.errorBody(500, None)
            self.setResponseCode(500)
            self.responseHeaders.setRawHeaders(b"content-type", [b"application/json"])
            self.responseHeaders.setRawHeaders(b"content-length", [b"%d" % len(body)])
            self.write(body)
        self.finish()
        return reason
