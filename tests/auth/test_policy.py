"""
The C{auth.access} policy (L{txregistry.auth.policy}): patterns, the
first-match order, who each entry grants, and configuration errors that
name their key.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from txregistry.auth.errors import AuthConfigurationError
from txregistry.auth.policy import RulesPolicy, policyFromConfig
from txregistry.auth.scopes import Access

RULES: dict[str, Any] = {
    "groups": {"ci": ["jenkins"], "admins": ["root"]},
    "rules": [
        {"repository": "${account}/**", "authenticated": ["pull", "push", "delete"]},
        {"repository": ["public/**", "library/*"], "anonymous": ["pull"],
         "authenticated": ["pull"], "groups": {"ci": ["push"]}, "users": {"alice": ["delete"]}},
        {"repository": "team-?/*", "groups": {"admins": ["pull", "push"]}},
        {"repository": "**", "users": {"alice": ["pull"]}},
    ],
}


class RulesPolicyTests(TestCase):
    def setUp(self) -> None:
        self.policy = policyFromConfig(RULES)

    def test_personalNamespace(self) -> None:
        """
        C{${account}} matches the caller's own name only, never an
        anonymous caller's.
        """
        self.assertEqual(self.policy.granted("bob", "bob/app"), {"pull", "push", "delete"})
        self.assertEqual(self.policy.granted("bob", "bob/a/b"), {"pull", "push", "delete"})
        self.assertEqual(self.policy.granted("bob", "carol/app"), set())
        self.assertEqual(self.policy.granted(None, "bob/app"), set())

    def test_unionWithinTheMatchingRule(self) -> None:
        """
        Within the rule that matches, a caller gets every entry naming
        them: authenticated, their user, their groups.
        """
        self.assertEqual(self.policy.granted(None, "public/x/y"), {"pull"})
        self.assertEqual(self.policy.granted("bob", "public/x"), {"pull"})
        self.assertEqual(self.policy.granted("jenkins", "library/alpine"), {"pull", "push"})
        self.assertEqual(self.policy.granted("alice", "public/x"), {"pull", "delete"})

    def test_firstMatchDecides(self) -> None:
        """
        A later rule is not read once one matched: alice's catch-all pull
        does not add to what the public rule gives her, and does apply
        where nothing earlier matched.
        """
        self.assertEqual(self.policy.granted("alice", "private/x"), {"pull"})
        self.assertEqual(self.policy.granted("bob", "private/x"), set())
        # library/* is one component: library/a/b falls through to "**".
        self.assertEqual(self.policy.granted(None, "library/a/b"), set())
        self.assertEqual(self.policy.granted("alice", "library/a/b"), {"pull"})

    def test_patterns(self) -> None:
        """
        C{?} is one character and C{*} stays within a component.
        """
        self.assertEqual(self.policy.granted("root", "team-a/app"), {"pull", "push"})
        self.assertEqual(self.policy.granted("root", "team-ab/app"), set())
        self.assertEqual(self.policy.granted("root", "team-a/app/x"), set())

    def test_dodgedNames(self) -> None:
        """
        A name spelt to slip past a pattern is no repository and grants
        nothing, whatever the rules say.
        """
        for name in ("public/../private", "Public/x", "public//x", "public/./x", "public/x/",
                     "/public/x", "public/%2fx", ""):
            self.assertEqual(self.policy.granted("alice", name), set(), name)
            self.assertEqual(self.policy.granted(None, name), set(), name)

    def test_allows(self) -> None:
        """
        C{allows} needs every access; C{*} needs every action; the
        catalog is for anyone who may use the registry.
        """
        pull = Access("repository", "public/x", "pull")
        push = Access("repository", "public/x", "push")
        self.assertTrue(self.policy.allows(None, [pull]))
        self.assertFalse(self.policy.allows(None, [pull, push]))
        self.assertTrue(self.policy.allows("bob", [Access("repository", "bob/x", "*")]))
        self.assertFalse(self.policy.allows("alice", [Access("repository", "public/x", "*")]))
        catalog = Access("registry", "catalog", "*")
        self.assertTrue(self.policy.allows("bob", [catalog]))
        self.assertTrue(self.policy.allows(None, [catalog]))
        closed = RulesPolicy.fromConfig({"rules": [{"repository": "**", "authenticated": ["pull"]}]})
        self.assertFalse(closed.anonymousUse)
        self.assertFalse(closed.allows(None, [catalog]))
        self.assertFalse(closed.allows(None, [pull]))

    def test_defaultDeny(self) -> None:
        """
        A name no rule matches grants nothing.
        """
        policy = RulesPolicy.fromConfig({"rules": [{"repository": "a/*", "users": {"u": ["pull"]}}]})
        self.assertEqual(policy.granted("u", "b/c"), set())


class ConfigurationErrorTests(TestCase):
    def assertRefused(self, parameters: Any, *parts: str) -> None:
        with self.assertRaises(AuthConfigurationError) as raised:
            policyFromConfig(parameters)
        for part in parts:
            self.assertIn(part, str(raised.exception))

    def test_errors(self) -> None:
        """
        Each mistake stops the start naming its key.
        """
        self.assertRefused({}, "auth.access.rules: required")
        self.assertRefused({"rules": [{"anonymous": ["pull"]}]}, "auth.access.rules[0].repository")
        self.assertRefused({"rules": [{"repository": "a", "anonymous": ["read"]}]},
                           "auth.access.rules[0].anonymous", "'read'")
        self.assertRefused({"rules": [{"repository": "a", "users": ["x"]}]}, "rules[0].users")
        self.assertRefused({"rules": [{"repository": "a", "groups": {"nope": ["pull"]}}]},
                           "rules[0].groups.nope", "no such group")
        self.assertRefused({"rules": [{"repository": "a", "user": {}}]}, "rules[0].user: unknown key")
        self.assertRefused({"rules": [{"repository": "a/**b"}]}, "rules[0].repository")
        self.assertRefused({"rules": [{"repository": "${account}/${account}"}]}, "once")
        self.assertRefused({"rules": [], "group": {}}, "auth.access.group: unknown key")
        self.assertRefused({"groups": {"g": "alice"}, "rules": [{"repository": "a"}]},
                           "auth.access.groups.g")
        self.assertRefused({"policy": "ldap", "rules": []}, "auth.access.policy", "'ldap'", "rules")
