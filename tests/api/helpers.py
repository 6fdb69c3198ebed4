"""
What the API tests share: a registry with deletes enabled, test content
shaped like the OCI conformance suite's, uploads and manifest pushes in
one call, the error-envelope check, and a raw-socket client for requests
treq would normalise.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from tests.support import InProcessRegistry, startRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

#: The error codes the OCI conformance suite accepts in an envelope.
ERROR_CODES = {
    "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN",
    "MANIFEST_UNVERIFIED", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID",
    "TAG_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED",
}
#: Every code this registry may send (the spec's plus the Docker API's).
ALL_CODES = ERROR_CODES | {
    "PAGINATION_NUMBER_INVALID", "RANGE_INVALID", "TOOMANYREQUESTS", "UNKNOWN", "UNAVAILABLE",
}

#: The conformance suite's layer: a small tar.gz of one text file.
LAYER = base64.b64decode(
    "H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0"
    "WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD"
    "jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA"
)
EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#: C{godigest.FromString("hello world")}: a digest nothing has.
DUMMY_DIGEST = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def descriptor(mediaType: str, content: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": mediaType, "digest": sha256(content), "size": len(content), **extra}


def dumps(document: Any) -> bytes:
    """
    JSON as the conformance suite writes it (C{json.MarshalIndent} with tabs).
    """
    return json.dumps(document, indent="\t").encode()


def config(author: str | None = None) -> bytes:
    """
    A unique image config, as the suite makes one per workflow.
    """
    return dumps({
        "author": author or uuid.uuid4().hex,
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
    })


def imageManifest(
    configContent: bytes,
    layers: list[bytes] | None = None,
    configType: str = OCI_CONFIG,
    layerType: str = OCI_LAYER,
    mediaType: str | None = OCI_MANIFEST,
    **extra: Any,
) -> bytes:
    document: dict[str, Any] = {"schemaVersion": 2}
    if mediaType is not None:
        document["mediaType"] = mediaType
    document["config"] = descriptor(configType, configContent)
    document["layers"] = [descriptor(layerType, layer) for layer in (layers if layers is not None else [LAYER])]
    document.update(extra)
    return dumps(document)


def index(children: list[tuple[str, bytes]], mediaType: str = OCI_INDEX, **extra: Any) -> bytes:
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": mediaType}
    document["manifests"] = [descriptor(t, c) for t, c in children]
    document.update(extra)
    return dumps(document)


def header(response: Any, name: str) -> str | None:
    values = response.headers.getRawHeaders(name)
    return values[0] if values else None


def relative(location: str) -> str:
    """
    The path and query of a C{Location} (absolute or not).
    """
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def withQuery(location: str, **query: str) -> str:
    from urllib.parse import urlencode

    path = relative(location)
    return path + ("&" if "?" in path else "?") + urlencode(query)


async def deletingRegistry(testCase: Any, **document: Any) -> InProcessRegistry:
    """
    An in-memory registry with C{storage.delete.enabled: true}.
    """
    storage = document.pop("storage", {"inmemory": {}})
    storage.setdefault("delete", {"enabled": True})
    return await startRegistry(testCase, {"storage": storage, **document})


async def pushBlob(testCase: Any, registry: InProcessRegistry, name: str, content: bytes) -> str:
    """
    POST then PUT ?digest= with the whole blob; asserts 201.
    """
    response = await registry.request("POST", f"/v2/{name}/blobs/uploads/")
    testCase.assertEqual(response.code, 202)
    await response.content()
    digest = sha256(content)
    response = await registry.request(
        "PUT",
        withQuery(header(response, "location"), digest=digest),
        data=content,
        headers={"Content-Type": ["application/octet-stream"]},
    )
    testCase.assertEqual(response.code, 201, await response.text())
    return digest


async def pushManifest(
    testCase: Any,
    registry: InProcessRegistry,
    name: str,
    reference: str,
    content: bytes,
    mediaType: str = OCI_MANIFEST,
    expect: int = 201,
) -> Any:
    response = await registry.request(
        "PUT", f"/v2/{name}/manifests/{reference}", data=content,
        headers={"Content-Type": [mediaType]},
    )
    body = await response.content()
    testCase.assertEqual(response.code, expect, body)
    return response


async def pushImage(testCase: Any, registry: InProcessRegistry, name: str, tag: str) -> tuple[bytes, str]:
    """
    Push a config, the layer and a manifest tagged C{tag}.

    @return: the manifest and its digest.
    """
    configContent = config()
    await pushBlob(testCase, registry, name, configContent)
    await pushBlob(testCase, registry, name, LAYER)
    manifest = imageManifest(configContent)
    await pushManifest(testCase, registry, name, tag, manifest)
    return manifest, sha256(manifest)


async def assertError(testCase: Any, response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """
    C{response} has C{status} and the spec's JSON error envelope (with
    C{code} first, when given).
    """
    body = await response.content()
    testCase.assertEqual(response.code, status, body)
    return checkEnvelope(testCase, body, code, header(response, "content-type"))


def checkEnvelope(testCase: Any, body: bytes, code: str | None, contentType: str | None) -> dict[str, Any]:
    testCase.assertTrue(contentType and contentType.startswith("application/json"), contentType)
    document = json.loads(body)
    testCase.assertIsInstance(document, dict)
    errors = document["errors"]
    testCase.assertIsInstance(errors, list)
    testCase.assertTrue(errors)
    for entry in errors:
        testCase.assertIsInstance(entry["code"], str)
        testCase.assertIsInstance(entry["message"], str)
        testCase.assertIn(entry["code"], ALL_CODES)
    if code is not None:
        testCase.assertEqual(errors[0]["code"], code, body)
    return document


# Raw requests


class RawResponse:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes, raw: bytes) -> None:
        self.code = status
        self.headerList = headers
        self.body = body
        self.raw = raw

    def header(self, name: str) -> str | None:
        for key, value in self.headerList:
            if key.lower() == name.lower():
                return value
        return None


class RawClient(Protocol):
    """
    Sends bytes, collects the first response; done once it is complete
    (by C{Content-Length}) or the connection closes.
    """

    def __init__(self, payload: bytes | list[bytes], head: bool) -> None:
        self.payload = payload
        self.head = head
        self.data = b""
        self.done: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        parts = self.payload if isinstance(self.payload, list) else [self.payload]
        for part in parts:
            self.transport.write(part)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        end = self.data.find(b"\r\n\r\n")
        if end < 0 or self.done.called:
            return
        head = self.data[:end].decode("latin-1").lower()
        length = None
        for line in head.split("\r\n")[1:]:
            if line.startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        status = int(head.split(" ")[1])
        if self.head or status in (204, 304) or 100 <= status < 200:
            length = 0
        if 100 <= status < 200:
            # Skip interim responses (100 Continue).
            self.data = self.data[end + 4:]
            self.dataReceived(b"")
            return
        if length is not None and len(self.data) >= end + 4 + length:
            self.done.callback(self.data)
            self.transport.loseConnection()

    def connectionLost(self, reason: Any) -> None:
        if not self.done.called:
            self.done.callback(self.data)


async def rawRequest(registry: InProcessRegistry, payload: bytes | list[bytes], head: bool = False) -> RawResponse:
    """
    Send C{payload} as it is and parse the answer.
    """
    port = int(registry.url.rsplit(":", 1)[1])
    protocol = RawClient(payload, head)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), protocol)
    raw = await protocol.done
    headEnd = raw.find(b"\r\n\r\n")
    if headEnd < 0:
        raise AssertionError(f"no response: {raw!r}")
    lines = raw[:headEnd].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = []
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers.append((key.strip(), value.strip()))
    return RawResponse(status, headers, raw[headEnd + 4:], raw)


def requestBytes(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b"",
    contentLength: bool = True,
) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for key, value in headers or []:
        lines.append(key + b": " + value)
    names = {k.lower() for k, _ in headers or []}
    if contentLength and b"content-length" not in names and b"transfer-encoding" not in names:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"
