# -*- test-case-name: tests.api.test_blobs -*-
"""
C{GET}/C{HEAD}/C{DELETE /v2/<name>/blobs/<digest>}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from txregistry.api.checks import checkDigest, headerValue
from txregistry.api.ranges import parseByteRange
from txregistry.api.responses import emptyResponse, setHeaders, streamReader
from txregistry.web.request import RegistryRequest

if TYPE_CHECKING:
    from txregistry.api.app import RegistryAPI

_log = Logger()


async def get(api: "RegistryAPI", request: RegistryRequest, name: str, digest: str) -> Any:
    blobs = api.namespaceFor(request).repository(name).blobs()
    checked = checkDigest(digest)
    descriptor = await blobs.stat(checked)
    size = descriptor.size
    headers = {
        "Docker-Content-Digest": str(checked),
        "ETag": f'"{checked}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
        "Content-Type": "application/octet-stream",
    }
    offset, length, status = 0, size, 200
    rangeHeader = headerValue(request, b"range")
    if rangeHeader is not None:
        wanted = parseByteRange(rangeHeader, size)
        if wanted is not None:
            offset, length = wanted
            status = 206
            headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{size}"
    # A store that hands out direct URLs (an object store, under
    # storage.redirect) serves the bytes itself.
    url = await blobs.redirectURL(checked, request.method.decode("ascii"))
    if url is not None:
        return emptyResponse(
            request, 307, {"Location": url, "Docker-Content-Digest": str(checked)}
        )
    reader = None
    if request.method != b"HEAD" and length > 0:
        # Open before any header is set: content that went away since the
        # size was read (a delete, garbage collection) is still a 404.
        reader = await blobs.reader(checked, offset, length)
    setHeaders(request, headers)
    request.setResponseCode(status)
    request.setHeader(b"content-length", b"%d" % length)
    if reader is None:
        return b""
    try:
        await streamReader(request, reader)
    except Exception:
        # Headers are out; all that is left is to cut the response short.
        _log.failure("Reading blob {digest} failed mid-response", digest=str(checked))
        transport = getattr(request.channel, "transport", None)
        if transport is not None:
            transport.abortConnection()
    return None


async def delete(api: "RegistryAPI", request: RegistryRequest, name: str, digest: str) -> Any:
    blobs = api.namespaceFor(request).repository(name).blobs()
    checked = checkDigest(digest)
    await blobs.delete(checked)
    return emptyResponse(request, 202, {"Docker-Content-Digest": str(checked)})
