"""
Garbage collection (L{txregistry.registry.collection}, the
C{txregistry garbage-collect} command) on a realistic registry: images
sharing layers across repositories, a multi-arch index, a signature and
an SBOM as referrers, untagged manifests, a mounted blob.
"""

from __future__ import annotations

import io
import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    config,
    descriptor,
    imageManifest,
    index,
    pushBlob,
    pushManifest,
    sha256,
)
from tests.support import startRegistry
from txregistry.collect import garbageCollect
from txregistry.registry import layout
from txregistry.registry.digest import Digest
from txregistry.registry.namespace import StorageNamespace
from txregistry.storage.factories import createDriver

SHARED = b"a layer two repositories share" * 10
KEPT_ONLY_BY_UNTAGGED = b"a layer only an untagged manifest names"
ORPHAN = b"a blob pushed and never named"


class Images:
    """
    Pushes the realistic set through the API, and knows what it pushed.
    """

    def __init__(self, test: TestCase, registry: Any) -> None:
        self.test = test
        self.registry = registry
        self.kept: dict[str, bytes] = {}   # "repo@digest" -> manifest content
        self.blobs: dict[str, set[str]] = {}  # repo -> blob digests a kept manifest names

    async def image(self, name: str, tag: str | None, layers: list[bytes], **extra: Any) -> bytes:
        configContent = config()
        await pushBlob(self.test, self.registry, name, configContent)
        for layer in layers:
            await pushBlob(self.test, self.registry, name, layer)
        manifest = imageManifest(configContent, layers, **extra)
        await pushManifest(self.test, self.registry, name, tag or sha256(manifest), manifest)
        return manifest

    def keep(self, name: str, manifest: bytes, blobs: list[bytes]) -> None:
        self.kept[f"{name}@{sha256(manifest)}"] = manifest
        self.blobs.setdefault(name, set()).update(sha256(b) for b in blobs)

    async def push(self) -> dict[str, Any]:
        """
        The set; returns what should go.
        """
        # Two repositories sharing a layer.
        a = await self.image("team/a", "v1", [SHARED, b"a's own layer"])
        b = await self.image("team/b", "v1", [SHARED])
        # An index of two platforms, tagged; its children untagged.
        children = []
        for arch in ("amd64", "arm64"):
            children.append(await self.image("team/multi", None, [f"{arch} layer".encode()]))
        multi = index([(OCI_MANIFEST, c) for c in children])
        await pushManifest(self.test, self.registry, "team/multi", "latest", multi, OCI_INDEX)
        # A signature and an SBOM of team/a:v1, untagged referrers.
        subject = descriptor(OCI_MANIFEST, a)
        signature = await self.image("team/a", None, [b"signature"], subject=subject,
                                     artifactType="application/vnd.dev.cosign.simplesigning.v1+json")
        sbom = await self.image("team/a", None, [b"sbom"], subject=subject,
                                artifactType="application/spdx+json")
        # An untagged image, and one whose tag moved away.
        untagged = await self.image("team/b", None, [KEPT_ONLY_BY_UNTAGGED])
        old = await self.image("team/b", "moving", [b"old layer"])
        new = await self.image("team/b", "moving", [b"new layer"])
        # A blob mounted into a third repository and named by its image.
        response = await self.registry.request(
            "POST", f"/v2/team/c/blobs/uploads/?mount={sha256(SHARED)}&from=team/a")
        self.test.assertEqual(response.code, 201)
        await response.content()
        c = await self.image("team/c", "v1", [SHARED])
        # A blob nobody names.
        await pushBlob(self.test, self.registry, "team/orphans", ORPHAN)
        return {"a": a, "b": b, "multi": multi, "children": children, "signature": signature,
                "sbom": sbom, "untagged": untagged, "old": old, "new": new, "c": c}


