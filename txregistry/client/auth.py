# -*- test-case-name: tests.client.test_auth -*-
"""
Logging in to a registry: Basic, and the Bearer challenge → token flow of
the token spec (C{token.md}).

L{Authenticator.request} sends a request with the credentials it already
has for the scopes the request needs.  A C{401} answer names what the
registry wants in its C{WWW-Authenticate} challenge: for C{Basic}, the
account's password; for C{Bearer}, a token from the challenge's C{realm}
for its C{service} and C{scope}s, which is fetched (with the account's
password, if there is one) and the request sent again.  Tokens are kept
until they expire, by the scopes they were asked for; a request that
needs more than a kept token grants asks for the union of both (scopes
widened on demand: a pull token becomes a pull and push token).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import treq
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.python.failure import Failure
from twisted.web.iweb import IBodyProducer, IResponse

from txregistry.client.errors import AuthenticationFailed
from txregistry.client.http import Session

__all__ = ["Credentials", "Authenticator", "parseChallenge", "mergeScopes"]

#: A token's lifetime when the token server does not say (token.md).
DEFAULT_LIFETIME = 60.0

#: Tokens are renewed this long before they expire.
_MARGIN = 5.0

_PARAMETER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


@dataclass(frozen=True)
class Credentials:
    """
    An account on a registry: a user name and password, or an identity
    (refresh) token docker's C{config.json} keeps instead of a password.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    identityToken: str = field(default="", repr=False)

    def basic(self) -> str:
        value = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {value}"


def parseChallenge(value: str) -> tuple[str, dict[str, str]]:
    """
    A C{WWW-Authenticate} value as its scheme (lower case) and parameters.
    """
    scheme, _, rest = value.strip().partition(" ")
    parameters = {}
    for match in _PARAMETER.finditer(rest):
        quoted, bare = match.group(2), match.group(3)
        parameters[match.group(1).lower()] = (
            re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        )
    return scheme.lower(), parameters


def _scopeMap(scopes: list[str]) -> dict[tuple[str, str], set[str]]:
    grouped: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        for one in scope.split():
            first, last = one.find(":"), one.rfind(":")
            if first < 0 or first == last:
                continue
            key = (one[:first], one[first + 1:last])
            grouped.setdefault(key, set()).update(a for a in one[last + 1:].split(",") if a)
    return grouped


def mergeScopes(*groups: list[str]) -> list[str]:
    """
    The scopes of every group as one list, one entry per resource with the
    union of its actions (sorted, so that the same need makes the same
    token request).
    """
    merged: dict[tuple[str, str], set[str]] = {}
    for group in groups:
        for key, actions in _scopeMap(group).items():
            merged.setdefault(key, set()).update(actions)
    return sorted(f"{t}:{n}:{','.join(sorted(a))}" for (t, n), a in merged.items())


def _covers(granted: list[str], needed: list[str]) -> bool:
    have = _scopeMap(granted)
    for key, actions in _scopeMap(needed).items():
        held = have.get(key, set())
        if "*" not in held and not actions <= held:
            return False
    return True


class _Once:
    """
    One token request that every request wanting it waits for.
    """

    def __init__(self, running: Deferred[None]) -> None:
        self._waiters: list[Deferred[None]] = []
        running.addBoth(self._done)

    def _done(self, result: object) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(None)

    def wait(self) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        return waiter


@dataclass
class _Token:
    value: str
    scopes: list[str]
    expires: float


