"""
Storage middleware (C{middleware.storage}) seen from the API: a blob GET
is a 307 to the URL the middleware makes, and that URL serves the blob:

  - C{redirect} over the filesystem driver, to a web server that serves
    the storage root;
  - C{rewrite} over the S3 driver (SeaweedFS), to a proxy in front of the
    bucket, the presigned signature kept;
  - C{cloudfront} over the S3 driver, a signed URL that verifies with the
    key pair's public key; and, with C{ipfilteredby: aws}, a client inside
    AWS's ranges sent to the bucket itself.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import treq
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import File

from tests.api.helpers import header, pushBlob
from tests.api.test_s3storage import s3Storage
from tests.storage.middleware.keys import writeKey
from tests.storage.middleware.ranges import writeRanges
from tests.storage.middleware.test_cloudfront import botocoreURL, verifyCannedURL
from tests.storage.servers import BUCKET, SeaweedFS, server
from tests.storage.test_s3 import ThrottlingProxy
from tests.support import InProcessRegistry, startRegistry

BLOB = b"layer bytes served from elsewhere" * 100


async def listen(testCase: TestCase, resource: Any) -> str:
    """
    Serve C{resource} on a loopback port until C{testCase} ends.

    @return: C{http://127.0.0.1:<port>}.
    """
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(resource))
    testCase.addCleanup(port.stopListening)
    return f"http://127.0.0.1:{port.getHost().port}"


async def redirected(testCase: TestCase, registry: InProcessRegistry, digest: str,
                     method: str = "GET", **kwargs: Any) -> str:
    """
    Ask for blob C{digest}; assert a 307; return its Location.
    """
    response = await registry.request(method, f"/v2/r/blobs/{digest}", allow_redirects=False, **kwargs)
    await response.content()
    testCase.assertEqual(response.code, 307)
    testCase.assertEqual(header(response, "docker-content-digest"), digest)
    location = header(response, "location")
    assert location is not None
    return location


async def fetch(url: str) -> tuple[int, bytes]:
    response = await treq.get(url, persistent=False)
    return response.code, await response.content()


def blobPath(digest: str) -> str:
    algorithm, hexadecimal = digest.split(":")
    return f"/docker/registry/v2/blobs/{algorithm}/{hexadecimal[:2]}/{hexadecimal}/data"


class RedirectTests(TestCase):
    """
    C{redirect} over the filesystem driver.
    """

    async def start(self, **document: Any) -> tuple[InProcessRegistry, str]:
        root = os.path.abspath(self.mktemp())
        site = Resource()
        site.putChild(b"storage", File(root))
        base = await listen(self, site) + "/storage"
        storage = {"filesystem": {"rootdirectory": root}, **document.pop("storage", {})}
        registry = await startRegistry(self, {
            "storage": storage,
            "middleware": {"storage": [{"name": "redirect", "options": {"baseurl": base}}]},
            **document,
        })
        return registry, base

    async def test_redirectsToTheWebServer(self) -> None:
        """
        GET and HEAD are sent to the base URL followed by the blob's
        storage path, where a web server exporting the storage root (at
        /storage) serves the blob's bytes.
        """
        registry, base = await self.start()
        digest = await pushBlob(self, registry, "r", BLOB)
        for method in ("GET", "HEAD"):
            self.assertEqual(await redirected(self, registry, digest, method), base + blobPath(digest))
        location = await redirected(self, registry, digest)
        self.assertEqual(await fetch(location), (200, BLOB))

    async def test_unknownBlob(self) -> None:
        registry, _ = await self.start()
        response = await registry.request("GET", "/v2/r/blobs/sha256:" + "0" * 64, allow_redirects=False)
        await response.content()
        self.assertEqual(response.code, 404)

    async def test_redirectDisabled(self) -> None:
        """
        C{storage.redirect.disable: true} turns the middleware's redirects
        off too: the registry streams the blob.
        """
        registry, _ = await self.start(storage={"redirect": {"disable": True}})
        digest = await pushBlob(self, registry, "r", BLOB)
        response = await registry.request("GET", f"/v2/r/blobs/{digest}", allow_redirects=False)
        self.assertEqual((response.code, await response.content()), (200, BLOB))

    async def test_disabledEntry(self) -> None:
        root = os.path.abspath(self.mktemp())
        registry = await startRegistry(self, {
            "storage": {"filesystem": {"rootdirectory": root}},
            "middleware": {"storage": [{"name": "redirect", "disabled": True,
                                        "options": {"baseurl": "https://blobs.example.com"}}]},
        })
        digest = await pushBlob(self, registry, "r", BLOB)
        response = await registry.request("GET", f"/v2/r/blobs/{digest}", allow_redirects=False)
        self.assertEqual((response.code, await response.content()), (200, BLOB))


class RewriteOnS3Tests(TestCase):
    """
    C{rewrite} over the S3 driver: the presigned URL moved to a proxy in
    front of the bucket (as a CDN would be), its signature intact.
    """

    async def test_rewrittenURLServesTheBlob(self) -> None:
        seaweed = server(SeaweedFS)
        # The proxy serves the bucket at its root, as a CDN whose origin is
        # the bucket does: the path-style /<bucket> is trimmed off.
        proxy = await listen(self, ThrottlingProxy(f"{seaweed.endpoint}/{BUCKET}", failures=0))
        proxyHost = urlsplit(proxy).netloc
        registry = await startRegistry(self, {
            "storage": s3Storage(self, redirect=True),
            "middleware": {"storage": [{"name": "rewrite", "options": {
                "scheme": "http", "host": proxyHost, "trimpathprefix": f"/{BUCKET}"}}]},
        })
        root = registry.config.storage.parameters["rootdirectory"]
        digest = await pushBlob(self, registry, "r", BLOB)
        location = await redirected(self, registry, digest)
        parts = urlsplit(location)
        self.assertEqual((parts.scheme, parts.netloc, parts.path),
                         ("http", proxyHost, root + blobPath(digest)))
        self.assertIn("X-Amz-Signature=", parts.query)
        self.assertEqual(await fetch(location), (200, BLOB))


class CloudFrontOnS3Tests(TestCase):
    """
    C{cloudfront} over the S3 driver.
    """

    async def start(self, **options: Any) -> InProcessRegistry:
        return await startRegistry(self, {
            "storage": s3Storage(self, redirect=True),
            "middleware": {"storage": [{"name": "cloudfront", "options": {
                "baseurl": "https://d111111abcdef8.cloudfront.net/",
                "privatekey": writeKey(self), "keypairid": "K2JCJMDEHXQW5F",
                "duration": "60s", **options}}]},
        })

    async def test_signedURL(self) -> None:
        """
        The Location is the CloudFront URL of the blob's object in the
        bucket, valid for a minute, signed so that the public key verifies
        it, and the very URL botocore's CloudFront signer makes.
        """
        registry = await self.start()
        root = registry.config.storage.parameters["rootdirectory"]
        digest = await pushBlob(self, registry, "r", BLOB)
        location = await redirected(self, registry, digest)
        resource, expires = verifyCannedURL(self, location)
        self.assertEqual(resource, "https://d111111abcdef8.cloudfront.net" + root + blobPath(digest))
        self.assertLess(abs(expires - (reactor.seconds() + 60)), 5)
        self.assertEqual(location, botocoreURL(resource, expires))

    async def test_clientsInsideAWSGoToTheBucket(self) -> None:
        """
        With C{ipfilteredby: aws} and ranges that hold the loopback
        network, this client gets the bucket's presigned URL, which serves
        the blob; a client elsewhere (behind a proxy that says so in
        X-Forwarded-For) gets CloudFront's.
        """
        ranges = writeRanges(self, ("127.0.0.0/8", "us-east-1"), ("3.5.140.0/22", "us-east-1"))
        registry = await self.start(ipfilteredby="aws", iprangesurl=ranges)
        digest = await pushBlob(self, registry, "r", BLOB)
        location = await redirected(self, registry, digest)
        self.assertTrue(location.startswith(server(SeaweedFS).endpoint), location)
        self.assertEqual(await fetch(location), (200, BLOB))
        for address in ("198.51.100.7", "3.5.140.1"):
            location = await redirected(self, registry, digest,
                                        headers={"X-Forwarded-For": [f"{address}, 127.0.0.1"]})
            if address == "3.5.140.1":
                self.assertTrue(location.startswith(server(SeaweedFS).endpoint), location)
            else:
                verifyCannedURL(self, location)

    async def test_clientsOfOtherRegionsGoToCloudFront(self) -> None:
        ranges = writeRanges(self, ("127.0.0.0/8", "eu-west-1"))
        registry = await self.start(ipfilteredby="awsregion", awsregion="us-east-1", iprangesurl=ranges)
        digest = await pushBlob(self, registry, "r", BLOB)
        verifyCannedURL(self, await redirected(self, registry, digest))
