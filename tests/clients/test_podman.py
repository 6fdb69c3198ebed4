"""
podman (as root, vfs storage in the test's own directories) against a
txregistry child process: an image built FROM scratch pushed as OCI and as
Docker v2 schema 2, pulled back by tag and by digest.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from twisted.trial.unittest import SkipTest, TestCase

from tests.clients import daemons, ocilayout, wire

_cannotRun: str | None = None


class PodmanTests(TestCase):
    """
    podman build, push and pull.
    """

    def setUp(self) -> None:
        global _cannotRun
        if _cannotRun:
            raise SkipTest(_cannotRun)
        if os.geteuid() != 0:
            _cannotRun = "podman tests run podman as root with private storage; not root"
            print(f"tests.clients.test_podman: skipped: {_cannotRun}")
            raise SkipTest(_cannotRun)
        self.podmanPath = daemons.require("podman")["podman"]
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        self.policy = os.path.join(self.work, "policy.json")
        with open(self.policy, "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        # podman refuses a runroot of 50 characters or more: keep its
        # storage in a short directory of its own.
        self.storage = tempfile.mkdtemp(prefix="txr-podman-", dir="/tmp" if os.path.isdir("/tmp") else None)
        self.addCleanup(shutil.rmtree, self.storage, True)
        self.root = os.path.join(self.storage, "root")
        self.runroot = os.path.join(self.storage, "run")
        storage = f'[storage]\ndriver = "vfs"\nrunroot = "{self.runroot}"\ngraphroot = "{self.root}"\n'

        for name, text in (("registries.conf", "unqualified-search-registries = []\n"),
                           ("storage.conf", storage),
                           ("containers.conf", "")):
            with open(os.path.join(self.work, name), "w") as f:
                f.write(text)
        self.env = {
            "CONTAINERS_REGISTRIES_CONF": os.path.join(self.work, "registries.conf"),
            "CONTAINERS_STORAGE_CONF": os.path.join(self.work, "storage.conf"),
            "CONTAINERS_CONF": os.path.join(self.work, "containers.conf"),
            "REGISTRY_AUTH_FILE": os.path.join(self.work, "auth.json"),
            "TMPDIR": os.path.join(self.work, "tmp"),
        }
        os.makedirs(self.env["TMPDIR"])
        with open(self.env["REGISTRY_AUTH_FILE"], "w") as f:
            json.dump({"auths": {}}, f)
        info = self.podman("info", check=False)
        if info.returncode != 0:
            _cannotRun = (
                f"podman cannot run here (podman info exited {info.returncode}): "
                + info.stderr.decode("utf-8", "replace")[-1500:]
            )
            print(f"tests.clients.test_podman: skipped: {_cannotRun}")
            raise SkipTest(_cannotRun)
        self.registry = daemons.startRegistry(self)
        self.host = f"127.0.0.1:{self.registry.port}"

    def podman(self, *arguments: str, check: bool = True):
        return daemons.run(
            [
                self.podmanPath,
                "--root", self.root,
                "--runroot", self.runroot,
                "--storage-driver", "vfs",
                "--cgroup-manager", "cgroupfs",
                "--events-backend", "file",
                "--tmpdir", os.path.join(self.work, "libpod-tmp"),
                *arguments,
            ],
            env=self.env, check=check, context=getattr(self, "registry", None),
        )

    def inspect(self, reference: str) -> dict:
        return json.loads(self.podman("image", "inspect", reference).stdout)[0]

    def readFromImage(self, reference: str, path: str) -> bytes:
        root = self.podman("image", "mount", reference).stdout.decode().strip()
        try:
            with open(os.path.join(root, path.lstrip("/")), "rb") as f:
                return f.read()
        finally:
            self.podman("image", "unmount", reference)

    def test_pushPull(self) -> None:
        """
        A two-layer image built FROM scratch pushes in both manifest
        formats; each is served with its own media type and the digest
        podman recorded, and pulls back (by tag, then by digest) to the
        same image with the same bytes.
        """
        context = os.path.join(self.work, "context")
        os.makedirs(context)
        small = b"podman layer one\n"
        big = os.urandom(3 * 1024 * 1024)
        with open(os.path.join(context, "small.txt"), "wb") as f:
            f.write(small)
        with open(os.path.join(context, "data.bin"), "wb") as f:
            f.write(big)
        with open(os.path.join(context, "Containerfile"), "w") as f:
            f.write('FROM scratch\nCOPY small.txt /small.txt\nCOPY data.bin /data/data.bin\nCMD ["/none"]\n')
        local = "localhost/txregistry-test/podman:src"
        self.podman("build", "--signature-policy", self.policy, "--layers", "-t", local, context)
        built = self.inspect(local)
        self.assertEqual(len(built["RootFS"]["Layers"]), 2)

        expected = {"oci": wire.OCI_MANIFEST, "v2s2": wire.DOCKER_MANIFEST}
        digests = {}
        for format, mediaType in expected.items():
            remote = f"{self.host}/test/podman:{format}"
            digestFile = os.path.join(self.work, f"{format}.digest")
            self.podman(
                "push", "--signature-policy", self.policy, "--tls-verify=false",
                "--format", format, "--digestfile", digestFile, local, remote,
            )
            with open(digestFile) as f:
                digests[format] = f.read().strip()
            response = wire.manifest(self.registry.url, "test/podman", format)
            self.assertEqual(response.status, 200, str(response))
            self.assertEqual(response.headers["Content-Type"], mediaType)
            self.assertEqual(response.headers["Docker-Content-Digest"], digests[format])
            self.assertEqual(wire.sha256(response.body), digests[format])
            self.assertEqual(len(response.json()["layers"]), 2)
        self.assertNotEqual(digests["oci"], digests["v2s2"])

        self.podman("rmi", local)
        for format in expected:
            remote = f"{self.host}/test/podman:{format}"
            self.podman("pull", "--signature-policy", self.policy, "--tls-verify=false", remote)
            pulled = self.inspect(remote)
            self.assertEqual(pulled["Digest"], digests[format])
            self.assertEqual(pulled["RootFS"]["Layers"], built["RootFS"]["Layers"])
            self.assertEqual(self.readFromImage(remote, "/data/data.bin"), big)
            self.podman("rmi", remote)

            byDigest = f"{self.host}/test/podman@{digests[format]}"
            self.podman("pull", "--signature-policy", self.policy, "--tls-verify=false", byDigest)
            self.assertEqual(self.inspect(byDigest)["Digest"], digests[format])
            self.assertEqual(self.readFromImage(byDigest, "/small.txt"), small)
            self.podman("rmi", byDigest)

    def test_pullMultiPlatformIndex(self) -> None:
        """
        podman pulls the platform it asks for out of a two-platform OCI
        index (pushed with skopeo).
        """
        skopeo = daemons.require("skopeo")["skopeo"]
        layout = ocilayout.Layout(os.path.join(self.work, "multi"))
        children = []
        for architecture in ("amd64", "arm64"):
            descriptor, _ = layout.image(
                [{"arch.txt": architecture.encode() + b"\n"}], architecture=architecture
            )
            children.append(descriptor)
        indexDescriptor, _ = layout.index(children)
        layout.tag(indexDescriptor, "multi")
        remote = f"{self.host}/test/multi:1"
        daemons.run(
            [skopeo, "--insecure-policy", "copy", "--all", "--preserve-digests",
             "--dest-tls-verify=false", f"oci:{layout.path}:multi", f"docker://{remote}"],
            context=self.registry,
        )
        for architecture, child in zip(("amd64", "arm64"), children, strict=True):
            self.podman("pull", "--signature-policy", self.policy, "--tls-verify=false",
                        "--arch", architecture, remote)
            image = self.inspect(remote)
            self.assertEqual(image["Architecture"], architecture)
            # podman records both the index it pulled and the manifest it chose.
            self.assertEqual(image["Digest"], indexDescriptor["digest"])
            self.assertEqual(
                sorted(image["RepoDigests"]),
                sorted(f"{self.host}/test/multi@{d}" for d in (indexDescriptor["digest"], child["digest"])),
            )
            self.assertEqual(self.readFromImage(remote, "/arch.txt"), architecture.encode() + b"\n")
            self.podman("rmi", remote)
