"""
C{GET}/C{HEAD}/C{DELETE /v2/<name>/blobs/<digest>}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from txregistry.api.checks import checkDigest, checkName, headerValue
from txregistry.api.errors import RegistryError
from txregistry.api.ranges import parseByteRange
from txregistry.api.responses import emptyResponse, setHeaders, streamReader
from txregistry.storage.errors import PathNotFoundError
from txregistry.web.request import RegistryRequest

if TYPE_CHECKING:
    from txregistry.api.app import RegistryAPI

_log = Logger()


async def get(api: "RegistryAPI", request: RegistryRequest, name: str, digestText: str) -> Any:
    checkName(name)
    digest = checkDigest(digestText)
    registry = api.registry
    size = await registry.blobs.sizeIn(name, digest)
    if size is None:
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digestText})
    headers = {
        "Docker-Content-Digest": str(digest),
        "ETag": f'"{digest}"',
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
    if registry.redirect:
        # A driver that can hand out direct URLs (an object store) serves
        # the bytes itself, as storage.redirect asks.
        url = await registry.blobs.urlFor(digest, request.method.decode("ascii"))
        if url is not None:
            return emptyResponse(
                request, 307, {"Location": url, "Docker-Content-Digest": str(digest)}
            )
    reader = None
    if request.method != b"HEAD" and length > 0:
        # Open before any header is set: content that went away since the
        # size was read (a delete, garbage collection) is still a 404.
        try:
            reader = await registry.blobs.reader(digest, offset, length)
        except PathNotFoundError:
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digestText}) from None
    setHeaders(request, headers)
    request.setResponseCode(status)
    request.setHeader(b"content-length", b"%d" % length)
    if reader is None:
        return b""
    try:
        await streamReader(request, reader)
    except Exception:
        # Headers are out; all that is left is to cut the response short.
        _log.failure("Reading blob {digest} failed mid-response", digest=str(digest))
        transport = getattr(request.channel, "transport", None)
        if transport is not None:
            transport.abortConnection()
    return None


async def delete(api: "RegistryAPI", request: RegistryRequest, name: str, digestText: str) -> Any:
    checkName(name)
    digest = checkDigest(digestText)
    api.registry.checkDeletable()
    if not await api.registry.blobs.unlink(name, digest):
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digestText})
    return emptyResponse(request, 202, {"Docker-Content-Digest": str(digest)})
