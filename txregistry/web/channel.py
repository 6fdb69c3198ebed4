# -*- test-case-name: tests.web.test_channel -*-
"""
An L{HTTPChannel} that dispatches a request when its headers are complete.

The stock channel hands a request to its resource only after the whole
body has been read.  L{RegistryChannel} calls
L{RegistryRequest.headersReceived} as soon as the blank line after the
headers arrives, and the body then streams into the request's
L{RequestBody}.  So a route can refuse a request (bad name, unknown
upload, read-only mode) before reading its body, and can pipe a body
anywhere with backpressure.

This subclass leans on L{HTTPChannel} internals (C{_command}, C{_path},
C{_version}, C{_networkProducer}); C{setup.py} bounds the Twisted version
and the tests in C{tests/web} exercise every one of them.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.web.http import RESPONSES, HTTPChannel
from zope.interface import implementer

#: The first byte of a TLS record carrying a handshake (a ClientHello).
_TLS_HANDSHAKE = 0x16

_PLAIN_HTTP_ONLY = (
    b"HTTP/1.0 400 Bad Request\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"Client sent an HTTP request to an HTTPS server.\n"
)


class _TransportGate:
    """
    Pauses a transport while any of its holders wants it paused.

    The channel pauses and resumes its transport for its own reasons
    (pipelining, a full send buffer); a request body pauses it when its
    consumer lags.  Each holder's wish is kept apart, so one holder's
    resume cannot undo another's pause.
    """

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._holders: set[str] = set()

    def pause(self, holder: str) -> None:
        if not self._holders:
            self._transport.pauseProducing()
        self._holders.add(holder)

    def holds(self, holder: str) -> bool:
        """
        Whether C{holder} currently wants the transport paused.
        """
        return holder in self._holders

    def resume(self, holder: str) -> None:
        if holder in self._holders:
            self._holders.discard(holder)
            if not self._holders:
                self._transport.resumeProducing()


class _ChannelView:
    """
    What L{HTTPChannel} sees as its C{_networkProducer}: its own pause and
    resume go through the gate as the C{"channel"} holder.
    """

    def __init__(self, gate: _TransportGate, transport: Any) -> None:
        self._gate = gate
        self._transport = transport

    def pauseProducing(self) -> None:
        self._gate.pause("channel")

    def resumeProducing(self) -> None:
        self._gate.resume("channel")

    def stopProducing(self) -> None:
        self._transport.stopProducing()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._transport.unregisterProducer()


@implementer(IHalfCloseableProtocol)
class RegistryChannel(HTTPChannel):
    """
    The registry's HTTP/1.x connection.

    It is half-closeable: a client that shuts down its sending side after
    a whole request (C{nc -N}, some proxies) still gets the answer, and the
    connection closes after it.

    @ivar drainLimit: when a response is finished while its request body is
        still arriving (a refusal), up to this many body bytes are read and
        dropped so the connection can carry the next request; past it the
        connection is closed.
    """

    drainLimit = 16 * 1024 * 1024

    #: Bytes asked of each recv() while a large (or chunked) body arrives.
    #: Twisted's 64 KiB means 16k trips through the parser, the digest and
    #: the storage writer per GiB pushed; but a recv() buffer this size
    #: costs an mmap per call, so small requests keep the default.
    bodyReceiveSize = 1024 * 1024
    #: Bodies larger than this get L{bodyReceiveSize}.
    largeBody = 1024 * 1024
    #: Bytes handed to each send(); Twisted's 128 KiB means 8k reactor
    #: iterations per GiB pulled.
    sendLimit = 1024 * 1024

    #: The L{RegistrySite} that built this channel (set by C{Site.buildProtocol}).
    site: Any = None
    _sniffed = False
    _tcp = False
    _host: Any = None
    _secure: bool | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        transport: Any = self.transport
        # A TCP transport, not a TLS wrapper (which has its own buffers).
        self._tcp = "SEND_LIMIT" in dir(type(transport))
        if self._tcp:
            transport.SEND_LIMIT = self.sendLimit
        self._gate = _TransportGate(self._networkProducer)
        self._networkProducer = _ChannelView(  # type: ignore[assignment]
            self._gate, self._networkProducer
        )

    def isSecure(self) -> bool:
        # Asked several times per request (host name, URL scheme, Klein's
        # binding), each an ISSLTransport adaptation otherwise; the
        # transport is the connection's for its whole life.
        if self._secure is None:
            self._secure = super().isSecure()
        return self._secure

    def getHost(self) -> Any:
        # twisted.web's Request.__init__ asks for it on every request: one
        # getsockname() and an address object each time otherwise.
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def _receiveSize(self, size: int | None) -> None:
        if self._tcp:
            transport: Any = self.transport
            transport.bufferSize = size or type(transport).bufferSize

    def pauseBody(self) -> None:
        """
        Stop reading from the connection until L{resumeBody}, for a request
        body whose consumer lags.
        """
        self._gate.pause("body")

    def resumeBody(self) -> None:
        if self._gate.holds("body"):
            self._gate.resume("body")
            # The client gets a whole idle period from the moment we read
            # again, not what was left of one when we stopped.
            self.resetTimeout()

    def timeoutConnection(self) -> None:
        """
        The connection was quiet for the idle timeout.  If that is because
        a request body's consumer lags and we stopped reading, the client
        is not idle, we are: wait another period rather than drop an upload
        for our own slowness.
        """
        if self._gate.holds("body"):
            self.setTimeout(self.timeOut)
            return
        super().timeoutConnection()

    def readConnectionLost(self) -> None:
        """
        The client sends nothing more.  Requests it sent whole are still
        answered, then the connection closes; a request whose body will
        now never arrive, or nothing at all, closes it at once.
        """
        request = self.requests[-1] if self.requests else None
        body = getattr(request, "body", None)
        if request is None or (body is not None and not body.complete):
            assert self.transport is not None
            self.transport.loseConnection()
            return
        self.persistent = False

    def writeConnectionLost(self) -> None:
        # We never half-close our side.
        pass

    def dataReceived(self, data: bytes) -> None:
        if not self._sniffed and data:
            self._sniffed = True
            if data[0] == _TLS_HANDSHAKE:
                # A TLS client (docker probing https://) would otherwise
                # wait for our timeout; answer the way Go's server does.
                assert self.transport is not None
                self.transport.write(_PLAIN_HTTP_ONLY)
                self.transport.loseConnection()
                self.dataReceived = lambda data: None  # type: ignore[method-assign]
                return
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        request = self.requests[-1]
        request.parseCookies()
        self.persistent = self.checkPersistence(request, self._version)
        request.gotLength(self.length)
        if self.length is None or self.length > self.largeBody:
            self._receiveSize(self.bodyReceiveSize)
        request.headersReceived(self._command, self._path, self._version)
        expect = request.requestHeaders.getRawHeaders(b"expect")
        if (
            expect
            and expect[0].lower() == b"100-continue"
            and self._version == b"HTTP/1.1"
            and not request.startedWriting
            and not request.finished
        ):
            self._send100Continue()

    def allContentReceived(self) -> None:
        self._receiveSize(None)
        if not self.requests:
            # The response was finished and the connection is closing;
            # this is the tail of a body nobody reads.
            self.length = 0
            self._transferDecoder = None
            return
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        body = getattr(request, "body", None)
        if body is not None and not body.complete:
            if self.persistent:
                # The response went out before the body came in: drop the
                # rest of the body, then carry on with the next request.
                body.discard(self.drainLimit, self._stopDraining)
                body.whenComplete().addCallback(
                    lambda _: HTTPChannel.requestDone(self, request)
                )
                return
            body.discard()
        super().requestDone(request)

    def _stopDraining(self) -> None:
        self.persistent = False
        self.loseConnection()

    def _respondToBadRequestAndDisconnect(self) -> None:
        # Twisted's parser calls this for broken framing (bad Content-Length,
        # malformed chunks, bad header bytes, a garbage request line).
        self._refuse(400, "malformed HTTP request")

    def lineLengthExceeded(self, line: bytes) -> None:
        if self._HTTPChannel__first_line:  # type: ignore[attr-defined]
            self._refuse(414, "request line too long")
        elif line[:14].lower() == b"authorization:":
            # Credentials no login could come of (a 1 MiB token): refused
            # as credentials, so that a client shows a login failure.
            self._refuse(401, "the Authorization header is too long")
        else:
            self._refuse(431, "request header too long")

    def _refuse(self, status: int, message: str) -> None:
        """
        Answer a request the parser cannot take with the JSON error
        envelope, then close: the framing is lost, so nothing after it
        on this connection can be trusted.
        """
        request = self.requests[-1] if self.requests else None
        if request is None or not request.startedWriting:
            body = self.site.errorBody(status, message)
            head = (
                b"HTTP/1.1 %d %s\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: %d\r\n"
                b"Connection: close\r\n\r\n"
            ) % (status, RESPONSES.get(status, b"Bad Request"), len(body))
            assert self.transport is not None
            self.transport.write(head + body)
        self.persistent = False
        self.loseConnection()
