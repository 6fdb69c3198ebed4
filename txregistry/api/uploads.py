# -*- test-case-name: tests.api.test_uploads -*-
"""
Blob uploads: C{POST /v2/<name>/blobs/uploads/} and
C{GET}/C{PATCH}/C{PUT}/C{DELETE /v2/<name>/blobs/uploads/<id>}.

Each route checks everything it can from the request line and headers
before it touches the body, so a refused request costs no upload I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from txregistry.api.checks import checkDigest, headerValue, queryArgument
from txregistry.api.errors import DIGEST_INVALID, RANGE_INVALID, APIError
from txregistry.api.ranges import parseChunkRange
from txregistry.api.responses import emptyResponse
from txregistry.errors import RangeMismatch
from txregistry.interfaces import IBlobUpload, IBlobWriter
from txregistry.registry.digest import Digest
from txregistry.web.body import RequestBody
from txregistry.web.request import RegistryRequest

if TYPE_CHECKING:
    from txregistry.api.app import RegistryAPI


async def _uploadHeaders(
    api: "RegistryAPI", request: RegistryRequest, name: str, uploadID: str, size: int
) -> dict[str, str]:
    state = await api.uploadStates.sign(name, uploadID)
    return {
        "Location": api.urls.url(request, f"/v2/{name}/blobs/uploads/{uploadID}?_state={state}"),
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": uploadID,
    }


def _blobCreated(api: "RegistryAPI", request: RegistryRequest, name: str, digest: Digest) -> bytes:
    return emptyResponse(
        request,
        201,
        {
            "Location": api.urls.url(request, f"/v2/{name}/blobs/{digest}"),
            "Docker-Content-Digest": str(digest),
        },
    )


async def receive(body: RequestBody, writer: IBlobWriter) -> int:
    """
    Stream C{body} into C{writer} and close it; if the body does not
    arrive whole, the writer is aborted.

    @return: the size C{writer} reports.
    """
    try:
        await body.deliverTo(writer)
    except BaseException:
        await writer.abort()
        raise
    return await writer.close()  # type: ignore[no-any-return]


async def start(api: "RegistryAPI", request: RegistryRequest, name: str) -> Any:
    blobs = api.namespaceFor(request).repository(name).blobs()
    mount = queryArgument(request, b"mount")
    source = queryArgument(request, b"from")
    if mount is not None and source is not None:
        digest = checkDigest(mount)
        if await blobs.mount(digest, source) is not None:
            return _blobCreated(api, request, name, digest)
        # Not mountable: fall through to a fresh upload, as clients expect.
    else:
        digestText = queryArgument(request, b"digest")
        if digestText is not None:
            digest = checkDigest(digestText)
            await receive(request.body, await blobs.put(digest, request.body.length))
            return _blobCreated(api, request, name, digest)
    upload = await blobs.create()
    return emptyResponse(request, 202, await _uploadHeaders(api, request, name, upload.id, 0))


async def status(api: "RegistryAPI", request: RegistryRequest, name: str, uploadID: str) -> Any:
    await api.uploadStates.check(request, name, uploadID)
    upload = await api.namespaceFor(request).repository(name).blobs().resume(uploadID)
    return emptyResponse(request, 204, await _uploadHeaders(api, request, name, upload.id, upload.size))


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
        raise APIError(
            RANGE_INVALID,
            f"Content-Range {header!r} does not match Content-Length {length}",
        )
    return start


async def _append(
    api: "RegistryAPI", request: RegistryRequest, name: str, upload: IBlobUpload, start: int | None
) -> int:
    """
    Stream the request's body onto the end of C{upload}; a chunk that
    does not start where the upload ends is a 416 saying where it does.
    """
    try:
        writer = await upload.append(start, request.body.length)
    except RangeMismatch as mismatch:
        raise APIError(
            RANGE_INVALID,
            mismatch.message,
            mismatch.detail,
            headers=await _uploadHeaders(api, request, name, upload.id, mismatch.size),
        ) from None
    return await receive(request.body, writer)


async def chunk(api: "RegistryAPI", request: RegistryRequest, name: str, uploadID: str) -> Any:
    await api.uploadStates.check(request, name, uploadID)
    upload = await api.namespaceFor(request).repository(name).blobs().resume(uploadID)
    try:
        start = _declaredStart(request)
    except APIError as error:
        error.headers.update(await _uploadHeaders(api, request, name, upload.id, upload.size))
        raise
    size = await _append(api, request, name, upload, start)
    return emptyResponse(request, 202, await _uploadHeaders(api, request, name, upload.id, size))


async def complete(api: "RegistryAPI", request: RegistryRequest, name: str, uploadID: str) -> Any:
    await api.uploadStates.check(request, name, uploadID)
    blobs = api.namespaceFor(request).repository(name).blobs()
    digestText = queryArgument(request, b"digest")
    if digestText is None:
        raise APIError(DIGEST_INVALID, "the digest query argument is required")
    digest = checkDigest(digestText)
    start = _declaredStart(request)
    upload = await blobs.resume(uploadID)
    body = request.body
    if body.length is None or body.length > 0:
        await _append(api, request, name, upload, start)
    elif start is not None and start != upload.size:
        raise APIError(
            RANGE_INVALID,
            f"chunk starts at {start}, upload has {upload.size} bytes",
            headers=await _uploadHeaders(api, request, name, upload.id, upload.size),
        )
    await upload.commit(digest)
    return _blobCreated(api, request, name, digest)


async def cancel(api: "RegistryAPI", request: RegistryRequest, name: str, uploadID: str) -> Any:
    await api.uploadStates.check(request, name, uploadID)
    upload = await api.namespaceFor(request).repository(name).blobs().resume(uploadID)
    await upload.cancel()
    return emptyResponse(request, 204)
