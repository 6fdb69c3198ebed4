"""
Blob uploads: C{POST /v2/<name>/blobs/uploads/} and
C{GET}/C{PATCH}/C{PUT}/C{DELETE /v2/<name>/blobs/uploads/<id>}.

Each route checks everything it can from the request line and headers
before it touches the body, so a refused request costs no upload I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from txregistry.api.checks import checkDigest, checkName, headerValue, queryArgument
from txregistry.api.errors import RegistryError
from txregistry.api.ranges import parseChunkRange
from txregistry.api.responses import emptyResponse
from txregistry.registry.names import isValidName
from txregistry.web.request import RegistryRequest

if TYPE_CHECKING:
    from txregistry.api.app import RegistryAPI


def _rangeHeader(size: int) -> str:
    return f"0-{max(size - 1, 0)}"


def _uploadHeaders(api: "RegistryAPI", request: RegistryRequest, name: str, uploadID: str, size: int) -> dict[str, str]:
    return {
        "Location": api.urls.url(request, f"/v2/{name}/blobs/uploads/{uploadID}"),
        "Range": _rangeHeader(size),
        "Docker-Upload-UUID": uploadID,
    }


def _blobCreated(api: "RegistryAPI", request: RegistryRequest, name: str, digest: Any) -> bytes:
    return emptyResponse(
        request,
        201,
        {
            "Location": api.urls.url(request, f"/v2/{name}/blobs/{digest}"),
            "Docker-Content-Digest": str(digest),
        },
    )


async def start(api: "RegistryAPI", request: RegistryRequest, name: str) -> Any:
    checkName(name)
    registry = api.registry
    registry.checkWritable()
    mount = queryArgument(request, b"mount")
    source = queryArgument(request, b"from")
    if mount is not None and source is not None:
        digest = checkDigest(mount)
        if isValidName(source) and await registry.blobs.sizeIn(source, digest) is not None:
            await registry.blobs.link(name, digest)
            return _blobCreated(api, request, name, digest)
        # Not mountable: fall through to a fresh upload, as clients expect.
    else:
        digestText = queryArgument(request, b"digest")
        if digestText is not None:
            digest = checkDigest(digestText)
            await registry.uploads.monolithic(name, digest, request.body)
            return _blobCreated(api, request, name, digest)
    uploadID = await registry.uploads.start(name)
    return emptyResponse(request, 202, _uploadHeaders(api, request, name, uploadID, 0))


async def status(api: "RegistryAPI", request: RegistryRequest, name: str, uploadID: str) -> Any:
    checkName(name)
    size = await api.registry.uploads.size(name, uploadID)
    return emptyResponse(request, 204, _uploadHeaders(api, request, name, uploadID, size))


def _declaredStart(request: RegistryRequest) -> int | None:
    """
    The chunk's start offset from C{Content-Range}, checked against
    C{Content-Length}; L{None} when the client sent no range (docker's
    single chunked PATCH).
    """
    header = headerValue(request, b"content-range")
    if header is None:
        return None
    start, end = parseChunkRange(header)
    length = request.body.length
    if length is not None and length != end - start + 1:
        raise RegistryError(
            "RANGE_INVALID",
            f"Content-Range {header!r} does not match Content-Length {length}",
        )
    return start


async def chunk(api: "RegistryAPI", request: RegistryRequest, name: str, uploadID: str) -> Any:
    checkName(name)
    registry = api.registry
    registry.checkWritable()
    try:
        start = _declaredStart(request)
        size = await registry.uploads.append(name, uploadID, request.body, start)
    except RegistryError as error:
        if error.code.value == "RANGE_INVALID":
            current = await registry.uploads.size(name, uploadID)
            error.headers.update(_uploadHeaders(api, request, name, uploadID, current))
        raise
    return emptyResponse(request, 202, _uploadHeaders(api, request, name, uploadID, size))


async def complete(api: "RegistryAPI", request: RegistryRequest, name: str, uploadID: str) -> Any:
    checkName(name)
    registry = api.registry
    registry.checkWritable()
    digestText = queryArgument(request, b"digest")
    if digestText is None:
        raise RegistryError("DIGEST_INVALID", "the digest query argument is required")
    digest = checkDigest(digestText)
    start = _declaredStart(request)
    if start is not None:
        current = await registry.uploads.size(name, uploadID)
        if start != current:
            raise RegistryError(
                "RANGE_INVALID",
                f"chunk starts at {start}, upload has {current} bytes",
                headers=_uploadHeaders(api, request, name, uploadID, current),
            )
    await registry.uploads.complete(name, uploadID, digest, request.body)
    return _blobCreated(api, request, name, digest)


async def cancel(api: "RegistryAPI", request: RegistryRequest, name: str, uploadID: str) -> Any:
    checkName(name)
    api.registry.checkWritable()
    await api.registry.uploads.cancel(name, uploadID)
    return emptyResponse(request, 204)
