"""
C{storage.redirect}: blob reads go to a driver's direct URL when it has one.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import TestCase

from tests.api.helpers import header, pushBlob
from tests.support import startRegistry
from txregistry.storage.inmemory import InMemoryDriver


class _SigningDriver(InMemoryDriver):
    """
    An in-memory driver that, like an object store, signs download URLs.
    """

    def urlFor(self, path: str, method: str = "GET", expiry: float = 1200.0) -> Deferred[str]:
        return succeed(f"https://objects.example{path}?method={method}&signature=abc")


class RedirectTests(TestCase):
    async def test_redirectsToDriverURL(self) -> None:
        registry = await startRegistry(self, driver=_SigningDriver())
        digest = await pushBlob(self, registry, "r/x", b"content")
        response = await registry.request("GET", f"/v2/r/x/blobs/{digest}", allow_redirects=False)
        self.assertEqual(response.code, 307)
        location = header(response, "location")
        self.assertTrue(location.startswith("https://objects.example/docker/registry/v2/blobs/sha256/"))
        self.assertIn("method=GET", location)
        self.assertEqual(header(response, "docker-content-digest"), digest)

    async def test_unknownBlobIsStill404(self) -> None:
        registry = await startRegistry(self, driver=_SigningDriver())
        response = await registry.request(
            "GET", "/v2/r/x/blobs/sha256:" + "0" * 64, allow_redirects=False
        )
        self.assertEqual(response.code, 404)

    async def test_disabled(self) -> None:
        """
        With storage.redirect.disable the registry serves the bytes itself.
        """
        registry = await startRegistry(
            self,
            {"storage": {"inmemory": {}, "redirect": {"disable": True}}},
            driver=_SigningDriver(),
        )
        digest = await pushBlob(self, registry, "r/x", b"content")
        response = await registry.request("GET", f"/v2/r/x/blobs/{digest}", allow_redirects=False)
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.content(), b"content")
