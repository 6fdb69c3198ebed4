# -*- test-case-name: tests.api.test_listing -*-
"""
Paginated listings: C{/v2/_catalog}, C{/v2/<name>/tags/list}, and the
referrers index C{/v2/<name>/referrers/<digest>}; and a repository's
usage, C{/v2/<name>/_usage}.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from twisted.web.iweb import IRequest

from txregistry.api.checks import checkDigest, queryArgument
from txregistry.api.errors import PAGINATION_NUMBER_INVALID, APIError
from txregistry.api.responses import jsonResponse
from txregistry.interfaces import Page
from txregistry.registry.manifests import OCI_INDEX

if TYPE_CHECKING:
    from txregistry.api.app import RegistryAPI

#: The most entries one page holds, whatever C{n} asks for.
MAX_PAGE = 10000
#: Catalog entries per page when the client gives no C{n}.
DEFAULT_CATALOG_PAGE = 1000

#: ASCII digits only (C{str.isdigit} takes C{"٣"} and C{"²"}).
_DIGITS = re.compile(r"[0-9]+")


def _pageArguments(request: IRequest, default: int | None) -> tuple[int | None, str | None]:
    """
    The page size (C{n}, capped at L{MAX_PAGE}) and C{last} a listing is
    asked for.
    """
    nText = queryArgument(request, b"n")
    last = queryArgument(request, b"last")
    if nText is None:
        n = default
    else:
        if _DIGITS.fullmatch(nText) is None:
            raise APIError(PAGINATION_NUMBER_INVALID, detail={"n": nText[:50]})
        # However large, a count is capped below, so never parse a huge one.
        n = MAX_PAGE if len(nText) > 12 else int(nText)
    if n is not None:
        n = min(n, MAX_PAGE)
    return n, last or None


def _link(api: "RegistryAPI", request: IRequest, path: str, n: int | None, page: Page) -> None:
    """
    Set the RFC 5988 C{Link} header to the next page when more follow.
    """
    if n and page.more and page.items:
        query = urlencode({"n": n, "last": page.items[-1]})
        link = api.urls.path(f"{path}?{query}")
        request.setHeader(b"link", f'<{link}>; rel="next"'.encode())


async def catalog(api: "RegistryAPI", request: IRequest) -> Any:
    n, last = _pageArguments(request, DEFAULT_CATALOG_PAGE)
    page = await api.namespaceFor(request).catalog(n, last)
    _link(api, request, "/v2/_catalog", n, page)
    return jsonResponse(request, {"repositories": page.items})


async def tags(api: "RegistryAPI", request: IRequest, name: str) -> Any:
    repository = api.namespaceFor(request).repository(name)
    n, last = _pageArguments(request, None)
    page = await repository.tags().list(n, last)
    _link(api, request, f"/v2/{name}/tags/list", n, page)
    return jsonResponse(request, {"name": name, "tags": page.items})


async def usage(api: "RegistryAPI", request: IRequest, name: str) -> Any:
    held = await api.namespaceFor(request).repository(name).usage()
    quota = None
    if held.quota is not None:
        quota = {"repository": held.quota, "maxbytes": held.maxBytes, "maxtags": held.maxTags}
    return jsonResponse(request, {"repository": name, "bytes": held.bytes, "blobs": held.blobs,
                                  "tags": held.tags, "quota": quota})


async def referrers(api: "RegistryAPI", request: IRequest, name: str, digest: str) -> Any:
    repository = api.namespaceFor(request).repository(name)
    subject = checkDigest(digest)
    descriptors = await repository.referrers(subject)
    artifactType = queryArgument(request, b"artifactType")
    if artifactType:
        descriptors = [d for d in descriptors if d.get("artifactType") == artifactType]
        request.setHeader(b"oci-filters-applied", b"artifactType")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    return jsonResponse(request, index, contentType=OCI_INDEX)
