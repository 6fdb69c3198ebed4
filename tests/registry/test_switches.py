"""
The read-only and delete switches as layers around the storage-backed
namespace: what they refuse never reaches storage, and everything else
passes through.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from tests.registry.test_store import digestOf, write
from txregistry.errors import Unsupported
from txregistry.interfaces import IBlobStore, IBlobUpload, IManifestService, INamespace, ITagService
from txregistry.registry.namespace import StorageNamespace
from txregistry.registry.switches import deletesDisabled, readOnly
from txregistry.storage.factories import createDriver


class SwitchTests(TestCase):
    async def setUp(self) -> None:
        self.driver = createDriver("inmemory", {}, reactor)
        self.inner = StorageNamespace(self.driver, Clock())
        self.digest = digestOf(b"blob")
        await write(await self.inner.repository("r").blobs().put(self.digest), b"blob")
        self.upload = await self.inner.repository("r").blobs().create()

    async def test_readOnly(self) -> None:
        namespace = readOnly(self.inner)
        verifyObject(INamespace, namespace)
        repository = namespace.repository("r")
        blobs = repository.blobs()
        for service, interface in ((blobs, IBlobStore), (repository.manifests(), IManifestService),
                                   (repository.tags(), ITagService)):
            verifyObject(interface, service)
        # Reads pass through.
        self.assertEqual((await blobs.stat(self.digest)).size, 4)
        upload = await blobs.resume(self.upload.id)
        verifyObject(IBlobUpload, upload)
        self.assertEqual((upload.id, upload.size), (self.upload.id, 0))
        # Writes do not.
        for refused in (
            blobs.create(), blobs.put(self.digest), blobs.mount(self.digest, "r"),
            blobs.delete(self.digest), repository.manifests().put(b"{}", None),
            repository.manifests().delete(self.digest), repository.tags().tag("t", self.digest),
            repository.tags().untag("t"), upload.append(), upload.commit(self.digest),
            upload.cancel(), namespace.purgeUploads(0),
        ):
            error = await self.assertFailure(refused, Unsupported)
            self.assertEqual(error.message, "the registry is in read-only mode")
        self.assertEqual((await self.inner.repository("r").blobs().stat(self.digest)).size, 4)

    async def test_deletesDisabled(self) -> None:
        namespace = deletesDisabled(self.inner)
        repository = namespace.repository("r")
        for refused in (
            repository.blobs().delete(self.digest), repository.manifests().delete(self.digest),
            repository.tags().untag("t"),
        ):
            error = await self.assertFailure(refused, Unsupported)
            self.assertIn("storage.delete.enabled", error.message)
        # Writes that delete nothing pass.
        await repository.tags().tag("t", self.digest)
        self.assertEqual(await repository.tags().get("t"), self.digest)
        upload = await repository.blobs().resume(self.upload.id)
        await upload.cancel()

    async def test_layered(self) -> None:
        """
        Layers stack: the outermost refusal wins, the inner one still holds.
        """
        namespace = readOnly(deletesDisabled(self.inner))
        error = await self.assertFailure(namespace.repository("r").blobs().delete(self.digest), Unsupported)
        self.assertEqual(error.message, "the registry is in read-only mode")
        self.assertEqual((await namespace.repository("r").blobs().stat(self.digest)).size, 4)
