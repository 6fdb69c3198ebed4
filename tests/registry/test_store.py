"""
The registry model without HTTP: digests, blobs, uploads, manifests,
tags, referrers and repositories over the in-memory driver.
"""

from __future__ import annotations

import hashlib
import json

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txregistry.api.errors import RegistryError
from txregistry.registry import layout
from txregistry.registry.digest import Digest, InvalidDigest
from txregistry.registry.manifests import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    ParsedManifest,
)
from txregistry.registry.store import Registry
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.factories import createDriver
from txregistry.web.body import RequestBody


def body(data: bytes, length: bool = True) -> RequestBody:
    """
    A request body that has fully arrived.
    """
    result = RequestBody(len(data) if length else None, lambda: None, lambda: None)
    if data:
        result.dataReceived(data)
    result.bodyComplete()
    return result


def digestOf(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())


class DigestTests(SynchronousTestCase):
    def test_parse(self) -> None:
        for value in ("sha256:" + "a" * 64, "sha512:" + "0" * 128):
            self.assertEqual(str(Digest.parse(value)), value)

    def test_invalid(self) -> None:
        for value in ("", "sha256", "sha256:", ":" + "a" * 64, "sha256:" + "a" * 63, "sha256:" + "A" * 64,
                      "sha384:" + "a" * 96, "sha512:" + "a" * 64, "SHA256:" + "a" * 64, "sha256:" + "a" * 64 + "\n",
                      "x" * 300, None, "sha256:../" + "a" * 61):
            self.assertRaises(InvalidDigest, Digest.parse, value)

    def test_of(self) -> None:
        self.assertEqual(Digest.of(b"abc"), digestOf(b"abc"))
        self.assertEqual(Digest.of(b"abc", "sha512"), digestOf(b"abc", "sha512"))


class ParsedManifestTests(SynchronousTestCase):
    def manifest(self, **fields: object) -> bytes:
        document: dict[str, object] = {
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": str(digestOf(b"c")), "size": 1},
            "layers": [],
        }
        document.update(fields)
        return json.dumps(document).encode()

    def test_inferredType(self) -> None:
        """
        Without mediaType or a Content-Type, a document with C{manifests}
        is an index, anything else an image manifest.
        """
        self.assertEqual(ParsedManifest(self.manifest(), None).mediaType, OCI_MANIFEST)
        self.assertEqual(ParsedManifest(self.manifest(), "application/json").mediaType, OCI_MANIFEST)
        index = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
        self.assertEqual(ParsedManifest(index, None).mediaType, OCI_INDEX)
        self.assertEqual(ParsedManifest(self.manifest(), f"{DOCKER_MANIFEST}; charset=utf-8").mediaType,
                         DOCKER_MANIFEST)

    def test_refused(self) -> None:
        for content, contentType in (
            (self.manifest(mediaType="application/vnd.docker.distribution.manifest.v1+json"), None),
            (self.manifest(mediaType=OCI_MANIFEST), OCI_INDEX),
            (self.manifest(schemaVersion=1), None),
            (self.manifest(layers=[{"mediaType": "x", "size": 1}]), None),
            (self.manifest(subject={"mediaType": "x", "size": 1, "digest": "sha256:x"}), None),
            (self.manifest(annotations=["a"]), None),
            (b"[" * 100000, None),
        ):
            error = self.assertRaises(RegistryError, ParsedManifest, content, contentType)
            self.assertEqual(error.code.value, "MANIFEST_INVALID")

    def test_foreignLayersNotRequired(self) -> None:
        parsed = ParsedManifest(self.manifest(layers=[
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
             "digest": str(digestOf(b"f")), "size": 1},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": str(digestOf(b"u")),
             "size": 1, "urls": ["https://example.com/u"]},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": str(digestOf(b"l")), "size": 1},
        ]), None)
        self.assertEqual(parsed.blobs, [digestOf(b"c"), digestOf(b"l")])


