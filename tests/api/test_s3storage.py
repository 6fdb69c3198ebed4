"""
The distribution conformance tests once more, with the registry's content
in S3 (SeaweedFS, which the tests start): the API behaves the same on an
object store as on a disk.  And a store that keeps throttling is answered
with 503 UNAVAILABLE, not a 500.
"""

from __future__ import annotations

from typing import Any

import treq
from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from twisted.web.server import Site

from tests.api import (
    test_conformance_discovery,
    test_conformance_management,
    test_conformance_pull,
    test_conformance_push,
)
from tests.api.helpers import assertError, deletingRegistry, header, pushBlob
from tests.storage.servers import SeaweedFS, server
from tests.storage.test_s3 import ThrottlingProxy
from tests.support import InProcessRegistry, startRegistry
from txregistry.storage import remote

MODULES = [
    test_conformance_discovery,
    test_conformance_management,
    test_conformance_pull,
    test_conformance_push,
]


def s3Storage(testCase: Any, redirect: bool = False, **overrides: Any) -> dict[str, Any]:
    """
    C{storage} for a fresh prefix of the SeaweedFS test bucket; without
    C{redirect} the registry serves blobs itself (through the driver's
    streamed reads), as the conformance tests expect of a HEAD.
    """
    return {
        "s3": server(SeaweedFS).parameters(testCase, **overrides),
        "redirect": {"disable": not redirect},
    }


class _OnS3:
    """
    Makes the conformance module's registries S3-backed for one test.
    """

    def setUp(self) -> None:
        async def deletingOnS3(testCase: Any, **document: Any) -> InProcessRegistry:
            document.setdefault("storage", s3Storage(testCase))
            return await deletingRegistry(testCase, **document)

        async def startOnS3(testCase: Any, document: dict[str, Any] | None = None,
                            driver: Any = None) -> InProcessRegistry:
            document = dict(document or {})
            document.setdefault("storage", s3Storage(testCase))
            return await startRegistry(testCase, document, driver)

        for module in MODULES:
            self.patch(module, "deletingRegistry", deletingOnS3)  # type: ignore[attr-defined]
            if hasattr(module, "startRegistry"):
                self.patch(module, "startRegistry", startOnS3)  # type: ignore[attr-defined]
        super().setUp()  # type: ignore[misc]


class DiscoveryOnS3Tests(_OnS3, test_conformance_discovery.DiscoveryTests):
    pass


class ManagementOnS3Tests(_OnS3, test_conformance_management.ManagementTests):
    pass


class PullOnS3Tests(_OnS3, test_conformance_pull.PullTests):
    pass


class PushOnS3Tests(_OnS3, test_conformance_push.PushTests):
    pass


class RedirectOnS3Tests(TestCase):
    async def test_redirectToPresignedURL(self) -> None:
        """
        With C{storage.redirect}, a blob GET is a 307 to a presigned S3 URL
        that gives the blob's bytes to a client without credentials.
        """
        registry = await startRegistry(self, {"storage": s3Storage(self, redirect=True)})
        digest = await pushBlob(self, registry, "r/x", b"content on s3")
        response = await registry.request("GET", f"/v2/r/x/blobs/{digest}", allow_redirects=False)
        self.assertEqual(response.code, 307)
        location = header(response, "location")
        assert location is not None
        self.assertTrue(location.startswith(server(SeaweedFS).endpoint), location)
        direct = await treq.get(location, persistent=False)
        self.assertEqual((direct.code, await direct.content()), (200, b"content on s3"))


