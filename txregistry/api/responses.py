# -*- test-case-name: tests.api.test_base,tests.api.test_blobs -*-
"""
How the API writes its answers: JSON bodies, the headers every response
carries, absolute or relative URLs for C{Location}, and streaming a
storage reader out.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from txregistry.interfaces import IBlobReader

if TYPE_CHECKING:
    from txregistry.web.request import RegistryRequest

API_VERSION_HEADER = b"Docker-Distribution-API-Version"

#: What a host (and port) in a URL we hand out may look like: a name, an
#: IPv4 or bracketed IPv6 address; never a path, userinfo or odd bytes.
_HOST = re.compile(r"[A-Za-z0-9._-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")
API_VERSION = b"registry/2.0"


def setHeaders(request: IRequest, headers: dict[str, str]) -> None:
    for name, value in headers.items():
        request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
    sendWarnings(request)


def sendWarnings(request: IRequest) -> None:
    """
    What the model's layers said of the answer (L{Caller.warnings}, such
    as a pull-through cache serving stale content) as C{Warning} headers
    (RFC 9111 section 5.5: C{110 - "Response is Stale"}).
    """
    caller = getattr(request, "caller", None)
    for warning in getattr(caller, "warnings", None) or ():
        text = warning.replace("\\", "\\\\").replace('"', '\\"')
        line = f'110 - "{text}"'.encode("latin-1", "replace")
        existing = request.responseHeaders.getRawHeaders(b"warning") or []
        if line not in existing:
            request.responseHeaders.setRawHeaders(b"warning", existing + [line])


def jsonResponse(
    request: IRequest, document: Any, status: int = 200, contentType: str = "application/json"
) -> bytes:
    """
    Set status, C{Content-Type} and C{Content-Length} for a JSON body.

    @return: the body, for a route to return.
    """
    body = json.dumps(document, separators=(",", ":")).encode("utf-8")
    sendWarnings(request)
    request.setResponseCode(status)
    request.setHeader(b"content-type", contentType.encode("latin-1"))
    request.setHeader(b"content-length", b"%d" % len(body))
    return body


def emptyResponse(request: IRequest, status: int, headers: dict[str, str] | None = None) -> bytes:
    """
    A response with no body (C{Content-Length: 0}).
    """
    request.setResponseCode(status)
    setHeaders(request, headers or {})
    request.setHeader(b"content-length", b"0")
    return b""


class URLBuilder:
    """
    Builds the URLs the API hands back in C{Location} and C{Link}.

    With C{relative}, URLs are absolute paths.  Otherwise they are absolute
    URLs: on C{host} when configured, else on the scheme and host the
    client used, as a reverse proxy reports them in
    C{X-Forwarded-Proto}/C{X-Forwarded-Host}.
    """

    def __init__(self, prefix: str = "/", host: str = "", relative: bool = False) -> None:
        self._prefix = prefix.rstrip("/")
        self._host = host.rstrip("/")
        self._relative = relative

    def path(self, path: str) -> str:
        return self._prefix + path

    def url(self, request: IRequest, path: str) -> str:
        full = self.path(path)
        if self._relative:
            return full
        if self._host:
            return self._host + full
        return origin(request) + full


def _firstForwarded(request: IRequest, name: bytes) -> str | None:
    value = request.getHeader(name)
    if not value:
        return None
    first = value.split(b",", 1)[0].strip().decode("latin-1")
    return first or None


def origin(request: IRequest) -> str:
    """
    The C{scheme://host[:port]} the client addressed.
    """
    scheme = _firstForwarded(request, b"x-forwarded-proto")
    if scheme not in ("http", "https"):
        scheme = "https" if request.isSecure() else "http"
    host = _firstForwarded(request, b"x-forwarded-host") or (
        (request.getHeader(b"host") or b"").decode("latin-1").strip()
    )
    if not host or _HOST.fullmatch(host) is None:
        address = request.getHost()
        host = f"{getattr(address, 'host', 'localhost')}:{getattr(address, 'port', 80)}"
    return f"{scheme}://{host}"


def streamReader(request: "RegistryRequest", reader: IBlobReader) -> Deferred[None]:
    """
    Write everything C{reader} produces to C{request}, with the
    transport's backpressure pausing the reader.

    @return: a L{Deferred} that fires when all is written, or when the
        client went away (the reader is then stopped).
    """
    done: Deferred[None] = Deferred()
    finished = request.notifyFinish()

    def gone(reason: Failure) -> None:
        if not done.called:
            done.callback(None)

    finished.addErrback(gone)
    request.registerProducer(reader, True)
    producing = reader.startProducing(request)

    def written(result: object) -> object:
        request.unregisterProducer()
        if not done.called:
            done.callback(None)
        return None

    def failed(reason: Failure) -> None:
        request.unregisterProducer()
        if not done.called:
            done.errback(reason)

    producing.addCallbacks(written, failed)
    return done
