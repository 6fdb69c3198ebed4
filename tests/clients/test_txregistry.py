"""
The C{txregistry} client command with the field's tools, against
txregistry child processes: skopeo reads the OCI layouts it writes, docker
loads the archives it writes, a multi-platform index keeps its digest
through C{--all --preserve-digests}, and an image docker pushed copies
registry to registry byte for byte.
"""

from __future__ import annotations

import json
import os
import sys

from twisted.trial.unittest import TestCase

from tests.clients import daemons, ocilayout, wire

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def txregistry(*arguments: str, context=None):
    """
    C{txregistry ARGUMENTS} as a process (the checkout's code).
    """
    return daemons.run(
        [sys.executable, "-m", "txregistry.cli", *arguments], context=context,
        env={"PYTHONPATH": os.pathsep.join([_ROOT, *sys.path])},
    )


class SkopeoReadsTests(TestCase):
    def setUp(self) -> None:
        self.skopeoPath = daemons.require("skopeo")["skopeo"]
        self.registry = daemons.startRegistry(self)
        self.host = f"127.0.0.1:{self.registry.port}"
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)

    def skopeo(self, *arguments: str):
        return daemons.run([self.skopeoPath, "--insecure-policy", *arguments], context=self.registry,
                           env={"REGISTRY_AUTH_FILE": os.path.join(self.work, "auth.json")})

    def test_ociLayoutForSkopeo(self) -> None:
        """
        skopeo inspects and copies the layout C{txregistry copy} writes, and
        finds the image skopeo pushed, byte for byte.
        """
        layout = ocilayout.Layout(os.path.join(self.work, "made"))
        descriptor, manifest = layout.image([{"a.txt": b"first\n", "b": os.urandom(50000)},
                                             {"c.txt": b"second\n"}])
        layout.tag(descriptor, "v1")
        self.skopeo("copy", "--dest-tls-verify=false", "--preserve-digests",
                    f"oci:{layout.path}:v1", f"docker://{self.host}/test/img:v1")
        written = os.path.join(self.work, "written")
        txregistry("copy", f"docker://{self.host}/test/img:v1", f"oci:{written}:v1", context=self.registry)
        inspected = json.loads(self.skopeo("inspect", f"oci:{written}:v1").stdout)
        self.assertEqual(inspected["Digest"], descriptor["digest"])
        self.assertEqual(len(inspected["Layers"]), 2)
        raw = self.skopeo("inspect", "--raw", f"oci:{written}:v1").stdout
        self.assertEqual(raw, manifest)
        again = os.path.join(self.work, "again")
        self.skopeo("copy", "--preserve-digests", f"oci:{written}:v1", f"oci:{again}:v1")
        self.assertEqual(ocilayout.refDescriptor(again, "v1")["digest"], descriptor["digest"])
        for blob in [json.loads(manifest)["config"], *json.loads(manifest)["layers"]]:
            self.assertEqual(ocilayout.readBlob(again, blob["digest"]),
                             ocilayout.readBlob(layout.path, blob["digest"]))

    def test_indexKeepsItsDigest(self) -> None:
        """
        A two-platform index copied with C{--all --preserve-digests} to
        another registry and to a layout keeps its digest and its images.
        """
        remote, children, index = daemons.pushTwoPlatformIndex(self.work, self.host, self.registry)
        other = daemons.startRegistry(self)
        otherHost = f"127.0.0.1:{other.port}"
        txregistry("copy", "--all", "--preserve-digests", f"docker://{remote}",
                   f"docker://{otherHost}/copied/multi:1", context=[self.registry, other])
        response = wire.manifest(other.url, "copied/multi", "1")
        self.assertEqual(response.headers["Docker-Content-Digest"], index["digest"])
        for child in children:
            self.assertEqual(wire.manifest(other.url, "copied/multi", child["digest"]).status, 200)
        layout = os.path.join(self.work, "multi-copy")
        txregistry("copy", "--all", "--preserve-digests", f"docker://{remote}", f"oci:{layout}:multi",
                   context=self.registry)
        inspected = self.skopeo("inspect", "--raw", f"oci:{layout}:multi").stdout
        self.assertEqual(wire.sha256(inspected), index["digest"])
        arm = json.loads(self.skopeo("inspect", "--override-arch", "arm64", f"oci:{layout}:multi").stdout)
        self.assertEqual(arm["Architecture"], "arm64")


