# -*- test-case-name: tests.auth.test_issuer -*-
"""
The registry's own token issuer: what the built-in token server
(L{txregistry.api.tokens}) grants and signs, free of HTTP.

It grants the intersection of what a client asks for (C{scope}) and what
the access policy allows the account (everything asked, for a logged-in
user, when there is no policy; nothing for an anonymous one), and signs
it as the JWT of C{token.md} with an ES256 or RS256 key.  The registry's
door verifies those tokens with the same key (L{verifier}).

Refresh tokens (C{offline_token}, C{oauth.md}'s C{refresh_token}) are
JWTs of their own audience, so one is never taken as an access token;
each use checks that the account still exists, so removing a user from
the htpasswd file revokes them.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime

from txregistry.auth.errors import AuthConfigurationError
from txregistry.auth.policy import ACTIONS, IAccessPolicy
from txregistry.auth.scopes import Access
from txregistry.auth.token import TokenInvalid, TokenVerifier, thumbprint

__all__ = ["TokenIssuer", "IssuedToken", "loadOrCreateKey", "ALGORITHMS"]

#: The algorithms the issuer signs with, by the key type they need.
ALGORITHMS = ("ES256", "RS256")

#: The refresh token's audience is the service's with this suffix.
REFRESH_AUDIENCE_SUFFIX = "#refresh"

#: Whether an account (a user name) still exists.
AccountExists = Callable[[str], Deferred[bool]]


@dataclass(frozen=True)
class IssuedToken:
    """
    A signed token and what the token endpoint says of it.
    """

    token: str
    access: frozenset[Access]
    issuedAt: float
    expiresIn: int


def _newKey(algorithm: str) -> Any:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


def _selfSigned(key: Any, issuer: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or "txregistry")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _keyFits(algorithm: str, key: Any) -> bool:
    if algorithm == "RS256":
        return isinstance(key, rsa.RSAPrivateKey)
    return isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)


def loadOrCreateKey(
    algorithm: str, keyPath: str | None, directory: str | None, issuer: str
) -> Any:
    """
    The private key to sign with: the PEM file at C{keyPath}, or the one
    kept in C{directory} (C{token-key.pem}, with C{token-cert.pem} beside
    it for whoever else must trust the tokens), made there at the first
    start.  This blocks: call it at the start.

    @raise AuthConfigurationError: naming the key that is wrong.
    """
    if keyPath is None:
        if directory is None:
            raise AuthConfigurationError(
                "auth.tokenserver.keydirectory: required without auth.tokenserver.key "
                "when the storage is not the filesystem driver")
        keyPath = os.path.join(directory, "token-key.pem")
        if not os.path.exists(keyPath):
            key = _newKey(algorithm)
            try:
                os.makedirs(directory, mode=0o700, exist_ok=True)
                _writeAtomically(os.path.join(directory, "token-cert.pem"),
                                 _selfSigned(key, issuer).public_bytes(serialization.Encoding.PEM), 0o644)
                _writeAtomically(keyPath, key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()), 0o600)
            except OSError as e:
                raise AuthConfigurationError(
                    f"auth.tokenserver.keydirectory: cannot create a key in {directory}: "
                    f"{e.strerror}") from None
            return key
        where = "auth.tokenserver.keydirectory"
    else:
        where = "auth.tokenserver.key"
    try:
        with open(keyPath, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except OSError as e:
        raise AuthConfigurationError(f"{where}: cannot read {keyPath}: {e.strerror}") from None
    except (ValueError, TypeError):
        raise AuthConfigurationError(f"{where}: {keyPath} is not an unencrypted PEM private key") from None
    if not _keyFits(algorithm, key):
        raise AuthConfigurationError(
            f"{where}: {keyPath} is not a key for {algorithm} "
            "(ES256 needs a P-256 EC key, RS256 an RSA key)")
    return key


def _writeAtomically(path: str, data: bytes, mode: int) -> None:
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


class TokenIssuer:
    """
    Grants and signs tokens for this registry.

    @param policy: the access policy; L{None} grants a logged-in user all
        it asks for and an anonymous one nothing.
    @param accountExists: asked before a refresh token is honoured.
    @param expiration: an access token's lifetime, in seconds.
    @param refreshExpiration: a refresh token's lifetime, in seconds.
    """

    def __init__(
        self,
        key: Any,
        algorithm: str,
        issuer: str,
        service: str,
        policy: IAccessPolicy | None,
        accountExists: AccountExists,
        clock: IReactorTime,
        expiration: int = 300,
        refreshExpiration: int = 7 * 86400,
    ) -> None:
        self._key = key
        self.algorithm = algorithm
        self.issuer = issuer
        self.service = service
        self._policy = policy
        self._accountExists = accountExists
        self._clock = clock
        self.expiration = expiration
        self.refreshExpiration = refreshExpiration
        self.publicKey = key.public_key()
        self.kid = thumbprint(self.publicKey)

    def verifier(self, realm: str, autoRedirect: bool) -> TokenVerifier:
        """
        The verifier the door checks this issuer's tokens with.
        """
        return TokenVerifier(realm, self.service, self.issuer, keys={self.kid: self.publicKey},
                             algorithms=(self.algorithm,), autoRedirect=autoRedirect)

    def grant(self, account: str | None, requested: Iterable[Access]) -> frozenset[Access]:
        """
        What of C{requested} C{account} (L{None}: anonymous) gets.
        """
        granted = set()
        for access in requested:
            actions = ACTIONS if access.action == "*" else (access.action,)
            for action in actions:
                one = Access(access.type, access.name, action)
                if self._policy is not None:
                    if self._policy.allows(account, [one]):
                        granted.add(one)
                elif account is not None:
                    granted.add(one)
        return frozenset(granted)

    def issue(self, account: str | None, requested: Iterable[Access]) -> IssuedToken:
        """
        Sign a token granting C{account} what it may have of C{requested}.
        """
        access = self.grant(account, requested)
        now = int(self._clock.seconds())
        byResource: dict[tuple[str, str], list[str]] = {}
        for one in sorted(access, key=lambda a: (a.type, a.name, a.action)):
            byResource.setdefault((one.type, one.name), []).append(one.action)
        claims = {
            "iss": self.issuer, "sub": account or "", "aud": self.service,
            "iat": now, "nbf": now, "exp": now + self.expiration, "jti": uuid.uuid4().hex,
            "access": [{"type": t, "name": n, "actions": a} for (t, n), a in byResource.items()],
        }
        return IssuedToken(self._sign(claims), access, float(now), self.expiration)

    def refreshToken(self, account: str) -> str:
        """
        A refresh token for C{account}, good for C{refreshExpiration}.
        """
        now = int(self._clock.seconds())
        return self._sign({
            "iss": self.issuer, "sub": account, "aud": self.service + REFRESH_AUDIENCE_SUFFIX,
            "iat": now, "exp": now + self.refreshExpiration, "jti": uuid.uuid4().hex,
        })

    def accountOf(self, refreshToken: str) -> Deferred[str]:
        """
        The account a refresh token is for, if it is genuine, unexpired
        and its account still exists.

        @return: L{Deferred} of the account, failing with L{TokenInvalid}.
        """
        try:
            claims = jwt.decode(
                refreshToken, self.publicKey, algorithms=[self.algorithm],
                audience=self.service + REFRESH_AUDIENCE_SUFFIX, issuer=self.issuer,
                # Expiry is judged by the registry's clock, below.
                options={"require": ["exp", "sub", "iss", "aud"], "verify_iat": False,
                         "verify_exp": False, "verify_nbf": False},
            )
        except jwt.PyJWTError as e:
            return fail(TokenInvalid(f"refresh token: {e}"))
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)) or expires <= self._clock.seconds():
            return fail(TokenInvalid("refresh token: expired"))
        account = claims.get("sub")
        if not isinstance(account, str) or not account:
            return fail(TokenInvalid("refresh token: no account"))

        def exists(found: bool) -> str:
            if not found:
                raise TokenInvalid(f"refresh token: no account {account!r} any more")
            return account

        return self._accountExists(account).addCallback(exists)

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm=self.algorithm,
                          headers={"kid": self.kid, "typ": "JWT"})


def alwaysExists(account: str) -> Deferred[bool]:
    """
    For a checker that cannot say whether an account exists.
    """
    return succeed(True)
