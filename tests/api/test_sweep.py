"""
A sweep of bad inputs over every route: malformed names, references,
digests, upload ids, ranges, lengths, JSON, query arguments, methods,
and bytes that are not UTF-8, sent over a raw socket so nothing is
normalised on the way.  No answer may be a 5xx, and every 4xx that
reaches the API carries the JSON error envelope.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    DUMMY_DIGEST,
    LAYER,
    OCI_MANIFEST,
    checkEnvelope,
    chunked,
    deletingRegistry,
    header,
    pushImage,
    rawRequest,
    relative,
    requestBytes,
    sha256,
)

NAME = "sweep/repo"

BAD_NAMES = [
    b"A", b"..", b"a/..", b"%2e%2e", b"a%2F..%2Fb", b"a//b", b"%2Fa", b"-a", b"a" * 300,
    b"%ff", b"%00", b"a%0d%0ab", b"%c3%a9", b"a%20b", b"_catalog", b"v2",
]
BAD_DIGESTS = [
    b"sha256:", b"sha256:zz", b"sha256:" + b"A" * 64, b"md5:" + b"a" * 32, b":", b"sha256",
    b"sha512:" + b"a" * 64, b"sha256:" + b"a" * 65, b"x" * 2000, b"%ff", b"sha256:%00" + b"a" * 62,
    b"sha256:..%2F..%2F" + b"a" * 58, b"SHA256:" + b"a" * 64, b"sha256+b64:YWJj",
]
BAD_REFERENCES = [
    b"..", b"%2e%2e", b"-tag", b"t" * 200, b"%ff", b"a:b", b":", b"%2F", b"a%2F..%2F..", b"%00",
]
BAD_UPLOAD_IDS = [b"..", b"%2e%2e", b"x" * 100, b"%ff", b"a%2F..%2Fb", b"%00", b"-", b"a.b"]
BAD_QUERIES = [
    b"n=-1", b"n=abc", b"n=", b"n=99999999999999999999999999999", b"n=1e3", b"n=%ff",
    b"last=%ff", b"last=" + b"x" * 5000, b"digest=%ff", b"digest=sha256:zz", b"digest=",
    b"mount=%ff&from=%ff", b"mount=sha256:zz&from=a", b"mount=" + DUMMY_DIGEST.encode() + b"&from=..%2F..",
    b"mount=" + DUMMY_DIGEST.encode() + b"&from=%ff", b"artifactType=%ff", b"n=1&n=x", b"%zz=%zz",
    b"&&&==", b"n=%00", b"digest=" + DUMMY_DIGEST.encode() + b"&digest=sha256:zz",
]
BAD_JSON = [
    b"", b"{", b"null", b"[]", b"1", b'"s"', b"\xff\xfe\x00{", b"[" * 50000, b'{"a":' * 20000,
    b'{"schemaVersion":2}', b'{"schemaVersion":"2","mediaType":1}',
    b'{"schemaVersion":2,"mediaType":"%s","config":{}}' % OCI_MANIFEST.encode(),
    b'{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"x","size":-1,"digest":"sha256:zz"},"layers":{}}' % OCI_MANIFEST.encode(),
    b'{"schemaVersion":2,"config":{"mediaType":"x","size":true,"digest":"%s"},"layers":[1]}' % DUMMY_DIGEST.encode(),
    b'{"schemaVersion":2,"manifests":[null]}', b'{"schemaVersion":2,"manifests":{"a":1}}',
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"subject":5}',
    b'{"schemaVersion":2,"manifests":[],"annotations":[1],"artifactType":{}}',
    b'{"schemaVersion":2,"config":{"mediaType":"x","size":1e400,"digest":"%s"}}' % DUMMY_DIGEST.encode(),
    b'{"schemaVersion":NaN}', b'{"schemaVersion":2,"manifests":[{"mediaType":"x","size":99999999999999999999999,"digest":"%s"}]}' % DUMMY_DIGEST.encode(),
]
BAD_HEADERS: list[tuple[bytes, bytes]] = [
    (b"Range", b"bytes=abc"), (b"Range", b"bytes=5-1"), (b"Range", b"bytes=-0"), (b"Range", b"\xff"),
    (b"Range", b"bytes=99999999999999999999999999-"), (b"Range", b"bytes=0-1,2-3"),
    (b"Content-Range", b"abc"), (b"Content-Range", b"5-1"), (b"Content-Range", b"\xff\xfe"),
    (b"Content-Range", b"0-99999999999999999999999"), (b"Content-Range", b"bytes 0-1/2"),
    (b"Content-Range", b"bytes */5"), (b"Content-Range", b"-1-3"),
    (b"Content-Type", b"\xff"), (b"Content-Type", b"application/json; charset=\xff"), (b"Content-Type", b""),
    (b"Accept", b"\xff\xfe, */*;q=x"), (b"Accept", b","), (b"Host", b"\xff"), (b"Host", b"a b/c@d"),
    # Names IDNA cannot encode (an empty label, a lone dot, a 64-character label).
    (b"Host", b"a..b"), (b"Host", b"."), (b"Host", b"a" * 64 + b".com"),
    (b"X-Forwarded-Host", b"\xff\xfe"), (b"X-Forwarded-Proto", b"\xff"), (b"X-Forwarded-Host", b"evil/x y"),
    (b"Expect", b"100-continue"), (b"Expect", b"\xff"),
]


def status(response: Any) -> int:
    return response.code


class SweepTests(TestCase):
    storage: dict[str, Any] | None = None

    async def setUp(self) -> None:
        if self.storage is None:
            self.registry = await deletingRegistry(self)
        else:
            storage = {name: dict(value, rootdirectory=self.mktemp()) for name, value in self.storage.items()}
            self.registry = await deletingRegistry(self, storage=storage)
        self.manifest, self.digest = await pushImage(self, self.registry, NAME, "latest")
        response = await self.registry.request("POST", f"/v2/{NAME}/blobs/uploads/")
        self.upload = relative(header(response, "location")).encode()
        self.checked = 0

    async def check(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes = b"", envelope: bool = True, contentLength: bool = True,
    ) -> Any:
        """
        Send one request: no 5xx, and the envelope on a 4xx with a body.
        """
        request = requestBytes(method, target, headers, body, contentLength)
        response = await rawRequest(self.registry, request, head=method == b"HEAD")
        where = (method, target[:200], headers, body[:100], response.raw[:300])
        self.assertNotEqual(response.code, 0, where)
        self.assertLess(response.code, 500, where)
        if envelope and 400 <= response.code < 500 and method != b"HEAD":
            checkEnvelope(self, response.body, None, response.header("content-type"))
        self.checked += 1
        return response

    def routes(self, name: bytes = NAME.encode(), reference: bytes = b"latest",
               digest: bytes | None = None, upload: bytes | None = None) -> list[tuple[bytes, bytes]]:
        digest = digest or self.digest.encode()
        upload = upload or self.upload.rsplit(b"/", 1)[1]
        return [
            (b"GET", b"/v2/" + name + b"/tags/list"),
            (b"GET", b"/v2/" + name + b"/referrers/" + digest),
            (b"GET", b"/v2/" + name + b"/manifests/" + reference),
            (b"HEAD", b"/v2/" + name + b"/manifests/" + reference),
            (b"PUT", b"/v2/" + name + b"/manifests/" + reference),
            (b"DELETE", b"/v2/" + name + b"/manifests/" + reference),
            (b"GET", b"/v2/" + name + b"/blobs/" + digest),
            (b"HEAD", b"/v2/" + name + b"/blobs/" + digest),
            (b"DELETE", b"/v2/" + name + b"/blobs/" + digest),
            (b"POST", b"/v2/" + name + b"/blobs/uploads/"),
            (b"GET", b"/v2/" + name + b"/blobs/uploads/" + upload),
            (b"PATCH", b"/v2/" + name + b"/blobs/uploads/" + upload),
            (b"PUT", b"/v2/" + name + b"/blobs/uploads/" + upload + b"?digest=" + sha256(b"x").encode()),
            (b"DELETE", b"/v2/" + name + b"/blobs/uploads/" + upload),
        ]

    async def test_badNames(self) -> None:
        for name in BAD_NAMES:
            for method, target in self.routes(name=name):
                await self.check(method, target, body=b"x")

    async def test_badDigests(self) -> None:
        for digest in BAD_DIGESTS:
            for method, target in self.routes(digest=digest, reference=digest):
                await self.check(method, target, body=b"{}")
            for target in (b"/v2/" + NAME.encode() + b"/blobs/uploads/?digest=" + digest,
                           b"/v2/" + NAME.encode() + b"/blobs/uploads/?mount=" + digest + b"&from=" + NAME.encode(),
                           self.upload + b"?digest=" + digest):
                await self.check(b"PUT" if target.startswith(self.upload) else b"POST", target, body=b"x")

    async def test_badReferencesAndUploads(self) -> None:
        for reference in BAD_REFERENCES:
            for method, target in self.routes(reference=reference):
                await self.check(method, target, body=self.manifest)
        for upload in BAD_UPLOAD_IDS:
            for method, target in self.routes(upload=upload):
                await self.check(method, target, body=b"x")

    async def test_badQueries(self) -> None:
        targets = [t for _, t in self.routes()] + [b"/v2/_catalog", b"/v2/"]
        for query in BAD_QUERIES:
            for target in targets:
                joined = target + (b"&" if b"?" in target else b"?") + query
                method = b"POST" if target.endswith(b"/uploads/") else b"GET"
                await self.check(method, joined, body=b"x" if method == b"POST" else b"")
            await self.check(b"PUT", self.upload + b"?" + query)
            await self.check(b"PATCH", self.upload + b"?" + query, body=b"x")

    async def test_badHeaders(self) -> None:
        for headerLine in BAD_HEADERS:
            for method, target in self.routes() + [(b"GET", b"/v2/"), (b"GET", b"/v2/_catalog")]:
                await self.check(method, target, [headerLine], body=b"xy")

    async def test_unencodableHost(self) -> None:
        """
        A Host header that is no host name IDNA can encode is a 400 with
        the envelope, not a 500.
        """
        for host in (b"a..b", b".", b"a" * 64 + b".com"):
            response = await self.check(b"GET", b"/v2/", [(b"Host", host)])
            self.assertEqual(response.code, 400, host)

    async def test_badManifestBodies(self) -> None:
        for body in BAD_JSON:
            for reference in (b"latest", b"other", sha256(body).encode()):
                for contentType in (OCI_MANIFEST.encode(), b"application/vnd.oci.image.index.v1+json", None):
                    headers = [(b"Content-Type", contentType)] if contentType else []
                    response = await self.check(b"PUT", b"/v2/" + NAME.encode() + b"/manifests/" + reference,
                                                headers, body)
                    self.assertEqual(response.code, 400, (body[:50], response.body[:200]))
        # Nothing replaced what "latest" named.
        response = await self.registry.request("GET", f"/v2/{NAME}/manifests/latest")
        self.assertEqual(await response.content(), self.manifest)

    async def test_oddMethods(self) -> None:
        targets = [t for _, t in self.routes()] + [b"/v2/", b"/v2/_catalog", b"/", b"/v2", b"/v1/", b"/v2/x"]
        for method in (b"FOO", b"OPTIONS", b"TRACE", b"PATCH", b"POST", b"PUT", b"DELETE", b"PROPFIND",
                       b"get", b"CONNECT"):
            for target in targets:
                await self.check(method, target, body=b"{}")

    async def test_uploadLengths(self) -> None:
        """
        Chunks whose lengths and ranges disagree, empty chunks, and chunked
        bodies with ranges: all refused or taken, never a 5xx.
        """
        for headers, body in (
            ([(b"Content-Range", b"0-9")], b"abc"),
            ([(b"Content-Range", b"0-0")], b""),
            ([(b"Content-Range", b"0-2"), (b"Transfer-Encoding", b"chunked")], chunked(b"abc")),
            ([(b"Content-Range", b"5-9"), (b"Transfer-Encoding", b"chunked")], chunked(b"abcde")),
            ([], b""),
            ([(b"Content-Type", b"application/octet-stream")], LAYER),
        ):
            await self.check(b"PATCH", self.upload, headers, body)
            await self.check(b"PUT", self.upload + b"?digest=" + DUMMY_DIGEST.encode(), headers, body)
            response = await self.registry.request("POST", f"/v2/{NAME}/blobs/uploads/")
            self.upload = relative(header(response, "location")).encode()

    async def test_forwardedHost(self) -> None:
        """
        A forwarded host that is not a host (odd bytes, a path, userinfo)
        never makes it into a Location; a proper one does.
        """
        for value in (b"\xff\xfe", b"evil/x", b"a b", b"user@host", b"host:port"):
            response = await self.check(b"POST", b"/v2/" + NAME.encode() + b"/blobs/uploads/",
                                        [(b"X-Forwarded-Host", value)])
            location = response.header("location")
            self.assertTrue(location.startswith("http://127.0.0.1:"), (value, location))
        for value in (b"registry.example.com", b"reg_1:5000", b"[::1]:443"):
            response = await self.check(b"POST", b"/v2/" + NAME.encode() + b"/blobs/uploads/",
                                        [(b"X-Forwarded-Host", value), (b"X-Forwarded-Proto", b"https")])
            self.assertTrue(response.header("location").startswith(f"https://{value.decode()}/v2/"))

    async def test_nothingBroke(self) -> None:
        """
        After a sweep, the registry still serves what it had.
        """
        await self.test_badNames()
        await self.test_badQueries()
        response = await self.registry.request("GET", f"/v2/{NAME}/manifests/latest")
        self.assertEqual(await response.content(), self.manifest)
        self.assertGreater(self.checked, 300)


class FilesystemSweepTests(SweepTests):
    """
    The same sweep with paths that reach a real filesystem.
    """

    storage = {"filesystem": {}}


class FramingTests(TestCase):
    """
    Requests whose HTTP framing is broken are refused by the HTTP layer
    (C{txregistry/web}, Twisted's parser), before any route: no 5xx.
    """

    async def test_noServerError(self) -> None:
        registry = await deletingRegistry(self)
        for request in self.requests():
            response = await rawRequest(registry, request)
            self.assertLess(response.code, 500, request[:200])

    def requests(self) -> list[bytes]:
        put = b"/v2/" + NAME.encode() + b"/manifests/latest"
        return [
            requestBytes(b"PUT", put, [(b"Content-Length", b"abc")]),
            requestBytes(b"PUT", put, [(b"Content-Length", b"-5")]),
            requestBytes(b"PUT", put, [(b"Content-Length", b"1"), (b"Content-Length", b"2")], b"ab"),
            requestBytes(b"PUT", put, [(b"Transfer-Encoding", b"chunked")], b"zz\r\n"),
            requestBytes(b"PUT", put, [(b"Transfer-Encoding", b"gzip")], b"x"),
            requestBytes(b"GET", b"/v2/\xff\xfe/tags/list"),
            requestBytes(b"GET", b"/v2/a\x00b/tags/list"),
            requestBytes(b"GET", b"/v2/a/tags/list?n=\xff"),
            requestBytes(b"GET", b"/v2/", [(b"X-Forwarded-Host", b"h\x00")]),
            b"GARBAGE\r\n\r\n",
            b"GET /v2/ HTTP/9.9\r\n\r\n",
            b"GET /v2/\r\n\r\n",
            requestBytes(b"GET", b"/v2/a/tags/list?last=" + b"x" * 20000),
            requestBytes(b"GET", b"/v2/", [(b"X-Long", b"y" * 20000)]),
        ]

    async def test_overlongLines(self) -> None:
        """
        An overlong request line is 414 and an overlong header 431, with the
        envelope, rather than a silently dropped connection.
        """
        registry = await deletingRegistry(self)
        response = await rawRequest(registry, self.requests()[-2])
        self.assertEqual(response.code, 414)
        checkEnvelope(self, response.body, None, response.header("content-type"))
        response = await rawRequest(registry, self.requests()[-1])
        self.assertEqual(response.code, 431)

    async def test_envelope(self) -> None:
        registry = await deletingRegistry(self)
        for request in self.requests():
            response = await rawRequest(registry, request)
            if 400 <= response.code < 500:
                checkEnvelope(self, response.body, None, response.header("content-type"))

