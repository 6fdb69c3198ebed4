"""
L{txregistry.client.copy} between every pair of transports, through
txregistry itself.
"""

from __future__ import annotations

import json
import os

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.protocols import portforward
from twisted.trial.unittest import TestCase

from tests.client.helpers import filesystemRegistry, pushLayeredImage, pushTwoPlatformIndex
from tests.support import startRegistry
from txregistry import errors as model
from txregistry.client.connect import Connector
from txregistry.client.copy import CopyOptions, copyImage
from txregistry.client.references import parseRegistry
from txregistry.client.registry import Registry
from txregistry.client.transports.docker import RegistryDestination, RegistrySource
from txregistry.registry.digest import Digest


class RegistryToRegistryTests(TestCase):
    async def setUp(self) -> None:
        self.source = await filesystemRegistry(self)
        self.target = await filesystemRegistry(self)
        self.clients: list[Registry] = []

    def client(self, registry) -> Registry:
        client = Registry(registry.url.split("//")[1])
        self.clients.append(client)
        self.addCleanup(client.close)
        return client

    def ref(self, registry, text: str):
        return parseRegistry(f"{registry.url.split('//')[1]}/{text}")

    async def raw(self, registry, path: str) -> tuple[int, bytes]:
        response = await registry.request("GET", path, headers={"Accept": ["*/*"]})
        return response.code, await response.content()

    async def test_copyKeepsBytes(self) -> None:
        """
        Every blob and the manifest arrive byte for byte, tagged as asked.
        """
        image = await pushLayeredImage(self, self.source, "team/app", "v1")
        source = RegistrySource(self.client(self.source), self.ref(self.source, "team/app:v1"))
        destination = RegistryDestination(self.client(self.target), self.ref(self.target, "copy/app:v2"))
        result = await copyImage(source, destination)
        self.assertEqual(str(result.digest), image["digest"])
        self.assertEqual(sorted(result.copied), sorted(image["blobs"]))
        code, body = await self.raw(self.target, "/v2/copy/app/manifests/v2")
        self.assertEqual((code, body), (200, image["manifest"]))
        for digest, content in image["blobs"].items():
            self.assertEqual(await self.raw(self.target, f"/v2/copy/app/blobs/{digest}"), (200, content))

    async def test_skipsWhatIsThere(self) -> None:
        image = await pushLayeredImage(self, self.source, "team/app", "v1")
        source = RegistrySource(self.client(self.source), self.ref(self.source, "team/app:v1"))
        destination = RegistryDestination(self.client(self.target), self.ref(self.target, "copy/app:v2"))
        await copyImage(source, destination)
        again = await copyImage(source, destination)
        self.assertEqual(again.copied, [])
        self.assertEqual(sorted(again.skipped), sorted(image["blobs"]))

    async def test_mountsInTheSameRegistry(self) -> None:
        image = await pushLayeredImage(self, self.source, "team/app", "v1")
        client = self.client(self.source)
        source = RegistrySource(client, self.ref(self.source, "team/app:v1"))
        destination = RegistryDestination(client, self.ref(self.source, "other/app:v1"))
        result = await copyImage(source, destination)
        self.assertEqual(sorted(result.mounted), sorted(image["blobs"]))
        self.assertEqual(result.bytes, 0)
        self.assertEqual((await self.raw(self.source, "/v2/other/app/manifests/v1"))[1], image["manifest"])

    async def test_indexAll(self) -> None:
        """
        C{all} copies the index and both images; the index keeps its digest.
        """
        index = await pushTwoPlatformIndex(self, self.source, "multi/app", "1")
        source = RegistrySource(self.client(self.source), self.ref(self.source, "multi/app:1"))
        destination = RegistryDestination(self.client(self.target), self.ref(self.target, "multi/app:1"))
        result = await copyImage(source, destination, CopyOptions(all=True, preserveDigests=True))
        self.assertEqual(str(result.digest), index["digest"])
        self.assertEqual((await self.raw(self.target, "/v2/multi/app/manifests/1"))[1], index["manifest"])
        for image in index["images"].values():
            code, _ = await self.raw(self.target, f"/v2/multi/app/manifests/{image['digest']}")
            self.assertEqual(code, 200)

    async def test_indexOnePlatform(self) -> None:
        index = await pushTwoPlatformIndex(self, self.source, "multi/app", "1")
        source = RegistrySource(self.client(self.source), self.ref(self.source, "multi/app:1"))
        destination = RegistryDestination(self.client(self.target), self.ref(self.target, "one/app:1"))
        result = await copyImage(source, destination, CopyOptions(platform="linux/arm64"))
        self.assertEqual(str(result.digest), index["images"]["arm64"]["digest"])
        with self.assertRaises(model.ManifestUnknown) as raised:
            await copyImage(source, destination, CopyOptions(platform="windows/amd64"))
        self.assertIn("linux/amd64, linux/arm64", str(raised.exception))

    async def test_unknownReference(self) -> None:
        source = RegistrySource(self.client(self.source), self.ref(self.source, "team/none:v1"))
        destination = RegistryDestination(self.client(self.target), self.ref(self.target, "copy/app:v2"))
        with self.assertRaises(model.ManifestUnknown) as raised:
            await copyImage(source, destination)
        self.assertIn("team/none:v1", str(raised.exception))
        self.assertEqual((await self.raw(self.target, "/v2/_catalog"))[1], b'{"repositories":[]}')


