# -*- test-case-name: tests.auth.test_scopes -*-
"""
The access model of the token scheme (C{scope.md}): who may do what to
which resource.

An L{Access} is one action on one resource: C{pull} on the repository
C{samalba/my-app}.  A scope string (C{repository:samalba/my-app:pull,push})
names several actions on one resource; a challenge names several scopes,
space-separated.  A token's C{access} claim is a set of L{Access}, and a
request is allowed when that set L{covers} every L{Access} the request
needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ACTIONS",
    "TYPES",
    "Access",
    "InvalidScope",
    "bearerChallenge",
    "covers",
    "coversAll",
    "parseScope",
    "parseScopes",
    "quoted",
    "renderChallengeScope",
    "renderScopes",
]

#: The resource types a registry answers for.  C{repository(plugin)} is the
#: same type: the resource class is deprecated and ignored (C{scope.md}).
TYPES = frozenset({"repository", "registry"})

#: The actions, C{*} being all of them (C{registry:catalog:*}).
ACTIONS = ("pull", "push", "delete", "*")

_TYPE = re.compile(r"([a-z0-9]+)(?:\(([a-z0-9]+)\))?\Z")
# A name is a reference's name, maybe with a host and port: no space,
# comma or quote, which would break a challenge's quoted-string.
_NAME = re.compile(r"[A-Za-z0-9._\-/:]+\Z")


class InvalidScope(ValueError):
    """
    A scope string or an access entry does not follow C{scope.md}; the
    message says what and repeats (a bounded part of) the offending text.
    """


def _echo(text: str) -> str:
    return repr(text if len(text) <= 200 else text[:200] + "...")


def _normaliseType(resourceType: str) -> str:
    """
    The resource type without its class: C{repository(plugin)} is
    C{repository}.

    @raise InvalidScope: not C{type} or C{type(class)}, or a type the
        registry does not answer for.
    """
    match = _TYPE.match(resourceType)
    if match is None:
        raise InvalidScope(f"bad resource type {_echo(resourceType)}")
    base = match.group(1)
    if base not in TYPES:
        raise InvalidScope(f"unknown resource type {_echo(resourceType)}")
    return base


@dataclass(frozen=True)
class Access:
    """
    One action on one resource.

    @ivar type: C{"repository"} or C{"registry"} (a class such as
        C{repository(plugin)} is dropped on construction).
    @ivar name: the resource's name: C{samalba/my-app},
        C{localhost:5000/foo}, or C{catalog} for the registry.
    @ivar action: one of L{ACTIONS}.
    """

    type: str
    name: str
    action: str

    def __post_init__(self) -> None:
        # Checked here, once, so that every Access in a set is one the
        # coverage rules understand and renders into a valid challenge.
        if not isinstance(self.type, str):
            raise InvalidScope(f"bad resource type {self.type!r}")
        object.__setattr__(self, "type", _normaliseType(self.type))
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InvalidScope(f"bad resource name {_echo(str(self.name))}")
        if self.action not in ACTIONS:
            raise InvalidScope(f"unknown action {_echo(str(self.action))}")

    def covers(self, required: Access) -> bool:
        """
        Whether having this access is enough for C{required}: the same
        resource, and the same action or C{*}.
        """
        return (
            self.type == required.type
            and self.name == required.name
            and (self.action == "*" or self.action == required.action)
        )


def parseScope(scope: str) -> frozenset[Access]:
    """
    The accesses one resource scope names.

    The name is everything between the first and the last colon, since a
    name may carry a port (C{repository:localhost:5000/foo:pull}).

    @param scope: C{type:name:action[,action]*}.
    @raise InvalidScope: not that shape, or an unknown type or action.
    """
    if not isinstance(scope, str):
        raise InvalidScope(f"a scope is a string, not {type(scope).__name__}")
    first = scope.find(":")
    last = scope.rfind(":")
    if first == -1 or first == last:
        raise InvalidScope(f"a scope is type:name:actions, not {_echo(scope)}")
    resourceType, name, actions = scope[:first], scope[first + 1 : last], scope[last + 1 :]
    if not name:
        raise InvalidScope(f"no resource name in {_echo(scope)}")
    if not actions:
        raise InvalidScope(f"no action in {_echo(scope)}")
    return frozenset(Access(resourceType, name, action) for action in actions.split(","))


def parseScopes(scopes: str) -> frozenset[Access]:
    """
    The accesses a space-separated list of scopes names (a challenge's or a
    token request's C{scope}); the empty string names none.

    @raise InvalidScope: one of them is not a valid scope.
    """
    if not isinstance(scopes, str):
        raise InvalidScope(f"scopes are a string, not {type(scopes).__name__}")
    result: set[Access] = set()
    for scope in scopes.split(" "):
        if scope:
            result |= parseScope(scope)
    return frozenset(result)


def renderScopes(accesses: Iterable[Access]) -> str:
    """
    The scope string a client asks the token server for: one
    C{type:name:actions} per resource, space-separated, resources in the
    order first seen and actions in the order of L{ACTIONS}, so that the
    same set always renders the same way.
    """
    grouped: dict[tuple[str, str], set[str]] = {}
    for access in accesses:
        grouped.setdefault((access.type, access.name), set()).add(access.action)
    return " ".join(
        f"{resourceType}:{name}:{','.join(a for a in ACTIONS if a in actions)}"
        for (resourceType, name), actions in grouped.items()
    )


def renderChallengeScope(accesses: Iterable[Access]) -> str:
    """
    The C{scope} parameter of a C{WWW-Authenticate: Bearer} challenge
    (RFC 6750 section 3): C{scope="repository:a/b:pull,push"}, or the empty
    string when nothing is required (the parameter is then left out).
    """
    rendered = renderScopes(accesses)
    return f'scope="{rendered}"' if rendered else ""


def quoted(value: str) -> str:
    """
    C{value} as the inside of an RFC 9110 quoted string.
    """
    return value.replace("\\", "\\\\").replace('"', '\\"')


def bearerChallenge(
    realm: str, service: str, required: Iterable[Access] = (), error: str | None = None
) -> str:
    """
    The C{WWW-Authenticate: Bearer} value (C{token.md}, RFC 6750) for a
    request that lacks C{required}: resources in name order, so the same
    need always reads the same way, and C{error} (C{invalid_token},
    C{insufficient_scope}) when that is why.
    """
    value = f'Bearer realm="{quoted(realm)}",service="{quoted(service)}"'
    scope = renderChallengeScope(sorted(required, key=lambda a: (a.type, a.name)))
    if scope:
        value += "," + scope
    if error:
        value += f',error="{quoted(error)}"'
    return value


def covers(granted: Iterable[Access], required: Access) -> bool:
    """
    Whether some granted access covers C{required} (see L{Access.covers}).
    """
    return any(access.covers(required) for access in granted)


def coversAll(granted: Iterable[Access], required: Iterable[Access]) -> bool:
    """
    Whether the granted accesses cover every required one: a request is
    allowed only if it needs nothing the token does not give.
    """
    grantedSet = frozenset(granted)
    return all(covers(grantedSet, access) for access in required)
