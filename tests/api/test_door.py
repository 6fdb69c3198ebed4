"""
Access control at the door (L{txregistry.api.door}), through a real
registry: the reference's silly, htpasswd and token schemes, the
challenges they answer with, and bad credentials that never get in.
"""

from __future__ import annotations

import base64
import json
import os
import time

import bcrypt
from twisted.trial.unittest import TestCase

from tests.api.helpers import LAYER, assertError, header, rawRequest, requestBytes, sha256
from tests.auth.issuers import ISSUER, SERVICE, CertificateIssuer, claims, pem
from tests.support import startRegistry


def currentIssuer(common: str = "Test Token CA") -> CertificateIssuer:
    """
    The token issuer of L{tests.auth.issuers}, with certificates valid
    now: the registry checks chains at its reactor's time.
    """
    return CertificateIssuer(common, notBefore=time.time() - 86400, notAfter=time.time() + 86400)


def basic(user: str, password: str) -> dict[str, list[str]]:
    value = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": [f"Basic {value}"]}


class SillyTests(TestCase):
    async def setUp(self) -> None:
        self.registry = await startRegistry(
            self, {"auth": {"silly": {"realm": "https://auth.example/token", "service": "reg"}}}
        )

    async def test_challenge(self) -> None:
        """
        Without credentials every route is 401 with a Bearer challenge
        naming exactly the scope it needs.
        """
        response = await self.registry.request("GET", "/v2/a/b/tags/list")
        await assertError(self, response, 401, "UNAUTHORIZED")
        self.assertEqual(
            header(response, "www-authenticate"),
            'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"',
        )
        response = await self.registry.request("GET", "/v2/")
        await assertError(self, response, 401, "UNAUTHORIZED")
        self.assertEqual(header(response, "www-authenticate"),
                         'Bearer realm="https://auth.example/token",service="reg"')
        response = await self.registry.request("GET", "/v2/_catalog")
        self.assertIn('scope="registry:catalog:*"', header(response, "www-authenticate") or "")

    async def test_mountNeedsOnlyPush(self) -> None:
        """
        A mount asks for push on the target; pull on C{from} decides
        whether it mounts or starts an upload (see L{TokenTests}).
        """
        response = await self.registry.request(
            "POST", f"/v2/a/blobs/uploads/?mount={sha256(b'x')}&from=other/repo"
        )
        self.assertEqual(
            header(response, "www-authenticate"),
            'Bearer realm="https://auth.example/token",service="reg",scope="repository:a:push"',
        )

    async def test_anyCredentialsPass(self) -> None:
        response = await self.registry.request("GET", "/v2/", headers={"Authorization": ["Bearer x"]})
        self.assertEqual(response.code, 200)

    async def test_unknownRouteNeedsALoginToo(self) -> None:
        """
        A path no route matches is 404 to a caller who logs in, and 401 to
        anyone else: the door reads every path as the routes do, and what
        it cannot place it does not let through.
        """
        response = await self.registry.request("GET", "/v2/a/nothing")
        await assertError(self, response, 401, "UNAUTHORIZED")
        response = await self.registry.request("GET", "/v2/a/nothing", headers={"Authorization": ["Bearer x"]})
        await assertError(self, response, 404)

    async def test_oddPathsDoNotGetPast(self) -> None:
        """
        Doubled and encoded slashes, dot segments: never served without
        credentials.
        """
        silly = {"Authorization": ["Bearer x"]}
        response = await self.registry.request(
            "POST", f"/v2/a/b/blobs/uploads/?digest={sha256(b'x')}", data=b"x", headers=silly)
        self.assertEqual(response.code, 201)
        for path in (b"//v2/a/b/tags/list", b"/v2//a/b/tags/list", b"/v2/a//b/tags/list",
                     b"/v2/a%2Fb/tags/list", b"/v2/./a/b/tags/list", b"/v2/a/../a/b/tags/list",
                     b"//v2/", b"/v2/_catalog/", b"/v2/a/b/tags/list/",
                     b"//v2/a/b/blobs/" + sha256(b"x").encode()):
            response = await rawRequest(self.registry, requestBytes(b"GET", path))
            self.assertEqual(response.code, 401, path)

    async def test_refusedBeforeTheBody(self) -> None:
        """
        A refused push is answered before its body is read: the client
        sending 100-continue gets the 401 instead of the go-ahead.
        """
        request = requestBytes(b"POST", b"/v2/a/blobs/uploads/?digest=" + sha256(b"x" * 10).encode(),
                               [(b"Expect", b"100-continue"), (b"Content-Length", b"10")],
                               contentLength=False)
        response = await rawRequest(self.registry, request)
        self.assertEqual(response.code, 401)
        self.assertNotIn(b"100 Continue", response.raw)


