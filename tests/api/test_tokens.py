"""
The built-in token server (C{auth.tokenserver}): token.md's GET and
oauth.md's POST, what a token grants under the access policy, refresh
tokens and their revocation, the key it makes at the first start, and bad
requests that get a clear 4xx.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.trial.unittest import TestCase

from tests.api.helpers import assertError, header, pushImage
from tests.api.test_access import ACCESS, _Unclosing, writeHtpasswd
from tests.api.test_door import basic
from tests.support import startRegistry
from txregistry.config import ConfigurationError, checkConfiguration
from txregistry.service import makeSite
from txregistry.storage.factories import createDriver


def claimsOf(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


class TokenServerTests(TestCase):
    async def setUp(self) -> None:
        from twisted.internet import reactor

        driver = createDriver("inmemory", {}, reactor)
        self.addCleanup(driver.close)
        self.open = await startRegistry(self, {}, driver=_Unclosing(driver))
        await pushImage(self, self.open, "public/app", "v1")
        await pushImage(self, self.open, "bob/app", "v1")
        self.htpasswd = os.path.abspath(self.mktemp())
        writeHtpasswd(self.htpasswd, alice="a-pass", bob="b-pass", jenkins="j-pass")
        self.keys = os.path.abspath(self.mktemp())
        self.registry = await startRegistry(self, {
            "auth": {
                "htpasswd": {"realm": "Registry Realm", "path": self.htpasswd},
                "tokenserver": {"service": "reg.test", "issuer": "reg.test", "keydirectory": self.keys},
                "access": ACCESS,
            },
        }, driver=_Unclosing(driver))

    async def token(self, query: str, who: str | None = None, code: int = 200) -> dict[str, Any]:
        headers = basic(who, who[0] + "-pass") if who else {}
        response = await self.registry.request("GET", "/auth/token?" + query, headers=headers)
        body = await response.content()
        self.assertEqual(response.code, code, body)
        if code == 200:
            self.assertEqual(header(response, "cache-control"), "no-store")
        return json.loads(body)  # type: ignore[no-any-return]

    def bearer(self, token: str) -> dict[str, list[str]]:
        return {"Authorization": [f"Bearer {token}"]}

    async def test_challengeNamesTheServer(self) -> None:
        """
        A request without credentials is challenged to get a token from
        the registry's own endpoint, at the URL the client addressed.
        """
        response = await self.registry.request("GET", "/v2/bob/app/manifests/v1")
        await assertError(self, response, 401, "UNAUTHORIZED")
        self.assertEqual(
            header(response, "www-authenticate"),
            f'Bearer realm="{self.registry.url}/auth/token",service="reg.test",'
            'scope="repository:bob/app:pull"')
        # So is /v2/ itself, although anonymous pulls are allowed: a Bearer
        # client then fetches an anonymous token, and docker login can
        # check a password.
        response = await self.registry.request("GET", "/v2/")
        await assertError(self, response, 401, "UNAUTHORIZED")
        self.assertEqual(header(response, "www-authenticate"),
                         f'Bearer realm="{self.registry.url}/auth/token",service="reg.test"')

    async def test_tokenFlow(self) -> None:
        """
        A token got with Basic credentials for a scope lets its holder do
        exactly that: bob pulls and pushes his own repository with it.
        """
        document = await self.token(
            "service=reg.test&scope=repository:bob/app:pull,push&scope=repository:bob/other:pull",
            "bob")
        self.assertEqual(document["token"], document["access_token"])
        self.assertEqual(document["expires_in"], 300)
        self.assertRegex(document["issued_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertNotIn("refresh_token", document)
        claims = claimsOf(document["token"])
        self.assertEqual((claims["iss"], claims["aud"], claims["sub"]), ("reg.test", "reg.test", "bob"))
        self.assertEqual(sorted(claims["access"], key=lambda a: a["name"]), [
            {"type": "repository", "name": "bob/app", "actions": ["pull", "push"]},
            {"type": "repository", "name": "bob/other", "actions": ["pull"]},
        ])
        token = self.bearer(document["token"])
        response = await self.registry.request("GET", "/v2/bob/app/manifests/v1", headers=token)
        self.assertEqual(response.code, 200)
        await response.content()
        response = await self.registry.request("POST", "/v2/bob/app/blobs/uploads/", headers=token)
        self.assertEqual(response.code, 202)
        await response.content()

    async def test_grantIsTheIntersectionWithThePolicy(self) -> None:
        """
        A token grants only what the policy allows of what was asked:
        bob asking to push a public repository gets pull alone, and the
        registry then challenges the push for a better token.
        """
        document = await self.token("service=reg.test&scope=repository:public/app:pull,push,delete",
                                    "bob")
        self.assertEqual(claimsOf(document["token"])["access"],
                         [{"type": "repository", "name": "public/app", "actions": ["pull"]}])
        response = await self.registry.request(
            "POST", "/v2/public/app/blobs/uploads/", headers=self.bearer(document["token"]))
        await assertError(self, response, 401, "UNAUTHORIZED")
        self.assertIn('error="insufficient_scope"', header(response, "www-authenticate") or "")

    async def test_anonymousToken(self) -> None:
        """
        Without credentials the token grants what anonymous callers may
        have: a public pull, not bob's repository.
        """
        document = await self.token(
            "service=reg.test&scope=repository:public/app:pull&scope=repository:bob/app:pull")
        self.assertEqual(claimsOf(document["token"])["access"],
                         [{"type": "repository", "name": "public/app", "actions": ["pull"]}])
        self.assertEqual(claimsOf(document["token"])["sub"], "")

    async def test_wrongPassword(self) -> None:
        """
        Bad credentials at the token endpoint are 401 (docker login then
        fails), and logged.
        """
        headers = basic("bob", "wrong")
        response = await self.registry.request("GET", "/auth/token?service=reg.test", headers=headers)
        await assertError(self, response, 401, "UNAUTHORIZED")
        self.assertEqual(header(response, "www-authenticate"), 'Basic realm="Registry Realm"')

    async def test_badRequests(self) -> None:
        """
        Another service, a malformed scope, a Bearer header at the token
        endpoint, a method it does not take: each a 4xx with the envelope.
        """
        await self.token("service=other", "bob", code=400)
        await self.token("scope=repository:bob/app", "bob", code=400)
        await self.token("scope=" + "&scope=".join(["repository:a:pull"] * 101), "bob", code=400)
        response = await self.registry.request("GET", "/auth/token", headers=self.bearer("x.y.z"))
        await assertError(self, response, 401, "UNAUTHORIZED")
        response = await self.registry.request("DELETE", "/auth/token")
        await assertError(self, response, 405, "UNSUPPORTED")

    async def post(self, form: dict[str, str], code: int = 200,
                   contentType: str = "application/x-www-form-urlencoded") -> dict[str, Any]:
        response = await self.registry.request(
            "POST", "/auth/token", data=urlencode(form).encode(),
            headers={"Content-Type": [contentType]})
        body = await response.content()
        self.assertEqual(response.code, code, body)
        return json.loads(body)  # type: ignore[no-any-return]

    async def test_oauthPasswordAndRefresh(self) -> None:
        """
        oauth.md: a password grant with C{access_type=offline} returns a
        refresh token; the refresh grant returns access tokens with it; the
        refresh token is no access token itself.
        """
        document = await self.post({
            "grant_type": "password", "username": "bob", "password": "b-pass",
            "service": "reg.test", "client_id": "test", "access_type": "offline",
            "scope": "repository:bob/app:pull repository:public/app:push"})
        self.assertEqual(document["scope"], "repository:bob/app:pull")
        refresh = document["refresh_token"]
        response = await self.registry.request("GET", "/v2/bob/app/tags/list", headers=self.bearer(refresh))
        await assertError(self, response, 401, "UNAUTHORIZED")
        again = await self.post({"grant_type": "refresh_token", "refresh_token": refresh,
                                 "service": "reg.test", "client_id": "test",
                                 "scope": "repository:bob/app:push"})
        self.assertEqual(again["scope"], "repository:bob/app:push")
        self.assertEqual(again["refresh_token"], refresh)
        response = await self.registry.request(
            "POST", "/v2/bob/app/blobs/uploads/", headers=self.bearer(again["access_token"]))
        self.assertEqual(response.code, 202)
        await response.content()

    async def test_offlineTokenOverGET(self) -> None:
        """
        token.md's C{offline_token=true} returns a refresh token (docker
        login keeps it as its identity token).
        """
        document = await self.token("service=reg.test&offline_token=true&client_id=docker", "bob")
        self.assertEqual(claimsOf(document["refresh_token"])["aud"], "reg.test#refresh")

    async def test_refreshRevokedByRemovingTheUser(self) -> None:
        """
        Once bob is gone from the htpasswd file his refresh token gets
        nothing.
        """
        document = await self.token("service=reg.test&offline_token=true", "bob")
        writeHtpasswd(self.htpasswd, alice="a-pass")
        # The file is checked again at most once a second.
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        await deferLater(reactor, 1.1, lambda: None)
        refused = await self.post({"grant_type": "refresh_token", "service": "reg.test",
                                   "client_id": "t", "refresh_token": document["refresh_token"]},
                                  code=401)
        self.assertEqual(refused["error"], "invalid_grant")

    async def test_oauthErrors(self) -> None:
        """
        oauth.md's failures are RFC 6749 error documents.
        """
        base = {"service": "reg.test", "client_id": "t"}
        for form, code, error in (
            ({**base, "grant_type": "password", "username": "bob", "password": "no"}, 401,
             "invalid_grant"),
            ({**base, "grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
            ({**base, "grant_type": "refresh_token", "refresh_token": "x.y.z"}, 401, "invalid_grant"),
            ({"grant_type": "password", "username": "bob", "password": "b-pass", "service": "reg.test"},
             400, "invalid_request"),
            ({**base, "grant_type": "password", "username": "bob", "password": "b-pass",
              "scope": "repository:a"}, 400, "invalid_scope"),
        ):
            document = await self.post(form, code)
            self.assertEqual(document["error"], error, form)
        document = await self.post({**base, "grant_type": "password"}, 400, contentType="text/plain")
        self.assertEqual(document["error"], "invalid_request")

    def test_keyMadeOnceAndKept(self) -> None:
        """
        The first start makes a P-256 key (mode 0600) and its certificate
        in the key directory; later starts use the same key.
        """
        path = os.path.join(self.keys, "token-key.pem")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertTrue(os.path.exists(os.path.join(self.keys, "token-cert.pem")))
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        self.assertIsInstance(key, ec.EllipticCurvePrivateKey)
        before = os.stat(path).st_mtime_ns
        # A second registry over the same directory uses the same key.
        config = checkConfiguration({"storage": {"inmemory": {}}, "auth": {
            "htpasswd": {"realm": "R", "path": self.htpasswd},
            "tokenserver": {"keydirectory": self.keys}}})
        from twisted.internet import reactor

        makeSite(config, createDriver("inmemory", {}, reactor))
        self.assertEqual(os.stat(path).st_mtime_ns, before)


class TokenServerConfigurationTests(TestCase):
    def refused(self, document: dict[str, Any], *parts: str) -> None:
        from twisted.internet import reactor

        with self.assertRaises(ConfigurationError) as raised:
            config = checkConfiguration({"storage": {"inmemory": {}}, **document})
            makeSite(config, createDriver("inmemory", {}, reactor))
        for part in parts:
            self.assertIn(part, str(raised.exception))

    def test_errors(self) -> None:
        """
        Each mistake stops the start naming its key.
        """
        htpasswd = os.path.abspath(self.mktemp())
        writeHtpasswd(htpasswd, bob="b")
        users = {"htpasswd": {"realm": "R", "path": htpasswd}}
        self.refused({"auth": {"tokenserver": {}}}, "auth.tokenserver", "auth.htpasswd")
        self.refused({"auth": {**users, "tokenserver": {"algorithm": "HS256"}}},
                     "auth.tokenserver.algorithm")
        self.refused({"auth": {**users, "tokenserver": {"expiration": "10s"}}},
                     "auth.tokenserver.expiration")
        self.refused({"auth": {**users, "tokenserver": {"realm": "ftp://x"}}}, "auth.tokenserver.realm")
        self.refused({"auth": {**users, "tokenserver": {"keyfile": "x"}}}, "auth.tokenserver.keyfile")
        self.refused({"auth": {**users, "tokenserver": {}}}, "auth.tokenserver.keydirectory")
        key = os.path.abspath(self.mktemp())
        with open(key, "wb") as f:
            f.write(ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        self.refused({"auth": {**users, "tokenserver": {"key": key, "algorithm": "RS256"}}},
                     "auth.tokenserver.key", "RS256")
        self.refused({"auth": {**users, "tokenserver": {"key": key + ".missing"}}},
                     "auth.tokenserver.key", "cannot read")
        self.refused({"auth": {**users, "access": {"rules": []}}}, "auth.access.rules")


