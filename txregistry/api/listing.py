"""
Paginated listings: C{/v2/_catalog}, C{/v2/<name>/tags/list}, and the
referrers index C{/v2/<name>/referrers/<digest>}.
"""

from __future__ import annotations

import bisect
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from twisted.web.iweb import IRequest

from txregistry.api.checks import checkDigest, checkName, queryArgument
from txregistry.api.errors import RegistryError
from txregistry.api.responses import jsonResponse
from txregistry.registry.manifests import OCI_INDEX

if TYPE_CHECKING:
    from txregistry.api.app import RegistryAPI

#: The most entries one page holds, whatever C{n} asks for.
MAX_PAGE = 10000
#: Catalog entries per page when the client gives no C{n}.
DEFAULT_CATALOG_PAGE = 1000

#: ASCII digits only (C{str.isdigit} takes C{"٣"} and C{"²"}).
_DIGITS = re.compile(r"[0-9]+")


def _page(
    api: "RegistryAPI", request: IRequest, path: str, items: list[str], default: int | None
) -> list[str]:
    """
    Cut the sorted C{items} to the page C{n}/C{last} ask for, setting the
    RFC 5988 C{Link} header when more follow.
    """
    nText = queryArgument(request, b"n")
    last = queryArgument(request, b"last")
    if nText is None:
        n = default
    else:
        if _DIGITS.fullmatch(nText) is None:
            raise RegistryError(
                "PAGINATION_NUMBER_INVALID", detail={"n": nText[:50]}
            )
        # However large, a count is capped below, so never parse a huge one.
        n = MAX_PAGE if len(nText) > 12 else int(nText)
    if n is not None:
        n = min(n, MAX_PAGE)
    start = bisect.bisect_right(items, last) if last else 0
    end = len(items) if n is None else min(len(items), start + n)
    page = items[start:end]
    if n and end < len(items) and page:
        query = urlencode({"n": n, "last": page[-1]})
        link = api.urls.path(f"{path}?{query}")
        request.setHeader(b"link", f'<{link}>; rel="next"'.encode())
    return page


async def catalog(api: "RegistryAPI", request: IRequest) -> Any:
    repositories = await api.registry.repositories()
    page = _page(api, request, "/v2/_catalog", repositories, DEFAULT_CATALOG_PAGE)
    return jsonResponse(request, {"repositories": page})


async def tags(api: "RegistryAPI", request: IRequest, name: str) -> Any:
    checkName(name)
    allTags = await api.registry.manifests.tags(name)
    page = _page(api, request, f"/v2/{name}/tags/list", allTags, None)
    return jsonResponse(request, {"name": name, "tags": page})


async def referrers(api: "RegistryAPI", request: IRequest, name: str, digestText: str) -> Any:
    checkName(name)
    subject = checkDigest(digestText)
    descriptors = await api.registry.manifests.referrers(name, subject)
    artifactType = queryArgument(request, b"artifactType")
    if artifactType:
        descriptors = [d for d in descriptors if d.get("artifactType") == artifactType]
        request.setHeader(b"oci-filters-applied", b"artifactType")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    return jsonResponse(request, index, contentType=OCI_INDEX)