class HtpasswdTests(TestCase):
    async def setUp(self) -> None:
        self.path = os.path.abspath(self.mktemp())
        with open(self.path, "wb") as f:
            f.write(b"alice:" + bcrypt.hashpw(b"wonderland", bcrypt.gensalt(rounds=4)) + b"\n")
        self.registry = await startRegistry(
            self, {"auth": {"htpasswd": {"realm": "Registry Realm", "path": self.path}}}
        )

    async def test_basicChallenge(self) -> None:
        response = await self.registry.request("GET", "/v2/")
        await assertError(self, response, 401, "UNAUTHORIZED")
        self.assertEqual(header(response, "www-authenticate"), 'Basic realm="Registry Realm"')

    async def test_rightPassword(self) -> None:
        response = await self.registry.request("GET", "/v2/", headers=basic("alice", "wonderland"))
        self.assertEqual(response.code, 200)
        digest = sha256(LAYER)
        response = await self.registry.request(
            "POST", f"/v2/alice/app/blobs/uploads/?digest={digest}", data=LAYER,
            headers=basic("alice", "wonderland"),
        )
        self.assertEqual(response.code, 201)
        response = await self.registry.request("GET", f"/v2/alice/app/blobs/{digest}",
                                               headers=basic("alice", "wonderland"))
        self.assertEqual(await response.content(), LAYER)

    async def test_wrongPassword(self) -> None:
        for headers in (basic("alice", "nope"), basic("bob", "wonderland")):
            response = await self.registry.request("GET", "/v2/", headers=headers)
            await assertError(self, response, 401, "UNAUTHORIZED")
            self.assertEqual(header(response, "www-authenticate"), 'Basic realm="Registry Realm"')

    async def test_malformedAuthorization(self) -> None:
        """
        Each malformed header is a 401 with the envelope: never a 5xx, and
        never access.
        """
        for value in ("Basic", "Digest abc", "Bearer", "Bearer " + "x" * 15000,
                      "Bearer \u00e9t\u00e9", "basic  "):
            response = await self.registry.request("GET", "/v2/", headers={"Authorization": [value]})
            await assertError(self, response, 401, "UNAUTHORIZED")

    async def test_nonBase64Basic(self) -> None:
        """
        Basic credentials that are not base64 of UTF-8 C{user:password}
        are a 401 with the envelope.
        """
        for value in ("Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(),
                      "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
                      "Basic " + base64.b64encode(b":nouser").decode(), "Basic YWxpY2U6d29uZGVybGFuZA"):
            response = await self.registry.request("GET", "/v2/", headers={"Authorization": [value]})
            await assertError(self, response, 401, "UNAUTHORIZED")

    async def test_hugeAuthorization(self) -> None:
        """
        A 1 MiB token, past the HTTP layer's line limit, is refused there
        as credentials: 401 C{UNAUTHORIZED}, and the connection closed.
        """
        response = await self.registry.request(
            "GET", "/v2/", headers={"Authorization": ["Bearer " + "x" * (1024 * 1024)]})
        await assertError(self, response, 401, "UNAUTHORIZED")
        response = await self.registry.request(
            "GET", "/v2/", headers={"X-Other": ["x" * (1024 * 1024)]})
        await assertError(self, response, 431, "UNSUPPORTED")

    async def test_wrongPasswordCannotPush(self) -> None:
        response = await self.registry.request(
            "POST", f"/v2/alice/app/blobs/uploads/?digest={sha256(b'x')}", data=b"x",
            headers=basic("alice", "guess"),
        )
        await assertError(self, response, 401, "UNAUTHORIZED")