class RegistryTests(TestCase):
    def setUp(self) -> None:
        self.driver = createDriver("inmemory", {}, reactor)
        self.registry = Registry(self.driver, deleteEnabled=True)

    async def upload(self, name: str, data: bytes, algorithm: str = "sha256") -> Digest:
        uploads = self.registry.uploads
        uploadID = await uploads.start(name)
        await uploads.append(name, uploadID, body(data[: len(data) // 2]))
        await uploads.append(name, uploadID, body(data[len(data) // 2:], length=False), len(data) // 2)
        digest = digestOf(data, algorithm)
        self.assertEqual(await uploads.complete(name, uploadID, digest), len(data))
        return digest

    async def test_uploadAndLink(self) -> None:
        digest = await self.upload("a", b"hello world")
        self.assertEqual(await self.registry.blobs.sizeIn("a", digest), 11)
        self.assertIsNone(await self.registry.blobs.sizeIn("b", digest))
        self.assertEqual(await self.registry.blobs.getContent(digest), b"hello world")
        self.assertTrue(await self.registry.blobs.unlink("a", digest))
        self.assertFalse(await self.registry.blobs.unlink("a", digest))
        self.assertEqual(await self.registry.blobs.size(digest), 11)

    async def test_sha512AndEvictedHashes(self) -> None:
        """
        With no running hash kept, each chunk's hash is recomputed from
        storage and the result is still right.
        """
        self.registry.uploads.maxHashStates = 0
        digest = await self.upload("a", b"x" * 100000)
        self.assertEqual(await self.registry.blobs.size(digest), 100000)
        digest = await self.upload("a", b"y" * 1000, "sha512")
        self.assertEqual(await self.registry.blobs.getContent(digest), b"y" * 1000)

    async def test_outOfOrderChunk(self) -> None:
        uploads = self.registry.uploads
        uploadID = await uploads.start("a")
        error = await self.assertFailure(Deferred.fromCoroutine(uploads.append("a", uploadID, body(b"x"), 3)),
                                         RegistryError)
        self.assertEqual(error.code.value, "RANGE_INVALID")
        self.assertEqual(await uploads.size("a", uploadID), 0)

    async def test_wrongDigestDiscards(self) -> None:
        uploads = self.registry.uploads
        uploadID = await uploads.start("a")
        await uploads.append("a", uploadID, body(b"abc"))
        error = await self.assertFailure(
            Deferred.fromCoroutine(uploads.complete("a", uploadID, digestOf(b"abd"))), RegistryError
        )
        self.assertEqual(error.code.value, "DIGEST_INVALID")
        for digest in (digestOf(b"abc"), digestOf(b"abd")):
            self.assertIsNone(await self.registry.blobs.size(digest))
        error = await self.assertFailure(Deferred.fromCoroutine(uploads.size("a", uploadID)), RegistryError)
        self.assertEqual(error.code.value, "BLOB_UPLOAD_UNKNOWN")

    async def test_unknownAndBadIDs(self) -> None:
        for uploadID in ("nope", "..", "../x", "a/b", "x" * 65, ""):
            for call in (self.registry.uploads.size("a", uploadID), self.registry.uploads.cancel("a", uploadID)):
                error = await self.assertFailure(Deferred.fromCoroutine(call), RegistryError)
                self.assertEqual(error.code.value, "BLOB_UPLOAD_UNKNOWN")

    async def test_monolithicAndAdopt(self) -> None:
        """
        Storing content that is already there keeps one copy and drops the
        new upload.
        """
        digest = digestOf(b"same")
        await self.registry.uploads.monolithic("a", digest, body(b"same"))
        await self.registry.uploads.monolithic("b", digest, body(b"same"))
        self.assertEqual(await self.registry.blobs.sizeIn("b", digest), 4)
        for name in ("a", "b"):
            try:
                left = await self.driver.list(layout.uploadsDirectory(name))
            except PathNotFoundError:
                left = []
            self.assertEqual(left, [])

    async def test_manifestsTagsReferrers(self) -> None:
        manifests = self.registry.manifests
        config = await self.upload("r/x", b"{}")
        image = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                       "digest": str(config), "size": 2}, "layers": []}).encode()
        digest, subject = await manifests.put("r/x", "v1", None, image)
        self.assertIsNone(subject)
        referrer = json.loads(image)
        referrer["subject"] = {"mediaType": OCI_MANIFEST, "digest": str(digest), "size": len(image)}
        referrer["artifactType"] = "application/x"
        content = json.dumps(referrer).encode()
        rDigest, subject = await manifests.put("r/x", str(Digest.of(content)), OCI_MANIFEST, content)
        self.assertEqual(subject, digest)
        self.assertEqual(await manifests.tags("r/x"), ["v1"])
        self.assertEqual((await manifests.get("r/x", "v1")).content, image)
        self.assertEqual([d["digest"] for d in await manifests.referrers("r/x", digest)], [str(rDigest)])
        self.assertEqual(await self.registry.repositories(), ["r/x"])
        error = await self.assertFailure(Deferred.fromCoroutine(manifests.tags("r")), RegistryError)
        self.assertEqual(error.code.value, "NAME_UNKNOWN")
        await manifests.delete("r/x", rDigest)
        self.assertEqual(await manifests.referrers("r/x", digest), [])
        await manifests.delete("r/x", digest)
        self.assertEqual(await manifests.tags("r/x"), [])

    def test_checks(self) -> None:
        self.registry.checkDeletable()
        error = self.assertRaises(RegistryError, Registry(self.driver).checkDeletable)
        self.assertEqual((error.code.value, error.status), ("UNSUPPORTED", 405))
        error = self.assertRaises(RegistryError, Registry(self.driver, readOnly=True).checkWritable)
        self.assertEqual((error.code.value, error.status), ("UNSUPPORTED", 405))