class CollectionTests(TestCase):
    async def setUp(self) -> None:
        self.root = os.path.abspath(self.mktemp())
        self.storage = {"filesystem": {"rootdirectory": self.root}, "delete": {"enabled": True}}
        self.registry = await startRegistry(self, {"storage": self.storage})
        self.images = Images(self, self.registry)
        self.pushed = await self.images.push()

    async def collect(self, deleteUntagged: bool, dryRun: bool = False) -> str:
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {self.root}\n")
        out, err = io.StringIO(), io.StringIO()
        status = await garbageCollect(reactor, path, {}, dryRun, deleteUntagged, False, out, err)
        self.assertEqual(status, 0, err.getvalue())
        return out.getvalue()

    def blobExists(self, content: bytes) -> bool:
        digest = Digest.parse(sha256(content))
        return os.path.exists(self.root + layout.blobData(digest))

    async def pullsBack(self, name: str, manifest: bytes, layers: list[bytes]) -> None:
        response = await self.registry.request(
            "GET", f"/v2/{name}/manifests/{sha256(manifest)}",
            headers={"Accept": [OCI_MANIFEST, OCI_INDEX]})
        self.assertEqual(await response.content(), manifest, name)
        for layer in layers:
            response = await self.registry.request("GET", f"/v2/{name}/blobs/{sha256(layer)}")
            self.assertEqual(await response.content(), layer, name)

    async def test_keepsEveryRevision(self) -> None:
        """
        Without C{--delete-untagged} every manifest revision keeps its
        blobs; only the blob nobody names goes, from storage and from the
        repository that linked it.
        """
        output = await self.collect(deleteUntagged=False)
        self.assertIn("removed 0 manifests and 1 blobs", output)
        self.assertIn(sha256(ORPHAN), output)
        self.assertFalse(self.blobExists(ORPHAN))
        response = await self.registry.request("HEAD", f"/v2/team/orphans/blobs/{sha256(ORPHAN)}")
        self.assertEqual(response.code, 404)
        for content in (SHARED, KEPT_ONLY_BY_UNTAGGED, b"old layer", b"signature", b"arm64 layer"):
            self.assertTrue(self.blobExists(content), content)
        await self.pullsBack("team/b", self.pushed["untagged"], [KEPT_ONLY_BY_UNTAGGED])

    async def test_deleteUntagged(self) -> None:
        """
        With C{--delete-untagged}: the untagged image and the one its tag
        moved from go with their own layers; an index's untagged children,
        the referrers of a kept image, and layers shared with kept images
        stay, and every kept image pulls back whole.
        """
        output = await self.collect(deleteUntagged=True)
        self.assertIn("removed 2 manifests", output)
        self.assertIn(f"team/b: deleted manifest {sha256(self.pushed['untagged'])}", output)
        self.assertIn(f"team/b: deleted manifest {sha256(self.pushed['old'])}", output)
        for gone in (KEPT_ONLY_BY_UNTAGGED, b"old layer", ORPHAN, self.pushed["old"]):
            self.assertFalse(self.blobExists(gone), gone)
        response = await self.registry.request(
            "GET", f"/v2/team/b/manifests/{sha256(self.pushed['untagged'])}",
            headers={"Accept": [OCI_MANIFEST]})
        self.assertEqual(response.code, 404)
        await response.content()
        await self.pullsBack("team/a", self.pushed["a"], [SHARED, b"a's own layer"])
        await self.pullsBack("team/a", self.pushed["signature"], [b"signature"])
        await self.pullsBack("team/a", self.pushed["sbom"], [b"sbom"])
        await self.pullsBack("team/b", self.pushed["b"], [SHARED])
        await self.pullsBack("team/b", self.pushed["new"], [b"new layer"])
        await self.pullsBack("team/c", self.pushed["c"], [SHARED])
        await self.pullsBack("team/multi", self.pushed["multi"], [])
        for child, arch in zip(self.pushed["children"], ("amd64", "arm64"), strict=True):
            await self.pullsBack("team/multi", child, [f"{arch} layer".encode()])
        response = await self.registry.request("GET", f"/v2/team/a/referrers/{sha256(self.pushed['a'])}")
        self.assertEqual(len((await response.json())["manifests"]), 2)

    async def test_dryRunIsWhatARunDoes(self) -> None:
        """
        A dry run prints exactly what the real run then removes, and
        removes nothing.
        """
        dry = await self.collect(deleteUntagged=True, dryRun=True)
        self.assertTrue(self.blobExists(KEPT_ONLY_BY_UNTAGGED))
        real = await self.collect(deleteUntagged=True)
        self.assertEqual(dry.replace("would delete", "deleted").replace("would remove", "removed"),
                         real)
        again = await self.collect(deleteUntagged=True)
        self.assertEqual(again, "removed 0 manifests and 0 blobs (0 bytes)\n")