class TokenTests(TestCase):
    async def setUp(self) -> None:
        self.issuer = currentIssuer()
        bundle = os.path.abspath(self.mktemp())
        with open(bundle, "wb") as f:
            f.write(pem(self.issuer.root))
        self.registry = await startRegistry(self, {
            "storage": {"inmemory": {}, "delete": {"enabled": True}},
            "auth": {"token": {"realm": "https://auth.example/token", "service": SERVICE,
                               "issuer": ISSUER, "rootcertbundle": bundle}},
        })

    def bearer(self, access: list[dict[str, object]], **extra: object) -> dict[str, list[str]]:
        token = self.issuer.token(claims(access, issuedAt=time.time(), **extra))
        return {"Authorization": [f"Bearer {token}"]}

    async def test_tokenGrantsItsAccess(self) -> None:
        pushPull = self.bearer([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
        digest = sha256(LAYER)
        response = await self.registry.request(
            "POST", f"/v2/team/app/blobs/uploads/?digest={digest}", data=LAYER, headers=pushPull)
        self.assertEqual(response.code, 201)
        pull = self.bearer([{"type": "repository", "name": "team/app", "actions": ["pull"]}])
        response = await self.registry.request("GET", f"/v2/team/app/blobs/{digest}", headers=pull)
        self.assertEqual(await response.content(), LAYER)

    async def test_pullTokenCannotPush(self) -> None:
        pull = self.bearer([{"type": "repository", "name": "team/app", "actions": ["pull"]}])
        response = await self.registry.request(
            "POST", f"/v2/team/app/blobs/uploads/?digest={sha256(b'x')}", data=b"x", headers=pull)
        await assertError(self, response, 401, "UNAUTHORIZED")
        challenge = header(response, "www-authenticate") or ""
        self.assertIn('error="insufficient_scope"', challenge)
        self.assertIn('scope="repository:team/app:push"', challenge)

    async def test_tokenForAnotherRepository(self) -> None:
        other = self.bearer([{"type": "repository", "name": "team/other", "actions": ["pull", "push"]}])
        response = await self.registry.request("GET", "/v2/team/app/tags/list", headers=other)
        await assertError(self, response, 401, "UNAUTHORIZED")

    async def test_expiredAndForgedTokens(self) -> None:
        access = [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
        expired = self.issuer.token(claims(access, issuedAt=time.time() - 3600, lifetime=60))
        stranger = currentIssuer("Someone Else").token(claims(access, issuedAt=time.time()))
        header_, payload, _ = self.issuer.token(claims(access, issuedAt=time.time())).split(".")
        none = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=").decode()
        for token in (expired, stranger, f"{none}.{payload}.", "a.b.c", "x" * 15000):
            response = await self.registry.request(
                "GET", "/v2/team/app/tags/list", headers={"Authorization": [f"Bearer {token}"]})
            await assertError(self, response, 401, "UNAUTHORIZED")
            self.assertIn('error="invalid_token"', header(response, "www-authenticate") or "")

    async def test_mountFromUnpullableRepository(self) -> None:
        """
        A token that may push here but not pull the mount's source gets no
        proof that the blob exists: its mount is a fresh upload (202).
        """
        owner = self.bearer([{"type": "repository", "name": "secret/repo", "actions": ["pull", "push"]}])
        digest = sha256(b"hidden")
        response = await self.registry.request(
            "POST", f"/v2/secret/repo/blobs/uploads/?digest={digest}", data=b"hidden", headers=owner)
        self.assertEqual(response.code, 201)
        pushOnly = self.bearer([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
        response = await self.registry.request(
            "POST", f"/v2/team/app/blobs/uploads/?mount={digest}&from=secret/repo", headers=pushOnly)
        self.assertEqual(response.code, 202)
        self.assertIn("/v2/team/app/blobs/uploads/", header(response, "location") or "")
        # With pull on the source too, the same request mounts.
        both = self.bearer([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]},
                            {"type": "repository", "name": "secret/repo", "actions": ["pull"]}])
        response = await self.registry.request(
            "POST", f"/v2/team/app/blobs/uploads/?mount={digest}&from=secret/repo", headers=both)
        self.assertEqual(response.code, 201)


class PluginCheckerTests(TestCase):
    """
    C{auth.basic}: Basic passwords checked by a L{twisted.cred.strcred}
    checker plugin, named as twistd's C{--auth} names them.
    """

    async def test_strcredChecker(self) -> None:
        """
        A checker found as a plugin (txregistry's own C{htpasswd:} here)
        checks the passwords.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "wb") as f:
            f.write(b"bob:" + bcrypt.hashpw(b"builder", bcrypt.gensalt(rounds=4)) + b"\n")
        registry = await startRegistry(self, {"auth": {"basic": {
            "realm": "R", "checker": f"htpasswd:{path}"}}})
        response = await registry.request("GET", "/v2/", headers=basic("bob", "builder"))
        self.assertEqual(response.code, 200)
        response = await registry.request("GET", "/v2/", headers=basic("bob", "guess"))
        await assertError(self, response, 401, "UNAUTHORIZED")
        self.assertEqual(header(response, "www-authenticate"), 'Basic realm="R"')

    def test_unknownChecker(self) -> None:
        """
        A checker no plugin makes, or one that takes no passwords, stops
        the start naming the key.
        """
        from twisted.internet import reactor

        from txregistry.config import ConfigurationError, checkConfiguration
        from txregistry.service import makeSite
        from txregistry.storage.factories import createDriver

        for checker, part in (("ldap:x", "ldap"), ("anonymous", "does not check passwords"),
                              ("htpasswd:/nonexistent", "/nonexistent")):
            with self.assertRaises(ConfigurationError) as raised:
                config = checkConfiguration({"storage": {"inmemory": {}},
                                             "auth": {"basic": {"realm": "R", "checker": checker}}})
                makeSite(config, createDriver("inmemory", {}, reactor))
            self.assertIn("auth.basic.checker", str(raised.exception))
            self.assertIn(part, str(raised.exception))


class BadTokenTests(TestCase):
    """
    Item by item, the tokens that must never get in through the door
    (C{auth.token} with an x5c root bundle): each is a 401 with the
    envelope and an C{invalid_token} challenge, never a 5xx.
    """

    access = [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]

    async def setUp(self) -> None:
        self.issuer = currentIssuer()
        bundle = os.path.abspath(self.mktemp())
        with open(bundle, "wb") as f:
            f.write(pem(self.issuer.root))
        self.registry = await startRegistry(self, {"auth": {"token": {
            "realm": "https://auth.example/token", "service": SERVICE, "issuer": ISSUER,
            "rootcertbundle": bundle, "signingalgorithms": ["ES256", "HS256"]}}})

    async def assertRefused(self, token: str) -> None:
        response = await self.registry.request(
            "GET", "/v2/team/app/tags/list", headers={"Authorization": [f"Bearer {token}"]})
        await assertError(self, response, 401, "UNAUTHORIZED")
        self.assertIn('error="invalid_token"', header(response, "www-authenticate") or "")

    def good(self, **extra: object) -> str:
        return self.issuer.token(claims(self.access, issuedAt=time.time(), **extra))

    async def test_genuineTokenGetsIn(self) -> None:
        """
        The control: the same issuer's genuine token is let in.
        """
        response = await self.registry.request(
            "GET", "/v2/team/app/tags/list", headers={"Authorization": [f"Bearer {self.good()}"]})
        await assertError(self, response, 404, "NAME_UNKNOWN")

    async def test_algNone(self) -> None:
        _, payload, _ = self.good().split(".")
        for alg in ("none", "None"):
            head = base64.urlsafe_b64encode(json.dumps(
                {"alg": alg, "typ": "JWT", "x5c": self.issuer.chain()}).encode()).rstrip(b"=").decode()
            await self.assertRefused(f"{head}.{payload}.")

    async def test_hmacWithThePublicKeyAsSecret(self) -> None:
        """
        HS256 is allowed here, yet a token "signed" with the root's public
        key (which anyone has) as the HMAC secret is refused.
        """
        import hashlib
        import hmac

        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        from txregistry.auth.token import thumbprint

        public = self.issuer.root.public_key()
        secret = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        head = base64.urlsafe_b64encode(json.dumps(
            {"alg": "HS256", "typ": "JWT", "kid": thumbprint(public)}).encode()).rstrip(b"=").decode()
        payload = self.good().split(".")[1]
        signature = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
        await self.assertRefused(
            f"{head}.{payload}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode())

    async def test_expired(self) -> None:
        await self.assertRefused(self.issuer.token(
            claims(self.access, issuedAt=time.time() - 3600, lifetime=60)))

    async def test_notYetValid(self) -> None:
        now = time.time()
        await self.assertRefused(self.good(nbf=now + 600, exp=now + 1200))

    async def test_wrongAudience(self) -> None:
        await self.assertRefused(self.issuer.token(
            claims(self.access, issuedAt=time.time(), audience="other.example.com")))

    async def test_wrongIssuer(self) -> None:
        await self.assertRefused(self.issuer.token(
            claims(self.access, issuedAt=time.time(), issuer="evil.example.com")))

    async def test_untrustedSigner(self) -> None:
        await self.assertRefused(currentIssuer("Someone Else").token(
            claims(self.access, issuedAt=time.time())))

    async def test_tampered(self) -> None:
        head, payload, signature = self.good().split(".")
        other = claims([{"type": "repository", "name": "team/app", "actions": ["*"]}],
                       issuedAt=time.time())
        forged = base64.urlsafe_b64encode(json.dumps(other).encode()).rstrip(b"=").decode()
        await self.assertRefused(f"{head}.{forged}.{signature}")

    async def test_notAJWT(self) -> None:
        for token in ("a.b.c", "onlyonepart", "x" * 15000, "e30.e30.e30"):
            await self.assertRefused(token)
