"""
The V2 API as a Klein application.

Routes here only parse and check what the request says (name, reference,
query, headers) and shape the answer; the work is in
L{txregistry.registry}.  Every error is a L{RegistryError} rendered as
the spec's JSON envelope by L{RegistryAPI.registryError}.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from klein import Klein
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from txregistry import __version__
from txregistry.api import blobs, listing, manifests, uploads
from txregistry.api.errors import RegistryError
from txregistry.api.responses import (
    API_VERSION,
    API_VERSION_HEADER,
    URLBuilder,
    jsonResponse,
)
from txregistry.registry.store import Registry
from txregistry.shielding import shielded
from txregistry.web.request import RegistryRequest

_log = Logger()

SERVER = f"txregistry/{__version__}".encode("ascii")


def runsToTheEnd(route: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Deferred[Any]]:
    """
    Make a route that changes storage immune to cancellation.

    Klein cancels a route's L{Deferred} when the client goes away.  A
    route half way through a commit (adopting an upload as a blob, linking
    it, tagging a manifest) must not stop there, or it leaves orphans; it
    finishes, and its answer goes nowhere.  A client that leaves while its
    body is still arriving still stops the route, through the body's
    delivery failing.
    """

    @wraps(route)
    def run(*args: Any, **kwargs: Any) -> Deferred[Any]:
        return shielded(Deferred.fromCoroutine(route(*args, **kwargs)))

    return run


class RegistryAPI:
    """
    The routes of one registry.
    """

    app = Klein()
    # A repository name is matched as it is: C{a//b} or an encoded C{%2F}
    # is an invalid name, not a redirect to another one.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False

    def __init__(self, registry: Registry, urls: URLBuilder) -> None:
        self.registry = registry
        self.urls = urls

    # Base

    @app.route("/v2/", methods=["GET", "HEAD"])
    def base(self, request: RegistryRequest) -> bytes:
        return jsonResponse(request, {})

    @app.route("/v2/_catalog", methods=["GET", "HEAD"])
    def catalog(self, request: RegistryRequest) -> Any:
        return listing.catalog(self, request)

    # Tags and referrers

    @app.route("/v2/<path:name>/tags/list", methods=["GET", "HEAD"])
    def tags(self, request: RegistryRequest, name: str) -> Any:
        return listing.tags(self, request, name)

    @app.route("/v2/<path:name>/referrers/<digest>", methods=["GET", "HEAD"])
    def referrers(self, request: RegistryRequest, name: str, digest: str) -> Any:
        return listing.referrers(self, request, name, digest)

    # Manifests

    @app.route("/v2/<path:name>/manifests/<reference>", methods=["GET", "HEAD"])
    def getManifest(self, request: RegistryRequest, name: str, reference: str) -> Any:
        return manifests.get(self, request, name, reference)

    @app.route("/v2/<path:name>/manifests/<reference>", methods=["PUT"])
    def putManifest(self, request: RegistryRequest, name: str, reference: str) -> Any:
        return runsToTheEnd(manifests.put)(self, request, name, reference)

    @app.route("/v2/<path:name>/manifests/<reference>", methods=["DELETE"])
    def deleteManifest(self, request: RegistryRequest, name: str, reference: str) -> Any:
        return runsToTheEnd(manifests.delete)(self, request, name, reference)

    # Blobs

    @app.route("/v2/<path:name>/blobs/<digest>", methods=["GET", "HEAD"])
    def getBlob(self, request: RegistryRequest, name: str, digest: str) -> Any:
        return blobs.get(self, request, name, digest)

    @app.route("/v2/<path:name>/blobs/<digest>", methods=["DELETE"])
    def deleteBlob(self, request: RegistryRequest, name: str, digest: str) -> Any:
        return runsToTheEnd(blobs.delete)(self, request, name, digest)

    # Uploads

    @app.route("/v2/<path:name>/blobs/uploads/", methods=["POST"], strict_slashes=False)
    def startUpload(self, request: RegistryRequest, name: str) -> Any:
        return runsToTheEnd(uploads.start)(self, request, name)

    @app.route("/v2/<path:name>/blobs/uploads/<uploadID>", methods=["GET", "HEAD"])
    def uploadStatus(self, request: RegistryRequest, name: str, uploadID: str) -> Any:
        return uploads.status(self, request, name, uploadID)

    @app.route("/v2/<path:name>/blobs/uploads/<uploadID>", methods=["PATCH"])
    def uploadChunk(self, request: RegistryRequest, name: str, uploadID: str) -> Any:
        return runsToTheEnd(uploads.chunk)(self, request, name, uploadID)

    @app.route("/v2/<path:name>/blobs/uploads/<uploadID>", methods=["PUT"])
    def completeUpload(self, request: RegistryRequest, name: str, uploadID: str) -> Any:
        return runsToTheEnd(uploads.complete)(self, request, name, uploadID)

    @app.route("/v2/<path:name>/blobs/uploads/<uploadID>", methods=["DELETE"])
    def cancelUpload(self, request: RegistryRequest, name: str, uploadID: str) -> Any:
        return runsToTheEnd(uploads.cancel)(self, request, name, uploadID)

    # Errors

    @app.handle_errors(RegistryError)
    def registryError(self, request: IRequest, failure: Failure) -> bytes:
        error: RegistryError = failure.value  # type: ignore[assignment]
        for header, value in error.headers.items():
            request.setHeader(header.encode("latin-1"), value.encode("latin-1"))
        return jsonResponse(request, error.envelope(), error.status)

    @app.handle_errors(NotFound)
    def notFound(self, request: IRequest, failure: Failure) -> bytes:
        error = RegistryError("UNSUPPORTED", "no such route", status=404)
        return jsonResponse(request, error.envelope(), error.status)

    @app.handle_errors(MethodNotAllowed)
    def methodNotAllowed(self, request: IRequest, failure: Failure) -> bytes:
        allowed = getattr(failure.value, "valid_methods", None) or []
        if allowed:
            request.setHeader(b"allow", ", ".join(allowed).encode("latin-1"))
        error = RegistryError("UNSUPPORTED", "method not allowed on this route")
        return jsonResponse(request, error.envelope(), error.status)

    @app.handle_errors(RequestRedirect)
    def redirect(self, request: IRequest, failure: Failure) -> bytes:
        # Werkzeug would canonicalise the path; a registry names exactly
        # what the client sent, so there is no other URL to go to.
        error = RegistryError("UNSUPPORTED", "no such route", status=404)
        return jsonResponse(request, error.envelope(), error.status)

    @app.handle_errors(Exception)
    def unexpected(self, request: IRequest, failure: Failure) -> bytes:
        if failure.check(ConnectionDone, ConnectionLost):
            # The client went away mid-body: nobody to answer, nothing wrong.
            _log.info("Client went away during {method} {uri}",
                      method=request.method, uri=request.uri)
            return b""
        _log.failure("Unhandled error in {method} {uri}", failure,
                     method=request.method, uri=request.uri)
        error = RegistryError("UNKNOWN")
        return jsonResponse(request, error.envelope(), error.status)


class RegistryRoot(Resource):
    """
    The resource a L{RegistrySite} serves: sets the headers every response
    carries, strips C{http.prefix}, and hands the rest to the Klein routes.
    """

    isLeaf = True

    def __init__(self, api: RegistryAPI, prefix: str = "/", headers: dict[str, list[str]] | None = None) -> None:
        super().__init__()
        self._routes: IResource = api.app.resource()
        self._prefix = [p.encode("utf-8") for p in prefix.strip("/").split("/") if p]
        self._headers = [
            (name.encode("latin-1"), [v.encode("latin-1") for v in values])
            for name, values in (headers or {}).items()
        ]

    def render(self, request: RegistryRequest) -> Any:
        request.setHeader(b"server", SERVER)
        request.setHeader(API_VERSION_HEADER, API_VERSION)
        for name, values in self._headers:
            request.responseHeaders.setRawHeaders(name, values)
        problem = _undecodable(request)
        if problem is not None:
            error = RegistryError("UNSUPPORTED", f"{problem} is not UTF-8", status=400)
            return jsonResponse(request, error.envelope(), error.status)
        if self._prefix:
            count = len(self._prefix)
            postpath = request.postpath or []
            if postpath[:count] != self._prefix:
                error = RegistryError("UNSUPPORTED", "no such route", status=404)
                return jsonResponse(request, error.envelope(), error.status)
            request.prepath = (request.prepath or []) + postpath[:count]
            request.postpath = postpath[count:]
        return self._routes.render(request)


def _undecodable(request: IRequest) -> str | None:
    """
    What part of the request line Klein could not decode (it answers those
    with a plain-text 400 and logs an error), or L{None}.
    """
    try:
        for segment in request.postpath:
            segment.decode("utf-8")
        for segment in request.prepath:
            segment.decode("utf-8")
    except UnicodeDecodeError:
        return "the request path"
    try:
        request.getRequestHostname().decode("utf-8")
    except UnicodeDecodeError:
        return "the Host header"
    return None
