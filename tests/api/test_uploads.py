"""
Blob uploads: starting, chunks in order and out of it, status, completion
with and without a final chunk, cancelling, digests, restarts of the
server, and concurrent uploads of the same content.
"""

from __future__ import annotations

import os
import re

from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    RawClient,
    assertError,
    chunked,
    deletingRegistry,
    header,
    pushBlob,
    rawRequest,
    relative,
    requestBytes,
    sha256,
    sha512,
    withQuery,
)
from tests.support import InProcessRegistry, inProcess
from tests.tmpfs import smallFilesystem

NAME = "uploads/repo"
OCTETS = {"Content-Type": ["application/octet-stream"]}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class UploadTests(TestCase):
    async def start(self, **document):  # type: ignore[no-untyped-def]
        self.registry = await deletingRegistry(self, **document)
        return self.registry

    async def begin(self, name: str = NAME) -> str:
        response = await self.registry.request("POST", f"/v2/{name}/blobs/uploads/")
        self.assertEqual(response.code, 202)
        return relative(header(response, "location"))

    async def patch(self, location: str, data: bytes, contentRange: str | None = None):  # type: ignore[no-untyped-def]
        headers = dict(OCTETS)
        if contentRange is not None:
            headers["Content-Range"] = [contentRange]
        return await self.registry.request("PATCH", location, data=data, headers=headers)

    async def blob(self, digest: str, name: str = NAME) -> tuple[int, bytes]:
        response = await self.registry.request("GET", f"/v2/{name}/blobs/{digest}")
        return response.code, await response.content()

    async def test_start(self) -> None:
        """
        POST is 202 with an upload Location, C{Range: 0-0},
        C{Docker-Upload-UUID} (the id in the Location) and no body.
        """
        await self.start()
        response = await self.registry.request("POST", f"/v2/{NAME}/blobs/uploads/")
        self.assertEqual(response.code, 202)
        location = header(response, "location")
        self.assertTrue(location.startswith(self.registry.url + f"/v2/{NAME}/blobs/uploads/"), location)
        uploadID = header(response, "docker-upload-uuid")
        self.assertRegex(uploadID, UUID)
        path, _, query = relative(location).partition("?")
        self.assertTrue(path.endswith("/" + uploadID))
        # Signed with http.secret (see tests.api.test_uploadstate).
        self.assertRegex(query, r"^_state=[A-Za-z0-9_-]{43}$")
        self.assertEqual(header(response, "range"), "0-0")
        self.assertEqual(response.length, 0)
        self.assertEqual(await response.content(), b"")
        # Without the trailing slash too.
        response = await self.registry.request("POST", f"/v2/{NAME}/blobs/uploads")
        self.assertEqual(response.code, 202)

    async def test_monolithicPost(self) -> None:
        """
        POST ?digest= with the body is 201 with Location and
        Docker-Content-Digest, and the blob is there.
        """
        await self.start()
        data = b"monolithic" * 100
        for digest in (sha256(data), sha512(data)):
            response = await self.registry.request(
                "POST", f"/v2/{NAME}/blobs/uploads/?digest={digest}", data=data, headers=OCTETS
            )
            self.assertEqual(response.code, 201)
            self.assertEqual(relative(header(response, "location")), f"/v2/{NAME}/blobs/{digest}")
            self.assertEqual(header(response, "docker-content-digest"), digest)
            self.assertEqual(await self.blob(digest), (200, data))

    async def test_patchWithoutRange(self) -> None:
        """
        PATCH without C{Content-Range} appends (docker's streamed upload);
        each answer is 202 with Location, Range and the upload's id.
        """
        await self.start()
        location = await self.begin()
        response = await self.patch(location, b"abc")
        self.assertEqual(response.code, 202)
        self.assertEqual(header(response, "range"), "0-2")
        self.assertEqual(relative(header(response, "location")), location)
        self.assertEqual(header(response, "docker-upload-uuid"), location.split("?")[0].rsplit("/", 1)[1])
        response = await self.patch(location, b"defg")
        self.assertEqual(header(response, "range"), "0-6")
        response = await self.registry.request("PUT", withQuery(location, digest=sha256(b"abcdefg")))
        self.assertEqual(response.code, 201)
        self.assertEqual(await self.blob(sha256(b"abcdefg")), (200, b"abcdefg"))

    async def test_patchWithRange(self) -> None:
        """
        PATCH with C{Content-Range} in order is 202 each time; the status
        GET is 204 with the same Range and Location.
        """
        await self.start()
        location = await self.begin()
        data = os.urandom(1000)
        for start in range(0, 1000, 300):
            chunk = data[start:start + 300]
            response = await self.patch(location, chunk, f"{start}-{start + len(chunk) - 1}")
            self.assertEqual(response.code, 202)
            self.assertEqual(header(response, "range"), f"0-{start + len(chunk) - 1}")
            status = await self.registry.request("GET", location)
            self.assertEqual(status.code, 204)
            self.assertEqual(header(status, "range"), f"0-{start + len(chunk) - 1}")
            self.assertEqual(relative(header(status, "location")), location)
            self.assertEqual(header(status, "docker-upload-uuid"), location.split("?")[0].rsplit("/", 1)[1])
            self.assertEqual(await status.content(), b"")
        response = await self.registry.request("PUT", withQuery(location, digest=sha256(data)))
        self.assertEqual(response.code, 201)
        self.assertEqual(await self.blob(sha256(data)), (200, data))

    async def test_patchChunkedEncoding(self) -> None:
        """
        A PATCH with C{Transfer-Encoding: chunked} (no length) appends
        everything it carries.
        """
        await self.start()
        location = await self.begin()
        parts = [b"a" * 1000, b"b" * 70000, b"c"]
        response = await rawRequest(self.registry, requestBytes(
            b"PATCH", location.encode(), [(b"Transfer-Encoding", b"chunked")], chunked(*parts)
        ))
        self.assertEqual(response.code, 202, response.raw[:300])
        total = b"".join(parts)
        self.assertEqual(response.header("range"), f"0-{len(total) - 1}")
        # And a chunked final PUT.
        response = await rawRequest(self.registry, requestBytes(
            b"PUT", withQuery(location, digest=sha256(total + b"tail")).encode(),
            [(b"Transfer-Encoding", b"chunked")], chunked(b"ta", b"il"),
        ))
        self.assertEqual(response.code, 201, response.raw[:300])
        self.assertEqual(await self.blob(sha256(total + b"tail")), (200, total + b"tail"))

    async def test_outOfOrderAndOverlap(self) -> None:
        """
        A chunk that does not start at the upload's end (a gap, an overlap,
        a retry) is 416 with the upload's Range and Location, and changes
        nothing.
        """
        await self.start()
        location = await self.begin()
        response = await self.patch(location, b"later", "5-9")
        await assertError(self, response, 416, "RANGE_INVALID")
        self.assertEqual(header(response, "range"), "0-0")
        self.assertEqual(relative(header(response, "location")), location)
        self.assertEqual((await self.patch(location, b"0123456789", "0-9")).code, 202)
        for data, contentRange in ((b"5678", "5-8"), (b"0123456789", "0-9"), (b"x", "11-11")):
            response = await self.patch(location, data, contentRange)
            await assertError(self, response, 416, "RANGE_INVALID")
            self.assertEqual(header(response, "range"), "0-9")
        # A range whose length is not the body's.
        response = await self.patch(location, b"abc", "10-19")
        await assertError(self, response, 416, "RANGE_INVALID")
        response = await self.registry.request("GET", location)
        self.assertEqual(header(response, "range"), "0-9")
        # A final PUT whose range does not follow on is refused too.
        response = await self.registry.request(
            "PUT", withQuery(location, digest=sha256(b"0123456789ab")), data=b"ab",
            headers={"Content-Range": ["3-4"]},
        )
        await assertError(self, response, 416, "RANGE_INVALID")
        response = await self.registry.request(
            "PUT", withQuery(location, digest=sha256(b"0123456789ab")), data=b"ab",
            headers={"Content-Range": ["10-11"]},
        )
        self.assertEqual(response.code, 201)

    async def test_completeWithAndWithoutFinalChunk(self) -> None:
        """
        PUT ?digest= is 201 with Location and Docker-Content-Digest, with
        the last bytes in its body or none.
        """
        await self.start()
        for final in (b"", b"-final"):
            location = await self.begin()
            await self.patch(location, b"first")
            data = b"first" + final
            response = await self.registry.request(
                "PUT", withQuery(location, digest=sha256(data)), data=final, headers=OCTETS
            )
            self.assertEqual(response.code, 201)
            self.assertEqual(relative(header(response, "location")), f"/v2/{NAME}/blobs/{sha256(data)}")
            self.assertEqual(header(response, "docker-content-digest"), sha256(data))
            self.assertEqual(await self.blob(sha256(data)), (200, data))
            # The upload is finished.
            await assertError(self, await self.registry.request("GET", location), 404, "BLOB_UPLOAD_UNKNOWN")
        # A whole blob in the PUT of a fresh upload; an empty blob.
        for data in (b"all at once", b""):
            location = await self.begin()
            response = await self.registry.request(
                "PUT", withQuery(location, digest=sha256(data)), data=data, headers=OCTETS
            )
            self.assertEqual(response.code, 201)
            self.assertEqual(await self.blob(sha256(data)), (200, data))

    async def test_droppedChunk(self) -> None:
        """
        A chunk whose client goes away mid-body leaves the upload as it
        was (and logs no error), with a declared length or chunked.
        """
        await self.start(storage={"filesystem": {"rootdirectory": self.mktemp()}})
        location = await self.begin()
        await self.patch(location, b"abc")
        port = int(self.registry.url.rsplit(":", 1)[1])
        for headers, partial in (
            ([(b"Content-Length", b"1000")], b"x" * 500),
            ([(b"Transfer-Encoding", b"chunked")], b"1f4\r\n" + b"x" * 300),
        ):
            client = RawClient(requestBytes(b"PATCH", location.encode(), headers) + partial, False)
            await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
            await deferLater(reactor, 0.1, lambda: None)
            client.transport.loseConnection()
            await client.done
            await deferLater(reactor, 0.1, lambda: None)
            response = await self.registry.request("GET", location)
            self.assertEqual(header(response, "range"), "0-2")
        response = await self.registry.request("PUT", withQuery(location, digest=sha256(b"abcd")), data=b"d")
        self.assertEqual(response.code, 201)

    async def test_cancel(self) -> None:
        """
        DELETE cancels: 204, then the upload is unknown everywhere.
        """
        await self.start()
        location = await self.begin()
        await self.patch(location, b"abc")
        response = await self.registry.request("DELETE", location)
        self.assertEqual(response.code, 204)
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            path = withQuery(location, digest=sha256(b"abc")) if method == "PUT" else location
            await assertError(self, await self.registry.request(method, path, data=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
        self.assertEqual((await self.blob(sha256(b"abc")))[0], 404)

    async def test_unknownUpload(self) -> None:
        """
        An id that was never issued, or one issued to another repository,
        is 404 BLOB_UPLOAD_UNKNOWN on every upload route.
        """
        await self.start()
        other = await self.begin("uploads/other")
        uploadID = other.split("?")[0].rsplit("/", 1)[1]
        for path in (
            f"/v2/{NAME}/blobs/uploads/0a4ed2fa-77d5-4d68-a4f8-0b7fb0d7c4a2",
            f"/v2/{NAME}/blobs/uploads/{uploadID}",
            f"/v2/{NAME}/blobs/uploads/not-an-id-{'x' * 80}",
        ):
            for method in ("GET", "PATCH", "PUT", "DELETE"):
                target = withQuery(path, digest=sha256(b"x")) if method == "PUT" else path
                response = await self.registry.request(method, target, data=b"x")
                await assertError(self, response, 404, "BLOB_UPLOAD_UNKNOWN")
        self.assertEqual((await self.registry.request("GET", other)).code, 204)

    async def test_sha512(self) -> None:
        """
        sha512 digests complete chunked uploads and name the blob.
        """
        await self.start()
        data = os.urandom(5000)
        location = await self.begin()
        await self.patch(location, data[:2000], "0-1999")
        await self.patch(location, data[2000:], f"2000-{len(data) - 1}")
        response = await self.registry.request("PUT", withQuery(location, digest=sha512(data)))
        self.assertEqual(response.code, 201)
        self.assertEqual(header(response, "docker-content-digest"), sha512(data))
        self.assertEqual(await self.blob(sha512(data)), (200, data))
        response = await self.registry.request("HEAD", f"/v2/{NAME}/blobs/{sha512(data)}")
        self.assertEqual(header(response, "docker-content-digest"), sha512(data))

    async def test_wrongDigest(self) -> None:
        """
        A digest that does not match the content is 400 DIGEST_INVALID,
        and nothing is stored under either digest.
        """
        await self.start()
        data, claimed = b"the content", sha256(b"other content")
        location = await self.begin()
        await self.patch(location, data)
        response = await self.registry.request("PUT", withQuery(location, digest=claimed))
        await assertError(self, response, 400, "DIGEST_INVALID")
        response = await self.registry.request(
            "POST", f"/v2/{NAME}/blobs/uploads/?digest={claimed}", data=data
        )
        await assertError(self, response, 400, "DIGEST_INVALID")
        location = await self.begin()
        response = await self.registry.request(
            "PUT", withQuery(location, digest=sha512(b"other")), data=data
        )
        await assertError(self, response, 400, "DIGEST_INVALID")
        for digest in (claimed, sha256(data), sha512(b"other"), sha512(data)):
            self.assertEqual((await self.blob(digest))[0], 404)

    async def test_malformedDigests(self) -> None:
        """
        A missing or malformed digest on completion is 400 DIGEST_INVALID.
        """
        await self.start()
        location = await self.begin()
        await self.patch(location, b"abc")
        for query in ("", "?digest=", "?digest=sha256:abc", "?digest=md5:" + "a" * 32,
                      "?digest=sha256:" + "A" * 64, "?digest=sha512:" + "a" * 64):
            response = await self.registry.request("PUT", location + query.replace("?", "&"))
            await assertError(self, response, 400, "DIGEST_INVALID")
        self.assertEqual(header(await self.registry.request("GET", location), "range"), "0-2")

    async def test_uploadSurvivesRestart(self) -> None:
        """
        An upload begun on one server goes on and completes on another over
        the same filesystem root (the running hash is recomputed).
        """
        root = self.mktemp()
        document = {"storage": {"filesystem": {"rootdirectory": root}, "delete": {"enabled": True}},
                    "log": {"accesslog": {"disabled": True}}}
        first = await InProcessRegistry(document).start()
        data = os.urandom(300000)
        response = await first.request("POST", f"/v2/{NAME}/blobs/uploads/")
        location = relative(header(response, "location"))
        response = await first.request("PATCH", location, data=data[:100000], headers={"Content-Range": ["0-99999"]})
        self.assertEqual(response.code, 202)
        await first.stop()

        second = await deletingRegistry(self, storage={"filesystem": {"rootdirectory": root}})
        self.registry = second
        response = await second.request("GET", location)
        self.assertEqual(response.code, 204)
        self.assertEqual(header(response, "range"), "0-99999")
        response = await self.patch(location, data[100000:200000], "100000-199999")
        self.assertEqual(response.code, 202)
        response = await second.request("PUT", withQuery(location, digest=sha256(data)), data=data[200000:])
        self.assertEqual(response.code, 201)
        self.assertEqual(await self.blob(sha256(data)), (200, data))

    async def test_twoServersTakeTurns(self) -> None:
        """
        Two servers over one root take chunks of one upload in turns (each
        one's remembered hash goes stale), and it completes with sha256
        on one and is checked with sha512 on the other.
        """
        root = self.mktemp()
        storage = {"filesystem": {"rootdirectory": root}}
        servers = [await deletingRegistry(self, storage=dict(storage)) for _ in range(2)]
        for algorithm, digestOf in (("sha256", sha256), ("sha512", sha512)):
            data = os.urandom(50000)
            response = await servers[0].request("POST", f"/v2/{NAME}/blobs/uploads/")
            location = relative(header(response, "location"))
            for i, start in enumerate(range(0, 40000, 10000)):
                response = await servers[i % 2].request(
                    "PATCH", location, data=data[start:start + 10000],
                    headers={"Content-Range": [f"{start}-{start + 9999}"]},
                )
                self.assertEqual(response.code, 202, algorithm)
                self.assertEqual(header(response, "range"), f"0-{start + 9999}")
            response = await servers[0].request("PUT", withQuery(location, digest=digestOf(data)), data=data[40000:])
            self.assertEqual(response.code, 201, (algorithm, await response.content()))
            response = await servers[1].request("GET", f"/v2/{NAME}/blobs/{digestOf(data)}")
            self.assertEqual(await response.content(), data)

    async def test_concurrentUploadsOfOneBlob(self) -> None:
        """
        Two clients uploading the same blob at once both get 201, and one
        copy is kept with no upload left behind.
        """
        root = self.mktemp()
        await self.start(storage={"filesystem": {"rootdirectory": root}})
        data = os.urandom(200000)

        async def upload(monolithic: bool) -> int:
            if monolithic:
                response = await self.registry.request(
                    "POST", f"/v2/{NAME}/blobs/uploads/?digest={sha256(data)}", data=data
                )
                return response.code
            location = await self.begin()
            await self.patch(location, data[:100000])
            await self.patch(location, data[100000:])
            response = await self.registry.request("PUT", withQuery(location, digest=sha256(data)))
            return response.code

        for kinds in ((False, False), (True, True), (True, False)):
            results = await DeferredList(
                [ensureDeferred(upload(kind)) for kind in kinds], consumeErrors=True
            )
            self.assertEqual([r for r in results], [(True, 201), (True, 201)])
            self.assertEqual(await self.blob(sha256(data)), (200, data))
        stored = []
        for directory, _, files in os.walk(root):
            stored += [os.path.relpath(os.path.join(directory, f), root) for f in files if f == "data"]
        blobs = [p for p in stored if "/blobs/" in p]
        self.assertEqual(len(blobs), 1, stored)
        self.assertEqual([p for p in stored if "_uploads" in p], [])


class FullDiskTests(TestCase):
    """
    A push onto a full disk is a 503 C{UNAVAILABLE} with the envelope and
    one logged error, never a 500 with a critical traceback, and the
    registry goes on serving.
    """

    @inProcess
    async def test_fullDisk(self) -> None:
        root = smallFilesystem(self, "1m")
        registry = await deletingRegistry(self, storage={"filesystem": {"rootdirectory": root}})
        events: list[dict] = []  # type: ignore[type-arg]
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        big = os.urandom(2 * 1024 * 1024)
        response = await registry.request(
            "POST", f"/v2/full/disk/blobs/uploads/?digest={sha256(big)}", data=big
        )
        await assertError(self, response, 503, "UNAVAILABLE")
        response = await registry.request("POST", "/v2/full/disk/blobs/uploads/")
        self.assertEqual(response.code, 202)
        location = relative(response.headers.getRawHeaders("location")[0])
        response = await registry.request("PATCH", location, data=big)
        await assertError(self, response, 503, "UNAVAILABLE")
        self.assertFalse([e for e in events if e.get("log_level") == LogLevel.critical])
        self.assertTrue([e for e in events if "Storage is full" in e.get("log_format", "")])
        # Nothing partial stays: the registry still takes what fits.
        digest = await pushBlob(self, registry, "full/disk", b"small")
        self.assertEqual((await registry.request("GET", f"/v2/full/disk/blobs/{digest}")).code, 200)
