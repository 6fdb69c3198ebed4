# -*- test-case-name: tests.ui.test_auth -*-
"""
Who is looking at a page: logins through the door's L{twisted.cred}
portal (a form, or the browser's Basic prompt), sessions kept in memory
behind an C{HttpOnly}, C{SameSite=Strict} cookie (C{Secure} under TLS),
and the CSRF token every change must carry.

Every visitor gets a cookie on their first page; the CSRF token is an
HMAC of it, so an anonymous visitor needs no server state and a page
forged on another site (which cannot read the cookie) cannot know it.
Logging in and out issues a new cookie, so a cookie planted before a
login is worth nothing after it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin, UnhandledCredentials
from twisted.cred.portal import Portal
from twisted.internet.interfaces import IReactorTime

from txregistry.api.door import credentialsOf
from txregistry.api.responses import origin
from txregistry.auth.cred import IActor, anonymous
from txregistry.auth.policy import IAccessPolicy
from txregistry.auth.scopes import Access
from txregistry.auth.throttle import LoginThrottle
from txregistry.registry.cache import BoundedCache

__all__ = ["COOKIE", "Visitor", "Sessions"]

#: The session cookie's name.
COOKIE = b"txregistry_ui"
#: How many logins are kept at once; past that the least recently seen
#: is logged out.
MAX_SESSIONS = 10000


@dataclass(frozen=True)
class Visitor:
    """
    Who one request is from.

    @ivar name: the account; empty for an anonymous visitor.
    @ivar actor: what decides their access; L{None} when the registry has
        no auth at all (everyone may do everything).
    @ivar session: the session cookie's value.
    @ivar csrf: the token a change must carry.
    @ivar authRequired: whether the registry has auth (a login is
        possible, and may be needed).
    """

    name: str
    actor: IActor | None
    session: str
    csrf: str
    authRequired: bool

    def may(self, action: str, repository: str) -> bool:
        """
        Whether the visitor may C{action} (C{pull}, C{delete}) on
        C{repository}, as the door would decide for the API.
        """
        if not self.authRequired:
            return True
        if self.actor is None:
            return False
        return bool(self.actor.allows([Access("repository", repository, action)]))

    @property
    def mayBrowse(self) -> bool:
        """
        Whether the visitor may see anything without logging in (an
        anonymous visitor under auth without an anonymous policy may not).
        """
        return self.actor is not None or not self.authRequired


class Sessions:
    """
    The UI's logins.

    @param portal: the door's portal; L{None} for a registry without auth.
    @param policy: the access policy, which decides for anonymous visitors
        and limits everyone else (L{None}: a login may do everything).
    @param timeout: seconds a login lasts without a page being seen.
    """

    def __init__(
        self, portal: Portal | None, policy: IAccessPolicy | None, throttle: LoginThrottle | None,
        clock: IReactorTime, timeout: float, secret: bytes | None = None,
    ) -> None:
        self._portal = portal
        self._policy = policy
        self._throttle = throttle
        self._secret = secret or secrets.token_bytes(32)
        self._logins: BoundedCache[str, IActor] = BoundedCache(
            maxEntries=MAX_SESSIONS, ttl=timeout, clock=clock)
        self._anonymous = anonymous(policy) if policy is not None and policy.anonymousUse else None

    @property
    def authRequired(self) -> bool:
        return self._portal is not None

    def csrfFor(self, session: str) -> str:
        return hmac.new(self._secret, session.encode("ascii"), hashlib.sha256).hexdigest()

    def checkCSRF(self, visitor: Visitor, token: str) -> bool:
        return bool(token) and hmac.compare_digest(visitor.csrf, token)

    def _cookieOf(self, request: Any) -> str | None:
        value = request.getCookie(COOKIE)
        if not value:
            return None
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            return None
        return text if 20 <= len(text) <= 64 and text.replace("-", "").replace("_", "").isalnum() else None

    def _setCookie(self, request: Any, session: str) -> None:
        secure = origin(request).startswith("https:")
        request.addCookie(COOKIE, session.encode("ascii"), path=self._cookiePath(request),
                          httpOnly=True, secure=secure, sameSite="strict")

    @staticmethod
    def _cookiePath(request: Any) -> bytes:
        return getattr(request, "uiRoot", b"/")

    def _visitor(self, name: str, actor: IActor | None, session: str) -> Visitor:
        return Visitor(name, actor, session, self.csrfFor(session), self.authRequired)

    async def visitorOf(self, request: Any) -> Visitor:
        """
        The visitor C{request} is from, giving them a cookie if they have
        none.  Basic credentials (the browser's prompt) are checked on a
        request without a login; a wrong password is an anonymous visitor.
        """
        session = self._cookieOf(request)
        if session is None:
            session = secrets.token_urlsafe(24)
            self._setCookie(request, session)
        if self._portal is None:
            return self._visitor("", None, session)
        try:
            credentials = credentialsOf(request.getHeader(b"authorization"))
        except ValueError:
            credentials = None
        actor = self._logins.get(session)
        if actor is not None:
            # Seen again: the idle timeout starts over.
            self._logins.put(session, actor)
            return self._visitor(actor.name, actor, session)
        if isinstance(credentials, UsernamePassword):
            # The browser's Basic prompt: checked once, then a session
            # carries the login (a password hash is slow to check).
            actor = await self.login(request, credentials.username, credentials.password)
            if actor is not None:
                return self.startSession(request, actor)
        return self._visitor("", self._anonymous, session)

    async def login(self, request: Any, username: bytes, password: bytes) -> IActor | None:
        """
        The actor the portal makes for these credentials, or L{None} when
        they are wrong (or the scheme takes no passwords: C{auth.token}).
        Failures slow the next attempt from the address, as at the door.
        """
        if self._portal is None:
            return None
        portal = self._portal
        credentials = UsernamePassword(username, password)

        def attempt() -> Any:
            return portal.login(credentials, None, IActor)

        try:
            if self._throttle is not None:
                address = getattr(request.getClientAddress(), "host", "-")
                result = await self._throttle.throttled(address, username, attempt)
            else:
                result = await attempt()
        except (UnauthorizedLogin, UnhandledCredentials):
            return None
        actor: IActor = result[1]
        return actor

    def startSession(self, request: Any, actor: IActor) -> Visitor:
        """
        Log C{actor} in with a new cookie.
        """
        session = secrets.token_urlsafe(24)
        self._logins.put(session, actor)
        self._setCookie(request, session)
        return self._visitor(actor.name, actor, session)

    def endSession(self, request: Any, visitor: Visitor) -> None:
        """
        Log out: forget the login and issue a new cookie.
        """
        self._logins.pop(visitor.session)
        self._setCookie(request, secrets.token_urlsafe(24))

