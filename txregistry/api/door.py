# -*- test-case-name: tests.api.test_door -*-
"""
Access control at the door: each request's access, decided when its
headers are in and before any body byte is read.

What a request needs comes from the route table
(L{txregistry.api.routes}): C{repository:<name>:pull|push|delete} or
C{registry:catalog:*}, and a cross-repository mount needs C{pull} on
C{from} as well.  Who the caller is comes from a L{twisted.cred} portal
(L{txregistry.auth.cred}); the avatar is the L{IActor}, kept on the
request as C{request.actor} for the access log and every layer after.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin, UnhandledCredentials
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from txregistry.api.errors import DENIED, UNAUTHORIZED, APIError
from txregistry.api.responses import origin
from txregistry.api.routes import BY_NAME, CATALOG, Route
from txregistry.auth.cred import BearerToken, IActor, anonymous
from txregistry.auth.policy import IAccessPolicy
from txregistry.auth.scopes import Access
from txregistry.auth.throttle import LoginThrottle
from txregistry.registry.cache import BoundedCache
from txregistry.registry.names import isValidName

_log = Logger()

#: The longest Authorization header looked at; a token is far shorter.
MAX_AUTHORIZATION = 16 * 1024

#: Makes a C{WWW-Authenticate} value for what a request lacks, given
#: C{error} (C{"invalid_token"}, C{"insufficient_scope"} or L{None}) and
#: the C{scheme://host} the client addressed (where a token server the
#: registry runs itself is found).
Challenger = Callable[[frozenset[Access], str | None, str], str]


def requiredAccess(route: Route, arguments: Mapping[str, Any], args: dict[bytes, list[bytes]]) -> frozenset[Access]:
    """
    The access C{route} needs with these path C{arguments} and query
    C{args}.
    """
    if route.access is None:
        return frozenset()
    if route.access == CATALOG:
        return frozenset({Access("registry", "catalog", "*")})
    return frozenset({Access("repository", arguments["name"], route.access)})


def mountSource(route: Route, args: dict[bytes, list[bytes]]) -> Access | None:
    """
    The access a cross-repository mount needs beyond its route's: C{pull}
    on C{from}.  A caller without it is not refused; its mount becomes a
    fresh upload (202), never a 201 that would prove the blob exists.
    """
    if route.name != "upload.start" or b"mount" not in args:
        return None
    source = (args.get(b"from") or [b""])[0].decode("utf-8", "replace")
    return Access("repository", source, "pull") if isValidName(source) else None


def credentialsOf(header: bytes | None) -> Any:
    """
    The credentials an C{Authorization} header carries, L{None} for none.

    @raise ValueError: for a header that is not a well-formed Basic or
        Bearer value.
    """
    if header is None:
        return None
    if len(header) > MAX_AUTHORIZATION:
        raise ValueError("the Authorization header is too long")
    scheme, _, value = header.strip().partition(b" ")
    value = value.strip()
    if scheme.lower() == b"basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ValueError("the Basic credentials are not base64 of UTF-8") from None
        user, sep, password = decoded.partition(":")
        if not sep or not user:
            raise ValueError("the Basic credentials are not user:password")
        return UsernamePassword(user.encode("utf-8"), password.encode("utf-8"))
    if scheme.lower() == b"bearer" and value:
        try:
            return BearerToken(value.decode("ascii"))
        except UnicodeDecodeError:
            raise ValueError("the Bearer token is not ASCII") from None
    raise ValueError("the Authorization scheme is not Basic or Bearer")


class Door:
    """
    Lets a request in when its caller may do what its route needs.

    @param portal: logs callers in; its avatars provide L{IActor}.
    @param challenge: the scheme's C{WWW-Authenticate} value.
    @param policy: the C{auth.access} policy, which lets a request without
        credentials in where it grants anonymous callers what the route
        needs; L{None} to challenge every such request.
    """

    def __init__(
        self, portal: Portal, challenge: Challenger, urlMap: Map, throttle: LoginThrottle,
        policy: IAccessPolicy | None = None,
    ) -> None:
        self._portal = portal
        self._anonymous = anonymous(policy) if policy is not None and policy.anonymousUse else None
        self._challenge = challenge
        self._urlMap = urlMap
        self._throttle = throttle
        # A registry's traffic is the same few paths over and over (a tag's
        # manifest, its blobs): their route is matched once.
        self._routes: BoundedCache[tuple[bytes, tuple[bytes, ...]], tuple[Route, Mapping[str, Any]] | None] = (
            BoundedCache(maxEntries=4096)
        )

    def route(self, request: Any) -> tuple[Route, Mapping[str, Any]] | None:
        """
        The route C{request} goes to, with its path arguments; L{None} if
        none (the routes answer that themselves: 404 or 405).
        """
        key = (request.method, tuple(request.postpath))
        if key in self._routes:
            return self._routes.get(key)
        matched = self._match(request)
        self._routes.put(key, matched)
        return matched

    def _match(self, request: Any) -> tuple[Route, Mapping[str, Any]] | None:
        # Exactly the path Klein will route (klein._resource.extractURLparts),
        # or a request could be let in for one route and served by another.
        path = "/".join(segment.decode("utf-8") for segment in request.postpath)
        if not path.startswith("/"):
            path = "/" + path
        adapter = self._urlMap.bind("registry", "/", path_info=path,
                                    default_method=request.method.decode("ascii", "replace"))
        try:
            rule, arguments = adapter.match(return_rule=True)
        except HTTPException:
            return None
        return BY_NAME[rule.endpoint], arguments

    def admit(self, request: Any) -> Deferred[IActor]:
        """
        Decide whether C{request} may go on.

        @return: a L{Deferred} firing with the actor, or failing with the
            L{APIError} to answer (401 with a challenge, 403).
        """
        matched = self.route(request)
        if matched is None:
            # No route: the API answers 404 or 405, but only to a caller
            # who logs in, so that no path the door reads differently
            # from the routes can get past it.
            route, required = None, frozenset[Access]()
        else:
            route, arguments = matched
            required = requiredAccess(route, arguments, request.args)
        try:
            credentials = credentialsOf(request.getHeader(b"authorization"))
        except ValueError as e:
            return Deferred.fromCoroutine(self._refuse(required, "invalid_token", str(e),
                                                             origin(request)))
        if credentials is None:
            # The base route (nothing required) is challenged even where
            # anonymous pulls are allowed: it is how docker login checks a
            # password.
            if self._anonymous is not None and required and self._anonymous.allows(required):
                if route is not None and (source := mountSource(route, request.args)) is not None:
                    self._dropMountUnlessAllowed(self._anonymous, source, request)
                return succeed(self._anonymous)
            return Deferred.fromCoroutine(self._refuse(required, None, "authentication required",
                                                             origin(request)))
        if isinstance(credentials, UsernamePassword):
            # Passwords can be guessed: each failure from an address slows
            # its next attempt.
            address = getattr(request.getClientAddress(), "host", "-")
            login = self._throttle.throttled(
                address, credentials.username,
                lambda: self._portal.login(credentials, None, IActor),
            )
        else:
            login = self._portal.login(credentials, None, IActor)
        return login.addCallbacks(self._loggedIn, self._failed,
                                  callbackArgs=(required, route and mountSource(route, request.args),
                                                request),
                                  errbackArgs=(required, request))

    @staticmethod
    def _dropMountUnlessAllowed(actor: IActor, source: Access, request: Any) -> None:
        """
        Turn a mount from a repository C{actor} cannot pull into a plain
        upload (202), never a 201 that would prove the blob exists.
        """
        if not actor.allows([source]):
            request.args.pop(b"mount", None)
            request.args.pop(b"from", None)

    def _loggedIn(
        self, result: tuple[Any, Any, Any], required: frozenset[Access], source: Access | None,
        request: Any,
    ) -> IActor:
        _, actor, _ = result
        if source is not None:
            self._dropMountUnlessAllowed(actor, source, request)
        if not actor.allows(required):
            if required and isinstance(getattr(actor, "access", None), frozenset):
                # A token without enough access: the client asks for a
                # better one, so this is a challenge, not a refusal.
                raise self._unauthorized(required, "insufficient_scope", "insufficient scope",
                                         origin(request))
            raise APIError(DENIED)
        return actor  # type: ignore[no-any-return]

    def _failed(self, failure: Failure, required: frozenset[Access], request: Any) -> Failure:
        if failure.check(UnauthorizedLogin, UnhandledCredentials):
            address = getattr(request.getClientAddress(), "host", "-")
            _log.warn("Login refused for {address}: {reason}", address=address,
                      reason=str(failure.value) or "bad credentials")
            return Failure(self._unauthorized(required, "invalid_token", "authentication failed",
                                              origin(request)))
        return failure

    async def _refuse(
        self, required: frozenset[Access], error: str | None, message: str, here: str
    ) -> IActor:
        raise self._unauthorized(required, error, message, here)

    def _unauthorized(
        self, required: frozenset[Access], error: str | None, message: str, here: str
    ) -> APIError:
        return APIError(
            UNAUTHORIZED, message,
            detail=[{"Type": a.type, "Name": a.name, "Action": a.action} for a in sorted(
                required, key=lambda a: (a.type, a.name, a.action))] or None,
            headers={"WWW-Authenticate": self._challenge(required, error, here)},
        )
