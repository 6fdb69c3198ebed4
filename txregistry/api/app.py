# -*- test-case-name: tests.api.test_base -*-
"""
The V2 API as a Klein application.

The routes are those of L{txregistry.api.routes}.  Their handlers only
parse and check what the request says (reference, query, headers) and
shape the answer; the work is done by the L{INamespace} they are given,
and every error (an L{APIError} or an error of the model) is rendered as
the spec's JSON envelope by L{writeError}.
"""

from __future__ import annotations

import os
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
from twisted.web.server import NOT_DONE_YET
from werkzeug.exceptions import BadHost, MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from txregistry import __version__
from txregistry.api.callers import callerOf
from txregistry.api.door import Door
from txregistry.api.errors import UNKNOWN, UNSUPPORTED, APIError, asAPIError, writeError
from txregistry.api.responses import API_VERSION, API_VERSION_HEADER, URLBuilder
from txregistry.api.routes import ROUTES, Route
from txregistry.api.uploadstate import FixedSecret, UploadStates
from txregistry.errors import RegistryModelError
from txregistry.interfaces import INamespace, ISecretSource
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


def _view(route: Route) -> Callable[..., Any]:
    """
    The Klein view of C{route}: its handler, bound to the L{RegistryAPI}.
    """
    handler = runsToTheEnd(route.handler) if route.changesStorage else route.handler

    def view(api: "RegistryAPI", request: RegistryRequest, **arguments: str) -> Any:
        return handler(api, request, **arguments)

    view.__name__ = route.name.replace(".", "_")
    return view


class RegistryAPI:
    """
    The routes of one registry, over the namespace they serve.
    """

    app = Klein()
    # A repository name is matched as it is: C{a//b} or an encoded C{%2F}
    # is an invalid name, not a redirect to another one.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False

    for _route in ROUTES:
        app.route(_route.rule, methods=list(_route.methods), endpoint=_route.name)(_view(_route))
    del _route

    def __init__(
        self, namespace: INamespace, urls: URLBuilder, secret: ISecretSource | None = None
    ) -> None:
        """
        @param secret: the key of upload URLs' C{_state}; a random one for
            this object's life when L{None}.
        """
        self.namespace = namespace
        self.urls = urls
        self.uploadStates = UploadStates(secret or FixedSecret(os.urandom(32)))

    def namespaceFor(self, request: Any) -> INamespace:
        """
        The namespace acting for C{request}'s caller (L{callerOf}).
        """
        return self.namespace.actingFor(callerOf(request))

    # Errors

    @app.handle_errors(APIError, RegistryModelError)
    def registryError(self, request: IRequest, failure: Failure) -> bytes:
        return writeError(request, asAPIError(failure.value))  # type: ignore[arg-type]

    @app.handle_errors(NotFound)
    def notFound(self, request: IRequest, failure: Failure) -> bytes:
        return writeError(request, APIError(UNSUPPORTED, "no such route", status=404))

    @app.handle_errors(MethodNotAllowed)
    def methodNotAllowed(self, request: IRequest, failure: Failure) -> bytes:
        allowed = getattr(failure.value, "valid_methods", None) or []
        if allowed:
            request.setHeader(b"allow", ", ".join(allowed).encode("latin-1"))
        return writeError(request, APIError(UNSUPPORTED, "method not allowed on this route"))

    @app.handle_errors(RequestRedirect)
    def redirect(self, request: IRequest, failure: Failure) -> bytes:
        # Werkzeug would canonicalise the path; a registry names exactly
        # what the client sent, so there is no other URL to go to.
        return writeError(request, APIError(UNSUPPORTED, "no such route", status=404))

    @app.handle_errors(Exception)
    def unexpected(self, request: IRequest, failure: Failure) -> bytes:
        if failure.check(ConnectionDone, ConnectionLost):
            # The client went away mid-body: nobody to answer, nothing wrong.
            _log.info("Client went away during {method} {uri}",
                      method=request.method, uri=request.uri)
            return b""
        _log.failure("Unhandled error in {method} {uri}", failure,
                     method=request.method, uri=request.uri)
        return writeError(request, APIError(UNKNOWN))


