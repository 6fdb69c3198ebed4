# -*- test-case-name: tests.api.test_tokens -*-
"""
The built-in token server's endpoint (C{auth.tokenserver}): C{GET} as
C{token.md} describes it (Basic credentials, C{scope} repeated,
C{offline_token}) and C{POST} as C{oauth.md} does (C{grant_type}
C{password} or C{refresh_token}).

Users are checked through the same portal (and the same login throttle)
as the door; what they get is the issuer's to decide
(L{txregistry.auth.issuer.TokenIssuer}).
"""

from __future__ import annotations

import datetime
import json
from typing import Any
from urllib.parse import parse_qs

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin, UnhandledCredentials
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from txregistry.api.door import credentialsOf
from txregistry.api.errors import UNAUTHORIZED, UNSUPPORTED, APIError, writeError
from txregistry.api.responses import jsonResponse
from txregistry.auth.cred import IActor
from txregistry.auth.issuer import TokenIssuer
from txregistry.auth.scopes import Access, InvalidScope, parseScope, parseScopes, renderScopes
from txregistry.auth.throttle import LoginThrottle
from txregistry.auth.token import TokenInvalid
from txregistry.web.body import BodyTooLarge

__all__ = ["TokenEndpoint", "MAX_FORM", "MAX_SCOPES"]

_log = Logger()

#: The largest C{POST} form read.
MAX_FORM = 64 * 1024
#: The most scopes one request may ask for.
MAX_SCOPES = 100


