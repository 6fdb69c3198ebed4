"""
A port of the OCI conformance suite's "Pull" workflow
(C{conformance/01_pull_test.go}): each C{g.Specify} is a test here, run
after the workflow's setup against a fresh in-process registry with
deletes enabled.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    DUMMY_DIGEST,
    ERROR_CODES,
    LAYER,
    OCI_MANIFEST,
    config,
    deletingRegistry,
    header,
    imageManifest,
    pushBlob,
    pushManifest,
    sha256,
)

NAME = "conformance/pull"
TAG = "tagtest0"
NONEXISTENT_MANIFEST = ".INVALID_MANIFEST_NAME"
ACCEPT = {"Accept": [OCI_MANIFEST]}


class PullTests(TestCase):
    async def setUpRegistry(self) -> None:
        """
        The "Setup" context: two config blobs, the layer, manifest[0]
        tagged C{tagtest0} and manifest[1] pushed by digest.
        """
        self.registry = await deletingRegistry(self)
        self.configs = [config(), config()]
        self.manifests = [imageManifest(c) for c in self.configs]
        for blob in self.configs + [LAYER]:
            await pushBlob(self, self.registry, NAME, blob)
        await pushManifest(self, self.registry, NAME, TAG, self.manifests[0])
        await pushManifest(self, self.registry, NAME, sha256(self.manifests[1]), self.manifests[1])

    def request(self, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.registry.request(method, f"/v2/{NAME}{path}", **kwargs)

    # Pull blobs

    async def test_headNonexistentBlob(self) -> None:
        """HEAD request to nonexistent blob should result in 404 response."""
        await self.setUpRegistry()
        response = await self.request("HEAD", f"/blobs/{DUMMY_DIGEST}")
        self.assertEqual(response.code, 404)

    async def test_headExistingBlob(self) -> None:
        """HEAD request to existing blob should yield 200 (with its digest)."""
        await self.setUpRegistry()
        response = await self.request("HEAD", f"/blobs/{sha256(self.configs[0])}")
        self.assertEqual(response.code, 200)
        self.assertEqual(header(response, "docker-content-digest"), sha256(self.configs[0]))
        self.assertEqual(header(response, "content-length"), str(len(self.configs[0])))
        self.assertEqual(await response.content(), b"")

    async def test_getNonexistentBlob(self) -> None:
        """GET nonexistent blob should result in 404 response."""
        await self.setUpRegistry()
        response = await self.request("GET", f"/blobs/{DUMMY_DIGEST}")
        self.assertEqual(response.code, 404)

    async def test_getExistingBlob(self) -> None:
        """GET request to existing blob URL should yield 200."""
        await self.setUpRegistry()
        response = await self.request("GET", f"/blobs/{sha256(self.configs[0])}")
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.content(), self.configs[0])

    # Pull manifests

    async def test_headNonexistentManifest(self) -> None:
        """HEAD request to nonexistent manifest should return 404."""
        await self.setUpRegistry()
        response = await self.request("HEAD", f"/manifests/{NONEXISTENT_MANIFEST}")
        self.assertEqual(response.code, 404)

    async def test_headManifestByDigest(self) -> None:
        """HEAD request to manifest[0] and manifest[1] path (digest) should yield 200."""
        await self.setUpRegistry()
        for manifest in self.manifests:
            response = await self.request("HEAD", f"/manifests/{sha256(manifest)}", headers=ACCEPT)
            self.assertEqual(response.code, 200)
            self.assertEqual(header(response, "docker-content-digest"), sha256(manifest))

    async def test_headManifestByTag(self) -> None:
        """HEAD request to manifest path (tag) should yield 200 response."""
        await self.setUpRegistry()
        response = await self.request("HEAD", f"/manifests/{TAG}", headers=ACCEPT)
        self.assertEqual(response.code, 200)
        self.assertEqual(header(response, "docker-content-digest"), sha256(self.manifests[0]))

    async def test_getNonexistentManifest(self) -> None:
        """GET nonexistent manifest should return 404."""
        await self.setUpRegistry()
        response = await self.request("GET", f"/manifests/{NONEXISTENT_MANIFEST}")
        self.assertEqual(response.code, 404)

    async def test_getManifestByDigest(self) -> None:
        """GET request to manifest[0] and manifest[1] path (digest) should yield 200."""
        await self.setUpRegistry()
        for manifest in self.manifests:
            response = await self.request("GET", f"/manifests/{sha256(manifest)}", headers=ACCEPT)
            self.assertEqual(response.code, 200)
            self.assertEqual(await response.content(), manifest)

    async def test_getManifestByTag(self) -> None:
        """GET request to manifest path (tag) should yield 200 response."""
        await self.setUpRegistry()
        response = await self.request("GET", f"/manifests/{TAG}", headers=ACCEPT)
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.content(), self.manifests[0])

    # Error codes

    async def test_errorCodes(self) -> None:
        """
        400 response body should contain OCI-conforming JSON message: both
        the GET of the current suite and the PUT of older ones.
        """
        await self.setUpRegistry()
        for method in ("GET", "PUT"):
            response = await self.request(
                method, "/manifests/sha256:totallywrong",
                headers={"Content-Type": [OCI_MANIFEST]}, data=b"blablabla",
            )
            self.assertIn(response.code, (400, 404))
            if response.code == 400:
                errors = (await response.json())["errors"]
                self.assertTrue(errors)
                self.assertIn(errors[0]["code"], ERROR_CODES)

    # Teardown

    async def test_teardown(self) -> None:
        """
        Deleting the manifests, then the config and layer blobs created in
        setup succeeds (2xx, or 404/405 as the suite tolerates; with
        deletes enabled this registry answers 202).
        """
        await self.setUpRegistry()
        for manifest in self.manifests:
            response = await self.request("DELETE", f"/manifests/{sha256(manifest)}")
            self.assertEqual(response.code, 202)
        for blob in self.configs + [LAYER]:
            response = await self.request("DELETE", f"/blobs/{sha256(blob)}")
            self.assertEqual(response.code, 202)
            response = await self.request("GET", f"/blobs/{sha256(blob)}")
            self.assertEqual(response.code, 404)
