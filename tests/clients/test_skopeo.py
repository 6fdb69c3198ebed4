"""
skopeo against a txregistry child process: OCI layouts written here
copied in and out with their digests preserved, inspect, list-tags,
delete, and a two-platform index copied with C{--all}.
"""

from __future__ import annotations

import json
import os

from twisted.trial.unittest import SkipTest, TestCase

from tests.clients import daemons, ocilayout, wire


class SkopeoTests(TestCase):
    """
    skopeo copy, inspect, list-tags and delete.
    """

    def setUp(self) -> None:
        self.skopeoPath = daemons.require("skopeo")["skopeo"]
        self.registry = self.startTestedRegistry()
        self.host = f"127.0.0.1:{self.registry.port}"
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)

    def startTestedRegistry(self) -> daemons.RegistryProcess:
        """
        The registry the tests copy to and from: filesystem storage.
        """
        return daemons.startRegistry(self)

    def skopeo(self, *arguments: str, check: bool = True):
        # No policy file or registries.conf is needed: the policy check is
        # off and every name is fully qualified.
        return daemons.run(
            [self.skopeoPath, "--insecure-policy", *arguments],
            check=check, context=self.registry,
            env={"REGISTRY_AUTH_FILE": os.path.join(self.work, "auth.json")},
        )

    def remote(self, reference: str) -> str:
        return f"docker://{self.host}/{reference}"

    def twoLayerImage(self, name: str = "src", tag: str = "v1", salt: str = ""):
        layout = ocilayout.Layout(os.path.join(self.work, name))
        descriptor, manifest = layout.image([
            {"one.txt": f"first layer {salt}\n".encode(), "dir/a": os.urandom(4096)},
            {"two.txt": f"second layer {salt}\n".encode(), "dir/b": os.urandom(70000)},
        ])
        layout.tag(descriptor, tag)
        return layout, descriptor, manifest

    def test_copyRoundTrip(self) -> None:
        """
        C{skopeo copy --preserve-digests} of a two-layer OCI layout to the
        registry stores the manifest byte for byte; copying it back into
        another layout gives the same manifest and blobs.
        """
        layout, descriptor, manifest = self.twoLayerImage()
        self.skopeo(
            "copy", "--dest-tls-verify=false", "--preserve-digests",
            f"oci:{layout.path}:v1", self.remote("test/skopeo:v1"),
        )
        response = wire.manifest(self.registry.url, "test/skopeo", "v1")
        self.assertEqual(response.status, 200, str(response))
        self.assertEqual(response.body, manifest)
        self.assertEqual(response.headers["Docker-Content-Digest"], descriptor["digest"])
        self.assertEqual(response.headers["Content-Type"], ocilayout.OCI_MANIFEST)

        back = os.path.join(self.work, "back")
        self.skopeo(
            "copy", "--src-tls-verify=false", "--preserve-digests",
            self.remote("test/skopeo:v1"), f"oci:{back}:v1",
        )
        copied = ocilayout.refDescriptor(back, "v1")
        self.assertEqual(copied["digest"], descriptor["digest"])
        self.assertEqual(ocilayout.readBlob(back, copied["digest"]), manifest)
        document = json.loads(manifest)
        self.assertEqual(len(document["layers"]), 2)
        for blob in [document["config"], *document["layers"]]:
            self.assertEqual(
                ocilayout.readBlob(back, blob["digest"]),
                ocilayout.readBlob(layout.path, blob["digest"]),
            )

    def test_inspectAndListTags(self) -> None:
        """
        C{skopeo inspect} reports the pushed digest, layers and platform;
        C{--raw} gives the manifest's bytes; C{skopeo list-tags} lists
        every tag.
        """
        layout, descriptor, manifest = self.twoLayerImage()
        for tag in ("v1", "latest"):
            self.skopeo(
                "copy", "--dest-tls-verify=false", "--preserve-digests",
                f"oci:{layout.path}:v1", self.remote(f"test/inspect:{tag}"),
            )
        info = json.loads(self.skopeo(
            "inspect", "--tls-verify=false", self.remote("test/inspect:v1")).stdout)
        self.assertEqual(info["Digest"], descriptor["digest"])
        self.assertEqual(info["Name"], f"{self.host}/test/inspect")
        self.assertEqual(info["Architecture"], "amd64")
        self.assertEqual(info["Os"], "linux")
        self.assertEqual(info["Layers"], [layer["digest"] for layer in json.loads(manifest)["layers"]])
        self.assertEqual(sorted(info["RepoTags"]), ["latest", "v1"])

        raw = self.skopeo("inspect", "--raw", "--tls-verify=false", self.remote("test/inspect:latest"))
        self.assertEqual(raw.stdout, manifest)

        tags = json.loads(self.skopeo(
            "list-tags", "--tls-verify=false", self.remote("test/inspect")).stdout)
        self.assertEqual(tags["Repository"], f"{self.host}/test/inspect")
        self.assertEqual(sorted(tags["Tags"]), ["latest", "v1"])

    def test_delete(self) -> None:
        """
        C{skopeo delete} (deletes enabled) removes the manifest: its tag
        and its digest are gone, another image in the repository stays.
        """
        layout, descriptor, _ = self.twoLayerImage()
        other, otherDescriptor, _ = self.twoLayerImage("other", "keep", salt="other")
        self.skopeo("copy", "--dest-tls-verify=false", "--preserve-digests",
                    f"oci:{layout.path}:v1", self.remote("test/delete:v1"))
        self.skopeo("copy", "--dest-tls-verify=false", "--preserve-digests",
                    f"oci:{other.path}:keep", self.remote("test/delete:keep"))

        self.skopeo("delete", "--tls-verify=false", self.remote("test/delete:v1"))

        for reference in ("v1", descriptor["digest"]):
            response = wire.manifest(self.registry.url, "test/delete", reference)
            self.assertEqual(response.status, 404, str(response))
            self.assertEqual(response.json()["errors"][0]["code"], "MANIFEST_UNKNOWN")
        inspect = self.skopeo("inspect", "--tls-verify=false", self.remote("test/delete:v1"), check=False)
        self.assertNotEqual(inspect.returncode, 0)
        tags = json.loads(self.skopeo(
            "list-tags", "--tls-verify=false", self.remote("test/delete")).stdout)
        self.assertEqual(tags["Tags"], ["keep"])
        kept = wire.manifest(self.registry.url, "test/delete", "keep")
        self.assertEqual(kept.status, 200, str(kept))
        self.assertEqual(kept.headers["Docker-Content-Digest"], otherDescriptor["digest"])

    def test_multiPlatformIndex(self) -> None:
        """
        A two-platform OCI index copied with C{--all --preserve-digests}
        keeps its digest in the registry and when copied back, with both
        platform manifests; inspecting picks the platform asked for.
        """
        layout = ocilayout.Layout(os.path.join(self.work, "multi"))
        children = []
        for architecture in ("amd64", "arm64"):
            descriptor, _ = layout.image(
                [{"arch.txt": architecture.encode()}, {"data": os.urandom(30000)}],
                architecture=architecture,
            )
            children.append(descriptor)
        indexDescriptor, index = layout.index(children)
        layout.tag(indexDescriptor, "multi")

        self.skopeo("copy", "--all", "--dest-tls-verify=false", "--preserve-digests",
                    f"oci:{layout.path}:multi", self.remote("test/multi:1"))

        response = wire.manifest(self.registry.url, "test/multi", "1")
        self.assertEqual(response.status, 200, str(response))
        self.assertEqual(response.headers["Content-Type"], ocilayout.OCI_INDEX)
        self.assertEqual(response.headers["Docker-Content-Digest"], indexDescriptor["digest"])
        self.assertEqual(response.body, index)
        for child in children:
            got = wire.manifest(self.registry.url, "test/multi", child["digest"])
            self.assertEqual(got.status, 200, str(got))
            self.assertEqual(got.body, ocilayout.readBlob(layout.path, child["digest"]))

        raw = self.skopeo("inspect", "--raw", "--tls-verify=false", self.remote("test/multi:1"))
        self.assertEqual(raw.stdout, index)
        arm = json.loads(self.skopeo(
            "--override-arch", "arm64", "inspect", "--tls-verify=false",
            self.remote("test/multi:1")).stdout)
        self.assertEqual(arm["Architecture"], "arm64")
        self.assertEqual(arm["Digest"], indexDescriptor["digest"])

        back = os.path.join(self.work, "multi-back")
        self.skopeo("copy", "--all", "--src-tls-verify=false", "--preserve-digests",
                    self.remote("test/multi:1"), f"oci:{back}:multi")
        copied = ocilayout.refDescriptor(back, "multi")
        self.assertEqual(copied["digest"], indexDescriptor["digest"])
        self.assertEqual(ocilayout.readBlob(back, copied["digest"]), index)
        for child in children:
            manifest = ocilayout.readBlob(back, child["digest"])
            self.assertEqual(manifest, ocilayout.readBlob(layout.path, child["digest"]))
            for layer in json.loads(manifest)["layers"]:
                self.assertEqual(ocilayout.readBlob(back, layer["digest"]),
                                 ocilayout.readBlob(layout.path, layer["digest"]))

    def test_registryToRegistry(self) -> None:
        """
        C{skopeo copy} from one repository of the registry to another keeps
        the digest; converting an OCI layout to Docker v2 schema 2 on the
        way in stores a Docker manifest whose blobs are all there.
        """
        layout, descriptor, manifest = self.twoLayerImage()
        self.skopeo("copy", "--dest-tls-verify=false", "--preserve-digests",
                    f"oci:{layout.path}:v1", self.remote("test/source:v1"))
        self.skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                    "--preserve-digests",
                    self.remote("test/source:v1"), self.remote("other/copy:v1"))
        response = wire.manifest(self.registry.url, "other/copy", "v1")
        self.assertEqual(response.status, 200, str(response))
        self.assertEqual(response.body, manifest)
        for layer in json.loads(manifest)["layers"]:
            blob = wire.request(self.registry.url, f"/v2/other/copy/blobs/{layer['digest']}")
            self.assertEqual(blob.status, 200, str(blob))
            self.assertEqual(blob.body, ocilayout.readBlob(layout.path, layer["digest"]))

        self.skopeo("copy", "--dest-tls-verify=false", "--format", "v2s2",
                    f"oci:{layout.path}:v1", self.remote("test/docker:v1"))
        converted = wire.manifest(self.registry.url, "test/docker", "v1")
        self.assertEqual(converted.status, 200, str(converted))
        self.assertEqual(converted.headers["Content-Type"], wire.DOCKER_MANIFEST)
        document = converted.json()
        self.assertEqual(document["mediaType"], wire.DOCKER_MANIFEST)
        self.assertEqual(len(document["layers"]), 2)
        for blob in [document["config"], *document["layers"]]:
            head = wire.request(self.registry.url, f"/v2/test/docker/blobs/{blob['digest']}", "HEAD")
            self.assertEqual(head.status, 200, str(head))
            self.assertEqual(int(head.headers["Content-Length"]), blob["size"])
        info = json.loads(self.skopeo(
            "inspect", "--tls-verify=false", self.remote("test/docker:v1")).stdout)
        self.assertEqual(info["Digest"], wire.sha256(converted.body))

    def test_deleteByDigest(self) -> None:
        """
        C{skopeo delete} of C{repo@digest} removes the manifest and every
        tag that named it.
        """
        layout, descriptor, _ = self.twoLayerImage()
        for tag in ("a", "b"):
            self.skopeo("copy", "--dest-tls-verify=false", "--preserve-digests",
                        f"oci:{layout.path}:v1", self.remote(f"test/bydigest:{tag}"))
        self.skopeo("delete", "--tls-verify=false",
                    self.remote(f"test/bydigest@{descriptor['digest']}"))
        for reference in ("a", "b", descriptor["digest"]):
            response = wire.manifest(self.registry.url, "test/bydigest", reference)
            self.assertEqual(response.status, 404, str(response))
        tags = json.loads(self.skopeo(
            "list-tags", "--tls-verify=false", self.remote("test/bydigest")).stdout)
        self.assertEqual(tags["Tags"], [])

    def onlyTagCopiesBack(self, remote: str, descriptor: dict) -> str:
        """
        C{remote} lists only tag C{v1}, and C{v1} copies back to an OCI
        layout with the manifest digest of C{descriptor}.

        @return: that layout's path.
        """
        tags = json.loads(self.skopeo("list-tags", "--tls-verify=false", remote).stdout)
        self.assertEqual(tags["Tags"], ["v1"])
        back = os.path.join(self.work, "back")
        self.skopeo("copy", "--src-tls-verify=false", "--preserve-digests",
                    f"{remote}:v1", f"oci:{back}:v1")
        self.assertEqual(ocilayout.refDescriptor(back, "v1")["digest"], descriptor["digest"])
        return back

    def test_survivesRestart(self) -> None:
        """
        What skopeo pushed is still there for a new registry process on
        the same storage: copied back byte for byte, tags listed.
        """
        storage = os.path.join(self.work, "storage")
        first = daemons.startRegistry(self, storage=storage)
        layout, descriptor, manifest = self.twoLayerImage()
        self.skopeo("copy", "--dest-tls-verify=false", "--preserve-digests",
                    f"oci:{layout.path}:v1", f"docker://127.0.0.1:{first.port}/test/durable:v1")
        first.stop()
        second = daemons.startRegistry(self, storage=storage)
        remote = f"docker://127.0.0.1:{second.port}/test/durable"
        back = self.onlyTagCopiesBack(remote, descriptor)
        for blob in [descriptor, *json.loads(manifest)["layers"]]:
            self.assertEqual(ocilayout.readBlob(back, blob["digest"]),
                             ocilayout.readBlob(layout.path, blob["digest"]))

    def test_deleteDisabledAndReadOnly(self) -> None:
        """
        Without C{storage.delete.enabled}, C{skopeo delete} fails and the
        image stays; a registry in read-only maintenance mode on the same
        storage refuses a push but serves what is there.
        """
        storage = os.path.join(self.work, "storage")
        registry = daemons.startRegistry(self, {"REGISTRY_STORAGE_DELETE_ENABLED": "false"}, storage)
        layout, descriptor, manifest = self.twoLayerImage()
        remote = f"docker://127.0.0.1:{registry.port}/test/kept"
        self.skopeo("copy", "--dest-tls-verify=false", "--preserve-digests",
                    f"oci:{layout.path}:v1", f"{remote}:v1")
        refused = self.skopeo("delete", "--tls-verify=false", f"{remote}:v1", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("UNSUPPORTED", refused.stderr.decode(), refused.stderr)
        still = wire.manifest(registry.url, "test/kept", "v1")
        self.assertEqual(still.status, 200, str(still))
        self.assertEqual(still.body, manifest)
        registry.stop()

        readOnly = daemons.startRegistry(
            self, {"REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED": "true"}, storage
        )
        remote = f"docker://127.0.0.1:{readOnly.port}/test/kept"
        other, _, _ = self.twoLayerImage("other", "v2", salt="other")
        pushed = self.skopeo("copy", "--dest-tls-verify=false", f"oci:{other.path}:v2",
                             f"{remote}:v2", check=False)
        self.assertNotEqual(pushed.returncode, 0)
        self.assertIn("unsupported", pushed.stderr.decode().lower(), pushed.stderr)
        self.onlyTagCopiesBack(remote, descriptor)


class SkopeoOnS3Tests(SkopeoTests):
    """
    skopeo again, with the registry's content in S3 (SeaweedFS), redirects
    off (L{daemons.s3Environment}).
    """

    def startTestedRegistry(self) -> daemons.RegistryProcess:
        return daemons.startRegistry(self, daemons.s3Environment(self))

    def test_survivesRestart(self) -> None:
        raise SkipTest("restarts over one filesystem root: run by SkopeoTests")

    def test_deleteDisabledAndReadOnly(self) -> None:
        raise SkipTest("registries over one filesystem root: run by SkopeoTests")