class _OAuthError(Exception):
    """
    An C{oauth.md} failure: RFC 6749's C{error} document.
    """

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _timestamp(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _scopes(values: list[str]) -> frozenset[Access]:
    if len(values) > MAX_SCOPES:
        raise InvalidScope(f"more than {MAX_SCOPES} scopes")
    requested: set[Access] = set()
    for value in values:
        requested |= parseScope(value) if " " not in value.strip() else parseScopes(value)
    if len(requested) > MAX_SCOPES:
        raise InvalidScope(f"more than {MAX_SCOPES} scopes")
    return frozenset(requested)


class TokenEndpoint:
    """
    Answers token requests for one L{TokenIssuer}.

    @param portal: checks user names and passwords (the door's portal).
    @param realm: the C{Basic} realm a refused login is challenged with.
    """

    def __init__(self, issuer: TokenIssuer, portal: Portal, throttle: LoginThrottle,
                 realm: str) -> None:
        self._issuer = issuer
        self._portal = portal
        self._throttle = throttle
        self._realm = realm

    def handle(self, request: Any) -> Deferred[bytes]:
        """
        @return: L{Deferred} of the body, with status and headers set.
        """
        method = request.method
        if method == b"GET":
            return Deferred.fromCoroutine(self._get(request))
        if method == b"POST":
            return Deferred.fromCoroutine(self._post(request))

        async def refused() -> bytes:
            request.setHeader(b"allow", b"GET, POST")
            return writeError(request, APIError(UNSUPPORTED, "the token endpoint takes GET and POST",
                                                status=405))

        return Deferred.fromCoroutine(refused())

    # token.md

    async def _get(self, request: Any) -> bytes:
        args = {key.decode("latin-1"): [v.decode("utf-8", "replace") for v in values]
                for key, values in request.args.items()}
        try:
            self._checkService(args)
            requested = _scopes(args.get("scope", []))
            credentials = credentialsOf(request.getHeader(b"authorization"))
        except (InvalidScope, ValueError) as e:
            return writeError(request, APIError(UNSUPPORTED, str(e), status=400))
        except _OAuthError as e:
            return writeError(request, APIError(UNSUPPORTED, e.description, status=400))
        account = None
        if credentials is not None:
            if not isinstance(credentials, UsernamePassword):
                return self._unauthorized(request, "the token endpoint takes Basic credentials")
            account = await self._login(request, credentials)
            if account is None:
                return self._unauthorized(request, "authentication failed")
        issued = self._issuer.issue(account, requested)
        document: dict[str, Any] = {
            "token": issued.token, "access_token": issued.token,
            "expires_in": issued.expiresIn, "issued_at": _timestamp(issued.issuedAt),
        }
        if account is not None and args.get("offline_token", [""])[0].lower() == "true":
            document["refresh_token"] = self._issuer.refreshToken(account)
        self._logIssued(account, issued.access, args.get("client_id", [""])[0])
        return self._answer(request, document)

    # oauth.md

    async def _post(self, request: Any) -> bytes:
        try:
            form = await self._form(request)
            self._checkService(form, required=True)
            if not form.get("client_id", [""])[0]:
                raise _OAuthError("invalid_request", "client_id is required")
            try:
                requested = _scopes(form.get("scope", []))
            except InvalidScope as e:
                raise _OAuthError("invalid_scope", str(e)) from None
            grant = form.get("grant_type", [""])[0]
            refreshToken = None
            if grant == "password":
                username, password = form.get("username", [""])[0], form.get("password", [""])[0]
                if not username:
                    raise _OAuthError("invalid_request", "username is required")
                account = await self._login(
                    request, UsernamePassword(username.encode("utf-8"), password.encode("utf-8")))
                if account is None:
                    raise _OAuthError("invalid_grant", "authentication failed", status=401)
                if form.get("access_type", [""])[0] == "offline":
                    refreshToken = self._issuer.refreshToken(account)
            elif grant == "refresh_token":
                refreshToken = form.get("refresh_token", [""])[0]
                try:
                    account = await self._issuer.accountOf(refreshToken)
                except TokenInvalid as e:
                    _log.warn("Token server: refused a refresh token: {reason}", reason=str(e))
                    raise _OAuthError("invalid_grant", "the refresh token is not valid",
                                      status=401) from None
            else:
                raise _OAuthError("unsupported_grant_type",
                                  "grant_type must be password or refresh_token")
        except _OAuthError as e:
            if e.status == 401:
                request.setHeader(b"www-authenticate", f'Basic realm="{self._realm}"'.encode())
            return jsonResponse(request, {"error": e.error, "error_description": e.description},
                                status=e.status)
        issued = self._issuer.issue(account, requested)
        document: dict[str, Any] = {
            "access_token": issued.token, "scope": renderScopes(issued.access),
            "expires_in": issued.expiresIn, "issued_at": _timestamp(issued.issuedAt),
        }
        if refreshToken is not None:
            document["refresh_token"] = refreshToken
        self._logIssued(account, issued.access, form.get("client_id", [""])[0])
        return self._answer(request, document)

    async def _form(self, request: Any) -> dict[str, list[str]]:
        contentType = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if contentType != b"application/x-www-form-urlencoded":
            raise _OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
        try:
            body = await request.body.read(MAX_FORM)
            text = body.decode("utf-8")
        except BodyTooLarge:
            raise _OAuthError("invalid_request", f"the form is over {MAX_FORM} bytes") from None
        except UnicodeDecodeError:
            raise _OAuthError("invalid_request", "the form is not UTF-8") from None
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_SCOPES + 20)

    # Shared

    def _checkService(self, args: dict[str, list[str]], required: bool = False) -> None:
        service = args.get("service", [None])[0]
        if service is None and not required:
            return
        if service != self._issuer.service:
            raise _OAuthError("invalid_request", f"this token server serves {self._issuer.service!r}")

    async def _login(self, request: Any, credentials: UsernamePassword) -> str | None:
        address = getattr(request.getClientAddress(), "host", "-")
        try:
            actor: Any
            _, actor, _ = await self._throttle.throttled(
                address, credentials.username,
                lambda: self._portal.login(credentials, None, IActor))
        except (UnauthorizedLogin, UnhandledCredentials) as e:
            _log.warn("Token server: login refused for {address}: {reason}", address=address,
                      reason=str(e) or "bad credentials")
            return None
        return str(actor.name)

    def _unauthorized(self, request: Any, message: str) -> bytes:
        return writeError(request, APIError(
            UNAUTHORIZED, message, headers={"WWW-Authenticate": f'Basic realm="{self._realm}"'}))

    def _answer(self, request: Any, document: dict[str, Any]) -> bytes:
        # Tokens are credentials: no cache between the client and here
        # may keep one (RFC 6749 section 5.1).
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"pragma", b"no-cache")
        return jsonResponse(request, document)

    def _logIssued(self, account: str | None, access: frozenset[Access], clientID: str) -> None:
        _log.info("Token server: issued {account} a token for {scope} (client {client})",
                  account=account or "(anonymous)", scope=renderScopes(access) or "nothing",
                  client=json.dumps(clientID[:64]))
