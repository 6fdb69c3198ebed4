# -*- test-case-name: tests.api.test_sweep -*-
"""
Every error code of the distribution specs, the table that maps the
model's errors to them, and the one function that writes an error
response.

A route signals an error by raising L{APIError} (for what is wrong with
the request itself) or by letting a L{txregistry.errors} exception
through; L{writeError} turns either into the status, headers and
C{{"errors": [...]}} body the specs require.  The channel's early
refusals and unhandled failures use the same function through
L{errorBody}.  Nothing else writes an error response.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from twisted.web.iweb import IRequest

from txregistry import errors as model


@dataclass(frozen=True)
class ErrorCode:
    """
    One error code: its name on the wire, its default message and status.
    """

    value: str
    message: str
    status: int


# The codes of the OCI Distribution Spec v1.1 and the Docker Registry V2
# API, with the statuses the reference implementation registers them with.
BLOB_UNKNOWN = ErrorCode("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID = ErrorCode("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN = ErrorCode("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
DIGEST_INVALID = ErrorCode(
    "DIGEST_INVALID", "provided digest did not match uploaded content", 400
)
MANIFEST_BLOB_UNKNOWN = ErrorCode(
    "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", 400
)
MANIFEST_INVALID = ErrorCode("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_UNKNOWN = ErrorCode("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
MANIFEST_UNVERIFIED = ErrorCode(
    "MANIFEST_UNVERIFIED", "manifest failed signature verification", 400
)
NAME_INVALID = ErrorCode("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN = ErrorCode("NAME_UNKNOWN", "repository name not known to registry", 404)
PAGINATION_NUMBER_INVALID = ErrorCode(
    "PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400
)
RANGE_INVALID = ErrorCode("RANGE_INVALID", "invalid content range", 416)
SIZE_INVALID = ErrorCode("SIZE_INVALID", "provided length did not match content length", 400)
TAG_INVALID = ErrorCode("TAG_INVALID", "manifest tag did not match URI", 400)
UNAUTHORIZED = ErrorCode("UNAUTHORIZED", "authentication required", 401)
DENIED = ErrorCode("DENIED", "requested access to the resource is denied", 403)
UNSUPPORTED = ErrorCode("UNSUPPORTED", "the operation is unsupported", 405)
TOOMANYREQUESTS = ErrorCode("TOOMANYREQUESTS", "too many requests", 429)
UNKNOWN = ErrorCode("UNKNOWN", "unknown error", 500)
UNAVAILABLE = ErrorCode("UNAVAILABLE", "service unavailable", 503)

#: Every code, by its name on the wire.
CODES = {
    code.value: code for code in globals().copy().values() if isinstance(code, ErrorCode)
}

#: The model's errors as the spec's codes: the one table.
MODEL_CODES: dict[type[model.RegistryModelError], ErrorCode] = {
    model.NameInvalid: NAME_INVALID,
    model.NameUnknown: NAME_UNKNOWN,
    model.TagInvalid: TAG_INVALID,
    model.DigestInvalid: DIGEST_INVALID,
    model.BlobUnknown: BLOB_UNKNOWN,
    model.BlobUploadUnknown: BLOB_UPLOAD_UNKNOWN,
    model.BlobUploadInvalid: BLOB_UPLOAD_INVALID,
    model.RangeMismatch: RANGE_INVALID,
    model.ManifestUnknown: MANIFEST_UNKNOWN,
    model.ManifestInvalid: MANIFEST_INVALID,
    model.ManifestBlobUnknown: MANIFEST_BLOB_UNKNOWN,
    model.Unsupported: UNSUPPORTED,
    model.Denied: DENIED,
    # No spec code says "disk full"; 503 tells clients to come back later.
    model.InsufficientStorage: UNAVAILABLE,
    model.StorageUnavailable: UNAVAILABLE,
}


class APIError(Exception):
    """
    An error answer.

    @param code: one of this module's L{ErrorCode} constants.
    @param message: overrides the code's default message.
    @param detail: any JSON value giving specifics.
    @param status: overrides the code's default status.
    @param headers: extra response headers (C{WWW-Authenticate}, C{Range}...).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        detail: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.message = message or code.message
        self.detail = detail
        self.status = status or code.status
        self.headers = headers or {}
        super().__init__(code.value, self.message)

    @classmethod
    def fromModel(cls, error: model.RegistryModelError) -> "APIError":
        """
        The answer to an error of the model, by L{MODEL_CODES}.
        """
        code = next(
            MODEL_CODES[kind] for kind in type(error).__mro__ if kind in MODEL_CODES
        )
        return cls(code, error.message, error.detail)

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"

    def envelope(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return {"errors": [entry]}

    def body(self) -> bytes:
        return json.dumps(self.envelope(), separators=(",", ":")).encode("utf-8")


def asAPIError(error: BaseException) -> APIError:
    """
    C{error} as an answer: itself, its model code, or a 500 C{UNKNOWN}.
    """
    if isinstance(error, APIError):
        return error
    if isinstance(error, model.RegistryModelError):
        return APIError.fromModel(error)
    return APIError(UNKNOWN)


def writeError(request: IRequest, error: APIError) -> bytes:
    """
    Set C{request}'s status and headers for C{error}.

    @return: the body, for a route to return.
    """
    body = error.body()
    request.setResponseCode(error.status)
    for header, value in error.headers.items():
        request.setHeader(header.encode("latin-1"), value.encode("latin-1"))
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"content-length", b"%d" % len(body))
    return body


def errorBody(status: int, message: str | None) -> bytes:
    """
    The body of an answer the HTTP layer gives by itself: C{UNSUPPORTED}
    for a request it cannot parse, C{UNAUTHORIZED} for credentials it
    cannot take (an C{Authorization} header past its line limit),
    C{UNKNOWN} for a 500.  The composition root hands this to
    L{txregistry.web.site.RegistrySite}.
    """
    code = UNKNOWN if status >= 500 else UNAUTHORIZED if status == 401 else UNSUPPORTED
    return APIError(code, message, status=status).body()
