# -*- test-case-name: tests.registry.test_store -*-
"""
The errors of the registry's service model.

The model (L{txregistry.interfaces}) raises these; it knows nothing of
HTTP.  The API maps each class to the distribution spec's error code and
status in one table (L{txregistry.api.errors}), and a client library
raises the same classes for the codes it is answered with.

Each error carries a human C{message} and a C{detail}: a JSON value
naming what was wrong (the digest, the tag, the missing blobs), sent as
the envelope's C{detail}.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "RegistryModelError",
    "NameInvalid",
    "NameUnknown",
    "TagInvalid",
    "DigestInvalid",
    "BlobUnknown",
    "BlobUploadUnknown",
    "BlobUploadInvalid",
    "RangeMismatch",
    "ManifestUnknown",
    "ManifestInvalid",
    "ManifestBlobUnknown",
    "Unsupported",
    "Denied",
    "InsufficientStorage",
]

#: How much of a client-supplied value an error repeats back.
_ECHO = 300


class RegistryModelError(Exception):
    """
    Something the caller asked of the registry cannot be done.

    @ivar message: what went wrong, for a person; L{None} for the code's
        own message.
    @ivar detail: a JSON value with the specifics, or L{None}.
    """

    message: str | None = None

    def __init__(self, message: str | None = None, detail: Any = None) -> None:
        self.message = message
        self.detail = detail
        super().__init__(message or type(self).__name__)


class NameInvalid(RegistryModelError):
    """
    A repository name does not follow the spec's grammar.
    """

    def __init__(self, name: str) -> None:
        super().__init__(detail={"name": name[:_ECHO]})


class NameUnknown(RegistryModelError):
    """
    No such repository.
    """

    def __init__(self, name: str) -> None:
        super().__init__(detail={"name": name})


class TagInvalid(RegistryModelError):
    """
    A tag does not follow the spec's grammar.
    """

    def __init__(self, tag: str) -> None:
        super().__init__(detail={"tag": tag[:_ECHO]})


class DigestInvalid(RegistryModelError):
    """
    A digest is malformed, or content does not match the digest it was
    given under.
    """

    def __init__(
        self, message: str | None = None, digest: str = "", actual: str | None = None
    ) -> None:
        detail: dict[str, str] = {"digest": digest[:_ECHO]}
        if actual is not None:
            detail["actual"] = actual
        super().__init__(message, detail)


class BlobUnknown(RegistryModelError):
    """
    The repository has no such blob.
    """

    def __init__(self, digest: str) -> None:
        super().__init__(detail={"digest": digest})


class BlobUploadUnknown(RegistryModelError):
    """
    No such upload (never started, finished, cancelled or purged).
    """


class BlobUploadInvalid(RegistryModelError):
    """
    An upload cannot go on (its content changed under it).
    """


class RangeMismatch(RegistryModelError):
    """
    A chunk does not start where the upload ends.

    @ivar size: the upload's current size, which the next chunk must
        start at.
    """

    def __init__(self, message: str | None, size: int) -> None:
        super().__init__(message, {"size": size})
        self.size = size


class ManifestUnknown(RegistryModelError):
    """
    The repository has no manifest by that tag or digest.
    """

    @classmethod
    def tag(cls, tag: str) -> "ManifestUnknown":
        return cls(detail={"tag": tag[:_ECHO]})

    @classmethod
    def digest(cls, digest: str) -> "ManifestUnknown":
        return cls(detail={"digest": digest})


class ManifestInvalid(RegistryModelError):
    """
    A manifest is not one the registry can store.
    """


class ManifestBlobUnknown(RegistryModelError):
    """
    A manifest names blobs or manifests the repository does not have.

    @ivar digests: the missing ones.
    """

    def __init__(self, digests: list[str]) -> None:
        super().__init__(detail={"digests": digests})
        self.digests = digests


class Unsupported(RegistryModelError):
    """
    The registry does not do this (read-only mode, deletes disabled).
    """


class Denied(RegistryModelError):
    """
    The caller may not do this.
    """


class InsufficientStorage(RegistryModelError):
    """
    The storage has no room for what was pushed; nothing partial was kept.
    """


class StorageUnavailable(RegistryModelError):
    """
    The storage did not answer, or said it is overloaded, even after
    retries; nothing partial was kept, and the client may try again.
    """
