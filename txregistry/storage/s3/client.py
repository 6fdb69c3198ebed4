# -*- test-case-name: tests.storage.test_s3 -*-
"""
L{S3Client}: signed S3 requests over a non-blocking, streaming transport.

Signing and credentials are botocore's (the AWS SDK's own SigV4 and V2
signers and its credential chain: the configuration's keys, else the
environment, the shared credentials and config files, SSO, the container
or instance metadata), so they behave as every other AWS tool does; the
transport is treq over Twisted's agent (persistent connections, response
bodies delivered as a stream with backpressure), so nothing waits on the
network in the reactor thread.  What can block — resolving or refreshing
credentials (files, metadata), hashing a part's payload — runs on the
driver's L{BlockingPool}.

Throttling and server errors are retried with exponential backoff and
jitter; when the retries run out the request fails with
L{StorageUnavailableError}, which the registry answers as 503.
"""

from __future__ import annotations

import hashlib
import io
import random
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import Session
from treq.client import HTTPClient
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectError, ConnectionLost, DNSLookupError, TimeoutError
from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    FileBodyProducer,
    HTTPConnectionPool,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, IPolicyForHTTPS
from zope.interface import implementer

from txregistry.storage.blocking import BlockingPool
from txregistry.storage.errors import StorageError, StorageUnavailableError
from txregistry.storage.remote import InFlight
from txregistry.storage.s3.parameters import S3Parameters

__all__ = ["S3Client", "S3Error", "elementText", "parseXML"]

_log = Logger()

#: Seconds before the first retry; each later one waits twice as long
#: (with jitter), up to L{MAX_DELAY}.
FIRST_DELAY = 0.1
MAX_DELAY = 5.0
#: Attempts per request, the first included.
ATTEMPTS = 6

#: Statuses that mean "try again": throttling and server trouble.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Error codes S3 (and compatible stores) send for the same, sometimes
#: with another status.
_RETRY_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
     "ServiceUnavailable", "RequestTimeTooSkewed"}
)
_RETRY_FAILURES = (
    ConnectError, ConnectionLost, DNSLookupError, TimeoutError, ResponseFailed,
    ResponseNeverReceived,
)

#: Bodies at least this long are hashed for signing on a thread.
_HASH_IN_THREAD = 256 * 1024

#: Bytes of a request body handed to the connection at a time.
_BODY_SLICE = 256 * 1024

#: Seconds to wait for a response's headers before giving up on the try.
RESPONSE_TIMEOUT = 120.0


class S3Error(StorageError):
    """
    S3 refused a request.

    @ivar status: the HTTP status.
    @ivar code: S3's error code (C{NoSuchKey}, C{AccessDenied}, ...), or
        C{""} when the answer had no body (a C{HEAD}).
    """

    def __init__(self, status: int, code: str, message: str, what: str) -> None:
        super().__init__(status, code, message, what)
        self.status = status
        self.code = code
        self.message = message
        self.what = what

    def __str__(self) -> str:
        detail = f"{self.code}: {self.message}" if self.code else f"HTTP {self.status}"
        return f"S3 {self.what}: {detail}".rstrip(": ")


def parseXML(body: bytes) -> ElementTree.Element:
    """
    Parse an S3 answer, dropping the XML namespace from every tag.
    """
    root = ElementTree.fromstring(body)
    for element in root.iter():
        if "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def elementText(element: ElementTree.Element, tag: str, default: str = "") -> str:
    """
    The text of C{element}'s first child called C{tag}.
    """
    child = element.find(tag)
    if child is None or child.text is None:
        return default
    return child.text


def _bodyProducer(body: bytes) -> IBodyProducer:
    """
    A request body that is already in memory (a part, a small value): S3
    wants each body's length, and a retry sends it again.  It is written
    to the connection a slice at a time as the connection drains, so the
    transport never holds a second copy of a whole part.
    """
    return FileBodyProducer(io.BytesIO(body), readSize=_BODY_SLICE)


class _PrehashedSigner(S3SigV4Auth):
    """
    SigV4 for S3, taking the payload's SHA-256 from the request context
    when the caller hashed it already (on a thread, for a large part).
    """

    def payload(self, request: AWSRequest) -> str:
        known = request.context.get("payloadSHA256")
        if known is not None:
            return str(known)
        return str(super().payload(request))


