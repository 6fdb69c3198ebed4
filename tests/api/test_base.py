"""
The /v2/ base route, the error envelope and the headers every response carries.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.support import startRegistry


class BaseTests(TestCase):
    async def test_base(self) -> None:
        """
        GET /v2/ is 200 with {} and the API version header.
        """
        registry = await startRegistry(self)
        response = await registry.request("GET", "/v2/")
        self.assertEqual(response.code, 200)
        self.assertEqual(
            response.headers.getRawHeaders("docker-distribution-api-version"),
            ["registry/2.0"],
        )
        self.assertEqual(await response.json(), {})
        self.assertTrue(response.headers.getRawHeaders("server")[0].startswith("txregistry/"))

    async def test_unknownRoute(self) -> None:
        """
        Unknown routes are 404 with the JSON error envelope.
        """
        registry = await startRegistry(self)
        for path in ("/nope", "/v2/foo/bar", "/v3/"):
            response = await registry.request("GET", path)
            self.assertEqual(response.code, 404, path)
            body = await response.json()
            self.assertEqual(sorted(body["errors"][0]), ["code", "message"])

    async def test_configuredHeaders(self) -> None:
        registry = await startRegistry(
            self, {"http": {"headers": {"X-Test": ["a", "b"]}}}
        )
        response = await registry.request("GET", "/v2/")
        self.assertEqual(response.headers.getRawHeaders("x-test"), ["a", "b"])

    async def test_prefix(self) -> None:
        """
        With http.prefix the API lives below it, and Location headers say so.
        """
        registry = await startRegistry(self, {"http": {"prefix": "/registry/"}})
        response = await registry.request("GET", "/registry/v2/")
        self.assertEqual(response.code, 200)
        response = await registry.request("GET", "/v2/")
        self.assertEqual(response.code, 404)
        response = await registry.request("POST", "/registry/v2/a/blobs/uploads/")
        self.assertEqual(response.code, 202)
        location = response.headers.getRawHeaders("location")[0]
        self.assertIn("/registry/v2/a/blobs/uploads/", location)
