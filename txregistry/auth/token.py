# -*- test-case-name: tests.auth.test_token -*-
"""
Bearer tokens of the token scheme (C{token.md}, C{jwt.md}): a JWT signed by
an authorization server the registry trusts, whose C{access} claim says what
its holder may do.

L{TokenVerifier} answers one question for the door: is this token genuine,
current and meant for this registry, and if so, who is it for and what does
it grant (a L{VerifiedToken})?  Anything else is a L{TokenInvalid} with a
short reason the door can log; no JWT or cryptography exception escapes.

The trust is the configuration's and never the token's: a signing key is
one of the configured keys (C{auth.token.jwks}, or a root certificate of
C{auth.token.rootcertbundle} named by its thumbprint), or the leaf of an
C{x5c} chain that verifies up to one of those roots.  A key carried in the
token's own header (C{jwk}) is only used if it I{is} a trusted key, and then
the trusted copy is used (the CVE-2025-24976 class of bug is to use the
header's).

Verification order, each step its own reason: size, form, algorithm, key,
signature, times (C{exp}, C{nbf}, C{iat}, with L{LEEWAY}), issuer, audience.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import (
    SECP256R1,
    SECP384R1,
    SECP521R1,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse
from zope.interface import Interface, implementer

from txregistry.auth.errors import AuthConfigurationError
from txregistry.auth.scopes import Access, InvalidScope, bearerChallenge, coversAll

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "LEEWAY",
    "MAX_TOKEN_SIZE",
    "ITokenVerifier",
    "TokenInvalid",
    "TokenVerifier",
    "VerifiedToken",
    "libtrustKeyID",
    "thumbprint",
    "tokenVerifierFromConfig",
]

log = Logger()

#: The default C{signingalgorithms}.  The reference also allows HS* by
#: default; txregistry does only if they are listed, since an HMAC secret
#: can only come from a C{kty: oct} key of the key set.
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")

#: Seconds of clock skew allowed either side of C{exp}, C{nbf} and C{iat},
#: as the reference allows.
LEEWAY = 60.0

#: Tokens longer than this are refused before any parsing: a real one, even
#: with a three-certificate C{x5c} chain, is a few KiB.
MAX_TOKEN_SIZE = 16 * 1024

#: At most this many certificates in an C{x5c} chain.
MAX_CHAIN = 8

_EC_CURVES = {"ES256": SECP256R1, "ES384": SECP384R1, "ES512": SECP521R1}
_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")

_PublicKey: TypeAlias = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey
#: A verification key: a public key, or the bytes of an HMAC secret.
_Key: TypeAlias = _PublicKey | bytes


class TokenInvalid(Exception):
    """
    The token is not accepted.

    @ivar reason: a short phrase for the log (C{"expired"}, C{"unknown
        kid"}); it never repeats more than a bounded part of the token.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedToken:
    """
    What a genuine token says.

    @ivar subject: the C{sub} claim: the user it was issued to, C{""} for
        an anonymous one.
    @ivar access: what it grants.  Entries of the C{access} claim that are
        malformed, or name a type or action the registry does not know, are
        ignored: they can only ever grant less.
    @ivar expires: its C{exp}, in seconds since the epoch.
    """

    subject: str
    access: frozenset[Access]
    expires: float

    def allows(self, required: Iterable[Access]) -> bool:
        """
        Whether this token grants every one of C{required}.
        """
        return coversAll(self.access, required)


class ITokenVerifier(Interface):
    """
    Checks Bearer tokens for the door.
    """

    def verify(token: str, clock: IReactorTime) -> Deferred[VerifiedToken]:
        """
        What C{token} grants, or a L{TokenInvalid} failure.

        @param clock: tells the time the token's claims are checked at.
        """


@dataclass(frozen=True)
class _TrustedKey:
    key: _Key
    # A key set entry's "alg": the only algorithm that key may be used with.
    alg: str | None = None


# -- helpers -----------------------------------------------------------------


def _b64urlDecode(part: str) -> bytes:
    if not _B64URL.match(part) or len(part) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _noDuplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two "alg" or two "aud" would be read differently by different
    # parsers; a token that says one thing twice is not well-formed.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _noConstant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _jsonObject(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw, object_pairs_hook=_noDuplicates, parse_constant=_noConstant)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _spki(key: _PublicKey) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _publicJWK(key: _PublicKey) -> dict[str, Any]:
    if isinstance(key, RSAPublicKey):
        return jwt.algorithms.RSAAlgorithm.to_jwk(key, as_dict=True)
    if isinstance(key, EllipticCurvePublicKey):
        return jwt.algorithms.ECAlgorithm.to_jwk(key, as_dict=True)
    return jwt.algorithms.OKPAlgorithm.to_jwk(key, as_dict=True)


def thumbprint(key: _PublicKey) -> str:
    """
    The RFC 7638 thumbprint of a public key: the C{kid} by which the
    reference names a root certificate's key.
    """
    jwk = _publicJWK(key)
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    canonical = {name: jwk[name] for name in members[jwk["kty"]]}
    digest = hashlib.sha256(
        json.dumps(canonical, separators=(",", ":"), sort_keys=True).encode("ascii")
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def libtrustKeyID(key: _PublicKey) -> str:
    """
    The libtrust key ID of a public key (C{ABCD:EFGH:...}), by which older
    token servers (and registries before 3.0) name a root certificate's key.
    """
    encoded = base64.b32encode(hashlib.sha256(_spki(key)).digest()[:30]).decode("ascii")
    return ":".join(encoded[i : i + 4] for i in range(0, 48, 4))


def _keyFits(alg: str, key: _Key) -> bool:
    """
    Whether C{key} is the kind C{alg} needs.  This is what makes an HS256
    token "signed" with a public key as its secret fail: a public key is
    never bytes, and a secret never an asymmetric key.
    """
    if alg in HMAC_ALGORITHMS:
        return isinstance(key, bytes) and len(key) > 0
    if alg.startswith(("RS", "PS")):
        return isinstance(key, RSAPublicKey) and key.key_size >= 2048
    if alg in _EC_CURVES:
        return isinstance(key, EllipticCurvePublicKey) and isinstance(key.curve, _EC_CURVES[alg])
    if alg == "EdDSA":
        return isinstance(key, (Ed25519PublicKey, Ed448PublicKey))
    return False


def _keyFromJWK(entry: Any) -> tuple[str | None, _TrustedKey]:
    """
    A key set entry's C{kid} and key.

    @raise ValueError: not a usable public signing key.
    """
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    if entry.get("use", "sig") != "sig":
        raise ValueError(f"use is {entry.get('use')!r}, not 'sig'")
    for private in ("d", "p", "q"):
        if private in entry and entry.get("kty") != "oct":
            raise ValueError("a private key: publish only the public part")
    try:
        key = jwt.PyJWK(entry).key
    except Exception as e:
        raise ValueError(f"not a usable key ({e})") from None
    if not isinstance(
        key, (bytes, RSAPublicKey, EllipticCurvePublicKey, Ed25519PublicKey, Ed448PublicKey)
    ):
        raise ValueError("not a public key")
    kid = entry.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("kid is not a string")
    alg = entry.get("alg")
    if alg is not None and not isinstance(alg, str):
        raise ValueError("alg is not a string")
    if kid is None and not isinstance(key, bytes):
        kid = thumbprint(key)
    return kid, _TrustedKey(key, alg)


def _parseKeySet(document: Any, onBadKey: Any) -> dict[str, _TrustedKey]:
    """
    The keys of a JWKS document by C{kid}.  C{onBadKey(index, message)} is
    called for each unusable entry (raising, for a file; logging, for a
    URL).

    @raise ValueError: not a key set.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JSON Web Key Set (an object with a "keys" list)')
    keys: dict[str, _TrustedKey] = {}
    for index, entry in enumerate(document["keys"]):
        try:
            kid, trusted = _keyFromJWK(entry)
        except ValueError as e:
            onBadKey(index, str(e))
            continue
        if kid is None:
            onBadKey(index, "an oct key needs a kid")
            continue
        keys[kid] = trusted
    return keys


def _number(claims: Mapping[str, Any], name: str, required: bool = False) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenInvalid(f"no {name} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TokenInvalid(f"{name} claim is not a number")
    return float(value)


def _accessClaim(claims: Mapping[str, Any]) -> frozenset[Access]:
    entries = claims.get("access")
    if entries is None:
        return frozenset()
    if not isinstance(entries, list):
        raise TokenInvalid("access claim is not a list")
    granted: set[Access] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        resourceType, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if not (isinstance(resourceType, str) and isinstance(name, str)):
            continue
        if not isinstance(actions, list):
            continue
        for action in actions:
            try:
                granted.add(Access(resourceType, name, action))
            except InvalidScope:
                # An unknown type or action, or a malformed name: it
                # grants nothing the registry would ever ask for.
                continue
    return frozenset(granted)


# -- the cache of verified tokens --------------------------------------------


class _VerifiedCache:
    """
    Tokens already verified, by their SHA-256, least recently used out
    first: a client sends the same token on every request of a pull, and
    a signature check per layer would be waste.
    """

    def __init__(self, maxEntries: int, leeway: float) -> None:
        self._maxEntries = maxEntries
        self._leeway = leeway
        self._entries: OrderedDict[bytes, VerifiedToken] = OrderedDict()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def get(self, token: str, now: float) -> VerifiedToken | None:
        key = self._key(token)
        verified = self._entries.get(key)
        if verified is None:
            return None
        if now > verified.expires + self._leeway:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return verified

    def put(self, token: str, verified: VerifiedToken) -> None:
        if self._maxEntries <= 0:
            return
        key = self._key(token)
        self._entries[key] = verified
        self._entries.move_to_end(key)
        while len(self._entries) > self._maxEntries:
            self._entries.popitem(last=False)


# -- a key set at a URL -------------------------------------------------------


class _LimitedBody(Protocol):
    def __init__(self, finished: Deferred[bytes], limit: int) -> None:
        self._finished = finished
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self._done = False

    def dataReceived(self, data: bytes) -> None:
        if self._done:
            return
        self._size += len(data)
        if self._size > self._limit:
            self._done = True
            assert self.transport is not None
            self.transport.stopProducing()  # type: ignore[attr-defined]
            self._finished.errback(ValueError(f"key set is over {self._limit} bytes"))
            return
        self._chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._done:
            return
        self._done = True
        if reason.check(ResponseDone):
            self._finished.callback(b"".join(self._chunks))
        else:
            self._finished.errback(reason)


class _RemoteKeySet:
    """
    The keys of a JWKS at an https URL: fetched when first needed, again
    when older than C{maxAge} (in the background), and when a token names a
    C{kid} it does not hold (the issuer rotated its key; that request
    waits) — but never more often than every C{cooldown} seconds, so that
    tokens with made-up kids cannot make the registry hammer the issuer.
    Concurrent needs share one fetch.  A failed fetch keeps the keys it
    had.
    """

    def __init__(
        self,
        url: str,
        agent: IAgent,
        reactor: IReactorTime,
        cooldown: float = 30.0,
        maxAge: float = 3600.0,
        maxBytes: int = 1024 * 1024,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.keys: dict[str, _TrustedKey] = {}
        self._agent = agent
        self._reactor = reactor
        self._cooldown = cooldown
        self._maxAge = maxAge
        self._maxBytes = maxBytes
        self._timeout = timeout
        self._attemptedAt: float | None = None
        self._loadedAt: float | None = None
        self._waiting: list[Deferred[None]] | None = None
        #: How many fetches were started: the tests' window on the limit.
        self.fetches = 0

    def refresh(self, now: float, unknownKid: bool) -> Deferred[None]:
        """
        Fetch again if the keys are stale or a kid is unknown, within the
        rate limit; fires when the keys are as fresh as they will get.
        """
        if self._waiting is not None:
            waiter: Deferred[None] = Deferred()
            self._waiting.append(waiter)
            return waiter
        stale = self._loadedAt is None or now - self._loadedAt >= self._maxAge
        if not (stale or unknownKid):
            return succeed(None)
        if self._attemptedAt is not None and now - self._attemptedAt < self._cooldown:
            return succeed(None)
        self._attemptedAt = now
        self._waiting = []
        self.fetches += 1
        first: Deferred[None] = Deferred()
        self._waiting.append(first)
        fetched = self._fetch()

        def loaded(keys: dict[str, _TrustedKey]) -> None:
            self.keys = keys
            self._loadedAt = now
            log.info("auth.token.jwks: {count} keys from {url}", count=len(keys), url=self.url)

        def failed(reason: Failure) -> None:
            log.warn(
                "auth.token.jwks: fetching {url} failed, keeping {count} keys: {reason}",
                url=self.url,
                count=len(self.keys),
                reason=reason.getErrorMessage(),
            )

        def wake(_: object) -> None:
            waiting, self._waiting = self._waiting or [], None
            for waiter in waiting:
                waiter.callback(None)

        fetched.addCallbacks(loaded, failed)
        fetched.addBoth(wake)
        return first

    def _fetch(self) -> Deferred[dict[str, _TrustedKey]]:
        requested = self._agent.request(
            b"GET", self.url.encode("ascii"), Headers({b"Accept": [b"application/json"]})
        )
        d: Deferred[bytes] = requested.addCallback(self._body)
        d.addTimeout(self._timeout, self._reactor)

        def parse(body: bytes) -> dict[str, _TrustedKey]:
            def bad(index: int, message: str) -> None:
                log.warn(
                    "auth.token.jwks: {url}: key {index} ignored: {message}",
                    url=self.url,
                    index=index,
                    message=message,
                )

            return _parseKeySet(_jsonObject(body), bad)

        return d.addCallback(parse)

    def _body(self, response: IResponse) -> Deferred[bytes]:
        finished: Deferred[bytes] = Deferred()
        refusal = None
        if response.code != 200:
            refusal = f"HTTP {response.code}"
        elif isinstance(response.length, int) and response.length > self._maxBytes:
            refusal = f"key set is over {self._maxBytes} bytes"
        if refusal is None:
            response.deliverBody(_LimitedBody(finished, self._maxBytes))
            return finished
        # Read (a bounded part of) the answer, so that the connection is
        # done with before the fetch fails.
        response.deliverBody(_LimitedBody(finished, 64 * 1024))

        def refuse(_: object) -> bytes:
            raise ValueError(refusal)

        return finished.addBoth(refuse)


# -- the verifier -------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    header: dict[str, Any]
    claims: dict[str, Any]
    signingInput: bytes
    signature: bytes
    alg: str


@implementer(ITokenVerifier)
class TokenVerifier:
    """
    Verifies tokens against the keys and roots it is configured with; see
    L{tokenVerifierFromConfig} for the configuration's shape.

    @ivar realm: where clients get tokens (the challenge's C{realm}).
    @ivar service: this registry's name: the challenge's C{service}, and
        what a token's C{aud} must contain.
    @ivar issuer: what a token's C{iss} must be.
    @ivar autoRedirect: whether the door should build the realm from the
        request's host (C{autoredirect}) at C{autoRedirectPath}.

    @param roots: the root certificates an C{x5c} chain must verify up to;
        their keys are also trusted by RFC 7638 thumbprint and libtrust ID.
    @param keys: trusted keys by C{kid}: public keys, or HMAC secrets as
        L{bytes} (used only if an HS* algorithm is allowed).
    @param jwksURL: an https URL of a key set, fetched through C{agent}.
    @param algorithms: the C{alg}s accepted; C{none} never is.
    """

    def __init__(
        self,
        realm: str,
        service: str,
        issuer: str,
        roots: Sequence[x509.Certificate] = (),
        keys: Mapping[str, Any] | None = None,
        jwksURL: str | None = None,
        algorithms: Iterable[str] = ASYMMETRIC_ALGORITHMS,
        autoRedirect: bool = False,
        autoRedirectPath: str = "/auth/token",
        agent: IAgent | None = None,
        reactor: IReactorTime | None = None,
        leeway: float = LEEWAY,
        maxTokenSize: int = MAX_TOKEN_SIZE,
        cacheSize: int = 1024,
        jwksCooldown: float = 30.0,
    ) -> None:
        self.realm = realm
        self.service = service
        self.issuer = issuer
        self.autoRedirect = autoRedirect
        self.autoRedirectPath = autoRedirectPath
        self.algorithms = frozenset(algorithms) - {"none"}
        self._leeway = leeway
        self._maxTokenSize = maxTokenSize
        self._cache = _VerifiedCache(cacheSize, leeway)
        self._roots = list(roots)
        self._rootDER = {root.public_bytes(Encoding.DER) for root in self._roots}
        self._store = Store(self._roots) if self._roots else None
        self._keys: dict[str, _TrustedKey] = {}
        for root in self._roots:
            rootKey = root.public_key()
            if isinstance(
                rootKey, (RSAPublicKey, EllipticCurvePublicKey, Ed25519PublicKey, Ed448PublicKey)
            ):
                self._keys[thumbprint(rootKey)] = _TrustedKey(rootKey)
                self._keys[libtrustKeyID(rootKey)] = _TrustedKey(rootKey)
        for kid, key in (keys or {}).items():
            self._keys[kid] = key if isinstance(key, _TrustedKey) else _TrustedKey(key)
        self._remote: _RemoteKeySet | None = None
        if jwksURL is not None:
            if reactor is None:
                from twisted.internet import reactor as globalReactor

                reactor = globalReactor  # type: ignore[assignment]
            if agent is None:
                agent = Agent(reactor)  # type: ignore[arg-type]
            assert reactor is not None
            self._remote = _RemoteKeySet(jwksURL, agent, reactor, cooldown=jwksCooldown)

    # The door's side.

    def challenge(
        self,
        required: Iterable[Access] = (),
        error: str | None = None,
        host: str | None = None,
        scheme: str = "https",
    ) -> str:
        """
        The C{WWW-Authenticate} value for a request that lacks C{required}.

        @param error: C{"invalid_token"} or C{"insufficient_scope"} (RFC
            6750 section 3.1), if that is why.
        @param host: the request's C{Host}, used for the realm when
            C{autoRedirect} is set (with C{scheme}, from
            C{X-Forwarded-Proto} if the door trusts it).
        """
        realm = self.realm
        if self.autoRedirect and host:
            realm = f"{scheme}://{host}{self.autoRedirectPath}"
        return bearerChallenge(realm, self.service, required, error)

    def refreshKeys(self, clock: IReactorTime) -> Deferred[None]:
        """
        Fetch the key set at C{auth.token.jwks} if it is a URL and has not
        been fetched yet (or is stale): for the door to call at start, so
        that the first client does not wait for it.
        """
        if self._remote is None:
            return succeed(None)
        return self._remote.refresh(clock.seconds(), unknownKid=False)

    def verify(self, token: str, clock: IReactorTime) -> Deferred[VerifiedToken]:
        """
        See L{ITokenVerifier.verify}.
        """
        try:
            if not isinstance(token, str):
                raise TokenInvalid("not a string")
            if len(token) > self._maxTokenSize:
                raise TokenInvalid(f"over {self._maxTokenSize} characters")
            now = clock.seconds()
            cached = self._cache.get(token, now)
            if cached is not None:
                return succeed(cached)
            parsed = self._parse(token)
            resolved = self._resolve(parsed, now)
        except TokenInvalid as e:
            return fail(e)
        except Exception:
            log.failure("auth.token: verifying a token failed unexpectedly")
            return fail(TokenInvalid("unverifiable"))
        if not isinstance(resolved, Deferred):
            resolved = succeed(resolved)
        d = resolved.addCallback(self._finish, parsed, token, clock)
        return d.addErrback(self._onlyTokenInvalid)

    # The steps.

    def _onlyTokenInvalid(self, reason: Failure) -> Failure:
        if reason.check(TokenInvalid):
            return reason
        log.failure("auth.token: verifying a token failed unexpectedly", reason)
        return Failure(TokenInvalid("unverifiable"))

    def _parse(self, token: str) -> _Parsed:
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenInvalid("not a JWT (three dot-separated parts)")
        try:
            rawHeader = _b64urlDecode(parts[0])
            rawClaims = _b64urlDecode(parts[1])
            signature = _b64urlDecode(parts[2])
        except (ValueError, binascii.Error):
            raise TokenInvalid("not a JWT (bad base64url)") from None
        try:
            header = _jsonObject(rawHeader)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise TokenInvalid("not a JWT (header is not a JSON object)") from None
        try:
            claims = _jsonObject(rawClaims)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise TokenInvalid("not a JWT (claims are not a JSON object)") from None
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise TokenInvalid("no alg")
        if alg.lower() == "none" or alg not in self.algorithms:
            raise TokenInvalid(f"alg {alg[:20]!r} not allowed")
        if "crit" in header:
            # RFC 7515 4.1.11: extensions we do not understand must fail.
            raise TokenInvalid("crit header not supported")
        if not signature:
            raise TokenInvalid("no signature")
        signingInput = f"{parts[0]}.{parts[1]}".encode("ascii")
        return _Parsed(header, claims, signingInput, signature, alg)

    def _resolve(self, parsed: _Parsed, now: float) -> _TrustedKey | Deferred[_TrustedKey]:
        """
        The trusted key that must have signed the token: by its C{x5c}
        chain, else its C{jwk}, else its C{kid}, as the reference tries.
        """
        header = parsed.header
        if "x5c" in header:
            return _TrustedKey(self._verifyChain(header["x5c"], now))
        if "jwk" in header:
            return self._trustedJWK(header["jwk"], now)
        kid = header.get("kid")
        if kid is None:
            raise TokenInvalid("no x5c, jwk or kid to find the key by")
        if not isinstance(kid, str):
            raise TokenInvalid("kid is not a string")
        known = self._lookup(kid)
        if known is not None:
            if self._remote is not None:
                # Stale keys are refreshed behind this request, not before
                # it: an issuer that is down must not stall every client.
                self._remote.refresh(now, unknownKid=False)
            return known
        if self._remote is None:
            raise TokenInvalid("unknown kid")
        refreshed = self._remote.refresh(now, unknownKid=True)

        def lookup(_: object) -> _TrustedKey:
            found = self._lookup(kid)
            if found is None:
                raise TokenInvalid("unknown kid")
            return found

        return refreshed.addCallback(lookup)

    def _lookup(self, kid: str) -> _TrustedKey | None:
        found = self._keys.get(kid)
        if found is None and self._remote is not None:
            found = self._remote.keys.get(kid)
        return found

    def _verifyChain(self, x5c: Any, now: float) -> _PublicKey:
        if not isinstance(x5c, list) or not x5c or len(x5c) > MAX_CHAIN:
            raise TokenInvalid(f"x5c is not a list of 1 to {MAX_CHAIN} certificates")
        certificates = []
        for encoded in x5c:
            try:
                if not isinstance(encoded, str):
                    raise ValueError("not a string")
                certificates.append(
                    x509.load_der_x509_certificate(base64.b64decode(encoded, validate=True))
                )
            except (ValueError, binascii.Error):
                raise TokenInvalid("x5c holds a malformed certificate") from None
        if self._store is None:
            raise TokenInvalid("x5c chain but no rootcertbundle to check it against")
        leaf, intermediates = certificates[0], certificates[1:]
        at = datetime.fromtimestamp(now, UTC)
        if leaf.public_bytes(Encoding.DER) in self._rootDER:
            # The signing certificate is itself in the bundle (a self-signed
            # issuer certificate is a common setup): trusted as it stands.
            if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
                raise TokenInvalid("x5c certificate expired or not yet valid")
        else:
            verifier = (
                PolicyBuilder()
                .store(self._store)
                .time(at)
                .max_chain_depth(MAX_CHAIN)
                # The CAs as the Web PKI has them (basic constraints, key
                # usage); the leaf signs tokens, not TLS: no name or EKU.
                .extension_policies(
                    ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                    ee_policy=ExtensionPolicy.permit_all(),
                )
                .build_client_verifier()
            )
            try:
                verifier.verify(leaf, intermediates)
            except VerificationError as e:
                raise TokenInvalid(f"x5c chain not trusted ({str(e)[:100]})") from None
        key = leaf.public_key()
        if not isinstance(
            key, (RSAPublicKey, EllipticCurvePublicKey, Ed25519PublicKey, Ed448PublicKey)
        ):
            raise TokenInvalid("x5c certificate key cannot sign tokens")
        return key

    def _trustedJWK(self, jwk: Any, now: float) -> _TrustedKey:
        """
        A C{jwk} header is only a hint: the key it names is used only if it
        is one of the trusted keys (or chains to a root), and then the
        trusted copy is what checks the signature.
        """
        if not isinstance(jwk, dict):
            raise TokenInvalid("jwk is not a JSON object")
        try:
            headerKey = jwt.PyJWK(jwk).key
        except Exception:
            raise TokenInvalid("jwk is not a usable key") from None
        if not isinstance(
            headerKey, (RSAPublicKey, EllipticCurvePublicKey, Ed25519PublicKey, Ed448PublicKey)
        ):
            raise TokenInvalid("jwk is not a public key")
        if "x5c" in jwk:
            leafKey = self._verifyChain(jwk["x5c"], now)
            if _spki(leafKey) != _spki(headerKey):
                raise TokenInvalid("jwk is not the key of its x5c certificate")
            return _TrustedKey(leafKey)
        headerSPKI = _spki(headerKey)
        candidates = list(self._keys.values())
        if self._remote is not None:
            candidates += self._remote.keys.values()
        for candidate in candidates:
            if not isinstance(candidate.key, bytes) and _spki(candidate.key) == headerSPKI:
                return candidate
        raise TokenInvalid("jwk in header is not a trusted key")

    def _finish(
        self, trusted: _TrustedKey, parsed: _Parsed, token: str, clock: IReactorTime
    ) -> VerifiedToken:
        alg = parsed.alg
        if trusted.alg is not None and trusted.alg != alg:
            raise TokenInvalid(f"key is for {trusted.alg[:20]}, not {alg}")
        if not _keyFits(alg, trusted.key):
            raise TokenInvalid(f"key does not fit alg {alg}")
        try:
            good = jwt.get_algorithm_by_name(alg).verify(
                parsed.signingInput,
                trusted.key,  # type: ignore[arg-type]
                parsed.signature,
            )
        except Exception:
            good = False
        if not good:
            raise TokenInvalid("bad signature")

        claims = parsed.claims
        now = clock.seconds()
        expires = _number(claims, "exp", required=True)
        assert expires is not None
        if now > expires + self._leeway:
            raise TokenInvalid("expired")
        notBefore = _number(claims, "nbf")
        if notBefore is not None and now < notBefore - self._leeway:
            raise TokenInvalid("not yet valid (nbf)")
        issuedAt = _number(claims, "iat")
        if issuedAt is not None and issuedAt > now + self._leeway:
            raise TokenInvalid("issued in the future (iat)")
        if claims.get("iss") != self.issuer:
            raise TokenInvalid("wrong issuer")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or self.service not in audiences:
            raise TokenInvalid("wrong audience")
        subject = claims.get("sub", "")
        if not isinstance(subject, str):
            raise TokenInvalid("sub claim is not a string")
        verified = VerifiedToken(subject, _accessClaim(claims), expires)
        self._cache.put(token, verified)
        return verified


# -- configuration ------------------------------------------------------------

_KEYS = frozenset(
    {
        "realm",
        "service",
        "issuer",
        "rootcertbundle",
        "jwks",
        "signingalgorithms",
        "autoredirect",
        "autoredirectpath",
    }
)


def _string(config: Mapping[str, Any], name: str, required: bool) -> str | None:
    value = config.get(name)
    if value is None or value == "":
        if required:
            raise AuthConfigurationError(f"auth.token.{name}: required")
        return None
    if not isinstance(value, str):
        raise AuthConfigurationError(f"auth.token.{name}: must be a string, not {value!r}")
    return value


def _readFile(name: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise AuthConfigurationError(f"auth.token.{name}: {path}: {e.strerror or e}") from None


def _loadRoots(path: str) -> list[x509.Certificate]:
    data = _readFile("rootcertbundle", path)
    try:
        roots = x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise AuthConfigurationError(
            f"auth.token.rootcertbundle: {path}: not a PEM certificate bundle ({e})"
        ) from None
    return roots


def _loadKeySetFile(path: str) -> dict[str, _TrustedKey]:
    data = _readFile("jwks", path)

    def bad(index: int, message: str) -> None:
        raise AuthConfigurationError(f"auth.token.jwks: {path}: key {index}: {message}")

    try:
        return _parseKeySet(_jsonObject(data), bad)
    except (ValueError, UnicodeDecodeError) as e:
        raise AuthConfigurationError(f"auth.token.jwks: {path}: {e}") from None


def tokenVerifierFromConfig(
    config: Mapping[str, Any],
    agent: IAgent | None = None,
    reactor: IReactorTime | None = None,
) -> TokenVerifier:
    """
    A L{TokenVerifier} from the reference's C{auth.token} section: C{realm},
    C{service}, C{issuer} (required); C{rootcertbundle} (a PEM file of root
    certificates) and/or C{jwks} (a JWKS file, or an https URL), at least
    one; C{signingalgorithms} (default L{ASYMMETRIC_ALGORITHMS});
    C{autoredirect} and C{autoredirectpath}.

    Files are read now, so that a wrong path stops the start; a key set URL
    is fetched when first needed (or by L{TokenVerifier.refreshKeys}).

    @param agent: fetches a key set URL (default: an L{Agent} that checks
        the server's certificate against the system's roots).
    @raise AuthConfigurationError: naming the key that is wrong.
    """
    if not isinstance(config, Mapping):
        raise AuthConfigurationError(f"auth.token: must be a mapping, not {config!r}")
    for name in config:
        if name not in _KEYS:
            raise AuthConfigurationError(f"auth.token.{name}: unknown key")
    realm = _string(config, "realm", required=True)
    service = _string(config, "service", required=True)
    issuer = _string(config, "issuer", required=True)
    assert realm is not None and service is not None and issuer is not None

    bundle = _string(config, "rootcertbundle", required=False)
    jwks = _string(config, "jwks", required=False)
    if bundle is None and jwks is None:
        raise AuthConfigurationError(
            "auth.token.rootcertbundle: required (or auth.token.jwks): no key to trust"
        )
    roots = _loadRoots(bundle) if bundle is not None else []
    if bundle is not None and not roots:
        raise AuthConfigurationError(f"auth.token.rootcertbundle: {bundle}: no certificates")
    keys: dict[str, _TrustedKey] = {}
    jwksURL = None
    if jwks is not None:
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", jwks):
            if not jwks.startswith("https://"):
                raise AuthConfigurationError(
                    f"auth.token.jwks: {jwks}: a key set URL must be https"
                )
            jwksURL = jwks
        else:
            if not os.path.isabs(jwks):
                raise AuthConfigurationError(f"auth.token.jwks: {jwks}: must be an absolute path")
            keys = _loadKeySetFile(jwks)
            if not keys and not roots:
                raise AuthConfigurationError(f"auth.token.jwks: {jwks}: no keys")

    algorithms: Sequence[str] = ASYMMETRIC_ALGORITHMS
    listed = config.get("signingalgorithms")
    if listed is not None and listed != []:
        if not isinstance(listed, list) or not all(isinstance(a, str) for a in listed):
            raise AuthConfigurationError(
                f"auth.token.signingalgorithms: must be a list of algorithms, not {listed!r}"
            )
        for alg in listed:
            if alg not in ASYMMETRIC_ALGORITHMS and alg not in HMAC_ALGORITHMS:
                raise AuthConfigurationError(
                    f"auth.token.signingalgorithms: {alg!r} is not one of "
                    f"{', '.join(ASYMMETRIC_ALGORITHMS + HMAC_ALGORITHMS)}"
                )
        algorithms = listed

    autoRedirect = config.get("autoredirect", False)
    if not isinstance(autoRedirect, bool):
        raise AuthConfigurationError(
            f"auth.token.autoredirect: must be true or false, not {autoRedirect!r}"
        )
    path = _string(config, "autoredirectpath", required=False) or "/auth/token"
    if not path.startswith("/"):
        raise AuthConfigurationError(f"auth.token.autoredirectpath: {path}: must start with /")

    return TokenVerifier(
        realm,
        service,
        issuer,
        roots=roots,
        keys=keys,
        jwksURL=jwksURL,
        algorithms=algorithms,
        autoRedirect=autoRedirect,
        autoRedirectPath=path,
        agent=agent,
        reactor=reactor,
    )
