"""
The access policy at the door (C{auth.access} with C{htpasswd}): what
anonymous and logged-in callers may do per repository, a catalog that
lists only what the caller may pull, mounts that never prove a blob
exists, and names spelt to dodge a pattern.
"""

from __future__ import annotations

import os
from typing import Any

import bcrypt
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.api.helpers import LAYER, assertError, header, pushImage, sha256
from tests.api.test_door import basic
from tests.support import startRegistry
from txregistry.storage.factories import createDriver

ACCESS: dict[str, Any] = {
    "groups": {"ci": ["jenkins"]},
    "rules": [
        {"repository": "${account}/**", "authenticated": ["pull", "push", "delete"]},
        {"repository": "public/**", "anonymous": ["pull"], "authenticated": ["pull"],
         "groups": {"ci": ["push"]}},
        {"repository": "**", "users": {"alice": ["pull"]}},
    ],
}


def writeHtpasswd(path: str, **users: str) -> None:
    with open(path, "wb") as f:
        for user, password in users.items():
            f.write(user.encode() + b":" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)) + b"\n")


class AccessPolicyTests(TestCase):
    async def setUp(self) -> None:
        driver = createDriver("inmemory", {}, reactor)
        self.addCleanup(driver.close)
        # Content is put in place through an open registry over the same
        # storage; the one under test has the policy.
        self.open = await startRegistry(self, {}, driver=_Unclosing(driver))
        for name in ("public/app", "private/app", "bob/app", "jenkins/tool"):
            await pushImage(self, self.open, name, "v1")
        path = os.path.abspath(self.mktemp())
        writeHtpasswd(path, alice="a-pass", bob="b-pass", jenkins="j-pass")
        self.registry = await startRegistry(self, {
            "auth": {"htpasswd": {"realm": "Registry Realm", "path": path}, "access": ACCESS},
        }, driver=_Unclosing(driver))

    def get(self, path: str, who: str | None = None, password: str | None = None, **kwargs: Any) -> Any:
        headers = basic(who, password or who[0] + "-pass") if who else {}
        return self.registry.request(kwargs.pop("method", "GET"), path, headers=headers, **kwargs)

    async def test_anonymousPull(self) -> None:
        """
        An anonymous caller pulls a public repository without being
        challenged, and only that.
        """
        response = await self.get("/v2/public/app/manifests/v1")
        self.assertEqual(response.code, 200, await response.content())
        response = await self.get("/v2/private/app/manifests/v1")
        await assertError(self, response, 401, "UNAUTHORIZED")
        self.assertEqual(header(response, "www-authenticate"), 'Basic realm="Registry Realm"')

    async def test_baseRouteIsChallenged(self) -> None:
        """
        C{/v2/} is challenged even though anonymous pulls are allowed:
        it is how C{docker login} checks a password.
        """
        response = await self.get("/v2/")
        await assertError(self, response, 401, "UNAUTHORIZED")
        response = await self.get("/v2/", "bob")
        self.assertEqual(response.code, 200)
        response = await self.get("/v2/", "bob", "wrong")
        await assertError(self, response, 401, "UNAUTHORIZED")

    async def test_anonymousPushIsChallenged(self) -> None:
        """
        An anonymous push into a public repository is challenged (the
        client then logs in), before any body byte is read.
        """
        response = await self.get("/v2/public/app/blobs/uploads/", method="POST")
        await assertError(self, response, 401, "UNAUTHORIZED")

    async def test_loggedInPush(self) -> None:
        """
        A user pushes where a rule grants it: their own namespace, or
        through a group.
        """
        response = await self.get("/v2/bob/new/blobs/uploads/", "bob", method="POST")
        self.assertEqual(response.code, 202, await response.content())
        response = await self.get("/v2/public/app/blobs/uploads/", "jenkins", method="POST")
        self.assertEqual(response.code, 202, await response.content())

    async def test_loggedInButDenied(self) -> None:
        """
        A logged-in user without the action gets 403 C{DENIED}: another
        user's namespace, a push where only pull is granted.
        """
        for path, who, method in (
            ("/v2/bob/app/manifests/v1", "alice", "DELETE"),
            ("/v2/public/app/blobs/uploads/", "bob", "POST"),
            ("/v2/private/app/manifests/v1", "bob", "GET"),
            ("/v2/alice/app/manifests/v1", "bob", "GET"),
        ):
            response = await self.get(path, who, method=method)
            await assertError(self, response, 403, "DENIED")

    async def test_catalogFiltered(self) -> None:
        """
        The catalog lists only the repositories the caller may pull.
        """
        async def catalog(who: str | None, query: str = "") -> Any:
            response = await self.get("/v2/_catalog" + query, who)
            self.assertEqual(response.code, 200)
            return (await response.json())["repositories"], header(response, "link")

        self.assertEqual(await catalog(None), (["public/app"], None))
        self.assertEqual(await catalog("bob"), (["bob/app", "public/app"], None))
        self.assertEqual(await catalog("alice"),
                         (["bob/app", "jenkins/tool", "private/app", "public/app"], None))
        self.assertEqual(await catalog("alice", "?n=1&last=bob/app"),
                         (["jenkins/tool"], '</v2/_catalog?n=1&last=jenkins%2Ftool>; rel="next"'))

    async def test_mountWithoutPullOnTheSource(self) -> None:
        """
        Mounting from a repository the caller cannot pull is a fresh
        upload (202), never a 201 that proves the blob is there; from one
        it can pull, the mount happens.
        """
        digest = sha256(LAYER)
        response = await self.get(
            f"/v2/bob/new/blobs/uploads/?mount={digest}&from=private/app", "bob", method="POST")
        self.assertEqual(response.code, 202, await response.content())
        response = await self.get(
            f"/v2/bob/new/blobs/uploads/?mount={digest}&from=public/app", "bob", method="POST")
        self.assertEqual(response.code, 201, await response.content())

    async def test_dodgedNames(self) -> None:
        """
        A name spelt to reach a private repository through a public
        pattern (dot segments, case, doubled or encoded slashes) gets 401
        anonymously and 403 logged in: never access, never a 5xx.
        """
        for path in ("/v2/public/../private/app/manifests/v1", "/v2/Public/app/manifests/v1",
                     "/v2/public/%2e%2e/private/app/manifests/v1", "/v2/public//app/manifests/v1",
                     "/v2/private%2fapp/manifests/v1", "/v2/public/app/../../private/app/tags/list"):
            response = await self.get(path)
            await assertError(self, response, 401, "UNAUTHORIZED")
            response = await self.get(path, "bob")
            await assertError(self, response, 403, "DENIED")

    async def test_tokenForAnotherRepositoryIgnoredByPolicy(self) -> None:
        """
        What the policy does not grant, no credential gets: alice's pull
        right on everything stops at the public rule's narrower grant.
        """
        response = await self.get("/v2/public/app/manifests/v1", "alice", method="DELETE")
        await assertError(self, response, 403, "DENIED")


class _Unclosing:
    """
    A driver two registries share: only the test closes it.
    """

    def __init__(self, driver: Any) -> None:
        self._driver = driver

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    async def close(self) -> None:
        pass