class Authenticator:
    """
    Sends requests to one registry with its credentials.

    @ivar credentials: a callable giving the account for the registry's
        host (or L{None}): docker's C{config.json} lookup, or fixed ones.
    """

    def __init__(self, session: Session,
                 credentials: Callable[[], Awaitable[Credentials | None]],
                 now: Callable[[], float] = time.time) -> None:
        self.session = session
        self.now = now
        self._credentials = credentials
        self._account: Credentials | None = None
        self._looked = False
        self._scheme: str | None = None
        self._challenge: dict[str, str] = {}
        self._tokens: list[_Token] = []
        self._fetching: dict[tuple[str, ...], _Once] = {}

    async def account(self) -> Credentials | None:
        if not self._looked:
            self._account = await self._credentials()
            self._looked = True
        return self._account

    def _authorization(self, scopes: list[str]) -> str | None:
        if self._scheme == "basic" and self._account is not None:
            return self._account.basic()
        if self._scheme == "bearer":
            now = self.now()
            self._tokens = [t for t in self._tokens if t.expires > now]
            for token in self._tokens:
                if _covers(token.scopes, scopes):
                    return f"Bearer {token.value}"
        return None

    async def request(
        self,
        method: str,
        url: str,
        scopes: list[str],
        headers: dict[str, list[str]] | None = None,
        data: bytes | IBodyProducer | None = None,
    ) -> IResponse:
        """
        Send a request that needs C{scopes}, logging in as the registry
        asks.  A request with a streamed body is sent once: its caller
        makes a body-less request for the same scopes first (starting the
        upload does), so the token is at hand.

        @raise AuthenticationFailed: the credentials were refused, or
            there are none and the registry wants some.
        """
        headers = dict(headers or {})
        authorization = self._authorization(scopes)
        if authorization is None and self._scheme == "bearer":
            # The realm is known: get a token before asking, not after a 401.
            await self._token(scopes, await self.account())
            authorization = self._authorization(scopes)
        if authorization:
            headers["Authorization"] = [authorization]
        response = await self.session.request(method, url, headers=headers, data=data)
        if response.code != 401:
            return response
        await treq.content(response)
        challenge = (response.headers.getRawHeaders(b"www-authenticate") or [b""])[0]
        scheme, parameters = parseChallenge(challenge.decode("latin-1"))
        if data is not None and not isinstance(data, bytes):
            raise AuthenticationFailed(f"{method} {url}: 401 (a streamed body is not sent twice)", 401)
        account = await self.account()
        if scheme == "basic":
            if account is None:
                raise AuthenticationFailed(f"{url}: the registry asks for a login (no credentials)", 401)
            if authorization is not None:
                raise AuthenticationFailed(f"{url}: login refused for {account.username!r}", 401)
            self._scheme = "basic"
        elif scheme == "bearer" and parameters.get("realm"):
            self._scheme = "bearer"
            self._challenge = parameters
            await self._token(mergeScopes(scopes, [parameters.get("scope", "")]), account,
                              renew=authorization is not None)
        else:
            raise AuthenticationFailed(f"{url}: 401 with an unusable challenge {challenge!r}", 401)
        headers["Authorization"] = [self._authorization(scopes) or self._lastToken()]
        response = await self.session.request(method, url, headers=headers, data=data)
        if response.code == 401:
            await treq.content(response)
            who = f" for {account.username!r}" if account else " (anonymous)"
            raise AuthenticationFailed(f"{method} {url}: access refused{who}", 401)
        return response

    async def _token(self, scopes: list[str], account: Credentials | None,
                     renew: bool = False) -> None:
        """
        A token for C{scopes} and every scope a live token holds (widened),
        fetched once however many requests want it at the same time.
        """
        if not renew and self._authorization(scopes) is not None:
            return
        wanted = tuple(mergeScopes(scopes, *[t.scopes for t in self._tokens
                                             if t.expires > self.now()]))
        once = self._fetching.get(wanted)
        if once is None:
            running = ensureDeferred(self._fetchToken(list(wanted), account))
            once = self._fetching[wanted] = _Once(running)
            waiter = once.wait()
            running.addBoth(lambda _: self._fetching.pop(wanted, None))
        else:
            waiter = once.wait()
        await waiter

    def _lastToken(self) -> str:
        return f"Bearer {self._tokens[-1].value}" if self._tokens else ""

    async def _fetchToken(self, scopes: list[str], account: Credentials | None) -> None:
        realm = self._challenge["realm"]
        query: list[tuple[str, str]] = []
        if self._challenge.get("service"):
            query.append(("service", self._challenge["service"]))
        query += [("scope", s) for s in scopes]
        headers: dict[str, list[str]] = {}
        if account is not None:
            if account.identityToken:
                await self._refresh(realm, scopes, account)
                return
            headers["Authorization"] = [account.basic()]
            query.append(("account", account.username))
        separator = "&" if urlsplit(realm).query else "?"
        url = realm + (separator + urlencode(query) if query else "")
        response = await self.session.request("GET", url, headers=headers)
        body = await treq.content(response)
        if response.code != 200:
            who = f"{account.username!r}" if account else "anonymous"
            raise AuthenticationFailed(
                f"token server {realm} refused {who} ({response.code})", response.code)
        self._keep(body, scopes, realm)

    async def _refresh(self, realm: str, scopes: list[str], account: Credentials) -> None:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": account.identityToken,
            "service": self._challenge.get("service", ""),
            "scope": " ".join(scopes),
            "client_id": "txregistry",
        }
        response = await self.session.request(
            "POST", realm, headers={"Content-Type": ["application/x-www-form-urlencoded"]},
            data=urlencode(form).encode("ascii"),
        )
        body = await treq.content(response)
        if response.code != 200:
            raise AuthenticationFailed(
                f"token server {realm} refused the identity token ({response.code})", response.code)
        self._keep(body, scopes, realm)

    def _keep(self, body: bytes, scopes: list[str], realm: str) -> None:
        try:
            document: dict[str, Any] = json.loads(body)
            value = document.get("token") or document.get("access_token")
            lifetime = float(document.get("expires_in") or DEFAULT_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            value = None
        if not isinstance(value, str) or not value:
            raise AuthenticationFailed(f"token server {realm} answered no token")
        self._tokens.append(_Token(value, scopes, self.now() + max(lifetime - _MARGIN, 1.0)))
