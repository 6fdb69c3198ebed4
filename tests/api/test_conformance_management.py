"""
A port of the OCI conformance suite's "Content Management" workflow
(C{conformance/04_management_test.go}): deleting tags, manifests and
blobs, with deletes enabled and disabled.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    LAYER,
    assertError,
    config,
    deletingRegistry,
    imageManifest,
    pushBlob,
    pushManifest,
    sha256,
)
from tests.support import startRegistry

NAME = "conformance/management"
TAG = "tagtest0"


class ManagementTests(TestCase):
    async def setUpRegistry(self, deletes: bool = True) -> None:
        """
        The "Setup" context: config[3], the layer, manifest[3] tagged
        C{tagtest0}, and the number of tags before anything is deleted.
        """
        if deletes:
            self.registry = await deletingRegistry(self)
        else:
            self.registry = await startRegistry(self)
        self.config = config()
        self.manifest = imageManifest(self.config)
        await pushBlob(self, self.registry, NAME, self.config)
        await pushBlob(self, self.registry, NAME, LAYER)
        await pushManifest(self, self.registry, NAME, "other", imageManifest(self.config, layers=[]))
        await pushManifest(self, self.registry, NAME, TAG, self.manifest)
        self.numTags = len(await self.tags())

    async def tags(self) -> list[str]:
        response = await self.registry.request("GET", f"/v2/{NAME}/tags/list")
        self.assertEqual(response.code, 200)
        return (await response.json())["tags"]

    def request(self, method: str, path: str):  # type: ignore[no-untyped-def]
        return self.registry.request(method, f"/v2/{NAME}{path}")

    async def test_manifestDelete(self) -> None:
        """
        The "Manifest delete" context, in order.
        """
        await self.setUpRegistry()
        self.assertEqual(self.numTags, 2)
        # DELETE request to manifest tag should return 202, unless tag
        # deletion is disallowed (400/405)
        response = await self.request("DELETE", f"/manifests/{TAG}")
        self.assertIn(response.code, (202, 400, 405))
        self.assertEqual(response.code, 202)
        # The tag is gone, the manifest stays.
        response = await self.request("GET", f"/manifests/{TAG}")
        self.assertEqual(response.code, 404)
        response = await self.request("GET", f"/manifests/{sha256(self.manifest)}")
        self.assertEqual(response.code, 200)
        # DELETE request to manifest (digest) should yield 202 response unless already deleted
        response = await self.request("DELETE", f"/manifests/{sha256(self.manifest)}")
        self.assertIn(response.code, (202, 404))
        self.assertEqual(response.code, 202)
        # GET request to deleted manifest URL should yield 404 response, unless delete is disallowed
        response = await self.request("GET", f"/manifests/{sha256(self.manifest)}")
        self.assertEqual(response.code, 404)
        # GET request to tags list should reflect manifest deletion
        tags = await self.tags()
        self.assertLess(len(tags), self.numTags)
        self.assertEqual(tags, ["other"])

    async def test_manifestDeleteByDigestRemovesTags(self) -> None:
        """
        Deleting a manifest by digest takes its tags with it.
        """
        await self.setUpRegistry()
        response = await self.request("DELETE", f"/manifests/{sha256(self.manifest)}")
        self.assertEqual(response.code, 202)
        self.assertEqual(await self.tags(), ["other"])
        response = await self.request("GET", f"/manifests/{TAG}")
        self.assertEqual(response.code, 404)

    async def test_blobDelete(self) -> None:
        """
        The "Blob delete" context: DELETE request to blob URL should yield
        202 response; GET request to deleted blob URL should yield 404.
        """
        await self.setUpRegistry()
        for blob in (self.config, LAYER):
            response = await self.request("DELETE", f"/blobs/{sha256(blob)}")
            self.assertIn(response.code, (202, 404, 405))
            self.assertEqual(response.code, 202)
        response = await self.request("GET", f"/blobs/{sha256(self.config)}")
        self.assertEqual(response.code, 404)

    async def test_deletesDisabled(self) -> None:
        """
        Without C{storage.delete.enabled}, every delete is 405 UNSUPPORTED
        and nothing goes.
        """
        await self.setUpRegistry(deletes=False)
        for path in (
            f"/manifests/{TAG}", f"/manifests/{sha256(self.manifest)}", f"/blobs/{sha256(self.config)}",
        ):
            await assertError(self, await self.request("DELETE", path), 405, "UNSUPPORTED")
        self.assertEqual(len(await self.tags()), self.numTags)
        response = await self.request("GET", f"/blobs/{sha256(self.config)}")
        self.assertEqual(response.code, 200)
