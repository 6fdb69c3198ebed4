# -*- test-case-name: tests.auth.test_policy -*-
"""
Who may do what to which repository: the C{auth.access} policy.

The reference registry is all-or-nothing (whoever logs in may do
everything).  A policy grants actions per repository instead, from
rules read in order::

    auth:
      access:
        groups:
          ci: [jenkins, buildbot]
        rules:
          - repository: "${account}/**"     # personal namespaces
            authenticated: [pull, push, delete]
          - repository: "public/**"
            anonymous: [pull]
            authenticated: [pull]
            groups: {ci: [pull, push]}
          - repository: "**"
            users: {alice: [pull, push, delete]}

The first rule whose C{repository} pattern matches a name decides for
that name; rules after it are not read.  Within it, the caller gets the
union of the actions of every entry that names them: C{anonymous} (no
login), C{authenticated} (any logged-in user), C{users} (by name) and
C{groups} (by membership).  A name no rule matches, and a name that is
not a valid repository name at all (C{a/../b}, C{A/b}), grants nothing:
the default is deny.

Patterns are matched against whole path components: C{*} matches within
one component, C{**} any number of whole components (at least one), and
C{${account}} the caller's own user name (a rule with it never matches
an anonymous caller).  Matching is case-sensitive, as names are.

A policy is a L{twisted.plugin}: C{auth.access.policy} names the
L{IAccessPolicyFactory} (C{rules}, the default, is this module's); a
site can ship its own (an LDAP group lookup, an IdP's claims).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.plugin import IPlugin, getPlugins
from zope.interface import Attribute, Interface, implementer

from txregistry.auth.errors import AuthConfigurationError
from txregistry.auth.scopes import Access
from txregistry.patterns import PatternError, compileRepositoryPattern
from txregistry.registry.names import isValidName

__all__ = [
    "IAccessPolicy",
    "IAccessPolicyFactory",
    "RulesPolicy",
    "Rule",
    "policyFromConfig",
    "ACTIONS",
]

#: The actions a rule may grant on a repository.
ACTIONS = ("pull", "push", "delete")

class IAccessPolicy(Interface):
    """
    Decides what a caller may do, by account name; L{None} is anonymous.
    """

    def granted(account: str | None, repository: str) -> frozenset[str]:
        """
        The actions (of L{ACTIONS}) C{account} may take on C{repository}.
        """

    def allows(account: str | None, required: Iterable[Access]) -> bool:
        """
        Whether C{account} may do everything in C{required}.
        """

    anonymousUse = Attribute(
        "Whether an anonymous caller may do anything at all (bool): when not, "
        "a request without credentials is challenged at once."
    )


class IAccessPolicyFactory(Interface):
    """
    A L{twisted.plugin} that makes an L{IAccessPolicy} from the
    C{auth.access} section.
    """

    name = Attribute("What C{auth.access.policy} calls it (str).")

    def policyFor(parameters: Mapping[str, Any]) -> IAccessPolicy:
        """
        @param parameters: the C{auth.access} section less C{policy}.
        @raise AuthConfigurationError: naming the key that is wrong.
        """


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return compileRepositoryPattern(pattern)
    except PatternError as e:
        raise AuthConfigurationError(f"{where}: {e}") from None


def _actions(value: Any, where: str) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise AuthConfigurationError(f"{where}: expected a list of actions ({', '.join(ACTIONS)})")
    unknown = sorted(set(value) - set(ACTIONS))
    if unknown:
        raise AuthConfigurationError(
            f"{where}: unknown action {unknown[0]!r} (expected {', '.join(ACTIONS)})")
    return frozenset(value)


def _grants(value: Any, where: str) -> dict[str, frozenset[str]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AuthConfigurationError(f"{where}: expected a mapping of names to actions")
    return {str(name): _actions(actions, f"{where}.{name}") for name, actions in value.items()}


@dataclass(frozen=True)
class Rule:
    """
    One C{auth.access.rules} entry.

    @ivar patterns: the compiled C{repository} patterns (any may match).
    """

    patterns: tuple[re.Pattern[str], ...]
    anonymous: frozenset[str] = frozenset()
    authenticated: frozenset[str] = frozenset()
    users: Mapping[str, frozenset[str]] = field(default_factory=dict)
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def matches(self, account: str | None, repository: str) -> bool:
        for pattern in self.patterns:
            match = pattern.fullmatch(repository)
            if match is None:
                continue
            if "account" in pattern.groupindex and match.group("account") != account:
                continue
            return True
        return False

    def grantedTo(self, account: str | None, memberOf: frozenset[str]) -> frozenset[str]:
        if account is None:
            return self.anonymous
        actions = set(self.authenticated)
        actions.update(self.users.get(account, ()))
        for group in memberOf:
            actions.update(self.groups.get(group, ()))
        return frozenset(actions)


_RULE_KEYS = {"repository", "anonymous", "authenticated", "users", "groups"}


def _rule(entry: Any, where: str, groups: Mapping[str, frozenset[str]]) -> Rule:
    if not isinstance(entry, Mapping):
        raise AuthConfigurationError(f"{where}: expected a mapping")
    unknown = sorted(set(entry) - _RULE_KEYS)
    if unknown:
        raise AuthConfigurationError(f"{where}.{unknown[0]}: unknown key")
    patterns = entry.get("repository")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns or not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise AuthConfigurationError(f"{where}.repository: required (a pattern or a list of them)")
    ruleGroups = _grants(entry.get("groups"), f"{where}.groups")
    for group in ruleGroups:
        if group not in groups:
            raise AuthConfigurationError(f"{where}.groups.{group}: no such group in auth.access.groups")
    return Rule(
        patterns=tuple(_compile(p, f"{where}.repository") for p in patterns),
        anonymous=_actions(entry.get("anonymous") or [], f"{where}.anonymous"),
        authenticated=_actions(entry.get("authenticated") or [], f"{where}.authenticated"),
        users=_grants(entry.get("users"), f"{where}.users"),
        groups=ruleGroups,
    )


@implementer(IAccessPolicy)
class RulesPolicy:
    """
    The rules of C{auth.access}, first match deciding (see the module's
    docstring for the order).

    @param groups: group name to the user names in it.
    """

    def __init__(self, rules: Iterable[Rule], groups: Mapping[str, Iterable[str]] | None = None) -> None:
        self._rules = tuple(rules)
        self._memberOf: dict[str, set[str]] = {}
        for group, members in (groups or {}).items():
            for member in members:
                self._memberOf.setdefault(member, set()).add(group)
        self.anonymousUse = any(rule.anonymous for rule in self._rules)

    @classmethod
    def fromConfig(cls, parameters: Mapping[str, Any]) -> RulesPolicy:
        """
        @raise AuthConfigurationError: naming the key that is wrong.
        """
        unknown = sorted(set(parameters) - {"groups", "rules"})
        if unknown:
            raise AuthConfigurationError(f"auth.access.{unknown[0]}: unknown key")
        rawGroups = parameters.get("groups") or {}
        if not isinstance(rawGroups, Mapping):
            raise AuthConfigurationError("auth.access.groups: expected a mapping of group names to users")
        groups: dict[str, frozenset[str]] = {}
        for group, members in rawGroups.items():
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                raise AuthConfigurationError(f"auth.access.groups.{group}: expected a list of user names")
            groups[str(group)] = frozenset(members)
        rules = parameters.get("rules")
        if not isinstance(rules, list) or not rules:
            raise AuthConfigurationError("auth.access.rules: required (a list of rules)")
        return cls([_rule(entry, f"auth.access.rules[{i}]", groups) for i, entry in enumerate(rules)],
                   groups)

    def granted(self, account: str | None, repository: str) -> frozenset[str]:
        if not isValidName(repository):
            # A name spelt to dodge a pattern (a/../b, A/b, a//b) is no
            # repository: nothing can be granted on it.
            return frozenset()
        memberOf = frozenset(self._memberOf.get(account, ())) if account else frozenset()
        for rule in self._rules:
            if rule.matches(account, repository):
                return rule.grantedTo(account, memberOf)
        return frozenset()

    def allows(self, account: str | None, required: Iterable[Access]) -> bool:
        for access in required:
            if access.type == "registry":
                # The catalog lists only what the caller may pull (the
                # registry's catalog layer filters it), so anyone who may
                # use the registry at all may ask for it.
                if access.name != "catalog" or (account is None and not self.anonymousUse):
                    return False
                continue
            actions = self.granted(account, access.name)
            if access.action == "*":
                if not set(ACTIONS) <= actions:
                    return False
            elif access.action not in actions:
                return False
        return True


@implementer(IAccessPolicyFactory, IPlugin)
class RulesPolicyFactory:
    """
    The built-in policy: C{auth.access.groups} and C{auth.access.rules}.
    """

    name = "rules"

    def policyFor(self, parameters: Mapping[str, Any]) -> IAccessPolicy:
        return RulesPolicy.fromConfig(parameters)


rules = RulesPolicyFactory()


def policyFromConfig(parameters: Mapping[str, Any]) -> IAccessPolicy:
    """
    The policy C{auth.access} describes: C{policy} names its factory
    (C{rules} when absent), found among the L{twisted.plugin} plugins.

    @raise AuthConfigurationError: for an unknown policy or a bad key.
    """
    parameters = dict(parameters)
    name = parameters.pop("policy", "rules")
    import twisted.plugins

    factories = {factory.name: factory for factory in getPlugins(IAccessPolicyFactory, twisted.plugins)}
    factories.setdefault(rules.name, rules)
    factory = factories.get(name)
    if factory is None:
        raise AuthConfigurationError(
            f"auth.access.policy: no access policy called {name!r} "
            f"(installed: {', '.join(sorted(factories))})")
    return factory.policyFor(parameters)  # type: ignore[no-any-return]
