"""
Logging in: Basic against an htpasswd registry, the Bearer challenge →
token flow against a token registry with a token server here, docker's
C{config.json} and its credential helpers, and the C{login}/C{logout}
commands.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time

import bcrypt
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.api.test_door import currentIssuer
from tests.auth.issuers import ISSUER, SERVICE, claims, pem
from tests.client.commands import txregistry
from tests.client.helpers import pushLayeredImage
from tests.support import startRegistry
from txregistry.client.auth import Credentials, mergeScopes, parseChallenge
from txregistry.client.copy import copyImage
from txregistry.client.credentials import DockerConfig
from txregistry.client.errors import AuthenticationFailed
from txregistry.client.references import parseRegistry
from txregistry.client.registry import Registry
from txregistry.client.transports.docker import RegistryDestination, RegistrySource


def htpasswd(path: str, users: dict[str, str]) -> str:
    with open(path, "wb") as f:
        for user, password in users.items():
            f.write(user.encode() + b":" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)) + b"\n")
    return path


class ChallengeTests(TestCase):
    def test_parse(self) -> None:
        self.assertEqual(
            parseChallenge('Bearer realm="https://a/token",service="reg",scope="repository:a/b:pull,push"'),
            ("bearer", {"realm": "https://a/token", "service": "reg", "scope": "repository:a/b:pull,push"}))
        self.assertEqual(parseChallenge('Basic realm="Registry \\"Realm\\""'),
                         ("basic", {"realm": 'Registry "Realm"'}))

    def test_mergeWidens(self) -> None:
        self.assertEqual(
            mergeScopes(["repository:a:pull"], ["repository:a:push repository:b:pull"]),
            ["repository:a:pull,push", "repository:b:pull"])


class BasicTests(TestCase):
    async def setUp(self) -> None:
        path = htpasswd(os.path.abspath(self.mktemp()), {"alice": "wonderland"})
        self.registry = await startRegistry(self, {"auth": {"htpasswd": {"realm": "r", "path": path}}})
        self.host = self.registry.url.split("//")[1]
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)

    async def test_credentialsCopy(self) -> None:
        client = Registry(self.host, Credentials("alice", "wonderland"))
        self.addCleanup(client.close)
        layout = os.path.join(self.work, "layout")
        # An image to push: made here in an OCI layout.
        from tests.clients import ocilayout

        made = ocilayout.Layout(layout)
        descriptor, manifest = made.image([{"a.txt": b"a\n"}])
        made.tag(descriptor, "v1")
        status, out, err = await txregistry("push", "--creds", "alice:wonderland", f"oci:{layout}:v1",
                                            f"{self.host}/alice/app:v1")
        self.assertEqual((status, err.getvalue()), (0, ""))
        found = await client.repository("alice/app").manifests().fetch("v1")
        self.assertEqual(found.content, manifest)

    async def test_noCredentials(self) -> None:
        status, out, err = await txregistry("tags", f"{self.host}/alice/app")
        self.assertEqual(status, 1)
        self.assertIn("asks for a login", err.getvalue())

    async def test_wrongPassword(self) -> None:
        client = Registry(self.host, Credentials("alice", "guess"))
        self.addCleanup(client.close)
        with self.assertRaises(AuthenticationFailed) as raised:
            await client.repository("alice/app").tags().list(None, None)
        self.assertIn("'alice'", str(raised.exception))

    async def test_loginLogout(self) -> None:
        """
        C{login} checks the password before it saves it; the saved login is
        what later commands use; C{logout} removes it.
        """
        config = os.path.join(self.work, "docker")
        status, _, err = await txregistry("login", "--config-dir", config, self.host, "-u", "alice",
                                          "--password-stdin", stdin=b"nope\n")
        self.assertEqual(status, 1)
        self.assertIn("refused", err.getvalue())
        self.assertFalse(os.path.exists(os.path.join(config, "config.json")))
        status, out, err = await txregistry("login", "--config-dir", config, self.host, "-u", "alice",
                                            "--password-stdin", stdin=b"wonderland\n")
        self.assertEqual((status, err.getvalue()), (0, ""))
        path = os.path.join(config, "config.json")
        with open(path) as f:
            saved = json.load(f)
        self.assertEqual(base64.b64decode(saved["auths"][self.host]["auth"]), b"alice:wonderland")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        status, out, err = await txregistry("catalog", "--config-dir", config, self.host)
        self.assertEqual((status, err.getvalue()), (0, ""))
        status, out, err = await txregistry("logout", "--config-dir", config, self.host)
        self.assertEqual(status, 0)
        status, out, err = await txregistry("catalog", "--config-dir", config, self.host)
        self.assertEqual(status, 1)
        status, out, err = await txregistry("logout", "--config-dir", config, self.host)
        self.assertIn("not logged in", err.getvalue())


class TokenServer(Resource):
    """
    An authorization server: grants every scope asked to alice (with her
    password), nothing to anyone else.
    """

    isLeaf = True

    def __init__(self, issuer, lifetime: int = 300) -> None:
        super().__init__()
        self.issuer = issuer
        self.lifetime = lifetime
        self.asked: list[list[str]] = []

    def render_GET(self, request) -> bytes:
        scopes = [s.decode() for s in request.args.get(b"scope", [])]
        self.asked.append(scopes)
        expected = "Basic " + base64.b64encode(b"alice:wonderland").decode()
        if (request.getHeader("authorization") or "") != expected:
            request.setResponseCode(401)
            return b'{"errors":[{"code":"UNAUTHORIZED"}]}'
        access = []
        for scope in scopes:
            for one in scope.split():
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        return self.grant(request, access)

    def grant(self, request, access: list) -> bytes:
        token = self.issuer.token(claims(access, issuedAt=time.time(), lifetime=self.lifetime))
        request.setHeader("content-type", "application/json")
        return json.dumps({"token": token, "expires_in": self.lifetime}).encode()

    def render_POST(self, request) -> bytes:
        """
        The OAuth2 form docker uses with an identity (refresh) token.
        """
        form = {k.decode(): v[0].decode() for k, v in request.args.items()}
        self.asked.append(form.get("scope", "").split())
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != "refresh-alice":
            request.setResponseCode(401)
            return b'{"error":"invalid_grant"}'
        access = []
        for one in form.get("scope", "").split():
            kind, _, rest = one.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        return self.grant(request, access)


class TokenTests(TestCase):
    async def setUp(self) -> None:
        issuer = currentIssuer()
        self.tokens = TokenServer(issuer)
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(self.tokens))
        self.addCleanup(port.stopListening)
        bundle = os.path.abspath(self.mktemp())
        with open(bundle, "wb") as f:
            f.write(pem(issuer.root))
        self.registry = await startRegistry(self, {
            "storage": {"inmemory": {}, "delete": {"enabled": True}},
            "auth": {"token": {"realm": f"http://127.0.0.1:{port.getHost().port}/token",
                               "service": SERVICE, "issuer": ISSUER, "rootcertbundle": bundle}},
        })
        self.host = self.registry.url.split("//")[1]
        self.client = Registry(self.host, Credentials("alice", "wonderland"))
        self.addCleanup(self.client.close)

    async def seed(self) -> dict:
        """
        An image pushed (with a token the test makes itself) to team/app:v1.
        """
        return await _pushWithToken(self, self.registry, self.client)

    async def test_copyWidensAndCaches(self) -> None:
        """
        A copy within the registry asks for pull on the source and push on
        the destination, a few tokens in all, not one per request.
        """
        image = await self.seed()
        asked = len(self.tokens.asked)
        source = RegistrySource(self.client, parseRegistry(f"{self.host}/team/app:v1"))
        destination = RegistryDestination(self.client, parseRegistry(f"{self.host}/team/copy:v1"))
        result = await copyImage(source, destination)
        self.assertEqual(str(result.digest), image["digest"])
        self.assertEqual(sorted(result.mounted), sorted(image["blobs"]))
        new = self.tokens.asked[asked:]
        self.assertLessEqual(len(new), 3, new)
        self.assertIn("repository:team/copy:pull,push", new[-1])
        self.assertIn("repository:team/app:pull", " ".join(new[-1]))

    async def test_expiredTokenRenewed(self) -> None:
        await self.seed()
        tags = self.client.repository("team/app").tags()
        await tags.list(None, None)
        asked = len(self.tokens.asked)
        await tags.list(None, None)
        self.assertEqual(len(self.tokens.asked), asked)
        later = time.time() + 3600
        self.client.auth.now = lambda: later
        await tags.list(None, None)
        self.assertEqual(len(self.tokens.asked), asked + 1)

    async def test_refused(self) -> None:
        stranger = Registry(self.host, Credentials("mallory", "x"))
        self.addCleanup(stranger.close)
        with self.assertRaises(AuthenticationFailed) as raised:
            await stranger.repository("team/app").tags().list(None, None)
        self.assertIn("refused 'mallory'", str(raised.exception))

    async def test_identityToken(self) -> None:
        """
        An identity token from C{config.json} is exchanged for access
        tokens (the OAuth2 refresh grant), without a password.
        """
        await self.seed()
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump({"auths": {self.host: {"identitytoken": "refresh-alice"}}}, f)
        status, out, err = await txregistry("tags", "--config-dir", directory, f"{self.host}/team/app")
        self.assertEqual((status, out.getvalue(), err.getvalue()), (0, "v1\n", ""))
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump({"auths": {self.host: {"identitytoken": "stolen"}}}, f)
        status, out, err = await txregistry("tags", "--config-dir", directory, f"{self.host}/team/app")
        self.assertEqual(status, 1)
        self.assertIn("refused the identity token", err.getvalue())

    async def test_commandsWithTokens(self) -> None:
        image = await self.seed()
        status, out, err = await txregistry("tags", "--creds", "alice:wonderland", f"{self.host}/team/app")
        self.assertEqual((status, out.getvalue(), err.getvalue()), (0, "v1\n", ""))
        work = os.path.abspath(self.mktemp())
        status, out, err = await txregistry("pull", "--creds", "alice:wonderland",
                                            f"{self.host}/team/app:v1", f"oci:{work}:v1")
        self.assertEqual((status, err.getvalue()), (0, ""))
        status, out, err = await txregistry("delete", "--creds", "alice:wonderland",
                                            f"{self.host}/team/app@{image['digest']}")
        self.assertEqual((status, err.getvalue()), (0, ""))


async def _pushWithToken(testCase, registry, client: Registry) -> dict:
    # The raw push helpers send no Authorization: wrap the registry's
    # request with a token the client fetched.
    original = registry.request

    def request(method: str, path: str, **kwargs):
        return client.request(method, path, ["repository:team/app:pull,push"],
                              headers=kwargs.get("headers"), data=kwargs.get("data"))

    registry.request = request
    try:
        return await pushLayeredImage(testCase, registry, "team/app", "v1")
    finally:
        registry.request = original


class CredentialHelperTests(TestCase):
    """
    C{credsStore}/C{credHelpers}: a helper program on C{PATH} keeps the
    secrets; C{config.json} only names it.
    """

    def setUp(self) -> None:
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.work, "bin"))
        self.store = os.path.join(self.work, "store.json")
        helper = os.path.join(self.work, "bin", "docker-credential-testing")
        with open(helper, "w") as f:
            f.write(f"""#!/usr/bin/env python3
