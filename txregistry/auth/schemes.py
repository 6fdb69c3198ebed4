# -*- test-case-name: tests.api.test_door -*-
"""
The reference's three C{auth} schemes, each as what the door needs: the
checkers its portal logs in with, and the C{WWW-Authenticate} challenge
for what a request lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.cred.checkers import ICredentialsChecker

from txregistry.auth.cred import SillyChecker, TokenChecker
from txregistry.auth.scopes import Access, bearerChallenge, quoted
from txregistry.auth.token import TokenVerifier, tokenVerifierFromConfig

__all__ = ["Scheme", "schemeFor"]


@dataclass(frozen=True)
class Scheme:
    """
    One configured scheme.

    @ivar checkers: what its portal logs in with.
    @ivar verifier: the token verifier, for C{token} (to warm its key set).
    """

    name: str
    checkers: tuple[ICredentialsChecker, ...]
    realm: str
    service: str
    verifier: TokenVerifier | None = None

    def challenge(self, required: frozenset[Access], error: str | None) -> str:
        """
        The C{WWW-Authenticate} value for a request that lacks C{required}.
        """
        if self.verifier is not None:
            return self.verifier.challenge(required, error)
        if self.name == "htpasswd":
            return f'Basic realm="{quoted(self.realm)}"'
        return bearerChallenge(self.realm, self.service, required, error)


def schemeFor(name: str, parameters: Mapping[str, Any], reactor: Any) -> Scheme:
    """
    Build scheme C{name} from its C{auth.<name>} parameters.

    @raise txregistry.auth.errors.AuthConfigurationError: naming the key.
    """
    if name == "silly":
        return Scheme(name, (SillyChecker(),), str(parameters["realm"]), str(parameters["service"]))
    if name == "htpasswd":
        from txregistry.auth.htpasswd import HtpasswdChecker

        checker = HtpasswdChecker.fromPath(str(parameters["path"]), reactor)
        return Scheme(name, (checker,), str(parameters["realm"]), "")
    verifier = tokenVerifierFromConfig(parameters, reactor=reactor)
    return Scheme(
        name, (TokenChecker(verifier, reactor),), verifier.realm, verifier.service, verifier
    )