class OnlineProtocolTests(TestCase):
    """
    The online protocol's two sides, each at the moment the race puts it.
    """

    async def setUp(self) -> None:
        self.driver = createDriver("inmemory", {}, reactor)
        self.addCleanup(self.driver.close)
        self.namespace = StorageNamespace(self.driver, reactor, collectionGrace=3600)

    async def test_freshBlobsAreSpared(self) -> None:
        """
        A blob pushed within the grace window is never collected, named
        or not.
        """
        from tests.registry.test_store import digestOf, write

        digest = digestOf(b"fresh")
        await write(await self.namespace.repository("r").blobs().put(digest), b"fresh")
        report = await self.namespace.collectGarbage(online=True)
        self.assertEqual(report.blobs, [])
        self.assertEqual((await self.namespace.repository("r").blobs().stat(digest)).size, 5)

    async def test_condemnedBlobFailsThePut(self) -> None:
        """
        A manifest PUT that finds a blob it names condemned answers
        C{MANIFEST_BLOB_UNKNOWN} and leaves no revision behind.
        """
        from tests.registry.test_store import digestOf, write
        from txregistry.errors import ManifestBlobUnknown

        blobs = self.namespace.repository("r").blobs()
        configContent, layer = config(), b"layer"
        for content in (configContent, layer):
            await write(await blobs.put(digestOf(content)), content)
        await self.driver.putContent(layout.blobCondemned(digestOf(layer)), b"")
        manifest = imageManifest(configContent, [layer])
        manifests = self.namespace.repository("r").manifests()
        failure = await self.assertFailure(manifests.put(manifest, OCI_MANIFEST), ManifestBlobUnknown)
        self.assertIn(str(digestOf(layer)), str(failure.detail))
        self.assertFalse(await manifests.exists(digestOf(manifest)))

    async def test_touchedBlobIsSpared(self) -> None:
        """
        Of two blobs past the grace window that no manifest names, the one
        a mount touched after the collector's inventory is spared when the
        collector re-reads its lease; the other is collected.
        """
        import time

        from tests.registry.test_store import digestOf, write
        from txregistry.interfaces import CollectionReport

        root = os.path.abspath(self.mktemp())
        driver = createDriver("filesystem", {"rootdirectory": root}, reactor)
        self.addCleanup(driver.close)
        namespace = StorageNamespace(driver, reactor, collectionGrace=3600)
        old = time.time() - 7200
        digests = [digestOf(b"mounted"), digestOf(b"forgotten")]
        for digest, content in zip(digests, (b"mounted", b"forgotten"), strict=True):
            await write(await namespace.repository("r").blobs().put(digest), content)
            os.utime(root + layout.blobData(digest), (old, old))
            if os.path.exists(root + layout.blobLease(digest)):
                os.remove(root + layout.blobLease(digest))
        collector = namespace.collector
        found = await collector.inventory()
        await namespace.repository("s").blobs().mount(digests[0], "r")
        report = CollectionReport(dryRun=False)
        since = await collector.storageTime() - 3600
        await collector.sweep(found, set(), report, grace=3600, since=since)
        self.assertEqual(report.spared, [digests[0]])
        self.assertEqual(report.blobs, [(digests[1], 9)])
        self.assertEqual((await namespace.repository("s").blobs().stat(digests[0])).size, 7)
        self.assertFalse(os.path.exists(root + layout.blobData(digests[1])))
        self.assertFalse(os.path.exists(root + layout.blobLease(digests[1])))


