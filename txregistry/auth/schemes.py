# -*- test-case-name: tests.api.test_door -*-
"""
The reference's three C{auth} schemes, and C{basic} (Basic passwords
checked by L{twisted.cred.strcred} checker plugins: C{htpasswd:...} or a
site's own), each as what the door needs: the
checkers its portal logs in with, and the C{WWW-Authenticate} challenge
for what a request lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.cred.checkers import ICredentialsChecker

from txregistry.auth.cred import SillyChecker, TokenChecker
from txregistry.auth.errors import AuthConfigurationError
from txregistry.auth.issuer import TokenIssuer
from txregistry.auth.scopes import Access, bearerChallenge, quoted
from txregistry.auth.token import TokenVerifier, tokenVerifierFromConfig

__all__ = ["Scheme", "schemeFor", "withTokenServer"]


@dataclass(frozen=True)
class Scheme:
    """
    One configured scheme.

    @ivar checkers: what its portal logs in with.
    @ivar verifier: the token verifier, for C{token} (to warm its key set).
    @ivar issuer: the built-in token server's issuer, when there is one;
        C{realm} is then its endpoint's URL, or empty to make that from
        the URL the client addressed and C{tokenPath}.
    @ivar basicRealm: the realm of a C{Basic} challenge (C{htpasswd}).
    """

    name: str
    checkers: tuple[ICredentialsChecker, ...]
    realm: str
    service: str
    verifier: TokenVerifier | None = None
    issuer: TokenIssuer | None = None
    tokenPath: str = "/auth/token"
    basicRealm: str = ""

    def challenge(self, required: frozenset[Access], error: str | None, origin: str = "") -> str:
        """
        The C{WWW-Authenticate} value for a request that lacks C{required}.

        @param origin: the C{scheme://host} the client addressed.
        """
        if self.issuer is not None:
            return bearerChallenge(self.realm or origin + self.tokenPath, self.service, required, error)
        if self.verifier is not None:
            return self.verifier.challenge(required, error)
        if self.name in ("htpasswd", "basic"):
            return f'Basic realm="{quoted(self.realm)}"'
        return bearerChallenge(self.realm, self.service, required, error)


def schemeFor(name: str, parameters: Mapping[str, Any], reactor: Any) -> Scheme:
    """
    Build scheme C{name} from its C{auth.<name>} parameters.

    @raise txregistry.auth.errors.AuthConfigurationError: naming the key.
    """
    if name == "silly":
        return Scheme(name, (SillyChecker(),), str(parameters["realm"]), str(parameters["service"]))
    if name == "basic":
        checker = _pluginChecker("auth.basic.checker", str(parameters["checker"]))
        return Scheme(name, (checker,), str(parameters["realm"]), "",
                      basicRealm=str(parameters["realm"]))
    if name == "htpasswd":
        from txregistry.auth.htpasswd import HtpasswdChecker

        checker = HtpasswdChecker.fromPath(str(parameters["path"]), reactor)
        return Scheme(name, (checker,), str(parameters["realm"]), "",
                      basicRealm=str(parameters["realm"]))
    verifier = tokenVerifierFromConfig(parameters, reactor=reactor)
    return Scheme(
        name, (TokenChecker(verifier, reactor),), verifier.realm, verifier.service, verifier
    )


def withTokenServer(scheme: Scheme, issuer: TokenIssuer, realm: str, tokenPath: str, reactor: Any) -> Scheme:
    """
    C{scheme} (C{htpasswd}) with the registry's own token server in
    front: clients are challenged to get a token from it (at C{realm}, or
    at C{tokenPath} of the URL they addressed), and its tokens let them in
    beside the passwords the scheme checks.
    """
    verifier = issuer.verifier(realm, autoRedirect=False)
    return Scheme(
        "tokenserver", (*scheme.checkers, TokenChecker(verifier, reactor)), realm,
        issuer.service, issuer=issuer, tokenPath=tokenPath, basicRealm=scheme.basicRealm,
    )


def _pluginChecker(key: str, description: str) -> ICredentialsChecker:
    """
    The checker a L{twisted.cred.strcred} string (C{htpasswd:/path}, or a
    site's own plugin's C{ldap:...}) names; it must take user names and
    passwords, which is what Basic credentials are.

    @raise AuthConfigurationError: naming C{key}.
    """
    from twisted.cred.credentials import IUsernamePassword
    from twisted.cred.strcred import StrcredException, makeChecker

    try:
        checker = makeChecker(description)
    except StrcredException as e:
        raise AuthConfigurationError(f"{key}: {e}") from None
    except AuthConfigurationError as e:
        # Our own factories name the key of their scheme (auth.htpasswd.path).
        message = str(e)
        if message.startswith("auth."):
            message = message.partition(": ")[2]
        raise AuthConfigurationError(f"{key}: {message}") from None
    except Exception as e:
        raise AuthConfigurationError(f"{key}: the checker could not be made: {e}") from None
    if IUsernamePassword not in checker.credentialInterfaces:
        raise AuthConfigurationError(f"{key}: {description.split(':')[0]!r} does not check passwords")
    return checker
