"""
A port of the OCI conformance suite's "Content Discovery" workflow
(C{conformance/03_discovery_test.go}): tag listing with C{n}/C{last}, and
the referrers API with its C{artifactType} filter.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    DUMMY_DIGEST,
    EMPTY_JSON,
    EMPTY_JSON_DIGEST,
    LAYER,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    config,
    deletingRegistry,
    descriptor,
    header,
    imageManifest,
    index,
    pushBlob,
    pushManifest,
    sha256,
)
from tests.api.test_conformance_push import (
    ANNOTATION,
    ARTIFACT_TYPE_A,
    ARTIFACT_TYPE_B,
    ARTIFACT_TYPE_INDEX,
    REF_BLOB_A,
    REF_BLOB_B,
)

NAME = "conformance/discovery"
NUM_TAGS = 4


class DiscoveryTests(TestCase):
    async def setUpRegistry(self) -> None:
        """
        The "Setup" context: four tags, then the references setup: five
        manifests whose subject is manifest[4] (two per artifact type and
        an index) and one whose subject, manifest[3], was never pushed.
        """
        self.registry = await deletingRegistry(self)
        r, name = self.registry, NAME
        self.configs = [config() for _ in range(5)]
        self.manifests = [imageManifest(c) for c in self.configs]
        await pushBlob(self, r, name, self.configs[2])
        await pushBlob(self, r, name, LAYER)
        for i in range(NUM_TAGS):
            await pushManifest(self, r, name, f"test{i}", self.manifests[2])
        # The index's child (pushed by the pull workflow in the Go suite,
        # which shares one repository between workflows).
        await pushBlob(self, r, name, self.configs[0])
        await pushManifest(self, r, name, sha256(self.manifests[0]), self.manifests[0])

        # References setup
        self.assertEqual(await pushBlob(self, r, name, EMPTY_JSON), EMPTY_JSON_DIGEST)
        await pushBlob(self, r, name, REF_BLOB_A)
        subject4 = descriptor(OCI_MANIFEST, self.manifests[4])
        subject3 = descriptor(OCI_MANIFEST, self.manifests[3])
        self.annotations: dict[str, str] = {}

        def artifact(blob: bytes, artifactType: str, byConfig: bool, note: str | None, subject: Any) -> bytes:
            extra: dict[str, Any] = {"subject": subject}
            if note is not None:
                extra["annotations"] = {ANNOTATION: note}
            if byConfig:
                content = imageManifest(blob, configType=artifactType, layers=[EMPTY_JSON],
                                        layerType=OCI_EMPTY, **extra)
            else:
                content = imageManifest(EMPTY_JSON, configType=OCI_EMPTY, layers=[blob],
                                        layerType=artifactType, artifactType=artifactType, **extra)
            if note is not None:
                self.annotations[sha256(content)] = note
            return content

        self.aConfig = artifact(REF_BLOB_A, ARTIFACT_TYPE_A, True, "test config a", subject4)
        self.aLayer = artifact(REF_BLOB_A, ARTIFACT_TYPE_A, False, "test layer a", subject4)
        self.bConfig = artifact(REF_BLOB_B, ARTIFACT_TYPE_B, True, "test config b", subject4)
        self.bLayer = artifact(REF_BLOB_B, ARTIFACT_TYPE_B, False, "test layer b", subject4)
        self.cLayer = artifact(REF_BLOB_B, ARTIFACT_TYPE_B, False, None, subject3)
        self.refsIndex = index(
            [(OCI_MANIFEST, self.manifests[0])], artifactType=ARTIFACT_TYPE_INDEX,
            subject=subject4, annotations={ANNOTATION: "test index"},
        )
        self.annotations[sha256(self.refsIndex)] = "test index"

        async def put(content: bytes, subject: bytes, mediaType: str = OCI_MANIFEST) -> None:
            response = await pushManifest(self, r, name, sha256(content), content, mediaType)
            self.assertEqual(header(response, "oci-subject"), sha256(subject))

        await put(self.aConfig, self.manifests[4])
        await put(self.aLayer, self.manifests[4])
        await put(self.refsIndex, self.manifests[4], OCI_INDEX)
        await pushBlob(self, r, name, self.configs[4])
        await pushBlob(self, r, name, LAYER)
        await pushManifest(self, r, name, "tagtest0", self.manifests[4])
        # Reference blob after the image manifest is pushed
        await pushBlob(self, r, name, REF_BLOB_B)
        await put(self.bConfig, self.manifests[4])
        await put(self.bLayer, self.manifests[4])
        await put(self.cLayer, self.manifests[3])

    async def tags(self, query: str = "") -> list[str]:
        response = await self.registry.request("GET", f"/v2/{NAME}/tags/list{query}")
        self.assertEqual(response.code, 200)
        document = await response.json()
        self.assertEqual(document["name"], NAME)
        return document["tags"]

    async def referrers(self, digest: str, query: str = "") -> tuple[Any, list[dict[str, Any]]]:
        response = await self.registry.request("GET", f"/v2/{NAME}/referrers/{digest}{query}")
        self.assertEqual(response.code, 200)
        self.assertEqual(header(response, "content-type"), OCI_INDEX)
        document = await response.json()
        self.assertEqual(document["schemaVersion"], 2)
        self.assertEqual(document["mediaType"], OCI_INDEX)
        return response, document["manifests"]

    # Listing tags

    async def test_listTags(self) -> None:
        """
        GET request to list tags should yield 200 response; the number of
        tags is limitable by C{n}; the start is set by C{last}.
        """
        await self.setUpRegistry()
        tagList = await self.tags()
        self.assertEqual(tagList, ["tagtest0", "test0", "test1", "test2", "test3"])
        numResults = len(tagList) // 2
        page = await self.tags(f"?n={numResults}")
        self.assertEqual(len(page), numResults)
        last = page[numResults - 1]
        page = await self.tags(f"?n={numResults}&last={last}")
        self.assertLessEqual(len(page), numResults)
        self.assertNotIn(last, page)
        self.assertEqual(page, tagList[numResults:2 * numResults])

    # Listing references

    async def test_referrersOfNonexistentBlob(self) -> None:
        """GET request to nonexistent blob should result in empty 200 response."""
        await self.setUpRegistry()
        _, manifests = await self.referrers(DUMMY_DIGEST)
        self.assertEqual(manifests, [])

    async def test_referrersOfExistingManifest(self) -> None:
        """GET request to existing blob should yield 200, with the five referrers."""
        await self.setUpRegistry()
        response, manifests = await self.referrers(sha256(self.manifests[4]))
        self.assertIsNone(header(response, "oci-filters-applied"))
        self.assertEqual(len(manifests), 5)
        self.assertNotEqual(manifests[0]["digest"], manifests[1]["digest"])
        for entry in manifests:
            self.assertEqual(len(entry["annotations"]), 1)
            self.assertEqual(entry["annotations"][ANNOTATION], self.annotations[entry["digest"]])
        byDigest = {m["digest"]: m for m in manifests}
        expected = {
            sha256(self.aConfig): (OCI_MANIFEST, ARTIFACT_TYPE_A, self.aConfig),
            sha256(self.aLayer): (OCI_MANIFEST, ARTIFACT_TYPE_A, self.aLayer),
            sha256(self.bConfig): (OCI_MANIFEST, ARTIFACT_TYPE_B, self.bConfig),
            sha256(self.bLayer): (OCI_MANIFEST, ARTIFACT_TYPE_B, self.bLayer),
            sha256(self.refsIndex): (OCI_INDEX, ARTIFACT_TYPE_INDEX, self.refsIndex),
        }
        self.assertEqual(set(byDigest), set(expected))
        for digest, (mediaType, artifactType, content) in expected.items():
            self.assertEqual(byDigest[digest]["mediaType"], mediaType)
            self.assertEqual(byDigest[digest]["artifactType"], artifactType)
            self.assertEqual(byDigest[digest]["size"], len(content))

    async def test_referrersWithFilter(self) -> None:
        """
        GET request to existing blob with filter should yield 200, with
        only the artifacts of that type and C{OCI-Filters-Applied}.
        """
        await self.setUpRegistry()
        response, manifests = await self.referrers(
            sha256(self.manifests[4]), f"?artifactType={ARTIFACT_TYPE_A}"
        )
        self.assertEqual(header(response, "oci-filters-applied"), "artifactType")
        self.assertEqual(len(manifests), 2)
        self.assertEqual(
            {m["digest"] for m in manifests}, {sha256(self.aConfig), sha256(self.aLayer)}
        )
        for entry in manifests:
            self.assertEqual(len(entry["annotations"]), 1)
            self.assertEqual(entry["annotations"][ANNOTATION], self.annotations[entry["digest"]])

    async def test_referrersOfMissingManifest(self) -> None:
        """GET request to missing manifest should yield 200 with its one referrer."""
        await self.setUpRegistry()
        _, manifests = await self.referrers(sha256(self.manifests[3]))
        self.assertEqual(len(manifests), 1)
        self.assertEqual(manifests[0]["digest"], sha256(self.cLayer))

    # Teardown

    async def test_teardown(self) -> None:
        """
        Deleting the created manifests (and with them their tags), then the
        blobs, succeeds; the referrers index empties as referrers go.
        """
        await self.setUpRegistry()
        references = [
            self.refsIndex, self.manifests[2], self.manifests[4], self.aConfig, self.aLayer,
            self.bConfig, self.bLayer, self.cLayer,
        ]
        for content in references:
            response = await self.registry.request("DELETE", f"/v2/{NAME}/manifests/{sha256(content)}")
            self.assertEqual(response.code, 202)
        self.assertEqual(await self.tags(), [])
        for subject in (self.manifests[4], self.manifests[3]):
            _, manifests = await self.referrers(sha256(subject))
            self.assertEqual(manifests, [])
        for blob in (self.configs[2], LAYER, self.configs[4], REF_BLOB_A, REF_BLOB_B, EMPTY_JSON):
            response = await self.registry.request("DELETE", f"/v2/{NAME}/blobs/{sha256(blob)}")
            self.assertEqual(response.code, 202)
        # Already gone: 404, as the suite tolerates.
        response = await self.registry.request("DELETE", f"/v2/{NAME}/manifests/{sha256(self.aConfig)}")
        self.assertEqual(response.code, 404)
