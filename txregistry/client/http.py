# -*- test-case-name: tests.client.test_http -*-
"""
The client's HTTP: one treq session per registry (persistent connections,
the TLS options of L{TLSOptions}) that retries what is worth retrying.

A request is retried, with exponential backoff, when the registry answers
5xx (other than 501 and 505) or 429 (after its C{Retry-After}, when that
says more), and when the connection is refused or drops before the answer
came.  Only a request whose body can be sent again is retried: one with a
streamed body (L{twisted.web.iweb.IBodyProducer}) gets one attempt, and
its caller retries the upload from where the registry says it ends.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any

import treq
from OpenSSL import SSL
from treq.client import HTTPClient
from twisted.internet import error as netError
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IReactorTime
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    PrivateCertificate,
    optionsForClientTLS,
    platformTrust,
    trustRootFromCertificates,
)
from twisted.internet.task import deferLater
from twisted.web import client as webClient
from twisted.web._newclient import HTTP11ClientProtocol
from twisted.web.iweb import IBodyProducer, IPolicyForHTTPS, IResponse
from zope.interface import implementer

from txregistry.client.errors import NetworkError

__all__ = ["TLSOptions", "Session", "RETRIED_STATUSES"]

#: Statuses worth asking again.
RETRIED_STATUSES = frozenset({429} | set(range(500, 600))) - {501, 505, 507}

#: Failures of the connection rather than answers.
_DROPPED = (
    netError.ConnectError,
    netError.ConnectionLost,
    netError.ConnectionDone,
    netError.TimeoutError,
    webClient.ResponseNeverReceived,
    webClient.RequestTransmissionFailed,
    webClient.ResponseFailed,
)


@dataclass(frozen=True)
class TLSOptions:
    """
    How to check (and present) certificates.

    @ivar caFile: PEM bundle of the authorities to trust instead of the
        platform's.
    @ivar certFile: PEM client certificate (with C{keyFile}, or the key in
        the same file), for registries that ask for one.
    @ivar insecure: do not check the registry's certificate (still TLS;
        plain HTTP is L{txregistry.client.registry.Registry}'s
        C{plainHTTP}).
    """

    caFile: str | None = None
    certFile: str | None = None
    keyFile: str | None = None
    insecure: bool = False


@implementer(IPolicyForHTTPS)
class _Policy:
    def __init__(self, options: TLSOptions) -> None:
        self._trust: Any = platformTrust()
        if options.caFile:
            with open(options.caFile, "rb") as f:
                pem = f.read()
            certificates = [
                Certificate.loadPEM(b"-----BEGIN CERTIFICATE-----" + part)
                for part in pem.split(b"-----BEGIN CERTIFICATE-----")[1:]
            ]
            self._trust = trustRootFromCertificates(certificates)
        self._client: Any = None
        if options.certFile:
            with open(options.certFile, "rb") as f:
                certificate = f.read()
            key = certificate
            if options.keyFile:
                with open(options.keyFile, "rb") as f:
                    key = f.read()
            self._client = PrivateCertificate.loadPEM(certificate + b"\n" + key)
        self._insecure = options.insecure

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        if self._insecure:
            return _Unverified(hostname.decode("ascii"), self._client)
        return optionsForClientTLS(
            hostname.decode("ascii"), trustRoot=self._trust, clientCertificate=self._client
        )


@implementer(IOpenSSLClientConnectionCreator)
class _Unverified:
    """
    TLS that checks nothing of the registry's certificate (C{insecure}):
    still encrypted, and still sending the host's name (SNI).
    """

    def __init__(self, hostname: str, clientCertificate: Any) -> None:
        kwargs: dict[str, Any] = {"verify": False}
        if clientCertificate is not None:
            kwargs["privateKey"] = clientCertificate.privateKey.original
            kwargs["certificate"] = clientCertificate.original
        self._context = CertificateOptions(**kwargs).getContext()
        self._hostname = hostname

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        if not isIPAddress(self._hostname) and not isIPv6Address(self._hostname):
            connection.set_tlsext_host_name(self._hostname.encode("idna"))
        return connection


class _TunedProtocol(HTTP11ClientProtocol):
    """
    An HTTP/1.1 client connection that reads bodies in larger pieces.

    Twisted's TCP transport reads 64 KiB per C{recv()}: a blob copied
    between two registries made 16k trips per GiB through the response
    parser, the digest and the request's body.  128 KiB halves them.
    Larger reads cost more than they save: a buffer that size is a fresh
    C{mmap} per C{recv()}, and its page faults took more system time than
    the trips saved (the copy figure's client: about 3.0 s of CPU per GiB
    at 128 KiB, 3.4-3.7 s at 64 KiB, 3.7-4.0 s at 256 KiB and 1 MiB).
    The transport's C{bufferSize} is also its pause threshold: a producer
    writing to the connection is paused once that much waits to be sent.
    Sending more per C{send()} than Twisted's 128 KiB made no difference.
    """

    #: Bytes asked of each C{recv()}, and buffered before the producer
    #: writing to this connection is paused.
    bufferSize = 128 * 1024

    def connectionMade(self) -> None:
        super().connectionMade()
        transport: Any = self.transport
        # Under TLS the TCP transport is the TLS protocol's own transport.
        tcp = transport if hasattr(transport, "SEND_LIMIT") else getattr(transport, "transport", None)
        if tcp is not None and hasattr(tcp, "SEND_LIMIT") and hasattr(tcp, "bufferSize"):
            tcp.bufferSize = self.bufferSize


class _TunedFactory(webClient._HTTP11ClientFactory):
    def buildProtocol(self, addr: Any) -> HTTP11ClientProtocol:
        return _TunedProtocol(self._quiescentCallback)


class _Pool(webClient.HTTPConnectionPool):
    """
    Persistent connections of L{_TunedProtocol}s.
    """

    # Typed as any client factory: a user of the session may put its own
    # (the pull-through cache's quiet one) in its place.
    _factory: type[webClient._HTTP11ClientFactory] = _TunedFactory


def _retryAfter(response: IResponse, now: float) -> float | None:
    values = response.headers.getRawHeaders(b"retry-after") or []
    if not values:
        return None
    value = values[0].decode("latin-1").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - now)


class Session:
    """
    HTTP requests to registries, retried.

    @ivar attempts: how many times a request is tried in all.
    @ivar backoff: the first wait between attempts (seconds); doubled
        each time, up to L{maxBackoff}.
    """

    attempts = 5
    backoff = 0.25
    maxBackoff = 8.0

    def __init__(self, reactor: Any = None, tls: TLSOptions = TLSOptions(),
                 agent: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self.reactor = reactor
        self.tls = tls
        self.pool = _Pool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = 8
        if agent is None:
            agent = webClient.Agent(reactor, contextFactory=_Policy(tls), pool=self.pool)
        self.client = HTTPClient(agent)

    def close(self) -> Deferred[None]:
        """
        Close the idle connections (a command does before it exits).
        """
        return self.pool.closeCachedConnections()

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, list[str]] | None = None,
        data: bytes | IBodyProducer | None = None,
        followRedirects: bool = True,
    ) -> IResponse:
        """
        Send a request; retry it while worth it (see the module).

        @param data: the body: bytes (which can be sent again) or a
            producer (which cannot: one attempt).
        @return: the last answer, whatever its status.
        @raise NetworkError: the connection failed on the last attempt.
        """
        retryable = data is None or isinstance(data, bytes)
        attempts = self.attempts if retryable else 1
        delay = self.backoff
        clock: IReactorTime = self.reactor
        for attempt in range(1, attempts + 1):
            try:
                response: IResponse = await self.client.request(
                    method, url, headers=headers, data=data,  # type: ignore[arg-type]
                    allow_redirects=followRedirects and method in ("GET", "HEAD"),
                    # treq would otherwise keep every body it receives in memory.
                    unbuffered=True,
                )
            except _DROPPED as e:
                if _cancelled(e):
                    # The caller gave up (a time limit): not a connection
                    # to try again.
                    raise CancelledError() from None
                if attempt == attempts:
                    raise NetworkError(f"{method} {url}: {describe(e)}") from None
            else:
                if response.code not in RETRIED_STATUSES or attempt == attempts:
                    return response
                after = _retryAfter(response, time.time())
                await treq.content(response)
                if after is not None:
                    delay = max(delay, min(after, 60.0))
            await deferLater(clock, delay, lambda: None)
            delay = min(delay * 2, self.maxBackoff)
        raise AssertionError("unreachable")


def _cancelled(error: BaseException) -> bool:
    """
    Whether C{error} is the agent's report of the request being cancelled
    (a L{twisted.web.client.ResponseNeverReceived} of a L{CancelledError}).
    """
    return any(reason.check(CancelledError) for reason in getattr(error, "reasons", None) or ())


def describe(failure: BaseException | None) -> str:
    """
    What went wrong with a connection, in a few words (a
    L{twisted.web.client.ResponseFailed} holds several failures).
    """
    reasons = getattr(failure, "reasons", None)
    if reasons:
        return "; ".join(str(r.value).strip() or type(r.value).__name__ for r in reasons)
    return str(failure) or type(failure).__name__
