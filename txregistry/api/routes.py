# -*- test-case-name: tests.api.test_routes -*-
"""
The V2 API as data: every route, with what it needs and what it answers.

This is the reference implementation's API descriptor.  The Klein routes
are registered from L{ROUTES} (L{txregistry.api.app}), access control
takes each route's scope from it, and C{docs/api.rst} is generated from
it (L{txregistry.api.describe}).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from txregistry.api import blobs, listing, manifests, uploads
from txregistry.api.errors import (
    BLOB_UNKNOWN,
    BLOB_UPLOAD_INVALID,
    BLOB_UPLOAD_UNKNOWN,
    DIGEST_INVALID,
    MANIFEST_BLOB_UNKNOWN,
    MANIFEST_INVALID,
    MANIFEST_UNKNOWN,
    NAME_INVALID,
    NAME_UNKNOWN,
    PAGINATION_NUMBER_INVALID,
    RANGE_INVALID,
    SIZE_INVALID,
    TAG_INVALID,
    UNSUPPORTED,
    ErrorCode,
)
from txregistry.api.responses import jsonResponse

# The access a route needs, as token scopes name it.
PULL = "pull"
PUSH = "push"
DELETE = "delete"
CATALOG = "catalog"

# What a route does with a request body.
NO_BODY = "none"
BOUNDED_BODY = "bounded"
STREAMED_BODY = "streamed"


@dataclass(frozen=True)
class Route:
    """
    One route of the API.

    @ivar name: a stable name (C{"blob.get"}).
    @ivar methods: the HTTP methods it answers.
    @ivar path: its path template, C{<name>} being a repository name (which
        may hold slashes).
    @ivar access: what the caller needs: L{PULL}, L{PUSH} or L{DELETE} on
        the repository, L{CATALOG} on the registry, or L{None} for none.
    @ivar body: L{NO_BODY}, L{BOUNDED_BODY} (read whole, up to a limit) or
        L{STREAMED_BODY} (streamed into storage).
    @ivar statuses: its success statuses.
    @ivar headers: the headers of a successful answer.
    @ivar errors: the error codes it may answer with (beyond those every
        route may: C{UNAUTHORIZED}, C{DENIED}, C{TOOMANYREQUESTS},
        C{UNKNOWN}, C{UNAVAILABLE}).
    @ivar handler: C{handler(api, request, **pathArguments)}.
    @ivar changesStorage: whether it runs to its end once started (see
        L{txregistry.api.app.runsToTheEnd}).
    @ivar description: one line for the API document.
    """

    name: str
    methods: tuple[str, ...]
    path: str
    access: str | None
    body: str
    statuses: tuple[int, ...]
    headers: tuple[str, ...]
    errors: tuple[ErrorCode, ...]
    handler: Callable[..., Any]
    changesStorage: bool
    description: str

    @property
    def rule(self) -> str:
        """
        The path as a Werkzeug rule: a repository name matches slashes.
        """
        return self.path.replace("<name>", "<path:name>")


def _base(api: Any, request: Any) -> bytes:
    return jsonResponse(request, {})


_NAME = (NAME_INVALID,)
_BLOB_HEADERS = ("Docker-Content-Digest", "ETag", "Accept-Ranges", "Cache-Control",
                 "Content-Type", "Content-Length", "Content-Range")
_UPLOAD_HEADERS = ("Location", "Range", "Docker-Upload-UUID")
_CREATED_HEADERS = ("Location", "Docker-Content-Digest")

ROUTES: tuple[Route, ...] = (
    Route("base", ("GET", "HEAD"), "/v2/", None, NO_BODY, (200,),
          ("Docker-Distribution-API-Version",), (), _base, False,
          "Whether the registry speaks the V2 API (and whether the caller may use it)."),
    Route("catalog", ("GET", "HEAD"), "/v2/_catalog", CATALOG, NO_BODY, (200,),
          ("Content-Type", "Link"), (PAGINATION_NUMBER_INVALID,), listing.catalog, False,
          "A page of repository names (n, last); Link names the next page."),
    Route("tags.list", ("GET", "HEAD"), "/v2/<name>/tags/list", PULL, NO_BODY, (200,),
          ("Content-Type", "Link"), _NAME + (NAME_UNKNOWN, PAGINATION_NUMBER_INVALID),
          listing.tags, False, "A page of the repository's tags (n, last)."),
    Route("referrers", ("GET", "HEAD"), "/v2/<name>/referrers/<digest>", PULL, NO_BODY, (200,),
          ("Content-Type", "OCI-Filters-Applied"), _NAME + (DIGEST_INVALID,),
          listing.referrers, False,
          "The image index of the manifests whose subject is digest (artifactType filters)."),
    Route("usage", ("GET", "HEAD"), "/v2/<name>/_usage", PULL, NO_BODY, (200,),
          ("Content-Type",), _NAME, listing.usage, False,
          "txregistry's own: the bytes, blobs and tags the repository holds, and its quota."),
    Route("manifest.get", ("GET", "HEAD"), "/v2/<name>/manifests/<reference>", PULL, NO_BODY,
          (200,), ("Content-Type", "Docker-Content-Digest", "ETag", "Content-Length"),
          _NAME + (DIGEST_INVALID, MANIFEST_UNKNOWN), manifests.get, False,
          "A manifest by tag or digest, negotiated by Accept."),
    Route("manifest.put", ("PUT",), "/v2/<name>/manifests/<reference>", PUSH, BOUNDED_BODY,
          (201,), ("Location", "Docker-Content-Digest", "OCI-Subject"),
          _NAME + (DIGEST_INVALID, TAG_INVALID, MANIFEST_INVALID, MANIFEST_BLOB_UNKNOWN,
                   UNSUPPORTED),
          manifests.put, True, "Store a manifest (at most 4 MiB) and tag it, or name it by digest."),
    Route("manifest.delete", ("DELETE",), "/v2/<name>/manifests/<reference>", DELETE, NO_BODY,
          (202,), (), _NAME + (DIGEST_INVALID, MANIFEST_UNKNOWN, UNSUPPORTED),
          manifests.delete, True,
          "Delete a manifest by digest (with its tags), or only a tag."),
    Route("blob.get", ("GET", "HEAD"), "/v2/<name>/blobs/<digest>", PULL, NO_BODY, (200, 206, 307),
          _BLOB_HEADERS + ("Location",), _NAME + (DIGEST_INVALID, BLOB_UNKNOWN, RANGE_INVALID),
          blobs.get, False,
          "A blob's content, whole or one Range; 307 to the store's own URL under storage.redirect."),
    Route("blob.delete", ("DELETE",), "/v2/<name>/blobs/<digest>", DELETE, NO_BODY, (202,),
          ("Docker-Content-Digest",), _NAME + (DIGEST_INVALID, BLOB_UNKNOWN, UNSUPPORTED),
          blobs.delete, True, "Remove a blob from the repository."),
    Route("upload.start", ("POST",), "/v2/<name>/blobs/uploads/", PUSH, STREAMED_BODY, (201, 202),
          _CREATED_HEADERS + _UPLOAD_HEADERS,
          _NAME + (DIGEST_INVALID, UNSUPPORTED), uploads.start, True,
          "Begin an upload (202); with digest, upload in one request (201); with mount and "
          "from, mount a blob of another repository (201, needs pull on from), else begin one."),
    Route("upload.status", ("GET", "HEAD"), "/v2/<name>/blobs/uploads/<uploadID>", PUSH, NO_BODY,
          (204,), _UPLOAD_HEADERS, _NAME + (BLOB_UPLOAD_UNKNOWN, BLOB_UPLOAD_INVALID),
          uploads.status, False,
          "How much of an upload the registry holds."),
    Route("upload.chunk", ("PATCH",), "/v2/<name>/blobs/uploads/<uploadID>", PUSH, STREAMED_BODY,
          (202,), _UPLOAD_HEADERS,
          _NAME + (BLOB_UPLOAD_UNKNOWN, BLOB_UPLOAD_INVALID, RANGE_INVALID, UNSUPPORTED),
          uploads.chunk, True, "Append a chunk (Content-Range optional)."),
    Route("upload.complete", ("PUT",), "/v2/<name>/blobs/uploads/<uploadID>", PUSH, STREAMED_BODY,
          (201,), _CREATED_HEADERS,
          _NAME + (DIGEST_INVALID, BLOB_UPLOAD_UNKNOWN, BLOB_UPLOAD_INVALID, RANGE_INVALID,
                   SIZE_INVALID, UNSUPPORTED),
          uploads.complete, True, "Append a last chunk (optional) and store the blob as digest."),
    Route("upload.cancel", ("DELETE",), "/v2/<name>/blobs/uploads/<uploadID>", PUSH, NO_BODY,
          (204,), (), _NAME + (BLOB_UPLOAD_UNKNOWN, BLOB_UPLOAD_INVALID, UNSUPPORTED),
          uploads.cancel, True,
          "Throw an upload away."),
)

#: Every route by name.
BY_NAME = {route.name: route for route in ROUTES}