@implementer(IPolicyForHTTPS)
class _NoVerification:
    """
    TLS without certificate checks, for C{skipverify: true}.
    """

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return CertificateOptions(verify=False)


class S3Client:
    """
    Signed requests to one bucket.

    @ivar parameters: the driver's L{S3Parameters}.
    """

    def __init__(self, parameters: S3Parameters, reactor: Any, pool: BlockingPool) -> None:
        self.parameters = parameters
        self._reactor = reactor
        self._pool = pool
        self._credentials: Any = None
        self._waiters: list[Deferred[None]] = []
        self._connections = HTTPConnectionPool(reactor, persistent=True)
        self._connections.maxPersistentPerHost = 32
        self._connections.cachedConnectionTimeout = 60
        policy: IPolicyForHTTPS = (
            _NoVerification() if parameters.skipVerify else BrowserLikePolicyForHTTPS()
        )
        self._http = HTTPClient(Agent(reactor, contextFactory=policy, pool=self._connections))
        self._inFlight = InFlight()
        scheme, _, host = parameters.endpoint.partition("://")
        if parameters.pathStyle:
            self._base = f"{parameters.endpoint}/{parameters.bucket}"
        else:
            self._base = f"{scheme}://{parameters.bucket}.{host}"

    # Credentials

    def useCredentials(self, credentials: Any) -> None:
        """
        Sign with C{credentials} (botocore L{Credentials}, refreshable or
        not) from now on.
        """
        self._credentials = credentials

    def resolveCredentials(self) -> Any:
        """
        Find the credentials, blocking: the configured keys, else
        botocore's chain (environment, AWS files, metadata services).

        @raise StorageError: when there are none.
        """
        p = self.parameters
        if p.accessKey is not None and p.secretKey is not None:
            return Credentials(p.accessKey, p.secretKey)
        credentials = Session().get_credentials()
        if credentials is None:
            raise StorageError(
                "storage.s3: no credentials (set accesskey and secretkey, "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile)"
            )
        return credentials

    def ready(self) -> Deferred[None]:
        """
        Resolve the credentials once, on a thread, unless given already.
        A failure is reported to every waiter, and the next call tries
        again.
        """
        if self._credentials is not None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        if len(self._waiters) == 1:
            self._pool.run(self.resolveCredentials).addCallbacks(
                self._resolved, self._notResolved
            )
        return waiter

    def _resolved(self, credentials: Any) -> None:
        self.useCredentials(credentials)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _notResolved(self, failure: Any) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(failure)

    def _frozen(self) -> Any:
        return self._credentials.get_frozen_credentials()

    # URLs

    def url(self, key: str | None, query: Mapping[str, str] | Sequence[tuple[str, str]] = ()) -> str:
        """
        The URL of C{key} (or of the bucket, for L{None}), with C{query}.
        """
        url = self._base + "/" + (quote(key, safe="/~") if key else "")
        if not key and self.parameters.pathStyle:
            url = self._base
        items = list(query.items()) if isinstance(query, Mapping) else list(query)
        if items:
            url += "?" + "&".join(
                quote(k, safe="-_.~") + ("=" + quote(v, safe="-_.~") if v is not None else "")
                for k, v in items
            )
        return url

    def _signer(self, credentials: Any) -> Any:
        if self.parameters.v4auth:
            return _PrehashedSigner(credentials, "s3", self.parameters.region)
        return HmacV1Auth(credentials)

    def _sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        if len(body) >= _HASH_IN_THREAD:
            request.context["payloadSHA256"] = hashlib.sha256(body).hexdigest()
        self._signer(self._frozen()).add_auth(request)
        return dict(request.headers.items())

    def presign(self, key: str, method: str, expiry: float) -> Deferred[str]:
        """
        A URL that lets its holder C{method} C{key} without credentials
        for C{expiry} seconds.
        """

        def sign() -> str:
            request = AWSRequest(method=method, url=self.url(key), headers={})
            credentials = self._frozen()
            if self.parameters.v4auth:
                S3SigV4QueryAuth(credentials, "s3", self.parameters.region,
                                 expires=int(expiry)).add_auth(request)
            else:
                HmacV1QueryAuth(credentials, expires=int(expiry)).add_auth(request)
            return str(request.url)

        return self.ready().addCallback(lambda _: self._pool.run(sign))

    # Requests

    async def request(
        self,
        method: str,
        key: str | None,
        query: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        expect: Sequence[int] = (200,),
        what: str = "",
    ) -> Any:
        """
        Send a signed request, retrying throttling, server errors and lost
        connections with backoff.

        @param expect: the statuses that are answers; any other is an
            L{S3Error} (after the retries for the retryable ones).
        @return: the treq response, its body not yet read (a streaming
            reader consumes it; others call C{content()}).
        @raise S3Error: for a refusal.
        @raise StorageUnavailableError: when the retries run out.
        """
        await self.ready()
        url = self.url(key, query)
        what = what or f"{method} {key or self.parameters.bucket}"
        allHeaders = {"User-Agent": self.parameters.userAgent}
        allHeaders.update(headers or {})
        if body or method in ("PUT", "POST"):
            allHeaders["Content-Length"] = str(len(body))
        last = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                delay = min(MAX_DELAY, FIRST_DELAY * 2 ** (attempt - 1))
                await self._inFlight.wait(
                    deferLater(self._reactor, delay * random.uniform(0.5, 1.0), lambda: None))
            self._inFlight.checkOpen(what)
            signed = await self._pool.run(self._sign, method, url, allHeaders, body)
            signed.pop("Content-Length", None)
            try:
                response = await self._inFlight.wait(self._http.request(
                    method,
                    url,
                    headers=Headers({k: [v] for k, v in signed.items()}),
                    data=_bodyProducer(body) if (body or method in ("PUT", "POST")) else None,
                    unbuffered=True,
                    allow_redirects=False,
                    timeout=RESPONSE_TIMEOUT,
                ))
            except _RETRY_FAILURES as e:
                self._inFlight.checkOpen(what)
                last = f"{type(e).__name__}: {e}"
                continue
            except Exception as e:
                self._inFlight.checkOpen(what)
                if type(e).__name__ == "CancelledError":
                    last = "no answer in time"
                    continue
                raise
            if response.code in expect:
                return response
            error = await self._error(response, what)
            if response.code in _RETRY_STATUSES or error.code in _RETRY_CODES:
                last = str(error)
                continue
            raise error
        _log.warn("S3 unavailable for {what}: {last}", what=what, last=last)
        raise StorageUnavailableError(
            f"S3 {what}: no answer after {ATTEMPTS} attempts ({last})"
        )

    async def _error(self, response: Any, what: str) -> S3Error:
        try:
            body = await response.content()
        except Exception:
            body = b""
        code = message = ""
        if body:
            try:
                root = parseXML(body)
            except ElementTree.ParseError:
                message = body[:200].decode("utf-8", "replace")
            else:
                code = elementText(root, "Code")
                message = elementText(root, "Message")
        return S3Error(response.code, code, message, what)

    async def call(self, method: str, key: str | None, **kwargs: Any) -> bytes:
        """
        L{request}, returning the whole (small) body, and failing with
        L{S3Error} for an error S3 sends with a 200 (C{CopyObject},
        C{UploadPartCopy} and C{CompleteMultipartUpload} can).
        """
        what = kwargs.get("what") or f"{method} {key or self.parameters.bucket}"
        for attempt in range(ATTEMPTS):
            response = await self.request(method, key, **kwargs)
            body: bytes = await response.content()
            if body[:200].lstrip().startswith(b"<?xml") and b"<Error>" in body[:400]:
                root = parseXML(body)
                code = elementText(root, "Code")
                if code in _RETRY_CODES and attempt + 1 < ATTEMPTS:
                    continue
                raise S3Error(response.code, code, elementText(root, "Message"), what)
            return body
        raise StorageUnavailableError(f"S3 {what}: no answer after {ATTEMPTS} attempts")

    def close(self) -> Deferred[None]:
        """
        Cancel what is under way and close the kept-alive connections.
        """
        self._inFlight.close()
        return self._connections.closeCachedConnections()
