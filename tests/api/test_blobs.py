"""
Reading and deleting blobs: headers, byte ranges, deletes, and which
repositories see which content.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    DUMMY_DIGEST,
    assertError,
    deletingRegistry,
    header,
    pushBlob,
    rawRequest,
    requestBytes,
)
from tests.support import inProcess, startRegistry
from txregistry.registry.blobs import BlobContent
from txregistry.storage.errors import PathNotFoundError

NAME = "blobs/repo"
DATA = b"0123456789"


class BlobReadTests(TestCase):
    async def setUp(self) -> None:
        self.root = self.mktemp()
        self.registry = await deletingRegistry(self, storage={"filesystem": {"rootdirectory": self.root}})
        self.digest = await pushBlob(self, self.registry, NAME, DATA)

    def get(self, method: str = "GET", digest: str | None = None, name: str = NAME, **headers: str):  # type: ignore[no-untyped-def]
        return self.registry.request(
            method, f"/v2/{name}/blobs/{digest or self.digest}",
            headers={k.replace("_", "-"): [v] for k, v in headers.items()},
        )

    async def test_headers(self) -> None:
        """
        GET and HEAD carry Content-Length, Content-Type, Docker-Content-Digest,
        ETag and Accept-Ranges; GET the exact bytes, HEAD none.
        """
        for method in ("GET", "HEAD"):
            raw = await rawRequest(
                self.registry, requestBytes(method.encode(), f"/v2/{NAME}/blobs/{self.digest}".encode()),
                head=method == "HEAD",
            )
            self.assertEqual(raw.code, 200)
            self.assertEqual(raw.header("content-length"), str(len(DATA)))
            self.assertEqual(raw.header("content-type"), "application/octet-stream")
            self.assertEqual(raw.header("docker-content-digest"), self.digest)
            self.assertEqual(raw.header("etag"), f'"{self.digest}"')
            self.assertEqual(raw.header("accept-ranges"), "bytes")
            self.assertEqual(raw.header("docker-distribution-api-version"), "registry/2.0")
            self.assertEqual(raw.body, DATA if method == "GET" else b"")

    async def test_ranges(self) -> None:
        """
        A satisfiable Range is 206 with exactly those bytes and Content-Range.
        """
        cases = {
            "bytes=0-4": (0, 4), "bytes=5-": (5, 9), "bytes=-3": (7, 9), "bytes=3-3": (3, 3),
            "bytes=2-1000": (2, 9), "bytes=-100": (0, 9), "bytes=9-9": (9, 9),
        }
        for value, (first, last) in cases.items():
            response = await self.get(Range=value)
            self.assertEqual(response.code, 206, value)
            self.assertEqual(await response.content(), DATA[first:last + 1], value)
            self.assertEqual(header(response, "content-range"), f"bytes {first}-{last}/{len(DATA)}")
            self.assertEqual(header(response, "docker-content-digest"), self.digest)

    async def test_rangeOfLargeBlob(self) -> None:
        data = os.urandom(3 * 1024 * 1024 + 17)
        digest = await pushBlob(self, self.registry, NAME, data)
        response = await self.get(digest=digest, Range="bytes=1048570-2097160")
        self.assertEqual(response.code, 206)
        self.assertEqual(await response.content(), data[1048570:2097161])
        response = await self.get(digest=digest)
        self.assertEqual(await response.content(), data)

    async def test_unsatisfiable(self) -> None:
        """
        A range past the end (or malformed) is 416 with C{bytes */size}.
        """
        for value in ("bytes=10-", "bytes=100-200", "bytes=-0", "bytes=5-2", "bytes=abc",
                      "items=0-1", "bytes=99999999999999999999999-", "bytes=-"):
            response = await self.get(Range=value)
            await assertError(self, response, 416, "RANGE_INVALID")
            self.assertEqual(header(response, "content-range"), f"bytes */{len(DATA)}")

    async def test_severalRangesAnsweredWhole(self) -> None:
        response = await self.get(Range="bytes=0-1,4-5")
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.content(), DATA)

    async def test_unknown(self) -> None:
        for method in ("GET", "HEAD"):
            response = await self.get(method, digest=DUMMY_DIGEST)
            self.assertEqual(response.code, 404)
            if method == "GET":
                await assertError(self, response, 404, "BLOB_UNKNOWN")

    @inProcess
    async def test_contentGoneBeforeRead(self) -> None:
        """
        Content that disappears between the size lookup and the read is a
        404 BLOB_UNKNOWN without the blob's headers, not a 500.
        """
        async def gone(*args: object, **kwargs: object) -> None:
            raise PathNotFoundError("/gone")

        self.patch(BlobContent, "reader", gone)
        response = await self.get()
        await assertError(self, response, 404, "BLOB_UNKNOWN")
        self.assertIsNone(header(response, "docker-content-digest"))

    async def test_emptyBlob(self) -> None:
        digest = await pushBlob(self, self.registry, NAME, b"")
        response = await self.get(digest=digest)
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.content(), b"")
        await assertError(self, await self.get(digest=digest, Range="bytes=0-"), 416, "RANGE_INVALID")

    async def test_onlyInOwningRepositories(self) -> None:
        """
        A blob is visible only through repositories that have it: pushed
        there or mounted into it.
        """
        for method in ("GET", "HEAD"):
            response = await self.get(method, name="blobs/other")
            self.assertEqual(response.code, 404)
        await assertError(self, await self.get(name="blobs/other"), 404, "BLOB_UNKNOWN")
        response = await self.registry.request(
            "POST", f"/v2/blobs/other/blobs/uploads/?mount={self.digest}&from={NAME}"
        )
        self.assertEqual(response.code, 201)
        self.assertEqual(await (await self.get(name="blobs/other")).content(), DATA)
        # A mount from a repository that does not have it is a fresh upload.
        response = await self.registry.request(
            "POST", f"/v2/blobs/third/blobs/uploads/?mount={self.digest}&from=blobs/nothere"
        )
        self.assertEqual(response.code, 202)
        self.assertIn("/v2/blobs/third/blobs/uploads/", header(response, "location"))
        self.assertEqual((await self.get(name="blobs/third")).code, 404)


class BlobDeleteTests(TestCase):
    async def test_deleteEnabled(self) -> None:
        """
        DELETE is 202 with the digest; the blob is gone from that
        repository only; deleting again is 404 BLOB_UNKNOWN.
        """
        registry = await deletingRegistry(self)
        digest = await pushBlob(self, registry, NAME, DATA)
        await pushBlob(self, registry, "blobs/other", DATA)
        response = await registry.request("DELETE", f"/v2/{NAME}/blobs/{digest}")
        self.assertEqual(response.code, 202)
        self.assertEqual(header(response, "docker-content-digest"), digest)
        self.assertEqual((await registry.request("GET", f"/v2/{NAME}/blobs/{digest}")).code, 404)
        response = await registry.request("GET", f"/v2/blobs/other/blobs/{digest}")
        self.assertEqual(await response.content(), DATA)
        await assertError(self, await registry.request("DELETE", f"/v2/{NAME}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
        await assertError(self, await registry.request("DELETE", f"/v2/{NAME}/blobs/sha256:nope"), 400, "DIGEST_INVALID")

    async def test_deleteDisabled(self) -> None:
        registry = await startRegistry(self)
        digest = await pushBlob(self, registry, NAME, DATA)
        response = await registry.request("DELETE", f"/v2/{NAME}/blobs/{digest}")
        await assertError(self, response, 405, "UNSUPPORTED")
        self.assertEqual((await registry.request("GET", f"/v2/{NAME}/blobs/{digest}")).code, 200)

    async def test_readOnly(self) -> None:
        """
        In read-only mode, reads work and every write is 405 UNSUPPORTED.
        """
        root = self.mktemp()
        writable = await deletingRegistry(self, storage={"filesystem": {"rootdirectory": root}})
        digest = await pushBlob(self, writable, NAME, DATA)
        registry = await startRegistry(self, {"storage": {
            "filesystem": {"rootdirectory": root},
            "maintenance": {"readonly": {"enabled": True}},
            "delete": {"enabled": True},
        }})
        self.assertEqual((await registry.request("GET", f"/v2/{NAME}/blobs/{digest}")).code, 200)
        for method, path in (
            ("POST", f"/v2/{NAME}/blobs/uploads/"),
            ("DELETE", f"/v2/{NAME}/blobs/{digest}"),
            ("PUT", f"/v2/{NAME}/manifests/latest"),
        ):
            await assertError(self, await registry.request(method, path, data=b"{}"), 405, "UNSUPPORTED")
