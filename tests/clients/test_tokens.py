"""
docker against a registry trusting an external token server: a token
issuer written here (signing with an C{x5c} chain up to a root in
C{auth.token.rootcertbundle}, and with a key from a JWKS) serves
C{token.md}'s endpoint; docker logs in there, pushes and pulls.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twisted.trial.unittest import TestCase

from tests.auth.issuers import ISSUER, SERVICE, CertificateIssuer, KeySetIssuer, claims, pem
from tests.clients import daemons, wire
from tests.clients.test_docker import _pushedDigest

USER, PASSWORD = "alice", "wonderland"


class TokenServer:
    """
    A token endpoint on loopback: Basic C{alice:wonderland} gets every
    scope it asks for, anything else a 401.

    @ivar requests: the scopes asked for, per request.
    """

    def __init__(self, sign: Any) -> None:
        self.requests: list[list[str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                scopes = query.get("scope", [])
                server.requests.append(scopes)
                access = []
                for scope in scopes:
                    kind, _, rest = scope.partition(":")
                    name, _, actions = rest.rpartition(":")
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
                token = sign(claims(access=access, subject=USER, issuedAt=time.time()))
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ExternalTokenServerTests(TestCase):
    def setUp(self) -> None:
        self.docker = daemons.dockerDaemon()
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        self.images: list[str] = []
        self.addCleanup(lambda: self.images and self.docker.run("rmi", "-f", *self.images, check=False))

    def start(self, sign: Any, trust: dict[str, str]) -> None:
        self.tokens = TokenServer(sign)
        self.addCleanup(self.tokens.stop)
        token = {"realm": self.tokens.url, "service": SERVICE, "issuer": ISSUER, **trust}
        self.registry = daemons.startRegistry(self, config={"auth": {"token": token}})
        self.host = f"127.0.0.1:{self.registry.port}"
        self.addCleanup(lambda: self.docker.run("logout", self.host, check=False))

    def dockerRun(self, *arguments: str, check: bool = True, input: bytes | None = None):
        return self.docker.run(*arguments, check=check, context=self.registry, input=input)

    def loginPushPull(self) -> None:
        wrong = self.dockerRun("login", "-u", USER, "--password-stdin", self.host, check=False,
                               input=b"guess\n")
        self.assertNotEqual(wrong.returncode, 0, wrong)
        self.dockerRun("login", "-u", USER, "--password-stdin", self.host,
                       input=PASSWORD.encode() + b"\n")
        tarball = os.path.join(self.work, "rootfs.tar")
        wire.tarball(tarball, {"token.txt": b"through an external token server\n"})
        local, remote = "txregistry-test/token:src", f"{self.host}/alice/external:1"
        self.images += [local, remote]
        self.dockerRun("import", tarball, local)
        self.dockerRun("tag", local, remote)
        digest = _pushedDigest(self.dockerRun("push", remote).stdout.decode())
        self.dockerRun("rmi", remote)
        self.dockerRun("pull", remote)
        inspected = json.loads(self.dockerRun("image", "inspect", remote).stdout)[0]
        self.assertIn(f"{self.host}/alice/external@{digest}", inspected["RepoDigests"])
        self.assertIn(["repository:alice/external:push,pull"], self.tokens.requests)
        self.assertEqual(wire.request(self.registry.url, "/v2/alice/external/tags/list").status, 401)

    def test_x5cChain(self) -> None:
        """
        Tokens whose C{x5c} chain ends at a root of the bundle.
        """
        issuer = CertificateIssuer(notBefore=time.time() - 86400, notAfter=time.time() + 86400)
        bundle = os.path.join(self.work, "roots.pem")
        with open(bundle, "wb") as f:
            f.write(pem(issuer.root))
        self.start(issuer.token, {"rootcertbundle": bundle})
        self.loginPushPull()

    def test_keySet(self) -> None:
        """
        Tokens signed by a key of a JWKS file, found by C{kid}.
        """
        issuer = KeySetIssuer()
        keys = os.path.join(self.work, "jwks.json")
        with open(keys, "wb") as f:
            f.write(issuer.keySet())
        self.start(issuer.token, {"jwks": keys})
        self.loginPushPull()
