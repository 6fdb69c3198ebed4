# -*- test-case-name: tests.client.test_registry -*-
"""
What the client raises: the model's own errors (L{txregistry.errors}) for
the distribution spec's codes a registry answers with, so that code using
the service interfaces cannot tell a remote registry from a local one, and
L{ClientError} for what has no model error (a refused login, a network
failure, a status no spec names).
"""

from __future__ import annotations

import json
from typing import Any

from txregistry import errors as model

__all__ = ["ClientError", "AuthenticationFailed", "NetworkError", "errorFor"]


class ClientError(model.RegistryModelError):
    """
    A request failed for a reason the model has no error for.

    @ivar status: the HTTP status, or L{None} when there was no response.
    """

    def __init__(self, message: str, status: int | None = None, detail: Any = None) -> None:
        super().__init__(message, detail)
        self.status = status

    def __str__(self) -> str:
        return self.message or type(self).__name__


class AuthenticationFailed(ClientError):
    """
    The registry (or its token server) refused the credentials, or asked
    for credentials there are none of.
    """


class NetworkError(ClientError):
    """
    The registry could not be reached, or the connection dropped, after
    every retry.
    """


#: The spec's codes as the model's errors (the inverse of the API's table).
_CODES: dict[str, type[model.RegistryModelError]] = {
    "NAME_INVALID": model.NameInvalid,
    "NAME_UNKNOWN": model.NameUnknown,
    "TAG_INVALID": model.TagInvalid,
    "DIGEST_INVALID": model.DigestInvalid,
    "SIZE_INVALID": model.DigestInvalid,
    "BLOB_UNKNOWN": model.BlobUnknown,
    "BLOB_UPLOAD_UNKNOWN": model.BlobUploadUnknown,
    "BLOB_UPLOAD_INVALID": model.BlobUploadInvalid,
    "RANGE_INVALID": model.RangeMismatch,
    "MANIFEST_UNKNOWN": model.ManifestUnknown,
    "MANIFEST_INVALID": model.ManifestInvalid,
    "MANIFEST_UNVERIFIED": model.ManifestInvalid,
    "MANIFEST_BLOB_UNKNOWN": model.ManifestBlobUnknown,
    "UNSUPPORTED": model.Unsupported,
    "DENIED": model.Denied,
    "UNAUTHORIZED": AuthenticationFailed,
}

#: What a body-less answer (a HEAD, a proxy's page) means, by status.
_STATUSES: dict[int, type[model.RegistryModelError]] = {
    401: AuthenticationFailed,
    403: model.Denied,
    405: model.Unsupported,
    416: model.RangeMismatch,
    507: model.InsufficientStorage,
}


def _make(cls: type[model.RegistryModelError], message: str, detail: Any,
          status: int) -> model.RegistryModelError:
    # The model's errors build their detail from their own arguments; a
    # client knows only the envelope's, so it sets what they would.
    error = cls.__new__(cls)
    model.RegistryModelError.__init__(error, message, detail)
    if isinstance(error, ClientError):
        error.status = status
    if isinstance(error, model.RangeMismatch):
        error.size = (detail or {}).get("size", 0) if isinstance(detail, dict) else 0
    if isinstance(error, model.ManifestBlobUnknown):
        error.digests = (detail or {}).get("digests", []) if isinstance(detail, dict) else []
    return error


def errorFor(status: int, body: bytes, what: str,
             notFound: type[model.RegistryModelError] | None = None) -> model.RegistryModelError:
    """
    The error an answer of C{status} with C{body} (an error envelope, or
    anything) means.

    @param what: what was asked, for the message (C{GET
        https://host/v2/a/manifests/v1}).
    @param notFound: the model's error for a 404 without an envelope (a
        HEAD's answer).
    """
    try:
        first = json.loads(body)["errors"][0]
        code, message, detail = first.get("code"), first.get("message"), first.get("detail")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        code, message, detail = None, None, None
    cls = _CODES.get(code or "") or _STATUSES.get(status)
    if cls is None and status == 404 and notFound is not None:
        cls = notFound
    text = f"{what}: {status} {code or ''} {message or ''}".rstrip().replace("  ", " ")
    if cls is None:
        return ClientError(text, status, detail)
    return _make(cls, text, detail, status)
