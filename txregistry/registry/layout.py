"""
Where each piece of registry state lives in storage.

The layout is the reference implementation's (C{/docker/registry/v2/...}),
so operators can point txregistry at an existing filesystem registry and
back.  Repository names and tags are checked before they get here, and
every path is checked again by the driver.
"""

from __future__ import annotations

from txregistry.registry.digest import Digest

ROOT = "/docker/registry/v2"
REPOSITORIES = f"{ROOT}/repositories"


def blobDirectory(digest: Digest) -> str:
    return f"{ROOT}/blobs/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}"


def blobData(digest: Digest) -> str:
    return f"{blobDirectory(digest)}/data"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layerLink(name: str, digest: Digest) -> str:
    return f"{repository(name)}/_layers/{digest.algorithm}/{digest.encoded}/link"


def uploadsDirectory(name: str) -> str:
    return f"{repository(name)}/_uploads"


def uploadData(name: str, uploadID: str) -> str:
    return f"{uploadsDirectory(name)}/{uploadID}/data"


def manifestsDirectory(name: str) -> str:
    return f"{repository(name)}/_manifests"


def revisionDirectory(name: str, digest: Digest) -> str:
    return f"{manifestsDirectory(name)}/revisions/{digest.algorithm}/{digest.encoded}"


def revisionLink(name: str, digest: Digest) -> str:
    return f"{revisionDirectory(name, digest)}/link"


def revisionMediaType(name: str, digest: Digest) -> str:
    """
    The media type a manifest was pushed with, kept only for manifests
    whose content has no C{mediaType} field.
    """
    return f"{revisionDirectory(name, digest)}/mediatype"


def tagsDirectory(name: str) -> str:
    return f"{manifestsDirectory(name)}/tags"


def tagDirectory(name: str, tag: str) -> str:
    return f"{tagsDirectory(name)}/{tag}"


def tagCurrentLink(name: str, tag: str) -> str:
    return f"{tagDirectory(name, tag)}/current/link"


def tagIndexLink(name: str, tag: str, digest: Digest) -> str:
    return f"{tagDirectory(name, tag)}/index/{digest.algorithm}/{digest.encoded}/link"


def referrersDirectory(name: str, subject: Digest) -> str:
    return f"{repository(name)}/_referrers/{subject.algorithm}/{subject.encoded}"


def referrerLink(name: str, subject: Digest, referrer: Digest) -> str:
    """
    The descriptor (JSON) of a manifest whose C{subject} is C{subject}.
    """
    return f"{referrersDirectory(name, subject)}/{referrer.algorithm}/{referrer.encoded}/link"
