"""
podman (as root, vfs storage in the test's own directories) against a
txregistry child process: an image built FROM scratch pushed as OCI and as
Docker v2 schema 2, pulled back by tag and by digest.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from tests.clients import daemons, wire


class PodmanTests(TestCase):
    """
    podman build, push and pull.
    """

    def setUp(self) -> None:
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        self.tool = daemons.Podman(self, self.work)
        self.policy = self.tool.policy
        self.registry = daemons.startRegistry(self)
        self.host = f"127.0.0.1:{self.registry.port}"

    def podman(self, *arguments: str, check: bool = True):
        return self.tool.run(*arguments, check=check, context=self.registry)

    def inspect(self, reference: str) -> dict:
        return self.tool.inspect(reference)

    def readFromImage(self, reference: str, path: str) -> bytes:
        return self.tool.readFromImage(reference, path)

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
        remote, children, indexDescriptor = daemons.pushTwoPlatformIndex(
            self.work, self.host, self.registry
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
