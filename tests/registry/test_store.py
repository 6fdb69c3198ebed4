"""
The registry model without HTTP: digests, blobs, uploads, manifests,
tags, referrers and repositories over the in-memory driver, through the
service interfaces of L{txregistry.interfaces}.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txregistry.errors import (
    BlobUnknown,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestInvalid,
    NameInvalid,
    NameUnknown,
    RangeMismatch,
)
from txregistry.interfaces import (
    IBlobStore,
    IBlobUpload,
    IBlobWriter,
    IManifestService,
    INamespace,
    IRepository,
    ITagService,
    Page,
)
from txregistry.registry import layout
from txregistry.registry.blobs import SIZE_TTL
from txregistry.registry.digest import Digest, InvalidDigest
from txregistry.registry.manifests import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    ParsedManifest,
)
from txregistry.registry.namespace import StorageNamespace
from txregistry.registry.uploads import UploadArea, newUploadID, startedAt
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.factories import createDriver


@implementer(IPushProducer)
class _Source:
    """
    A producer of bytes already in hand.
    """

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


async def write(writer: IBlobWriter, data: bytes) -> int:
    """
    Write C{data} into C{writer} as a body would, and close it.
    """
    writer.registerProducer(_Source(), True)
    if data:
        writer.write(data)
    writer.unregisterProducer()
    return await writer.close()  # type: ignore[no-any-return]


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
            self.assertRaises(ManifestInvalid, ParsedManifest, content, contentType)

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
        self.clock = Clock()
        self.namespace = StorageNamespace(self.driver, self.clock)

    def blobs(self, name: str) -> Any:
        return self.namespace.repository(name).blobs()

    async def upload(self, name: str, data: bytes, algorithm: str = "sha256") -> Digest:
        upload = await self.blobs(name).create()
        await write(await upload.append(), data[: len(data) // 2])
        await write(await upload.append(len(data) // 2), data[len(data) // 2:])
        digest = digestOf(data, algorithm)
        descriptor = await upload.commit(digest)
        self.assertEqual((descriptor.digest, descriptor.size), (digest, len(data)))
        return digest

    async def content(self, name: str, digest: Digest) -> bytes:
        reader = await self.blobs(name).reader(digest)
        received: list[bytes] = []

        @implementer(IPushProducer)
        class Collect:
            def registerProducer(self, producer: object, streaming: bool) -> None:
                pass

            def unregisterProducer(self) -> None:
                pass

            def write(self, data: bytes) -> None:
                received.append(data)

        await reader.startProducing(Collect())
        return b"".join(received)

    def test_providesInterfaces(self) -> None:
        """
        The storage-backed model provides every service interface.
        """
        repository = self.namespace.repository("a/b")
        verifyObject(INamespace, self.namespace)
        verifyObject(IRepository, repository)
        verifyObject(IManifestService, repository.manifests())
        verifyObject(ITagService, repository.tags())
        verifyObject(IBlobStore, repository.blobs())
        self.assertEqual(repository.name, "a/b")

    def test_invalidName(self) -> None:
        for name in ("A", "a//b", "../a", "", "a/"):
            self.assertRaises(NameInvalid, self.namespace.repository, name)

    async def test_uploadAndLink(self) -> None:
        digest = await self.upload("a", b"hello world")
        self.assertEqual((await self.blobs("a").stat(digest)).size, 11)
        await self.assertFailure(self.blobs("b").stat(digest), BlobUnknown)
        self.assertEqual(await self.content("a", digest), b"hello world")
        await self.blobs("a").delete(digest)
        await self.assertFailure(self.blobs("a").delete(digest), BlobUnknown)
        await self.assertFailure(self.blobs("a").stat(digest), BlobUnknown)
        # The content stays for other repositories until garbage collection.
        self.assertEqual((await self.driver.stat(layout.blobData(digest))).size, 11)

    async def test_sizeReusedContentChecked(self) -> None:
        """
        A blob's size is reused by its reads, its repository's link is not:
        a delete in any process (here: straight in storage) is a 404 at
        once, as is a collection of this process that removed its data
        (links left); data removed elsewhere with the link left is seen
        once the reused size expires.
        """
        digest = await self.upload("a", b"hello world")
        self.assertEqual((await self.blobs("a").stat(digest)).size, 11)
        await self.driver.delete(layout.layerLink("a", digest))
        await self.assertFailure(self.blobs("a").stat(digest), BlobUnknown)
        await self.driver.putContent(layout.layerLink("a", digest), str(digest).encode())
        self.assertEqual((await self.blobs("a").stat(digest)).size, 11)

        # Another process removed the data and died before the links.
        await self.driver.delete(layout.blobData(digest))
        self.assertEqual((await self.blobs("a").stat(digest)).size, 11)
        self.clock.advance(SIZE_TTL + 1)
        await self.assertFailure(self.blobs("a").stat(digest), BlobUnknown)

        # This process's collection forgets the size with the data.
        digest = await self.upload("c", b"collected")
        self.assertEqual((await self.blobs("c").stat(digest)).size, 9)
        await self.namespace.repository("c").blobs().delete(digest)
        await self.driver.putContent(layout.layerLink("c", digest), str(digest).encode())
        report = await self.namespace.collectGarbage()
        self.assertIn(digest, [blob for blob, size in report.blobs])
        await self.driver.putContent(layout.layerLink("c", digest), str(digest).encode())
        await self.assertFailure(self.blobs("c").stat(digest), BlobUnknown)

    async def test_sha512AndEvictedHashes(self) -> None:
        """
        With no running hash kept, each chunk's hash is recomputed from
        storage and the result is still right.
        """
        self.patch(UploadArea, "maxHashStates", 0)
        self.namespace = StorageNamespace(self.driver, self.clock)
        digest = await self.upload("a", b"x" * 100000)
        self.assertEqual((await self.blobs("a").stat(digest)).size, 100000)
        digest = await self.upload("a", b"y" * 1000, "sha512")
        self.assertEqual(await self.content("a", digest), b"y" * 1000)

    async def test_outOfOrderChunk(self) -> None:
        upload = await self.blobs("a").create()
        error = await self.assertFailure(upload.append(3), RangeMismatch)
        self.assertEqual(error.size, 0)
        self.assertEqual((await self.blobs("a").resume(upload.id)).size, 0)
        # The refused chunk held no lock: the next one goes in.
        self.assertEqual(await write(await upload.append(0), b"abc"), 3)

    async def test_abortedChunk(self) -> None:
        """
        A chunk that is aborted leaves the upload as it was.
        """
        upload = await self.blobs("a").create()
        await write(await upload.append(), b"abc")
        writer = await upload.append()
        writer.registerProducer(_Source(), True)
        writer.write(b"def")
        writer.unregisterProducer()
        await writer.abort()
        self.assertEqual((await self.blobs("a").resume(upload.id)).size, 3)
        await upload.commit(digestOf(b"abc"))

    async def test_wrongDigestDiscards(self) -> None:
        upload = await self.blobs("a").create()
        await write(await upload.append(), b"abc")
        error = await self.assertFailure(upload.commit(digestOf(b"abd")), DigestInvalid)
        self.assertEqual(error.detail["actual"], str(digestOf(b"abc")))
        for digest in (digestOf(b"abc"), digestOf(b"abd")):
            await self.assertFailure(self.blobs("a").stat(digest), BlobUnknown)
        await self.assertFailure(self.blobs("a").resume(upload.id), BlobUploadUnknown)

    async def test_unknownAndBadIDs(self) -> None:
        for uploadID in ("nope", "..", "../x", "a/b", "x" * 65, ""):
            await self.assertFailure(self.blobs("a").resume(uploadID), BlobUploadUnknown)
        upload = await self.blobs("a").create()
        await upload.cancel()
        await self.assertFailure(upload.cancel(), BlobUploadUnknown)
        await self.assertFailure(upload.append(), BlobUploadUnknown)

    async def test_startTime(self) -> None:
        """
        An upload knows when it began, from its id alone.
        """
        self.clock.advance(1700000000.25)
        upload = await self.blobs("a").create()
        verifyObject(IBlobUpload, upload)
        self.assertEqual(upload.startedAt, 1700000000.25)
        self.assertEqual((await self.blobs("a").resume(upload.id)).startedAt, 1700000000.25)
        self.assertEqual(startedAt(newUploadID(12.5)), 12.5)
        self.assertIsNone(startedAt("not-a-uuid"))

    async def test_monolithicAndAdopt(self) -> None:
        """
        Storing content that is already there keeps one copy and drops the
        new upload.
        """
        digest = digestOf(b"same")
        self.assertEqual(await write(await self.blobs("a").put(digest), b"same"), 4)
        self.assertEqual(await write(await self.blobs("b").put(digest), b"same"), 4)
        self.assertEqual((await self.blobs("b").stat(digest)).size, 4)
        for name in ("a", "b"):
            try:
                left = await self.driver.list(layout.uploadsDirectory(name))
            except PathNotFoundError:
                left = []
            self.assertEqual(left, [])
        writer = await self.blobs("c").put(digestOf(b"other"))
        await self.assertFailure(Deferred.fromCoroutine(write(writer, b"same")), DigestInvalid)
        await self.assertFailure(self.blobs("c").stat(digest), BlobUnknown)

    async def test_mount(self) -> None:
        digest = await self.upload("a", b"mounted")
        self.assertIsNone(await self.blobs("b").mount(digest, "nothere"))
        self.assertIsNone(await self.blobs("b").mount(digest, "Not/A/Name"))
        descriptor = await self.blobs("b").mount(digest, "a")
        self.assertEqual(descriptor.size, 7)
        self.assertEqual(await self.content("b", digest), b"mounted")

    async def test_manifestsTagsReferrers(self) -> None:
        repository = self.namespace.repository("r/x")
        manifests, tags = repository.manifests(), repository.tags()
        config = await self.upload("r/x", b"{}")
        image = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                       "digest": str(config), "size": 2}, "layers": []}).encode()
        stored = await manifests.put(image, None)
        self.assertIsNone(stored.subject)
        digest = stored.digest
        await tags.tag("v1", digest)
        referrer = json.loads(image)
        referrer["subject"] = {"mediaType": OCI_MANIFEST, "digest": str(digest), "size": len(image)}
        referrer["artifactType"] = "application/x"
        content = json.dumps(referrer).encode()
        stored = await manifests.put(content, OCI_MANIFEST, Digest.of(content))
        self.assertEqual(stored.subject, digest)
        rDigest = stored.digest
        self.assertEqual(await tags.list(None, None), Page(["v1"], False))
        self.assertEqual(await tags.get("v1"), digest)
        self.assertEqual(await tags.lookup(digest), ["v1"])
        self.assertEqual((await manifests.get(digest)).content, image)
        self.assertTrue(await manifests.exists(rDigest))
        self.assertEqual([d["digest"] for d in await repository.referrers(digest)], [str(rDigest)])
        self.assertEqual(await self.namespace.catalog(None, None), Page(["r/x"], False))
        await self.assertFailure(self.namespace.repository("r").tags().list(None, None), NameUnknown)
        await manifests.delete(rDigest)
        self.assertEqual(await repository.referrers(digest), [])
        await manifests.delete(digest)
        self.assertEqual(await tags.list(None, None), Page([], False))
        self.assertFalse(await manifests.exists(digest))

    async def test_linksWrittenAgainWhenGone(self) -> None:
        """
        A manifest PUT again (a new tag of it) writes no link that is
        there, but a revision another process deleted meanwhile (straight
        in storage here, the reference cache still naming it) is written
        again, and the manifest is served by digest and by its new tag.
        """
        repository = self.namespace.repository("r")
        config = await self.upload("r", b"{}")
        image = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                       "digest": str(config), "size": 2}, "layers": []}).encode()
        digest = (await repository.manifests().put(image, None)).digest
        await repository.tags().tag("v1", digest)
        link = layout.revisionLink("r", digest)
        written = (await self.driver.stat(link)).modified
        await repository.manifests().put(image, None)
        self.assertEqual((await self.driver.stat(link)).modified, written)

        await self.driver.delete(layout.revisionDirectory("r", digest))
        await repository.manifests().put(image, None)
        await repository.tags().tag("v2", digest)
        self.assertEqual(await self.driver.getContent(link), str(digest).encode())
        self.clock.advance(3600)
        self.assertEqual((await repository.manifests().get(await repository.tags().get("v2"))).content, image)

    async def test_indexed(self) -> None:
        """
        A tag's index names every manifest the tag was made to name, after
        the tag moves on too, until the tag is removed.
        """
        tags = self.namespace.repository("r").tags()
        config = await self.upload("r", b"{}")
        image = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                       "digest": str(config), "size": 2}, "layers": []}).encode()
        other = json.dumps({**json.loads(image), "annotations": {"a": "b"}}).encode()
        first = (await self.namespace.repository("r").manifests().put(image, None)).digest
        second = (await self.namespace.repository("r").manifests().put(other, None)).digest
        self.assertFalse(await tags.indexed("t", first))
        await tags.tag("t", first)
        await tags.tag("t", second)
        self.assertEqual((await tags.indexed("t", first), await tags.indexed("t", second)), (True, True))
        self.assertFalse(await tags.indexed("u", first))
        self.assertFalse(await tags.indexed("../t", first))
        await tags.untag("t")
        self.assertFalse(await tags.indexed("t", first))

    async def test_pushTimes(self) -> None:
        """
        C{pushTimes} tells when each tag (or each of those asked for) was
        last pointed at a manifest (each tag once, however many manifests it
        named before), and fails
        for a repository without manifests as listing its tags does.
        """
        config = await self.upload("r", b"{}")
        image = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                       "digest": str(config), "size": 2}, "layers": []}).encode()
        other = json.dumps({**json.loads(image), "annotations": {"a": "b"}}).encode()
        tags = self.namespace.repository("r").tags()
        manifests = self.namespace.repository("r").manifests()
        first = (await manifests.put(image, None)).digest
        second = (await manifests.put(other, None)).digest
        self.assertEqual(await tags.pushTimes(), {})
        before = time.time()
        await tags.tag("v1", first)
        await tags.tag("v1", second)
        await tags.tag("latest", second)
        after = time.time()
        times = await tags.pushTimes()
        self.assertEqual(sorted(times), ["latest", "v1"])
        for moment in times.values():
            self.assertTrue(before <= moment <= after, (before, moment, after))
        self.assertEqual(await tags.pushTimes(["v1", "nothing", "../x"]), {"v1": times["v1"]})
        await tags.untag("v1")
        self.assertEqual(sorted(await tags.pushTimes()), ["latest"])
        await self.assertFailure(self.namespace.repository("nothing").tags().pushTimes(), NameUnknown)
        await self.assertFailure(self.namespace.repository("nothing").tags().pushTimes(["v1"]), NameUnknown)

    async def test_wrongManifestDigest(self) -> None:
        config = await self.upload("r", b"{}")
        image = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                       "digest": str(config), "size": 2}, "layers": []}).encode()
        manifests = self.namespace.repository("r").manifests()
        await self.assertFailure(manifests.put(image, None, digestOf(b"else")), DigestInvalid)
        self.assertFalse(await manifests.exists(Digest.of(image)))

    async def test_tagTTL(self) -> None:
        """
        A resolved tag is reused for the TTL, by the clock passed in; a tag
        moved by another process over the same storage is seen after it.
        """
        namespace = StorageNamespace(self.driver, self.clock, tagTTL=1.0)
        other = StorageNamespace(self.driver, self.clock)
        first, second = digestOf(b"1"), digestOf(b"2")
        await other.repository("t").tags().tag("v", first)
        self.assertEqual(await namespace.repository("t").tags().get("v"), first)
        await other.repository("t").tags().tag("v", second)
        self.assertEqual(await namespace.repository("t").tags().get("v"), first)
        self.clock.advance(1.5)
        self.assertEqual(await namespace.repository("t").tags().get("v"), second)

    async def test_purgeUploads(self) -> None:
        upload = await self.blobs("p/q").create()
        self.assertEqual(await self.namespace.purgeUploads(0), [])
        self.assertEqual(
            await self.namespace.purgeUploads(time.time() + 60, dryRun=True), [f"p/q/{upload.id}"]
        )
        await self.blobs("p/q").resume(upload.id)
        self.assertEqual(await self.namespace.purgeUploads(time.time() + 60), [f"p/q/{upload.id}"])
        await self.assertFailure(self.blobs("p/q").resume(upload.id), BlobUploadUnknown)


class CatalogTests(TestCase):
    """
    The catalog pages through repositories in name order, whatever their
    nesting, and each page picks up exactly after C{last}.
    """

    async def test_pagesInNameOrder(self) -> None:
        driver = createDriver("inmemory", {}, reactor)
        namespace = StorageNamespace(driver, Clock())
        rng = random.Random(6)
        parts = ["a", "a-b", "a.b", "a_b", "ab", "b", "b0", "z"]
        names = set()
        for _ in range(120):
            names.add("/".join(rng.choice(parts) for _ in range(rng.randint(1, 3))))
        for name in names:
            await driver.putContent(layout.revisionLink(name, digestOf(name.encode())), b"x")
        # Directories on the way that hold no manifests are not repositories.
        await driver.putContent(layout.layerLink("zz/blobsonly", digestOf(b"x")), b"x")
        expected = sorted(names)
        self.assertEqual((await namespace.catalog(None, None)).items, expected)
        for size in (1, 7, 50):
            walked: list[str] = []
            last = None
            while True:
                page = await namespace.catalog(size, last)
                walked.extend(page.items)
                if not page.more:
                    break
                last = page.items[-1]
            self.assertEqual(walked, expected, size)
        for last in ("a", "a-", "a/", "a/a", "ab/z", "b0/zz", "zzz", expected[17]):
            page = await namespace.catalog(5, last)
            self.assertEqual(page.items, [n for n in expected if n > last][:5], last)