class OnlineRaceTests(TestCase):
    """
    Four pushers and a collector with a short grace window, for a minute
    (C{TXREGISTRY_GC_RACE_SECONDS} to change it): the pushers' manifests
    name old blobs nobody else names, exactly what the collector is
    removing meanwhile.  Every manifest that was stored pulls back
    complete afterwards.
    """

    timeout = 300

    async def test_pushesDuringCollections(self) -> None:
        import random
        import time

        from tests.registry.test_store import digestOf, write
        from txregistry.errors import ManifestBlobUnknown

        seconds = float(os.environ.get("TXREGISTRY_GC_RACE_SECONDS", "60"))
        root = os.path.abspath(self.mktemp())
        driver = createDriver("filesystem", {"rootdirectory": root}, reactor)
        self.addCleanup(driver.close)
        namespace = StorageNamespace(driver, reactor, collectionGrace=2.0)
        repositories = [f"pusher/{i}" for i in range(4)]
        old = time.time() - 3600
        pool: list[bytes] = []
        for i in range(400):
            content = f"old blob {i}".encode()
            name = repositories[i % 4]
            await write(await namespace.repository(name).blobs().put(digestOf(content)), content)
            os.utime(root + layout.blobData(digestOf(content)), (old, old))
            pool.append(content)
        leases = [p for p in (root + layout.blobLease(digestOf(c)) for c in pool) if os.path.exists(p)]
        for lease in leases:
            os.utime(lease, (old, old))
        deadline = time.monotonic() + seconds
        stored: list[tuple[str, bytes, list[bytes]]] = []
        refused = [0]
        collected: list[int] = []

        async def pusher(index: int) -> None:
            name = repositories[index]
            mine = [c for i, c in enumerate(pool) if i % 4 == index]
            random.shuffle(mine)
            count = 0
            while time.monotonic() < deadline and mine:
                count += 1
                fresh = f"fresh {index} {count}".encode()
                configContent = config()
                blobs = namespace.repository(name).blobs()
                for content in (fresh, configContent):
                    await write(await blobs.put(digestOf(content)), content)
                layers = [mine.pop(), fresh]
                manifest = imageManifest(configContent, layers)
                try:
                    await namespace.repository(name).manifests().put(manifest, OCI_MANIFEST)
                except ManifestBlobUnknown:
                    refused[0] += 1
                    continue
                stored.append((name, manifest, [configContent, *layers]))

        async def collector() -> None:
            while time.monotonic() < deadline:
                report = await namespace.collectGarbage(online=True)
                collected.append(len(report.blobs))

        from twisted.internet.defer import gatherResults

        await gatherResults([Deferred.fromCoroutine(pusher(i)) for i in range(4)]
                            + [Deferred.fromCoroutine(collector())], consumeErrors=True)
        self.assertTrue(stored, "no push succeeded")
        self.assertTrue(sum(collected), "the collector removed nothing: no race was run")
        for name, manifest, contents in stored:
            got = await namespace.repository(name).manifests().get(digestOf(manifest))
            self.assertEqual(got.content, manifest)
            for content in contents:
                self.assertTrue(os.path.exists(root + layout.blobData(digestOf(content))),
                                (name, content))
                descriptor = await namespace.repository(name).blobs().stat(digestOf(content))
                self.assertEqual(descriptor.size, len(content))


class FailedWalkTests(TestCase):
    async def test_failedWalkFailsTheCollection(self) -> None:
        """
        A walk that fails although the registry's directories are there
        fails the collection: taken for an empty registry, it would
        collect every blob.
        """
        from tests.api.helpers import LAYER
        from txregistry.storage.errors import PathNotFoundError

        driver = createDriver("inmemory", {}, reactor)
        self.addCleanup(driver.close)
        namespace = StorageNamespace(driver, reactor)
        from tests.registry.test_store import digestOf, write

        await write(await namespace.repository("r").blobs().put(digestOf(LAYER)), LAYER)
        walk = driver.walk

        def failing(path: str) -> Any:
            if path == layout.REPOSITORIES:
                from twisted.internet.defer import fail

                return fail(PathNotFoundError(path + "/vanished"))
            return walk(path)

        self.patch(driver, "walk", failing)
        await self.assertFailure(namespace.collectGarbage(), PathNotFoundError)
        self.assertEqual((await namespace.repository("r").blobs().stat(digestOf(LAYER))).size,
                         len(LAYER))