class DockerTests(TestCase):
    def setUp(self) -> None:
        self.docker = daemons.dockerDaemon()
        self.registry = daemons.startRegistry(self)
        self.host = f"127.0.0.1:{self.registry.port}"
        self.images: list[str] = []
        self.addCleanup(lambda: self.images and self.docker.run("rmi", "-f", *self.images, check=False))
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)

    def dockerRun(self, *arguments: str):
        return self.docker.run(*arguments, context=self.registry)

    def pushImported(self, tag: str) -> str:
        tarball = os.path.join(self.work, "rootfs.tar")
        wire.tarball(tarball, {"hello.txt": b"hello\n", "data.bin": os.urandom(300000)})
        reference = f"{self.host}/{tag}"
        self.images.append(reference)
        self.dockerRun("import", tarball, reference)
        self.dockerRun("push", reference)
        return reference

    def test_dockerLoadsTheArchive(self) -> None:
        """
        C{docker load} takes the archive C{txregistry copy} writes; the
        loaded image has the config digest the registry's manifest names.
        """
        self.pushImported("test/loadme:1")
        manifest = wire.manifest(self.registry.url, "test/loadme", "1").json()
        archive = os.path.join(self.work, "image.tar")
        txregistry("copy", f"docker://{self.host}/test/loadme:1",
                   f"docker-archive:{archive}:example.com/loaded/image:v2", context=self.registry)
        output = self.dockerRun("load", "-i", archive).stdout.decode()
        self.images.append("example.com/loaded/image:v2")
        self.assertIn("example.com/loaded/image:v2", output)
        inspected = json.loads(self.dockerRun("image", "inspect", "example.com/loaded/image:v2").stdout)[0]
        self.assertEqual(inspected["Id"], manifest["config"]["digest"])

    def test_dockerPushedCopiesByteIdentical(self) -> None:
        """
        An image docker pushed, copied to another registry: the same
        manifest bytes and blobs, and docker pulls it from there.
        """
        self.pushImported("test/pushed:1")
        other = daemons.startRegistry(self)
        otherHost = f"127.0.0.1:{other.port}"
        txregistry("copy", f"docker://{self.host}/test/pushed:1",
                   f"docker://{otherHost}/copied/pushed:1", context=[self.registry, other])
        original = wire.manifest(self.registry.url, "test/pushed", "1")
        copied = wire.manifest(other.url, "copied/pushed", "1")
        self.assertEqual(copied.body, original.body)
        self.assertEqual(copied.headers["Content-Type"], original.headers["Content-Type"])
        for blob in [original.json()["config"], *original.json()["layers"]]:
            path = f"/v2/{{}}/blobs/{blob['digest']}"
            self.assertEqual(wire.request(other.url, path.format("copied/pushed")).body,
                             wire.request(self.registry.url, path.format("test/pushed")).body)
        pulled = f"{otherHost}/copied/pushed:1"
        self.images.append(pulled)
        self.dockerRun("pull", pulled)

    def test_dockerSaveArchivePushes(self) -> None:
        """
        What C{docker save} writes copies to a registry; docker pulls it
        back as the same image (the config, hence the image id, is kept).
        """
        tarball = os.path.join(self.work, "rootfs.tar")
        wire.tarball(tarball, {"saved.txt": os.urandom(40000)})
        self.images.append("example.com/saved/image:1")
        self.dockerRun("import", tarball, "example.com/saved/image:1")
        saved = json.loads(self.dockerRun("image", "inspect", "example.com/saved/image:1").stdout)[0]
        archive = os.path.join(self.work, "saved.tar")
        self.dockerRun("save", "-o", archive, "example.com/saved/image:1")
        remote = f"{self.host}/test/saved:1"
        txregistry("copy", f"docker-archive:{archive}:example.com/saved/image:1", f"docker://{remote}",
                   context=self.registry)
        self.images.append(remote)
        self.dockerRun("pull", remote)
        pulled = json.loads(self.dockerRun("image", "inspect", remote).stdout)[0]
        self.assertEqual(pulled["Id"], saved["Id"])
