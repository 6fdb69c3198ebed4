"""
L{txregistry.client.registry}: the service interfaces over HTTP, against
txregistry itself, and the errors it raises.
"""

from __future__ import annotations

import os

from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from tests.api.helpers import deletingRegistry, sha256
from tests.client.helpers import pushLayeredImage
from tests.support import inProcess
from txregistry import errors as model
from txregistry.client.registry import Registry
from txregistry.interfaces import IBlobStore, IManifestService, INamespace, IRepository, ITagService
from txregistry.registry.digest import Digest


class _Collect:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def registerProducer(self, producer, streaming) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.chunks.append(data)


class RegistryTests(TestCase):
    async def setUp(self) -> None:
        self.server = await deletingRegistry(self)
        self.registry = Registry(self.server.url.split("//")[1])
        self.addCleanup(self.registry.close)
        self.repository = self.registry.repository("team/app")

    def test_interfaces(self) -> None:
        self.assertTrue(verifyObject(INamespace, self.registry))
        self.assertTrue(verifyObject(IRepository, self.repository))
        self.assertTrue(verifyObject(IManifestService, self.repository.manifests()))
        self.assertTrue(verifyObject(ITagService, self.repository.tags()))
        self.assertTrue(verifyObject(IBlobStore, self.repository.blobs()))

    def test_nameInvalid(self) -> None:
        self.assertRaises(model.NameInvalid, self.registry.repository, "Bad/Name")

    async def test_chunkedResumableUpload(self) -> None:
        """
        An upload taken up again by its id goes on where the registry says
        it ends; a chunk that does not start there is L{RangeMismatch}.
        """
        content = os.urandom(300000)
        blobs = self.repository.blobs()
        upload = await blobs.create()
        writer = await upload.append(0, 100000)
        writer.write(content[:100000])
        self.assertEqual(await writer.close(), 100000)
        resumed = await blobs.resume(upload.id)
        self.assertEqual(resumed.size, 100000)
        wrong = await resumed.append(5, 10)
        wrong.write(b"0123456789")
        with self.assertRaises(model.RangeMismatch):
            await wrong.close()
        writer = await resumed.append()
        writer.write(content[100000:])
        self.assertEqual(await writer.close(), len(content))
        digest = Digest.parse(sha256(content))
        await resumed.commit(digest)
        self.assertEqual((await blobs.stat(digest)).size, len(content))

    async def test_cancel(self) -> None:
        blobs = self.repository.blobs()
        upload = await blobs.create()
        await upload.cancel()
        with self.assertRaises(model.BlobUploadUnknown):
            await blobs.resume(upload.id)

    async def test_blobWrittenWholeChecked(self) -> None:
        """
        A whole blob whose content is not its digest is refused, and not
        stored.
        """
        digest = Digest.parse(sha256(b"expected"))
        writer = await self.repository.blobs().put(digest, 5)
        writer.write(b"wrong")
        with self.assertRaises(model.DigestInvalid):
            await writer.close()
        self.assertFalse(await self.repository.blobs().exists(digest))

    async def test_rangedRead(self) -> None:
        image = await pushLayeredImage(self, self.server, "team/app", "v1")
        digest, content = max(image["blobs"].items(), key=lambda item: len(item[1]))
        reader = await self.repository.blobs().reader(Digest.parse(digest), 10, 1000)
        collected = _Collect()
        await reader.startProducing(collected)
        self.assertEqual(b"".join(collected.chunks), content[10:1010])

    @inProcess
    async def test_readIsOneRequest(self) -> None:
        """
        Reading a whole blob is one C{GET}, its length taken from the
        answer (no C{HEAD} first or after), its content verified: large
        enough to be hashed beside the reactor.
        """
        registry = await deletingRegistry(self, log={"accesslog": {"disabled": False}})
        client = Registry(registry.url.split("//")[1])
        self.addCleanup(client.close)
        image = await pushLayeredImage(self, registry, "team/app", "v1", (3 * 1024 * 1024 + 5,))
        digest, content = max(image["blobs"].items(), key=lambda item: len(item[1]))
        requests: list[str] = []

        def observe(event: dict) -> None:
            if "protocol" in event and "status" in event:
                requests.append(f"{event['method']} {event['path']}")

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        reader = await client.repository("team/app").blobs().reader(Digest.parse(digest))
        collected = _Collect()
        await reader.startProducing(collected)
        self.assertEqual(b"".join(collected.chunks), content)
        self.assertEqual(requests, [f"GET /v2/team/app/blobs/{digest}"])

    async def test_readChecked(self) -> None:
        """
        A blob whose stored content is not its digest fails its read with
        L{DigestInvalid} naming the digest it has, whether hashed as it
        arrives (small) or beside the reactor (large).
        """
        root = os.path.abspath(self.mktemp())
        registry = await deletingRegistry(self, storage={"filesystem": {"rootdirectory": root}})
        client = Registry(registry.url.split("//")[1])
        self.addCleanup(client.close)
        image = await pushLayeredImage(self, registry, "team/app", "v1", (3 * 1024 * 1024 + 5,))
        for digest, content in image["blobs"].items():
            algorithm, encoded = digest.split(":")
            damaged = bytes([content[0] ^ 1]) + content[1:]
            with open(os.path.join(root, "docker/registry/v2/blobs", algorithm, encoded[:2], encoded,
                                   "data"), "wb") as f:
                f.write(damaged)
            reader = await client.repository("team/app").blobs().reader(Digest.parse(digest))
            with self.assertRaises(model.DigestInvalid) as caught:
                await reader.startProducing(_Collect())
            self.assertIn(sha256(damaged), str(caught.exception))

    async def test_manifestsAndTags(self) -> None:
        image = await pushLayeredImage(self, self.server, "team/app", "v1")
        digest = Digest.parse(image["digest"])
        tags = self.repository.tags()
        self.assertEqual(await tags.get("v1"), digest)
        await tags.tag("v2", digest)
        self.assertEqual(await tags.lookup(digest), ["v1", "v2"])
        page = await tags.list(1, None)
        self.assertEqual((page.items, page.more), (["v1"], True))
        await tags.untag("v2")
        self.assertEqual((await tags.list(None, None)).items, ["v1"])
        manifests = self.repository.manifests()
        self.assertTrue(await manifests.exists(digest))
        self.assertEqual((await manifests.get(digest)).content, image["manifest"])
        await manifests.delete(digest)
        self.assertFalse(await manifests.exists(digest))
        with self.assertRaises(model.ManifestUnknown):
            await manifests.get(digest)
        with self.assertRaises(model.ManifestUnknown):
            await tags.get("v1")

    async def test_manifestBlobUnknown(self) -> None:
        from tests.api.helpers import config, imageManifest

        content = imageManifest(config())
        with self.assertRaises(model.ManifestBlobUnknown) as raised:
            await self.repository.manifests().put(content, None)
        self.assertEqual(len(raised.exception.digests), 2)

    async def test_mountFallback(self) -> None:
        """
        A mount from a repository without the blob is L{None} (the 202's
        upload is cancelled), and one from a repository with it is a blob.
        """
        image = await pushLayeredImage(self, self.server, "team/app", "v1")
        digest = Digest.parse(next(iter(image["blobs"])))
        other = self.registry.repository("other/app").blobs()
        self.assertIsNone(await other.mount(digest, "nobody/here"))
        self.assertFalse(await other.exists(digest))
        mounted = await other.mount(digest, "team/app")
        self.assertEqual(mounted.digest, digest)
        self.assertTrue(await other.exists(digest))

    async def test_serverSideWorkUnsupported(self) -> None:
        """
        What the distribution API has no request for is L{Unsupported}.
        """
        with self.assertRaises(model.Unsupported):
            await self.registry.purgeUploads(0)
        with self.assertRaises(model.Unsupported):
            await self.registry.collectGarbage()
        with self.assertRaises(model.Unsupported):
            await self.repository.usage()
        with self.assertRaises(model.Unsupported):
            await self.repository.tags().pushTimes()

    async def test_blobOfUnknownLength(self) -> None:
        """
        A whole blob whose length is not known is sent chunked, and stored.
        """
        content = os.urandom(70000)
        digest = Digest.parse(sha256(content))
        writer = await self.repository.blobs().put(digest)
        writer.write(content[:1000])
        writer.write(content[1000:])
        self.assertEqual(await writer.close(), len(content))
        self.assertEqual((await self.repository.blobs().stat(digest)).size, len(content))
