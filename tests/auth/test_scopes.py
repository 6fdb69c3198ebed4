"""
L{txregistry.auth.scopes}: scope strings as clients and token servers write
them, the challenge a registry sends, and what a grant covers.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from txregistry.auth.scopes import (
    Access,
    InvalidScope,
    covers,
    coversAll,
    parseScope,
    parseScopes,
    renderChallengeScope,
    renderScopes,
)


class ParseTests(SynchronousTestCase):
    def test_pullPush(self) -> None:
        self.assertEqual(
            parseScope("repository:samalba/my-app:pull,push"),
            {
                Access("repository", "samalba/my-app", "pull"),
                Access("repository", "samalba/my-app", "push"),
            },
        )

    def test_port(self) -> None:
        """
        A name with a host and port keeps its colon: the name runs from the
        first colon to the last.
        """
        self.assertEqual(
            parseScope("repository:localhost:5000/foo:pull"),
            {Access("repository", "localhost:5000/foo", "pull")},
        )

    def test_resourceClass(self) -> None:
        """
        C{repository(plugin)} is C{repository}: the class is ignored.
        """
        self.assertEqual(
            parseScope("repository(plugin):a/b:pull"), {Access("repository", "a/b", "pull")}
        )
        self.assertEqual(Access("repository(plugin)", "a/b", "pull").type, "repository")

    def test_catalog(self) -> None:
        self.assertEqual(parseScope("registry:catalog:*"), {Access("registry", "catalog", "*")})

    def test_several(self) -> None:
        self.assertEqual(
            parseScopes("repository:a:pull  repository:b:push"),
            {Access("repository", "a", "pull"), Access("repository", "b", "push")},
        )
        self.assertEqual(parseScopes(""), frozenset())

    def test_bad(self) -> None:
        """
        Each malformed scope raises L{InvalidScope} saying what is wrong,
        never another exception.
        """
        for bad in [
            "",
            "repository",
            "repository:a/b",
            "repository::pull",
            "repository:a/b:",
            "repository:a/b:fly",
            "repository:a/b:pull,",
            "team:a/b:pull",
            "Repository:a/b:pull",
            "repository(:a/b:pull",
            'repository:a"b:pull',
            "repository:a,b:pull",
            "x" * 10000,
        ]:
            with self.assertRaises(InvalidScope, msg=bad) as caught:
                parseScope(bad)
            self.assertLess(len(str(caught.exception)), 300)
        self.assertRaises(InvalidScope, parseScope, None)
        self.assertRaises(InvalidScope, parseScopes, "repository:a:pull bad")
        self.assertRaises(InvalidScope, Access, "repository", "", "pull")


class RenderTests(SynchronousTestCase):
    def test_challenge(self) -> None:
        """
        The scope parameter of a challenge groups one resource's actions in
        a stable order, and separates resources with a space.
        """
        self.assertEqual(
            renderChallengeScope(
                [
                    Access("repository", "samalba/my-app", "push"),
                    Access("repository", "samalba/my-app", "pull"),
                ]
            ),
            'scope="repository:samalba/my-app:pull,push"',
        )
        self.assertEqual(
            renderScopes(
                [
                    Access("repository", "a/b", "pull"),
                    Access("repository", "localhost:5000/c", "delete"),
                    Access("repository", "a/b", "pull"),
                ]
            ),
            "repository:a/b:pull repository:localhost:5000/c:delete",
        )
        self.assertEqual(renderChallengeScope([]), "")

    def test_roundTrip(self) -> None:
        scopes = "repository:a/b:pull,push,delete registry:catalog:*"
        self.assertEqual(parseScopes(renderScopes(parseScopes(scopes))), parseScopes(scopes))


class CoverageTests(SynchronousTestCase):
    pull = Access("repository", "a/b", "pull")
    push = Access("repository", "a/b", "push")

    def test_sameAction(self) -> None:
        self.assertTrue(covers([self.pull], self.pull))
        self.assertFalse(covers([self.pull], self.push))

    def test_star(self) -> None:
        """
        C{*} covers every action on its resource, and only on it.
        """
        star = Access("repository", "a/b", "*")
        self.assertTrue(
            coversAll([star], [self.pull, self.push, Access("repository", "a/b", "delete")])
        )
        self.assertFalse(covers([star], Access("repository", "a/c", "pull")))
        self.assertFalse(covers([star], Access("registry", "a/b", "pull")))

    def test_otherRepository(self) -> None:
        """
        Access to one repository grants nothing on another, not even one
        whose name it prefixes.
        """
        granted = parseScope("repository:a/b:pull,push")
        self.assertFalse(covers(granted, Access("repository", "a/b/c", "pull")))
        self.assertFalse(covers(granted, Access("repository", "a", "pull")))

    def test_all(self) -> None:
        """
        Every required access must be covered; nothing required is allowed.
        """
        self.assertTrue(coversAll([self.pull, self.push], [self.pull, self.push]))
        self.assertFalse(coversAll([self.pull], [self.pull, self.push]))
        self.assertTrue(coversAll([], []))
