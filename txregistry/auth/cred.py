# -*- test-case-name: tests.auth.test_cred -*-
"""
The registry's side of L{twisted.cred}: the actor a login yields, Bearer
token credentials and their checker, the reference's C{silly} checker,
and the realm that turns what a checker vouched for into an actor.

The door (L{txregistry.api.door}) logs in through a L{Portal} built from
these; the avatar is an L{IActor}, whose name every layer can see and
whose C{allows} says whether it may do what a route needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ICredentials, IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from txregistry.auth.policy import IAccessPolicy
from txregistry.auth.scopes import Access, coversAll
from txregistry.auth.token import ITokenVerifier, TokenInvalid, VerifiedToken

__all__ = [
    "IActor",
    "Actor",
    "anonymous",
    "IBearerToken",
    "BearerToken",
    "TokenChecker",
    "SillyChecker",
    "RegistryRealm",
    "registryPortal",
]


class IActor(Interface):
    """
    Who a request is from, once the door let it in.
    """

    name = Attribute("The user's name (str); empty for an anonymous actor.")

    def allows(required: Iterable[Access]) -> bool:
        """
        Whether the actor may do everything in C{required}.
        """


@implementer(IActor)
@dataclass(frozen=True)
class Actor:
    """
    An actor with the access it was granted.

    @ivar access: what its token grants; L{None} for a user a password
        (or the C{silly} scheme) let in.
    @ivar policy: the C{auth.access} policy, which limits every actor
        (and is what grants a user anything); L{None} without one, when a
        user may do everything (the reference's all-or-nothing access).
    """

    name: str
    access: frozenset[Access] | None = None
    policy: IAccessPolicy | None = None

    def allows(self, required: Iterable[Access]) -> bool:
        required = list(required)
        if self.access is not None and not coversAll(self.access, required):
            return False
        return self.policy is None or self.policy.allows(self.name or None, required)


def anonymous(policy: IAccessPolicy) -> Actor:
    """
    The actor of a request without credentials, which C{policy} alone
    decides for.
    """
    return Actor("", policy=policy)


class IBearerToken(ICredentials):
    """
    A C{Authorization: Bearer <token>} header's token.
    """

    token = Attribute("The token (str).")


@implementer(IBearerToken)
@dataclass(frozen=True)
class BearerToken:
    token: str


@implementer(ICredentialsChecker)
class TokenChecker:
    """
    Vouches for a Bearer token the L{ITokenVerifier} finds genuine; the
    avatar id is the L{VerifiedToken}, so the realm knows what it grants.
    """

    credentialInterfaces = (IBearerToken,)

    def __init__(self, verifier: ITokenVerifier, clock: IReactorTime) -> None:
        self._verifier = verifier
        self._clock = clock

    def requestAvatarId(self, credentials: Any) -> Deferred[Any]:
        def invalid(failure: Failure) -> Failure:
            if failure.check(TokenInvalid):
                return Failure(UnauthorizedLogin(getattr(failure.value, "reason", "invalid token")))
            return failure

        return self._verifier.verify(credentials.token, self._clock).addErrback(invalid)


@implementer(ICredentialsChecker)
class SillyChecker:
    """
    The reference's C{silly} scheme, for tests: any credentials at all are
    a user called C{silly}.
    """

    credentialInterfaces = (IBearerToken, IUsernamePassword)

    def requestAvatarId(self, credentials: Any) -> Deferred[Any]:
        return succeed("silly")


@implementer(IRealm)
class RegistryRealm:
    """
    Makes the L{Actor} for what a checker vouched for: a L{VerifiedToken}
    grants what it says, a user name (from C{htpasswd}, C{silly}) grants
    everything; C{policy} limits both.
    """

    def __init__(self, policy: IAccessPolicy | None = None) -> None:
        self.policy = policy

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> tuple[Any, Any, Any]:
        if IActor not in interfaces:
            raise NotImplementedError("txregistry's realm only makes actors")
        if isinstance(avatarId, VerifiedToken):
            actor = Actor(avatarId.subject, avatarId.access, self.policy)
        else:
            name = avatarId.decode("utf-8", "replace") if isinstance(avatarId, bytes) else str(avatarId)
            actor = Actor(name, policy=self.policy)
        return IActor, actor, lambda: None


def registryPortal(
    checkers: Iterable[ICredentialsChecker], policy: IAccessPolicy | None = None
) -> Portal:
    """
    The portal the door logs in through.
    """
    return Portal(RegistryRealm(policy), list(checkers))