class RegistryRoot(Resource):
    """
    The resource a L{RegistrySite} serves: sets the headers every response
    carries, strips C{http.prefix}, and hands the rest to the Klein routes.
    """

    isLeaf = True

    def __init__(
        self,
        api: RegistryAPI,
        prefix: str = "/",
        headers: dict[str, list[str]] | None = None,
        door: Door | None = None,
        beside: dict[tuple[bytes, ...], Callable[[Any], Deferred[bytes]]] | None = None,
        trees: dict[tuple[bytes, ...], Callable[[Any], Deferred[bytes]]] | None = None,
    ) -> None:
        """
        @param beside: handlers of paths outside C{/v2/} (below C{prefix}),
            which the door does not guard: they do their own checks (the
            built-in token server).
        @param trees: like C{beside}, handlers of every path below theirs
            (the web UI); the request's C{postpath} is what follows it.
        """
        super().__init__()
        self._door = door
        self._beside = beside or {}
        self._trees = trees or {}
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
            return writeError(request, APIError(UNSUPPORTED, f"{problem} is not UTF-8", status=400))
        if self._prefix:
            count = len(self._prefix)
            postpath = request.postpath or []
            if postpath[:count] != self._prefix:
                return writeError(request, APIError(UNSUPPORTED, "no such route", status=404))
            request.prepath = (request.prepath or []) + postpath[:count]
            request.postpath = postpath[count:]
        handler = self._beside.get(tuple(request.postpath or ())) if self._beside else None
        if handler is None and self._trees:
            handler = self._tree(request)
        if handler is not None:
            handler(request).addCallbacks(
                lambda body: self._finishLater(request, body),
                lambda failure: self._finishLater(request, self._afterDoor(request, failure)))
            return NOT_DONE_YET
        if self._door is not None:
            return self._admitted(request, self._door.admit(request))
        return self._render(request)

    def _tree(self, request: RegistryRequest) -> Callable[[Any], Deferred[bytes]] | None:
        """
        The C{trees} handler whose path C{request}'s starts with, having
        moved that path to C{prepath}; L{None} for none.
        """
        postpath = request.postpath or []
        for path, handler in self._trees.items():
            if tuple(postpath[:len(path)]) == path:
                request.prepath = (request.prepath or []) + postpath[:len(path)]
                request.postpath = postpath[len(path):]
                return handler
        return None

    def _admitted(self, request: RegistryRequest, admission: Deferred[Any]) -> Any:
        """
        Render C{request} once the door let it in, or answer the door's
        refusal; no byte of the body is read before (it waits in the
        request's L{RequestBody}).
        """
        outcome: list[Any] = []

        def record(result: Any) -> Any:
            outcome.append(result)
            return result

        admission.addBoth(record)
        if outcome:
            # Consumed here: the Deferred must not also log it as unhandled.
            admission.addErrback(lambda failure: None)
            # Decided at once (a cached token, silly): no extra turn.
            return self._afterDoor(request, outcome[0])
        admission.addBoth(self._decided, request)
        return NOT_DONE_YET

    def _decided(self, result: Any, request: RegistryRequest) -> None:
        if request.finished or request._disconnected:
            # The client left while its login was checked: nothing to do.
            return
        # In the request's context (its trace span), as the render was.
        self._finishLater(request, request.inContext(self._afterDoor, request, result))

    def _afterDoor(self, request: RegistryRequest, result: Any) -> Any:
        if isinstance(result, Failure):
            if result.check(APIError):
                return writeError(request, result.value)  # type: ignore[arg-type]
            _log.failure("Access control failed for {uri}", result, uri=request.uri)
            return writeError(request, APIError(UNKNOWN))
        request.actor = result  # type: ignore[attr-defined]
        return self._render(request)

    @staticmethod
    def _finishLater(request: RegistryRequest, body: Any) -> None:
        if body is NOT_DONE_YET or request.finished or request._disconnected:
            return
        if body:
            request.write(body)
        request.finish()

    def _render(self, request: RegistryRequest) -> Any:
        try:
            return self._routes.render(request)
        except BadHost:
            # Klein binds Werkzeug's map to the Host header, which must
            # encode as IDNA ("a..b", "." and 64-character labels do not).
            return writeError(request, APIError(UNSUPPORTED, "the Host header is not a host name", status=400))


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
