"""
Every error code of the distribution specs, and the JSON envelope they are
sent in.

A route signals an error by raising L{RegistryError}; the application turns
it into the status, headers and C{{"errors": [...]}} body the specs
require.  Nothing else writes an error response.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    """
    One error code: its name on the wire, its default message and status.
    """

    value: str
    message: str
    status: int


def _codes(*codes: ErrorCode) -> dict[str, ErrorCode]:
    return {c.value: c for c in codes}


#: The codes of the OCI Distribution Spec v1.1 and the Docker Registry V2
#: API, with the statuses the reference implementation registers them with.
CODES = _codes(
    ErrorCode("BLOB_UNKNOWN", "blob unknown to registry", 404),
    ErrorCode("BLOB_UPLOAD_INVALID", "blob upload invalid", 400),
    ErrorCode("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404),
    ErrorCode("DIGEST_INVALID", "provided digest did not match uploaded content", 400),
    ErrorCode(
        "MANIFEST_BLOB_UNKNOWN",
        "manifest references a manifest or blob unknown to registry",
        400,
    ),
    ErrorCode("MANIFEST_INVALID", "manifest invalid", 400),
    ErrorCode("MANIFEST_UNKNOWN", "manifest unknown to registry", 404),
    ErrorCode("MANIFEST_UNVERIFIED", "manifest failed signature verification", 400),
    ErrorCode("NAME_INVALID", "invalid repository name", 400),
    ErrorCode("NAME_UNKNOWN", "repository name not known to registry", 404),
    ErrorCode(
        "PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400
    ),
    ErrorCode("RANGE_INVALID", "invalid content range", 416),
    ErrorCode("SIZE_INVALID", "provided length did not match content length", 400),
    ErrorCode("TAG_INVALID", "manifest tag did not match URI", 400),
    ErrorCode("UNAUTHORIZED", "authentication required", 401),
    ErrorCode("DENIED", "requested access to the resource is denied", 403),
    ErrorCode("UNSUPPORTED", "the operation is unsupported", 405),
    ErrorCode("TOOMANYREQUESTS", "too many requests", 429),
    ErrorCode("UNKNOWN", "unknown error", 500),
    ErrorCode("UNAVAILABLE", "service unavailable", 503),
)


class RegistryError(Exception):
    """
    An error answer: raise it from a route.

    @param code: a key of L{CODES}.
    @param message: overrides the code's default message.
    @param detail: any JSON value giving specifics.
    @param status: overrides the code's default status.
    @param headers: extra response headers (C{WWW-Authenticate}, C{Range}...).
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        detail: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = CODES[code]
        self.message = message or self.code.message
        self.detail = detail
        self.status = status or self.code.status
        self.headers = headers or {}
        super().__init__(code, self.message)

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"

    def envelope(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return {"errors": [entry]}

    def body(self) -> bytes:
        return json.dumps(self.envelope()).encode("utf-8")


def internalErrorBody() -> bytes:
    """
    The body of a 500: the envelope with C{UNKNOWN}, never a traceback.
    """
    return RegistryError("UNKNOWN").body()
