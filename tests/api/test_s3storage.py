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
from txregistry.storage.s3 import client

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
        self.patch(client, "FIRST_DELAY", 0.001)
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
