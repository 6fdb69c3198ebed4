"""
L{txregistry.ui.sessions} on its own: a login's idle lifetime by the
clock, the CSRF token's tie to the cookie, and who may do what.
"""

from __future__ import annotations

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyChannel

from txregistry.auth.cred import registryPortal
from txregistry.auth.policy import RulesPolicy
from txregistry.ui.sessions import COOKIE, Sessions


def request(cookie: str | None = None) -> Request:
    made = Request(DummyChannel())
    made.method = b"GET"
    if cookie:
        made.received_cookies[COOKIE] = cookie.encode()
    return made


def cookieOf(made: Request) -> str:
    return made.cookies[-1].decode().split(";")[0].split("=", 1)[1]


class SessionsTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        checker = InMemoryUsernamePasswordDatabaseDontUse(alice=b"secret")
        policy = RulesPolicy.fromConfig({"rules": [
            {"repository": "public/**", "anonymous": ["pull"], "users": {"alice": ["pull", "delete"]}}]})
        self.sessions = Sessions(registryPortal([checker], policy), policy, None, self.clock, 60.0)

    async def loggedIn(self) -> str:
        actor = await self.sessions.login(request(), b"alice", b"secret")
        assert actor is not None
        made = request()
        self.sessions.startSession(made, actor)
        return cookieOf(made)

    async def test_idleTimeout(self) -> None:
        """
        A login lasts C{timeout} seconds after the last page seen with it.
        """
        cookie = await self.loggedIn()
        self.clock.advance(50)
        self.assertEqual((await self.sessions.visitorOf(request(cookie))).name, "alice")
        self.clock.advance(50)
        self.assertEqual((await self.sessions.visitorOf(request(cookie))).name, "alice")
        self.clock.advance(61)
        self.assertEqual((await self.sessions.visitorOf(request(cookie))).name, "")

    async def test_wrongPassword(self) -> None:
        self.assertIsNone(await self.sessions.login(request(), b"alice", b"nope"))
        self.assertIsNone(await self.sessions.login(request(), b"bob", b"secret"))

    async def test_csrf(self) -> None:
        """
        The token belongs to one cookie: another visitor's does not pass.
        """
        first = await self.sessions.visitorOf(request("a" * 32))
        second = await self.sessions.visitorOf(request("b" * 32))
        self.assertTrue(self.sessions.checkCSRF(first, first.csrf))
        self.assertFalse(self.sessions.checkCSRF(first, second.csrf))
        self.assertFalse(self.sessions.checkCSRF(first, ""))
        again = await self.sessions.visitorOf(request("a" * 32))
        self.assertEqual(again.csrf, first.csrf)

    async def test_newVisitorGetsACookie(self) -> None:
        """
        A visitor without a usable cookie is given one; one with a cookie
        keeps it.
        """
        for value in (None, "short", "x" * 100, "bad cookie value!!!!!!!!"):
            made = request(value)
            visitor = await self.sessions.visitorOf(made)
            self.assertEqual(cookieOf(made), visitor.session)
            self.assertNotEqual(visitor.session, value)
        made = request("c" * 32)
        self.assertEqual((await self.sessions.visitorOf(made)).session, "c" * 32)
        self.assertEqual(made.cookies, [])

    async def test_may(self) -> None:
        """
        An anonymous visitor gets what the policy grants anonymous
        callers; a login gets what it grants the user.
        """
        anonymous = await self.sessions.visitorOf(request("d" * 32))
        self.assertTrue(anonymous.may("pull", "public/app"))
        self.assertFalse(anonymous.may("delete", "public/app"))
        self.assertFalse(anonymous.may("pull", "private/app"))
        alice = await self.sessions.visitorOf(request(await self.loggedIn()))
        self.assertTrue(alice.may("delete", "public/app"))
        self.assertFalse(alice.may("pull", "private/app"))

    async def test_logout(self) -> None:
        cookie = await self.loggedIn()
        visitor = await self.sessions.visitorOf(request(cookie))
        made = request(cookie)
        self.sessions.endSession(made, visitor)
        self.assertNotEqual(cookieOf(made), cookie)
        self.assertEqual((await self.sessions.visitorOf(request(cookie))).name, "")