import json, sys
path = {self.store!r}
try:
    store = json.load(open(path))
except FileNotFoundError:
    store = {{}}
action, data = sys.argv[1], sys.stdin.read()
if action == "get":
    if data.strip() not in store:
        print("credentials not found in native keychain"); sys.exit(1)
    entry = store[data.strip()]
    print(json.dumps({{"ServerURL": data.strip(), "Username": entry[0], "Secret": entry[1]}}))
elif action == "store":
    entry = json.loads(data)
    store[entry["ServerURL"]] = [entry["Username"], entry["Secret"]]
    json.dump(store, open(path, "w"))
elif action == "erase":
    store.pop(data.strip(), None); json.dump(store, open(path, "w"))
""")
        os.chmod(helper, 0o755)
        self.environ = dict(os.environ, PATH=os.path.join(self.work, "bin") + os.pathsep + os.environ["PATH"])
        self.configDir = os.path.join(self.work, "docker")
        os.makedirs(self.configDir)

    def writeConfig(self, document: dict) -> None:
        with open(os.path.join(self.configDir, "config.json"), "w") as f:
            json.dump(document, f)

    async def test_storeGetErase(self) -> None:
        self.writeConfig({"credsStore": "testing"})
        config = DockerConfig(self.configDir, environ=self.environ)
        await config.store("reg.example:5000", Credentials("alice", "s3cret"))
        with open(self.store) as f:
            self.assertEqual(json.load(f), {"reg.example:5000": ["alice", "s3cret"]})
        with open(os.path.join(self.configDir, "config.json")) as f:
            self.assertNotIn("s3cret", f.read())
        self.assertEqual(await config.get("reg.example:5000"), Credentials("alice", "s3cret"))
        self.assertIsNone(await config.get("other.example"))
        self.assertTrue(await config.erase("reg.example:5000"))
        self.assertIsNone(await config.get("reg.example:5000"))

    async def test_perHostHelper(self) -> None:
        self.writeConfig({"credHelpers": {"reg.example": "testing"},
                          "auths": {"plain.example": {"auth": base64.b64encode(b"bob:pw").decode()}}})
        with open(self.store, "w") as f:
            json.dump({"reg.example": ["carol", "pw2"]}, f)
        config = DockerConfig(self.configDir, environ=self.environ)
        self.assertEqual(await config.get("reg.example"), Credentials("carol", "pw2"))
        self.assertEqual(await config.get("plain.example"), Credentials("bob", "pw"))

    async def test_missingHelper(self) -> None:
        self.writeConfig({"credsStore": "absent"})
        config = DockerConfig(self.configDir, environ=self.environ)
        from txregistry.client.credentials import CredentialHelperError

        with self.assertRaises(CredentialHelperError) as raised:
            await config.get("reg.example")
        self.assertIn("docker-credential-absent not found", str(raised.exception))

    async def test_helperLogsIn(self) -> None:
        path = htpasswd(os.path.join(self.work, "htpasswd"), {"alice": "wonderland"})
        registry = await startRegistry(self, {"auth": {"htpasswd": {"realm": "r", "path": path}}})
        host = registry.url.split("//")[1]
        self.writeConfig({"credsStore": "testing"})
        with open(self.store, "w") as f:
            json.dump({host: ["alice", "wonderland"]}, f)
        config = DockerConfig(self.configDir, environ=self.environ)
        client = Registry(host, lambda: Deferred.fromCoroutine(config.get(host)))
        self.addCleanup(client.close)
        self.assertEqual((await client.catalog(None, None)).items, [])
