"""
skopeo, podman and oras with credentials, against a registry with
C{auth.htpasswd}: the right ones push and pull, wrong ones and none are
refused.  (docker login is in L{tests.clients.test_docker}.)
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SkipTest, TestCase

from tests.clients import daemons, ocilayout, wire

USERS = {"alice": "wonderland"}


class SkopeoCredentialsTests(TestCase):
    def setUp(self) -> None:
        self.skopeoPath = daemons.require("skopeo")["skopeo"]
        self.registry = daemons.startRegistryWithUsers(self, USERS)
        self.host = f"127.0.0.1:{self.registry.port}"
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)

    def skopeo(self, *arguments: str, check: bool = True):
        return daemons.run(
            [self.skopeoPath, "--insecure-policy", *arguments], check=check, context=self.registry,
            env={"REGISTRY_AUTH_FILE": os.path.join(self.work, "auth.json")},
        )

    def test_creds(self) -> None:
        layout = ocilayout.Layout(os.path.join(self.work, "src"))
        descriptor, _ = layout.image([{"one.txt": b"with credentials\n"}])
        layout.tag(descriptor, "v1")
        remote = f"docker://{self.host}/alice/skopeo:v1"
        for creds in (None, "alice:nope", "bob:wonderland"):
            extra = ["--dest-creds", creds] if creds else []
            refused = self.skopeo("copy", "--dest-tls-verify=false", *extra,
                                  f"oci:{layout.path}:v1", remote, check=False)
            self.assertNotEqual(refused.returncode, 0, creds)
        self.skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland",
                    "--preserve-digests", f"oci:{layout.path}:v1", remote)
        inspect = self.skopeo("inspect", "--tls-verify=false", "--creds", "alice:wonderland",
                              "--raw", remote)
        self.assertEqual(wire.sha256(inspect.stdout), descriptor["digest"])
        self.assertEqual(wire.request(self.registry.url, "/v2/alice/skopeo/tags/list").status, 401)


class PodmanCredentialsTests(TestCase):
    def setUp(self) -> None:
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        self.tool = daemons.Podman(self, self.work)
        self.registry = daemons.startRegistryWithUsers(self, USERS)
        self.host = f"127.0.0.1:{self.registry.port}"

    def podman(self, *arguments: str, check: bool = True):
        return self.tool.run(*arguments, check=check, context=self.registry)

    def test_loginPushPull(self) -> None:
        context = os.path.join(self.work, "context")
        os.makedirs(context)
        with open(os.path.join(context, "hello.txt"), "wb") as f:
            f.write(b"podman with a login\n")
        with open(os.path.join(context, "Containerfile"), "w") as f:
            f.write('FROM scratch\nCOPY hello.txt /hello.txt\nCMD ["/none"]\n')
        local = "localhost/txregistry-test/podman-login:src"
        remote = f"{self.host}/alice/podman:1"
        self.podman("build", "--signature-policy", self.tool.policy, "-t", local, context)
        self.podman("tag", local, remote)
        refused = self.podman("push", "--tls-verify=false", remote, check=False)
        self.assertNotEqual(refused.returncode, 0)
        wrong = self.podman("login", "--tls-verify=false", "-u", "alice", "-p", "nope", self.host,
                            check=False)
        self.assertNotEqual(wrong.returncode, 0)
        self.podman("login", "--tls-verify=false", "-u", "alice", "-p", "wonderland", self.host)
        self.podman("push", "--tls-verify=false", remote)
        self.podman("rmi", remote)
        self.podman("pull", "--tls-verify=false", "--signature-policy", self.tool.policy, remote)
        self.assertEqual(self.tool.readFromImage(remote, "/hello.txt"), b"podman with a login\n")


class OrasCredentialsTests(TestCase):
    def setUp(self) -> None:
        try:
            import oras.client
        except ImportError as e:
            raise SkipTest(f"oras is not installed: {e}") from None
        self.registry = daemons.startRegistryWithUsers(self, USERS)
        self.host = f"127.0.0.1:{self.registry.port}"
        # htpasswd answers with a Basic challenge; oras-py's default backend
        # expects a token server.
        self.client = oras.client.OrasClient(hostname=self.host, insecure=True, auth_backend="basic")
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)

    def test_loginPush(self) -> None:
        path = os.path.join(self.work, "artifact.txt")
        with open(path, "wb") as f:
            f.write(b"an artifact behind a login\n")
        target = f"{self.host}/alice/artifact:v1"
        # (Refusals without credentials are the other clients' tests: oras-py
        # retries a refused push with growing sleeps.)
        self.client.login(username="alice", password="wonderland", tls_verify=False,
                          hostname=self.host, config_path=os.path.join(self.work, "config.json"))
        pushed = self.client.push(target, files=[path], disable_path_validation=True, quiet=True)
        self.assertEqual(pushed.status_code, 201, pushed.text[:500])
        self.assertEqual(wire.manifest(self.registry.url, "alice/artifact", "v1").status, 401)
