"""
A port of the OCI conformance suite's "Push" workflow
(C{conformance/02_push_test.go}).  Each context of the Go suite is a test
here, its C{g.Specify} steps run in order as they share state there.
"""

from __future__ import annotations

import os
import uuid

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
    dumps,
    header,
    imageManifest,
    index,
    pushBlob,
    pushManifest,
    relative,
    sha256,
    withQuery,
)

NAME = "conformance/push"
ARTIFACT_TYPE_A = "application/vnd.nhl.peanut.butter.bagel"
ARTIFACT_TYPE_B = "application/vnd.nba.strawberry.jam.croissant"
ARTIFACT_TYPE_INDEX = "application/vnd.oci.example.index.v1+json"
REF_BLOB_A = b"NHL Peanut Butter on my NHL bagel"
REF_BLOB_B = b"NBA Strawberry Jam on my NBA croissant"
ANNOTATION = "org.opencontainers.conformance.test"
OCTETS = {"Content-Type": ["application/octet-stream"]}


def randomBlob(size: int) -> bytes:
    return os.urandom(size)


class PushTests(TestCase):
    async def startRegistry(self) -> None:
        self.registry = await deletingRegistry(self)

    def request(self, method: str, path: str, name: str = NAME, **kwargs):  # type: ignore[no-untyped-def]
        if not path.startswith("/v2/"):
            path = f"/v2/{name}{path}"
        return self.registry.request(method, path, **kwargs)

    async def test_setup(self) -> None:
        """
        Setup: the empty JSON blob has the well-known digest, and it and
        the reference blob upload with a 2xx.
        """
        await self.startRegistry()
        self.assertEqual(sha256(EMPTY_JSON), EMPTY_JSON_DIGEST)
        self.assertEqual(await pushBlob(self, self.registry, NAME, EMPTY_JSON), EMPTY_JSON_DIGEST)
        await pushBlob(self, self.registry, NAME, REF_BLOB_A)

    async def test_blobUploadStreamed(self) -> None:
        """
        PATCH request with blob in body should yield 202 response; PUT
        request to session URL with digest should yield 201 response.
        """
        await self.startRegistry()
        blobA = randomBlob(42)
        response = await self.request("POST", "/blobs/uploads/")
        location = header(response, "location")
        self.assertTrue(location)
        response = await self.request("PATCH", relative(location), data=blobA, headers=OCTETS)
        self.assertEqual(response.code, 202)
        response = await self.request(
            "PUT", withQuery(header(response, "location"), digest=sha256(blobA)), headers=OCTETS
        )
        self.assertEqual(response.code, 201)
        self.assertTrue(header(response, "location"))
        response = await self.request("GET", f"/blobs/{sha256(blobA)}")
        self.assertEqual(await response.content(), blobA)

    async def test_blobUploadMonolithic(self) -> None:
        """
        The "Blob Upload Monolithic" context, in order.
        """
        await self.startRegistry()
        configContent = config()
        digest = sha256(configContent)
        # GET nonexistent blob should result in 404 response
        response = await self.request("GET", f"/blobs/{DUMMY_DIGEST}")
        self.assertEqual(response.code, 404)
        # POST request with digest and blob should yield a 201 or 202
        response = await self.request(
            "POST", f"/blobs/uploads/?digest={digest}", data=configContent, headers=OCTETS
        )
        self.assertTrue(header(response, "location"))
        self.assertIn(response.code, (201, 202))
        self.assertEqual(response.code, 201)
        # GET request to blob URL from prior request should yield 200 or 404
        response = await self.request("GET", f"/blobs/{digest}")
        self.assertEqual(response.code, 200)
        # POST request should yield a session ID
        response = await self.request("POST", "/blobs/uploads/")
        self.assertEqual(response.code, 202)
        # PUT upload of a blob should yield a 201 Response
        response = await self.request(
            "PUT", withQuery(header(response, "location"), digest=digest),
            data=configContent, headers=OCTETS,
        )
        self.assertTrue(header(response, "location"))
        self.assertEqual(response.code, 201)
        # GET request to existing blob should yield 200 response
        response = await self.request("GET", f"/blobs/{digest}")
        self.assertEqual(response.code, 200)
        # PUT upload of a layer blob should yield a 201 Response
        response = await self.request("POST", "/blobs/uploads/")
        response = await self.request(
            "PUT", withQuery(header(response, "location"), digest=sha256(LAYER)),
            data=LAYER, headers=OCTETS,
        )
        self.assertTrue(header(response, "location"))
        self.assertEqual(response.code, 201)
        # GET request to existing layer should yield 200 response
        response = await self.request("GET", f"/blobs/{sha256(LAYER)}")
        self.assertEqual(response.code, 200)

    async def test_blobUploadChunked(self) -> None:
        """
        The "Blob Upload Chunked" context, in order.
        """
        await self.startRegistry()
        blobB = randomBlob(42)
        chunk1, chunk2 = blobB[:22], blobB[22:]
        range1, range2 = f"0-{len(chunk1) - 1}", f"{len(chunk1)}-{len(blobB) - 1}"

        def patch(location: str, chunk: bytes, contentRange: str):  # type: ignore[no-untyped-def]
            return self.request(
                "PATCH", relative(location), data=chunk,
                headers={**OCTETS, "Content-Range": [contentRange]},
            )

        # Out-of-order blob upload should return 416
        response = await self.request("POST", "/blobs/uploads/", data=b"")
        location = header(response, "location")
        self.assertTrue(location)
        self.assertIsNone(header(response, "oci-chunk-min-length"))
        response = await patch(location, chunk2, range2)
        self.assertEqual(response.code, 416)
        # PATCH request with first chunk should return 202
        response = await self.request("POST", "/blobs/uploads/", data=b"")
        previous = header(response, "location")
        self.assertTrue(previous)
        response = await patch(previous, chunk1, range1)
        self.assertEqual(response.code, 202)
        self.assertEqual(header(response, "range"), range1)
        # Retry previous blob chunk should return 416
        response = await patch(previous, chunk1, range1)
        self.assertEqual(response.code, 416)
        # Get on stale blob upload should return 204 with a range and location
        response = await self.request("GET", relative(previous))
        self.assertEqual(response.code, 204)
        self.assertTrue(header(response, "location"))
        self.assertEqual(header(response, "range"), range1)
        # PATCH request with second chunk should return 202
        response = await patch(header(response, "location"), chunk2, range2)
        self.assertEqual(response.code, 202)
        self.assertEqual(header(response, "range"), f"0-{len(blobB) - 1}")
        self.assertTrue(header(response, "location"))
        # PUT request with digest should return 201
        response = await self.request(
            "PUT", withQuery(header(response, "location"), digest=sha256(blobB)),
            data=b"", headers=OCTETS,
        )
        self.assertEqual(response.code, 201)
        self.assertTrue(header(response, "location"))
        response = await self.request("GET", f"/blobs/{sha256(blobB)}")
        self.assertEqual(await response.content(), blobB)

    async def test_crossRepositoryBlobMount(self) -> None:
        """
        The "Cross-Repository Blob Mount" context, in order, with automatic
        content discovery disabled (this registry mounts only with C{from}).
        """
        await self.startRegistry()
        crossmount = f"conformance-{uuid.uuid4()}"
        blobA = randomBlob(42)
        digestA = await pushBlob(self, self.registry, NAME, blobA)
        # Cross-mounting of a blob without the from argument should yield session id
        response = await self.request("POST", f"/blobs/uploads/?mount={DUMMY_DIGEST}", name=crossmount)
        self.assertEqual(response.code, 202)
        self.assertTrue(header(response, "location"))
        # POST request to mount another repository's blob should return 201 or 202
        response = await self.request(
            "POST", f"/blobs/uploads/?mount={digestA}&from={NAME}", name=crossmount
        )
        self.assertIn(response.code, (201, 202))
        self.assertEqual(response.code, 201)
        # GET request to test digest within cross-mount namespace should return 200
        location = relative(header(response, "location"))
        self.assertEqual(location, f"/v2/{crossmount}/blobs/{digestA}")
        self.assertEqual(header(response, "docker-content-digest"), digestA)
        response = await self.registry.request("GET", location)
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.content(), blobA)
        # Cross-mounting without from, and automatic content discovery disabled should return a 202
        response = await self.request("POST", f"/blobs/uploads/?mount={digestA}", name=crossmount)
        self.assertEqual(response.code, 202)

    async def test_crossMountOfNonexistentBlob(self) -> None:
        """
        Cross-mounting of nonexistent blob should yield session id: a 202
        whose Location is an upload in the target repository.
        """
        await self.startRegistry()
        crossmount = f"conformance-{uuid.uuid4()}"
        await pushImageConfig(self)
        response = await self.request(
            "POST", f"/blobs/uploads/?mount={DUMMY_DIGEST}&from={NAME}", name=crossmount
        )
        self.assertEqual(response.code, 202)
        location = relative(header(response, "location"))
        self.assertTrue(location.startswith(f"/v2/{crossmount}/blobs/uploads/"), location)
        # The session works.
        response = await self.registry.request(
            "PUT", withQuery(location, digest=sha256(b"x")), data=b"x", headers=OCTETS
        )
        self.assertEqual(response.code, 201)

    async def test_manifestUpload(self) -> None:
        """
        The "Manifest Upload" context, in order, then its teardown.
        """
        await self.startRegistry()
        configs = [config() for _ in range(4)]
        manifests = [imageManifest(c) for c in configs]
        for blob in configs + [LAYER, EMPTY_JSON, REF_BLOB_A]:
            await pushBlob(self, self.registry, NAME, blob)
        # GET nonexistent manifest should return 404
        response = await self.request("GET", "/manifests/.INVALID_MANIFEST_NAME")
        self.assertEqual(response.code, 404)
        # PUT should accept a manifest upload
        for i in range(4):
            response = await pushManifest(self, self.registry, NAME, f"test{i}", manifests[1])
            self.assertTrue(header(response, "location"))
        # Registry should accept a manifest upload with no layers
        emptyLayer = imageManifest(configs[1], layers=[EMPTY_JSON], layerType=OCI_EMPTY)
        response = await pushManifest(self, self.registry, NAME, "emptylayer", emptyLayer)
        self.assertTrue(header(response, "location"))
        noLayers = imageManifest(configs[1], layers=[])
        response = await pushManifest(self, self.registry, NAME, "nolayers", noLayers)
        self.assertTrue(header(response, "location"))
        # GET request to manifest URL (digest) should yield 200 response
        response = await self.request(
            "GET", f"/manifests/{sha256(manifests[1])}", headers={"Accept": [OCI_MANIFEST]}
        )
        self.assertEqual(response.code, 200)
        # ... with custom config/mediaType (as artifact type) [OCI-Image v1.1]
        configType = imageManifest(REF_BLOB_A, configType=ARTIFACT_TYPE_A)
        await pushManifest(self, self.registry, NAME, sha256(configType), configType)
        # ... with custom artifactType [OCI-Image v1.1]
        artifactType = imageManifest(
            EMPTY_JSON, configType=OCI_EMPTY, layers=[REF_BLOB_A], layerType=ARTIFACT_TYPE_A,
            artifactType=ARTIFACT_TYPE_A,
        )
        await pushManifest(self, self.registry, NAME, sha256(artifactType), artifactType)
        # ... with custom layer media type
        layerType = imageManifest(configs[0], layers=[REF_BLOB_A], layerType=ARTIFACT_TYPE_A)
        await pushManifest(self, self.registry, NAME, sha256(layerType), layerType)
        # ... with each tar layer media type
        for mediaType in (
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ):
            tarManifest = imageManifest(configs[0], layerType=mediaType)
            await pushManifest(self, self.registry, NAME, sha256(tarManifest), tarManifest)
        # ... with annotations
        annotated = imageManifest(configs[0], annotations={ANNOTATION: "test annotation"})
        await pushManifest(self, self.registry, NAME, sha256(annotated), annotated)
        # ... with image index
        await pushManifest(self, self.registry, NAME, "tagtest0", manifests[0])
        refsIndex = index(
            [("application/vnd.oci.image.manifest.v1+json", manifests[0])],
            artifactType=ARTIFACT_TYPE_INDEX, annotations={ANNOTATION: "test index"},
        )
        await pushManifest(self, self.registry, NAME, sha256(refsIndex), refsIndex, OCI_INDEX)
        # ... with nested image index [OCI-Image v1.1]
        nested = index(
            [(OCI_INDEX, refsIndex)], artifactType=ARTIFACT_TYPE_INDEX,
            annotations={ANNOTATION: "test index"},
        )
        await pushManifest(self, self.registry, NAME, sha256(nested), nested, OCI_INDEX)
        # Dangling subject [OCI-Image v1.1]
        await pushBlob(self, self.registry, NAME, REF_BLOB_B)
        dangling = imageManifest(
            EMPTY_JSON, configType=OCI_EMPTY, layers=[REF_BLOB_B], layerType=ARTIFACT_TYPE_B,
            artifactType=ARTIFACT_TYPE_B, subject=descriptor(OCI_MANIFEST, manifests[3]),
        )
        response = await pushManifest(self, self.registry, NAME, sha256(dangling), dangling)
        subject = header(response, "oci-subject")
        self.assertRegex(subject or "", r"^[a-z0-9]+:[a-f0-9]+$")
        self.assertEqual(subject, sha256(manifests[3]))

        # Teardown: manifests first, then blobs.
        for manifest in (manifests[1], configType, artifactType, emptyLayer):
            response = await self.request("DELETE", f"/manifests/{sha256(manifest)}")
            self.assertEqual(response.code, 202)
            response = await self.request("GET", f"/manifests/{sha256(manifest)}")
            self.assertEqual(response.code, 404)
        for blob in (configs[1], LAYER, EMPTY_JSON):
            response = await self.request("DELETE", f"/blobs/{sha256(blob)}")
            self.assertEqual(response.code, 202)

    async def test_manifestWithLargeLayer(self) -> None:
        """
        A manifest naming a 4 MiB layer (the suite's C{testManifest4MB}) is
        accepted once the layer is pushed.
        """
        await self.startRegistry()
        configContent = config()
        blob = randomBlob(4 * 1024 * 1024)
        await pushBlob(self, self.registry, NAME, configContent)
        await pushBlob(self, self.registry, NAME, blob)
        manifest = imageManifest(configContent, layers=[blob])
        await pushManifest(self, self.registry, NAME, sha256(manifest), manifest)
        response = await self.request("HEAD", f"/blobs/{sha256(blob)}")
        self.assertEqual(header(response, "content-length"), str(len(blob)))

    async def test_teardownTolerance(self) -> None:
        """
        Teardown deletes of things already gone answer 404 (never 5xx).
        """
        await self.startRegistry()
        response = await self.request("DELETE", f"/blobs/{DUMMY_DIGEST}")
        self.assertEqual(response.code, 404)
        response = await self.request("DELETE", f"/manifests/{DUMMY_DIGEST}")
        self.assertEqual(response.code, 404)


async def pushImageConfig(testCase: PushTests) -> None:
    await pushBlob(testCase, testCase.registry, NAME, dumps({"config": "only"}))