class _Collect:
    """
    A consumer keeping what it is written (for small test blobs).
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def registerProducer(self, producer, streaming) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.chunks.append(data)


async def readImage(source) -> tuple[Digest, dict[str, bytes]]:
    """
    The manifest digest and every blob (config and layers) of an image,
    read through C{source}.
    """
    manifest = await source.manifest(None)
    document = json.loads(manifest.content)
    blobs = {}
    for descriptor in [document["config"], *document["layers"]]:
        reader = await source.blob(descriptor)
        collected = _Collect()
        await reader.startProducing(collected)
        blobs[descriptor["digest"]] = b"".join(collected.chunks)
    return manifest.digest, blobs


TRANSPORTS = ("docker", "oci", "archive")


class TransportPairTests(TestCase):
    """
    An image copied from a registry to transport A, from A to B, and read
    back from B: the same blobs, and the same manifest digest unless an
    archive (which keeps no manifest) was on the way.
    """

    async def setUp(self) -> None:
        self.registry = await filesystemRegistry(self)
        self.host = self.registry.url.split("//")[1]
        self.connector = Connector()
        self.addCleanup(lambda: Deferred.fromCoroutine(self.connector.close()))
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        self.image = await pushLayeredImage(self, self.registry, "team/app", "v1")

    def place(self, transport: str, name: str) -> str:
        if transport == "docker":
            return f"docker://{self.host}/{name}:t"
        if transport == "oci":
            return f"oci:{os.path.join(self.work, name)}:t"
        return f"docker-archive:{os.path.join(self.work, name)}.tar:{self.host}/{name}:t"

    async def copy(self, source: str, destination: str, **options) -> None:
        opened = self.connector.source(source)
        await copyImage(opened, self.connector.destination(destination, opened), CopyOptions(**options))

    async def checkPair(self, a: str, b: str) -> None:
        origin = f"docker://{self.host}/team/app:v1"
        first = self.place(a, f"first-{a}-{b}")
        second = self.place(b, f"second-{a}-{b}")
        await self.copy(origin, first)
        await self.copy(first, second)
        digest, blobs = await readImage(self.connector.source(second))
        self.assertEqual(blobs, self.image["blobs"], (a, b))
        if "archive" not in (a, b):
            self.assertEqual(str(digest), self.image["digest"], (a, b))


def _pairTest(a: str, b: str):
    async def test(self: TransportPairTests) -> None:
        await self.checkPair(a, b)

    test.__doc__ = f"A registry's image through {a} then {b}."
    return test


for _a in TRANSPORTS:
    for _b in TRANSPORTS:
        setattr(TransportPairTests, f"test_{_a}_{_b}", _pairTest(_a, _b))


class _Dropping(portforward.ProxyClient):
    """
    The registry's side of the proxy: the first connection that carries
    more than L{limit} bytes back is cut there.
    """

    limit = 200_000

    def connectionMade(self) -> None:
        self.carried = 0
        super().connectionMade()

    def dataReceived(self, data: bytes) -> None:
        self.carried += len(data)
        factory = self.peer.factory
        if self.carried > self.limit and not factory.dropped:
            factory.dropped += 1
            self.peer.transport.abortConnection()
            self.transport.abortConnection()
            return
        super().dataReceived(data)


class _DroppingClientFactory(portforward.ProxyClientFactory):
    protocol = _Dropping


class _DroppingServer(portforward.ProxyServer):
    clientProtocolFactory = _DroppingClientFactory


class DroppedConnectionTests(TestCase):
    async def test_blobStreamedAgain(self) -> None:
        """
        A connection that drops in the middle of a blob's download makes the
        copy stream that blob again; the copy ends whole and verified.
        """
        source = await startRegistry(self)
        target = await startRegistry(self)
        image = await pushLayeredImage(self, source, "team/app", "v1")
        factory = portforward.ProxyFactory("127.0.0.1", int(source.url.rsplit(":", 1)[1]))
        factory.protocol = _DroppingServer
        factory.dropped = 0
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        connector = Connector()
        self.addCleanup(lambda: Deferred.fromCoroutine(connector.close()))
        opened = connector.source(f"docker://127.0.0.1:{port.getHost().port}/team/app:v1")
        result = await copyImage(opened, connector.destination(
            f"docker://{target.url.split('//')[1]}/team/app:v1", opened))
        self.assertEqual(factory.dropped, 1)
        self.assertEqual(str(result.digest), image["digest"])
        self.assertEqual(result.bytes, sum(len(b) for b in image["blobs"].values()))
        for digest, content in image["blobs"].items():
            response = await target.request("GET", f"/v2/team/app/blobs/{digest}")
            self.assertEqual(await response.content(), content)


class ArchiveOrderTests(TestCase):
    async def test_oneBlobAtATime(self) -> None:
        """
        An archive is written one member after the other even when more
        blobs at once are asked for.
        """
        registry = await filesystemRegistry(self)
        host = registry.url.split("//")[1]
        image = await pushLayeredImage(self, registry, "team/app", "v1", (300000, 200000, 100000))
        connector = Connector()
        self.addCleanup(lambda: Deferred.fromCoroutine(connector.close()))
        archive = os.path.join(os.path.abspath(self.mktemp()) + ".tar")
        source = connector.source(f"docker://{host}/team/app:v1")
        await copyImage(source, connector.destination(f"docker-archive:{archive}", source),
                        CopyOptions(concurrency=8))
        _, blobs = await readImage(connector.source(f"docker-archive:{archive}"))
        self.assertEqual(blobs, image["blobs"])
