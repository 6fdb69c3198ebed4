"""
Who sees and changes what in the UI: an anonymous visitor sees what
anonymous pulls may, a login (form or the browser's Basic prompt) goes
through the door's portal and the same access policy, the session cookie
is C{HttpOnly}, C{SameSite=Strict} and C{Secure} under TLS, and every
change needs the CSRF token and the C{delete} action.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.api.helpers import pushImage
from tests.api.test_access import ACCESS, _Unclosing, writeHtpasswd
from tests.api.test_door import basic
from tests.support import InProcessRegistry, startRegistry
from tests.ui.support import Browser, csrfOf, location
from txregistry.storage.factories import createDriver


class _Fixture:
    async def makeRegistries(self: Any, access: Any = ACCESS, delete: bool = True,
                             names: tuple[str, ...] = ("public/app", "private/app", "bob/app")) -> None:
        driver = createDriver("inmemory", {}, reactor)
        self.addCleanup(driver.close)
        # Another registry over the same storage, reading every tag list
        # from it (no tag cache): what the UI changed shows there at once.
        self.open = await startRegistry(self, {"storage": {"inmemory": {}, "cache": {"tagttl": "0s"}}},
                                        driver=_Unclosing(driver))
        for name in names:
            await pushImage(self, self.open, name, "v1")
            await pushImage(self, self.open, name, "v2")
        path = os.path.abspath(self.mktemp())
        writeHtpasswd(path, alice="a-pass", bob="b-pass")
        auth: dict[str, Any] = {"htpasswd": {"realm": "Registry Realm", "path": path}}
        if access is not None:
            auth["access"] = access
        self.registry = await startRegistry(self, {
            "auth": auth, "ui": {"enabled": True},
            "storage": {"inmemory": {}, "delete": {"enabled": delete}},
        }, driver=_Unclosing(driver))

    async def loggedIn(self: Any, user: str, registry: InProcessRegistry | None = None) -> Browser:
        browser = Browser(registry or self.registry)
        _, page = await browser.get("/ui/login")
        response, _ = await browser.post("/ui/login", {"csrf": csrfOf(page), "username": user,
                                                       "password": user[0] + "-pass", "next": "/ui/"})
        self.assertEqual(response.code, 303)
        return browser

    async def tags(self: Any, name: str) -> list[str]:
        response = await self.open.request("GET", f"/v2/{name}/tags/list")
        return json.loads(await response.content())["tags"]  # type: ignore[no-any-return]


def setCookie(response: Any) -> str:
    values = response.headers.getRawHeaders("set-cookie") or []
    return values[0] if values else ""


class AnonymousTests(_Fixture, TestCase):
    async def setUp(self) -> None:
        await self.makeRegistries()

    async def test_seesWhatAnonymousMayPull(self) -> None:
        """
        Anonymous visitors see the repositories anonymous pulls are
        allowed for, and are sent to log in for any other.
        """
        browser = Browser(self.registry)
        response, page = await browser.get("/ui/")
        self.assertEqual(response.code, 200)
        self.assertIn("public/app", page)
        self.assertNotIn("private/app", page)
        self.assertNotIn("bob/app", page)
        self.assertIn('href="/ui/login"', page)
        response, _ = await browser.get("/ui/r/private/app")
        self.assertEqual(response.code, 303)
        self.assertEqual(location(response), "/ui/login?next=%2Fui%2Fr%2Fprivate%2Fapp")
        response, page = await browser.get("/ui/r/public/app")
        self.assertEqual(response.code, 200)
        self.assertNotIn("Delete", page)

    async def test_cannotDelete(self) -> None:
        """
        An anonymous visitor's delete, even with a valid form, is refused
        and the tag stays.
        """
        browser = Browser(self.registry)
        _, page = await browser.get("/ui/login")
        response, page = await browser.post("/ui/r/public/app/-/delete", {"csrf": csrfOf(page), "tag": "v1"})
        self.assertEqual(response.code, 403)
        self.assertIn("Not allowed", page)
        self.assertEqual(await self.tags("public/app"), ["v1", "v2"])

    async def test_cookie(self) -> None:
        """
        The session cookie is C{HttpOnly} and C{SameSite=Strict}, scoped
        to the UI; C{Secure} when the client came over HTTPS (here, as a
        TLS-terminating proxy says so).
        """
        response, _ = await Browser(self.registry).get("/ui/")
        cookie = setCookie(response)
        self.assertTrue(cookie.startswith("txregistry_ui="), cookie)
        self.assertIn("; HttpOnly", cookie)
        self.assertIn("; SameSite=strict", cookie)
        self.assertIn("; Path=/ui/", cookie)
        self.assertNotIn("Secure", cookie)
        response, _ = await Browser(self.registry).get("/ui/", headers={"X-Forwarded-Proto": ["https"]})
        self.assertIn("; Secure", setCookie(response))


class LoginTests(_Fixture, TestCase):
    async def setUp(self) -> None:
        await self.makeRegistries()

    async def test_loginForm(self) -> None:
        """
        Logging in with the form goes back where the visitor was headed,
        with a new cookie, and shows what the policy lets them pull.
        """
        browser = Browser(self.registry)
        response, page = await browser.get("/ui/login?next=/ui/r/private/app")
        before = setCookie(response).split(";")[0]
        response, _ = await browser.post("/ui/login", {
            "csrf": csrfOf(page), "username": "alice", "password": "a-pass", "next": "/ui/r/private/app"})
        self.assertEqual(response.code, 303)
        self.assertEqual(location(response), "/ui/r/private/app")
        after = setCookie(response)
        self.assertNotEqual(after.split(";")[0], before)
        self.assertIn("; HttpOnly", after)
        response, page = await browser.get("/ui/")
        self.assertIn("Signed in as <strong>alice</strong>", page)
        for name in ("public/app", "private/app", "bob/app"):
            self.assertIn(name, page)
        response, _ = await browser.get("/ui/r/private/app")
        self.assertEqual(response.code, 200)

    async def test_wrongPassword(self) -> None:
        """
        A wrong password is a 401 login page saying so; the visitor stays
        anonymous.
        """
        browser = Browser(self.registry)
        _, page = await browser.get("/ui/login")
        response, page = await browser.post("/ui/login", {
            "csrf": csrfOf(page), "username": "alice", "password": "wrong"})
        self.assertEqual(response.code, 401)
        self.assertIn("Wrong user name or password.", page)
        _, page = await browser.get("/ui/")
        self.assertNotIn("private/app", page)

    async def test_loginNeedsCSRF(self) -> None:
        """
        A login posted without the page's token (from another site) is
        refused, right password or not.
        """
        browser = Browser(self.registry)
        await browser.get("/ui/login")
        for form in ({"username": "alice", "password": "a-pass"},
                     {"username": "alice", "password": "a-pass", "csrf": "0" * 64}):
            response, page = await browser.post("/ui/login", form)
            self.assertEqual(response.code, 403)
            self.assertIn("Form expired", page)

    async def test_nextStaysInTheUI(self) -> None:
        """
        After a login the visitor goes back into the UI only, never to
        another site.
        """
        for next in ("https://evil.example/", "//evil.example/ui/", "/v2/_catalog"):
            browser = Browser(self.registry)
            _, page = await browser.get("/ui/login")
            response, _ = await browser.post("/ui/login", {
                "csrf": csrfOf(page), "username": "alice", "password": "a-pass", "next": next})
            self.assertEqual(location(response), "/ui/", next)

    async def test_denied(self) -> None:
        """
        A logged-in visitor the policy gives nothing on a repository gets
        a 403 page for it, not its tags.
        """
        browser = await self.loggedIn("bob")
        response, page = await browser.get("/ui/r/private/app")
        self.assertEqual(response.code, 403)
        self.assertIn("You may not see the repository private/app.", page)
        self.assertNotIn("v1", page)

    async def test_basicPrompt(self) -> None:
        """
        C{?basic=1} asks for the browser's Basic prompt; its credentials
        start a session.
        """
        browser = Browser(self.registry)
        response, _ = await browser.get("/ui/login?basic=1")
        self.assertEqual(response.code, 401)
        self.assertEqual(response.headers.getRawHeaders("www-authenticate"),
                         ['Basic realm="txregistry", charset="UTF-8"'])
        response, _ = await browser.get("/ui/login?basic=1", headers=basic("alice", "a-pass"))
        self.assertEqual(response.code, 303)
        self.assertIn("HttpOnly", setCookie(response))
        _, page = await browser.get("/ui/")
        self.assertIn("Signed in as <strong>alice</strong>", page)
        _, page = await Browser(self.registry).get("/ui/", headers=basic("alice", "wrong"))
        self.assertNotIn("private/app", page)

    async def test_logout(self) -> None:
        """
        Logging out (a POST with the token) ends the session: the old
        cookie is worth nothing.
        """
        browser = await self.loggedIn("alice")
        _, page = await browser.get("/ui/")
        response, _ = await browser.post("/ui/logout", {})
        self.assertEqual(response.code, 403)
        response, _ = await browser.post("/ui/logout", {"csrf": csrfOf(page)})
        self.assertEqual(response.code, 303)
        _, page = await browser.get("/ui/")
        self.assertNotIn("private/app", page)
        self.assertNotIn("Signed in", page)


class DeleteTests(_Fixture, TestCase):
    async def setUp(self) -> None:
        await self.makeRegistries()

    async def test_deleteTag(self) -> None:
        """
        A user with C{delete} sees a delete button per tag; the form
        removes the tag, and is refused without its token.
        """
        browser = await self.loggedIn("bob")
        _, page = await browser.get("/ui/r/bob/app")
        self.assertIn("Delete tag v1", page)
        response, page2 = await browser.post("/ui/r/bob/app/-/delete", {"tag": "v1"})
        self.assertEqual(response.code, 403)
        self.assertIn("Form expired", page2)
        self.assertEqual(await self.tags("bob/app"), ["v1", "v2"])
        response, _ = await browser.post("/ui/r/bob/app/-/delete", {"csrf": csrfOf(page), "tag": "v1"})
        self.assertEqual(response.code, 303)
        self.assertEqual(location(response), "/ui/r/bob/app")
        self.assertEqual(await self.tags("bob/app"), ["v2"])
        _, page = await browser.get("/ui/r/bob/app")
        self.assertNotIn("Delete tag v1", page)

    async def test_deleteManifest(self) -> None:
        """
        Deleting a manifest from its page removes it and its tags.
        """
        browser = await self.loggedIn("bob")
        response, _ = await browser.get("/ui/r/bob/app/-/tag/v1")
        manifestPath = location(response)
        _, page = await browser.get(manifestPath)
        self.assertIn("Delete this manifest", page)
        digest = manifestPath.rsplit("/", 1)[1]
        response, _ = await browser.post("/ui/r/bob/app/-/delete", {"csrf": csrfOf(page), "digest": digest})
        self.assertEqual(response.code, 303)
        self.assertEqual(await self.tags("bob/app"), ["v2"])
        response, _ = await browser.get(manifestPath)
        self.assertEqual(response.code, 404)

    async def test_noDeleteWithoutTheAction(self) -> None:
        """
        A user who may pull but not delete sees no delete button, and a
        forged delete is refused.
        """
        browser = await self.loggedIn("alice")
        _, page = await browser.get("/ui/r/private/app")
        self.assertNotIn("Delete tag", page)
        response, _ = await browser.post("/ui/r/private/app/-/delete", {"csrf": csrfOf(page), "tag": "v1"})
        self.assertEqual(response.code, 403)
        self.assertEqual(await self.tags("private/app"), ["v1", "v2"])


class DeletesDisabledTests(_Fixture, TestCase):
    async def test_noDeletes(self) -> None:
        """
        Without C{storage.delete.enabled} nobody gets a delete button, the
        manifest page says why, and a posted delete is refused.
        """
        await self.makeRegistries(delete=False)
        browser = await self.loggedIn("bob")
        _, page = await browser.get("/ui/r/bob/app")
        self.assertNotIn("Delete tag", page)
        response, _ = await browser.get("/ui/r/bob/app/-/tag/v1")
        _, page = await browser.get(location(response))
        self.assertIn("Deletes are disabled on this registry", page)
        response, page = await browser.post("/ui/r/bob/app/-/delete", {"csrf": csrfOf(page), "tag": "v1"})
        self.assertEqual(response.code, 403)
        self.assertIn("Deletes are disabled", page)
        self.assertEqual(await self.tags("bob/app"), ["v1", "v2"])


class WithoutPolicyTests(_Fixture, TestCase):
    async def test_loginRequired(self) -> None:
        """
        With htpasswd and no access policy (the reference's all or
        nothing), an anonymous visitor is sent to log in, and any user
        sees and may delete everything.
        """
        await self.makeRegistries(access=None)
        response, _ = await Browser(self.registry).get("/ui/")
        self.assertEqual(response.code, 303)
        self.assertEqual(location(response), "/ui/login?next=%2Fui%2F")
        browser = await self.loggedIn("alice")
        _, page = await browser.get("/ui/")
        for name in ("public/app", "private/app", "bob/app"):
            self.assertIn(name, page)
        _, page = await browser.get("/ui/r/private/app")
        self.assertIn("Delete tag v1", page)


class WithoutAuthTests(TestCase):
    async def test_everyoneSeesEverything(self) -> None:
        """
        A registry without auth shows everything to everyone, with no
        login, and deletes where storage allows.
        """
        registry = await startRegistry(self, {"ui": {"enabled": True},
                                              "storage": {"inmemory": {}, "delete": {"enabled": True}}})
        await pushImage(self, registry, "private/app", "v1")
        browser = Browser(registry)
        _, page = await browser.get("/ui/r/private/app")
        self.assertIn("Delete tag v1", page)
        self.assertNotIn("Log in", page)
        _, page = await browser.get("/ui/login")
        self.assertIn("No login needed", page)
