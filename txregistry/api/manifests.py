"""
C{GET}/C{HEAD}/C{PUT}/C{DELETE /v2/<name>/manifests/<reference>}.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from txregistry.api.checks import checkDigest, checkName, headerValue
from txregistry.api.errors import RegistryError
from txregistry.api.negotiation import acceptedTypes, isAcceptable
from txregistry.api.responses import emptyResponse, setHeaders
from txregistry.registry.digest import InvalidDigest
from txregistry.registry.manifests import MANIFEST_TYPES, MAX_MANIFEST_SIZE, Manifest
from txregistry.registry.names import isValidTag
from txregistry.web.body import BodyTooLarge
from txregistry.web.request import RegistryRequest

if TYPE_CHECKING:
    from txregistry.api.app import RegistryAPI


def _checkReference(reference: str) -> None:
    """
    A reference is a digest (checked: C{DIGEST_INVALID}) or a tag; a
    malformed tag cannot name anything (C{MANIFEST_UNKNOWN}).
    """
    if ":" in reference:
        checkDigest(reference)
    elif not isValidTag(reference):
        raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": reference[:300]})


async def _negotiate(api: "RegistryAPI", request: RegistryRequest, name: str, manifest: Manifest) -> Manifest:
    """
    A client that cannot take an index but takes single manifests gets the
    linux/amd64 one, as the reference implementation does; otherwise what
    was pushed is what is served.
    """
    accepted = acceptedTypes(request)
    if isAcceptable(manifest.mediaType, accepted) or not MANIFEST_TYPES.get(manifest.mediaType):
        return manifest
    try:
        children = json.loads(manifest.content).get("manifests", [])
    except (ValueError, AttributeError, RecursionError):
        return manifest
    for child in children if isinstance(children, list) else []:
        if not isinstance(child, dict):
            continue
        platform = child.get("platform")
        if not isinstance(platform, dict):
            continue
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            if isAcceptable(str(child.get("mediaType", "")), accepted):
                try:
                    return await api.registry.manifests.get(name, str(child.get("digest")))
                except (RegistryError, InvalidDigest):
                    # The child went away: what was pushed is still there.
                    return manifest
    return manifest


async def get(api: "RegistryAPI", request: RegistryRequest, name: str, reference: str) -> Any:
    checkName(name)
    _checkReference(reference)
    manifest = await api.registry.manifests.get(name, reference)
    manifest = await _negotiate(api, request, name, manifest)
    setHeaders(
        request,
        {
            "Content-Type": manifest.mediaType,
            "Docker-Content-Digest": str(manifest.digest),
            "ETag": f'"{manifest.digest}"',
        },
    )
    request.setHeader(b"content-length", b"%d" % len(manifest.content))
    return manifest.content


async def put(api: "RegistryAPI", request: RegistryRequest, name: str, reference: str) -> Any:
    checkName(name)
    registry = api.registry
    registry.checkWritable()
    if ":" in reference:
        checkDigest(reference)
    elif not isValidTag(reference):
        raise RegistryError("TAG_INVALID", detail={"tag": reference[:300]})
    try:
        content = await request.body.read(MAX_MANIFEST_SIZE)
    except BodyTooLarge:
        raise RegistryError(
            "MANIFEST_INVALID",
            f"manifest is larger than {MAX_MANIFEST_SIZE} bytes",
            detail={"limit": MAX_MANIFEST_SIZE},
            status=413,
        ) from None
    digest, subject = await registry.manifests.put(
        name, reference, headerValue(request, b"content-type"), content
    )
    headers = {
        "Location": api.urls.url(request, f"/v2/{name}/manifests/{digest}"),
        "Docker-Content-Digest": str(digest),
    }
    if subject is not None:
        headers["OCI-Subject"] = str(subject)
    return emptyResponse(request, 201, headers)


async def delete(api: "RegistryAPI", request: RegistryRequest, name: str, reference: str) -> Any:
    checkName(name)
    _checkReference(reference)
    registry = api.registry
    registry.checkDeletable()
    if ":" in reference:
        await registry.manifests.delete(name, checkDigest(reference))
    else:
        await registry.manifests.deleteTag(name, reference)
    return emptyResponse(request, 202)
