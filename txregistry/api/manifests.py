# -*- test-case-name: tests.api.test_manifests -*-
"""
C{GET}/C{HEAD}/C{PUT}/C{DELETE /v2/<name>/manifests/<reference>}.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from txregistry.api.checks import checkDigest, headerValue
from txregistry.api.errors import MANIFEST_INVALID, MANIFEST_UNKNOWN, TAG_INVALID, APIError
from txregistry.api.negotiation import acceptedTypes, isAcceptable
from txregistry.api.responses import emptyResponse, setHeaders
from txregistry.errors import RegistryModelError
from txregistry.interfaces import IRepository, Manifest
from txregistry.registry.digest import Digest, InvalidDigest
from txregistry.registry.manifests import MANIFEST_TYPES, MAX_MANIFEST_SIZE
from txregistry.registry.names import isValidTag
from txregistry.web.body import BodyTooLarge
from txregistry.web.request import RegistryRequest

if TYPE_CHECKING:
    from txregistry.api.app import RegistryAPI


def _checkReference(reference: str) -> Digest | None:
    """
    A reference is a digest (checked: C{DIGEST_INVALID}) or a tag; a
    malformed tag cannot name anything (C{MANIFEST_UNKNOWN}).

    @return: the digest, or L{None} for a tag.
    """
    if ":" in reference:
        return checkDigest(reference)
    if not isValidTag(reference):
        raise APIError(MANIFEST_UNKNOWN, detail={"tag": reference[:300]})
    return None


async def _negotiate(request: RegistryRequest, repository: IRepository, manifest: Manifest) -> Manifest:
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
                    digest = Digest.parse(str(child.get("digest")))
                    return await repository.manifests().get(digest)  # type: ignore[no-any-return]
                except (RegistryModelError, InvalidDigest):
                    # The child went away: what was pushed is still there.
                    return manifest
    return manifest


async def get(api: "RegistryAPI", request: RegistryRequest, name: str, reference: str) -> Any:
    repository = api.namespaceFor(request).repository(name)
    digest = _checkReference(reference)
    if digest is None:
        digest = await repository.tags().get(reference)
    manifest = await repository.manifests().get(digest)
    manifest = await _negotiate(request, repository, manifest)
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
    repository = api.namespaceFor(request).repository(name)
    expected = None
    if ":" in reference:
        expected = checkDigest(reference)
    elif not isValidTag(reference):
        raise APIError(TAG_INVALID, detail={"tag": reference[:300]})
    try:
        content = await request.body.read(MAX_MANIFEST_SIZE)
    except BodyTooLarge:
        raise APIError(
            MANIFEST_INVALID,
            f"manifest is larger than {MAX_MANIFEST_SIZE} bytes",
            detail={"limit": MAX_MANIFEST_SIZE},
            status=413,
        ) from None
    stored = await repository.manifests().put(
        content, headerValue(request, b"content-type"), expected
    )
    if expected is None:
        await repository.tags().tag(reference, stored.digest)
    headers = {
        "Location": api.urls.url(request, f"/v2/{name}/manifests/{stored.digest}"),
        "Docker-Content-Digest": str(stored.digest),
    }
    if stored.subject is not None:
        headers["OCI-Subject"] = str(stored.subject)
    return emptyResponse(request, 201, headers)


async def delete(api: "RegistryAPI", request: RegistryRequest, name: str, reference: str) -> Any:
    repository = api.namespaceFor(request).repository(name)
    digest = _checkReference(reference)
    if digest is not None:
        await repository.manifests().delete(digest)
    else:
        await repository.tags().untag(reference)
    return emptyResponse(request, 202)