class UnavailableTests(TestCase):
    async def test_throttledIs503(self) -> None:
        """
        When S3 keeps answering 503 SlowDown past the retries, a pull is
        answered 503 UNAVAILABLE in the error envelope, and a push leaves
        nothing behind.
        """
        self.patch(remote, "FIRST_DELAY", 0.001)
        proxy = ThrottlingProxy(server(SeaweedFS).endpoint, failures=10**9)
        port: Any = reactor.listenTCP(0, Site(proxy), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        registry = await startRegistry(
            self,
            {"storage": s3Storage(self, regionendpoint=f"http://127.0.0.1:{port.getHost().port}")},
        )
        digest = "sha256:" + "0" * 64
        response = await registry.request("GET", f"/v2/a/b/blobs/{digest}")
        await assertError(self, response, 503, "UNAVAILABLE")
        response = await registry.request("POST", "/v2/a/b/blobs/uploads/")
        await assertError(self, response, 503, "UNAVAILABLE")


class KilledInstanceTests(TestCase):
    """
    Two registries (twistd children) on one S3 prefix with one
    http.secret: one is killed in the middle of a chunk, its multipart
    upload half streamed, and the upload goes on through the other.
    """

    def instance(self, directory: str, parameters: dict[str, Any]) -> Any:
        import json
        import os

        import yaml

        from tests.support import RegistryProcess

        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "config.yml")
        with open(path, "w") as f:
            yaml.safe_dump({
                "http": {"secret": "one secret for both"},
                "log": {"accesslog": {"disabled": True}},
            }, f)
        # The storage section as REGISTRY_STORAGE (a YAML value): without
        # it the helper adds its filesystem default.
        storage = {"s3": parameters, "redirect": {"disable": True}}
        process = RegistryProcess(directory, config=path,
                                  env={"REGISTRY_STORAGE": json.dumps(storage)})
        self.addCleanup(process.stop)
        return process

    async def test_killedMidUploadResumesOnTheOther(self) -> None:
        import hashlib
        import os
        import socket
        import time

        from twisted.internet.threads import deferToThread

        from tests.storage.servers import BUCKET
        from txregistry.storage.testing import MiB

        seaweed = server(SeaweedFS)
        parameters = seaweed.parameters(self)
        prefix = parameters["rootdirectory"].lstrip("/")
        base = os.path.abspath(self.mktemp())
        first = self.instance(os.path.join(base, "a"), parameters)
        second = self.instance(os.path.join(base, "b"), parameters)
        data = os.urandom(27 * MiB)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()

        response = await treq.post(f"{first.url}/v2/k/r/blobs/uploads/", persistent=False)
        self.assertEqual(response.code, 202)
        location = header(response, "location")
        response = await treq.patch(location, data=data[:7 * MiB], persistent=False,
                                    headers={"Content-Range": [f"0-{7 * MiB - 1}"]})
        self.assertEqual(response.code, 202, await response.content())
        location = header(response, "location")
        path = location[len(first.url):]

        # The second chunk: 20 MiB announced, 12 MiB sent, then the
        # instance is killed while its parts are in the bucket's upload.
        def sendPart() -> socket.socket:
            s = socket.create_connection(("127.0.0.1", first.port))
            s.sendall(
                f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {20 * MiB}\r\n"
                f"Content-Range: {7 * MiB}-{27 * MiB - 1}\r\n\r\n".encode()
            )
            s.sendall(data[7 * MiB:19 * MiB])
            return s

        connection = await deferToThread(sendPart)
        self.addCleanup(connection.close)
        client = seaweed.client()

        def parts() -> int:
            uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])
            return sum(
                len(client.list_parts(Bucket=BUCKET, Key=u["Key"], UploadId=u["UploadId"])
                    .get("Parts", []))
                for u in uploads
            )

        deadline = time.monotonic() + 30
        while await deferToThread(parts) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertGreaterEqual(await deferToThread(parts), 3)  # 1 committed, 2 streamed
        first.kill()
        first.process.wait(10)

        restarted = self.instance(os.path.join(base, "a2"), parameters)
        status = await treq.get(second.url + path, persistent=False)
        self.assertEqual((status.code, header(status, "range")), (204, f"0-{7 * MiB - 1}"))
        response = await treq.patch(second.url + path, data=data[7 * MiB:], persistent=False,
                                    headers={"Content-Range": [f"{7 * MiB}-{27 * MiB - 1}"]})
        self.assertEqual(response.code, 202, await response.content())
        self.assertEqual(header(response, "range"), f"0-{27 * MiB - 1}")
        path = header(response, "location")[len(second.url):]
        response = await treq.put(f"{restarted.url}{path}&digest={digest}", persistent=False)
        self.assertEqual(response.code, 201, await response.content())
        self.assertEqual(header(response, "docker-content-digest"), digest)
        pulled = await treq.get(f"{second.url}/v2/k/r/blobs/{digest}", persistent=False)
        self.assertEqual(pulled.code, 200)
        self.assertEqual(hashlib.sha256(await pulled.content()).hexdigest(), digest.split(":")[1])
