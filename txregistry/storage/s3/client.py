# -*- test-case-name: tests.storage.test_s3 -*-
"""
L{S3Client}: signed S3 requests over a non-blocking, streaming transport.

Signing and credentials are botocore's (the AWS SDK's own SigV4 and V2
signers and its credential chain: the configuration's keys, else the
environment, the shared credentials and config files, SSO, the container
or instance metadata), so they behave as every other AWS tool does; the
transport is L{txregistry.storage.remote.RemoteStore}, the Azure and GCS
drivers' too: treq over Twisted's agent (persistent connections, response
bodies delivered as a stream with backpressure), so nothing waits on the
network in the reactor thread.  What can block — resolving or refreshing
credentials (files, metadata), hashing a part's payload — runs on the
driver's L{BlockingPool}.

Throttling and server errors (and S3's own "try again" error codes) are
retried with exponential backoff and jitter; when the retries run out the
request fails with L{StorageUnavailableError}, which the registry answers
as 503.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import Session
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from txregistry.storage.blocking import BlockingPool
from txregistry.storage.errors import StorageError, StorageUnavailableError
from txregistry.storage.remote import ATTEMPTS, RemoteError, RemoteStore
from txregistry.storage.s3.parameters import S3Parameters

__all__ = ["S3Client", "S3Error", "elementText", "parseXML"]

_log = Logger()

#: Error codes S3 (and compatible stores) send for "try again", sometimes
#: with another status than the retried ones (L{RETRY_STATUSES}).
_RETRY_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
     "ServiceUnavailable", "RequestTimeTooSkewed"}
)

#: Bodies at least this long are hashed for signing on a thread.
_HASH_IN_THREAD = 256 * 1024


class S3Error(RemoteError):
    """
    S3 refused a request.

    @ivar status: the HTTP status.
    @ivar code: S3's error code (C{NoSuchKey}, C{AccessDenied}, ...), or
        C{""} when the answer had no body (a C{HEAD}).
    """

    store = "S3"


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
        self._store = RemoteStore(reactor, "S3", parameters.skipVerify, parameters.userAgent)
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
        return await self._store.request(
            method, self.url(key, query), self._signed, self._error, headers=headers, body=body,
            expect=expect, what=what or f"{method} {key or self.parameters.bucket}",
            retryCodes=_RETRY_CODES,
        )

    def _signed(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Deferred[dict[str, str]]:
        # Signing hashes the body: on the pool, not the reactor.
        return self._pool.run(self._sign, method, url, headers, body)

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
        return self._store.close()
