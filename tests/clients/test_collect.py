"""
C{txregistry garbage-collect} against a registry that skopeo filled: a
two-platform index, an image shared by two repositories (a mount), an
image whose tag moved to another.  After the collection every kept image
copies back byte-identical, and what only the untagged image had is gone
from storage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from twisted.trial.unittest import TestCase

from tests.clients import daemons, ocilayout, wire
from tests.support import _repositoryRoot


class GarbageCollectTests(TestCase):
    def setUp(self) -> None:
        self.skopeoPath = daemons.require("skopeo")["skopeo"]
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        self.storage = os.path.join(self.work, "storage")
        self.registry = daemons.startRegistry(self, storage=self.storage)
        self.host = f"127.0.0.1:{self.registry.port}"

    def skopeo(self, *arguments: str) -> subprocess.CompletedProcess[bytes]:
        return daemons.run([self.skopeoPath, "--insecure-policy", *arguments], context=self.registry)

    def image(self, name: str, content: bytes) -> tuple[ocilayout.Layout, dict, dict]:
        """
        An OCI layout of one image; its descriptor and its manifest.
        """
        layout = ocilayout.Layout(os.path.join(self.work, name))
        descriptor, manifest = layout.image([{"file.txt": content}])
        layout.tag(descriptor, "v1")
        return layout, descriptor, json.loads(manifest)

    def push(self, layout: ocilayout.Layout, reference: str) -> None:
        self.skopeo("copy", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{layout.path}:v1", f"docker://{self.host}/{reference}")

    def copyBack(self, reference: str, all: bool = False) -> str:
        """
        Copy C{reference} into a fresh OCI layout; return the manifest
        digest it wrote.
        """
        target = os.path.join(self.work, "back", reference.replace("/", "_").replace(":", "_")
                              .replace("@", "_"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self.skopeo("copy", *(["--all"] if all else []), "--preserve-digests",
                    "--src-tls-verify=false", f"docker://{self.host}/{reference}",
                    f"oci:{target}:copy")
        with open(os.path.join(target, "index.json")) as f:
            return json.load(f)["manifests"][0]["digest"]  # type: ignore[no-any-return]

    def blobPath(self, digest: str) -> str:
        algorithm, encoded = digest.split(":")
        return os.path.join(self.storage, "docker/registry/v2/blobs", algorithm, encoded[:2],
                            encoded, "data")

    def test_collect(self) -> None:
        remote, children, indexDescriptor = daemons.pushTwoPlatformIndex(
            self.work, self.host, self.registry)
        shared, sharedDescriptor, _ = self.image("shared", b"in two repositories\n")
        self.push(shared, "team/a:v1")
        self.push(shared, "team/b:v1")
        old, oldDescriptor, oldManifest = self.image("old", b"only the old image has this\n")
        self.push(old, "team/moving:v1")
        new, newDescriptor, _ = self.image("new", b"the new image\n")
        self.push(new, "team/moving:v1")
        oldLayer = oldManifest["layers"][0]["digest"]
        self.assertTrue(os.path.exists(self.blobPath(oldLayer)))
        config = os.path.join(self.work, "config.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {self.storage}\n")
        # The checkout's txregistry, as the registry process runs it.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([_repositoryRoot()] + sys.path))
        dry = subprocess.run(
            [sys.executable, "-m", "txregistry.cli", "garbage-collect", "--dry-run",
             "--delete-untagged", config], capture_output=True, check=True, env=env)
        self.assertTrue(os.path.exists(self.blobPath(oldLayer)))
        result = subprocess.run(
            [sys.executable, "-m", "txregistry.cli", "garbage-collect", "--delete-untagged", config],
            capture_output=True, check=True, env=env)
        output = result.stdout.decode()
        self.assertIn(f"team/moving: deleted manifest {oldDescriptor['digest']}", output)
        self.assertIn(f"deleted blob {oldLayer}", output)
        self.assertEqual(dry.stdout.decode().replace("would delete", "deleted")
                         .replace("would remove", "removed"), output)
        self.assertFalse(os.path.exists(self.blobPath(oldLayer)))
        self.assertEqual(self.copyBack(remote.split("/", 1)[1], all=True), indexDescriptor["digest"])
        for child in children:
            self.assertEqual(self.copyBack(f"test/multi@{child['digest']}"), child["digest"])
        self.assertEqual(self.copyBack("team/a:v1"), sharedDescriptor["digest"])
        self.assertEqual(self.copyBack("team/b:v1"), sharedDescriptor["digest"])
        self.assertEqual(self.copyBack("team/moving:v1"), newDescriptor["digest"])
        self.assertEqual(
            wire.request(self.registry.url, f"/v2/team/moving/manifests/{oldDescriptor['digest']}",
                         headers={"Accept": ocilayout.OCI_MANIFEST}).status, 404)
