# -*- test-case-name: tests.registry.test_store -*-
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

#: The directory a repository has once a manifest was pushed to it: what
#: makes it a repository (the catalog's, the tags list's) rather than a
#: path on the way to one.
MANIFESTS = "_manifests"
#: The directories of a repository that content was pushed to: it exists
#: (its tags can be listed) once it has one of them.  Uploads alone do not
#: make a repository.
CONTENT = frozenset({MANIFESTS, "_layers"})
#: Directory names in a repository that are its state, not child names
#: (repository name components never start with C{_}).
_INTERNAL_PREFIX = "_"


def blobDirectory(digest: Digest) -> str:
    return f"{ROOT}/blobs/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}"


def blobData(digest: Digest) -> str:
    return f"{blobDirectory(digest)}/data"


#: Where every blob's content lives.
BLOBS = f"{ROOT}/blobs"
#: Where a garbage collection writes the stamp that tells it the storage's
#: time.
COLLECTIONS = f"{ROOT}/collections"


def blobLease(digest: Digest) -> str:
    """
    Touched (written again) whenever a write comes to depend on the blob
    (a manifest naming it, a mount, a commit of the same content), while
    online garbage collection is on: its time says the blob is in use.
    """
    return f"{blobDirectory(digest)}/lease"


def blobCondemned(digest: Digest) -> str:
    """
    Written by online garbage collection before it removes the blob: a
    manifest PUT that finds it does not answer 201 on the blob's account.
    """
    return f"{blobDirectory(digest)}/condemned"


def parseBlobPath(path: str) -> tuple[Digest, str] | None:
    """
    The digest and file name (C{data}, C{lease}, C{condemned}) of a path
    below L{BLOBS}, or L{None} if C{path} is not one.
    """
    if not path.startswith(BLOBS + "/"):
        return None
    parts = path[len(BLOBS) + 1:].split("/")
    if len(parts) != 4:
        return None
    algorithm, _, encoded, leafName = parts
    try:
        return Digest.parse(f"{algorithm}:{encoded}"), leafName
    except ValueError:
        return None


def parseRepositoryPath(path: str) -> tuple[str, list[str]] | None:
    """
    The repository name and the components of its state directory (from
    C{_manifests}, C{_layers} or C{_referrers} on) of a path below
    L{REPOSITORIES}, or L{None}.
    """
    if not path.startswith(REPOSITORIES + "/"):
        return None
    parts = path[len(REPOSITORIES) + 1:].split("/")
    for index, part in enumerate(parts):
        if isInternal(part):
            if index == 0:
                return None
            return "/".join(parts[:index]), parts[index:]
    return None


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layersDirectory(name: str) -> str:
    return f"{repository(name)}/_layers"


def layerLink(name: str, digest: Digest) -> str:
    return f"{repository(name)}/_layers/{digest.algorithm}/{digest.encoded}/link"


def uploadsDirectory(name: str) -> str:
    return f"{repository(name)}/_uploads"


def uploadDirectory(name: str, uploadID: str) -> str:
    return f"{uploadsDirectory(name)}/{uploadID}"


def uploadData(name: str, uploadID: str) -> str:
    return f"{uploadDirectory(name, uploadID)}/data"


def parseUploadData(path: str) -> tuple[str, str] | None:
    """
    The repository name and upload id of an upload's data path, or L{None}
    if C{path} is not one.
    """
    prefix = f"{REPOSITORIES}/"
    if not path.startswith(prefix):
        return None
    parts = path[len(prefix):].rsplit("/", 3)
    if len(parts) != 4 or parts[1] != "_uploads" or parts[3] != "data":
        return None
    return parts[0], parts[2]


def leaf(path: str) -> str:
    """
    The last component of a storage path.
    """
    return path.rsplit("/", 1)[-1]


def isInternal(component: str) -> bool:
    """
    Whether a directory of a repository holds its state (C{_manifests},
    C{_layers}, C{_uploads}, C{_referrers}) rather than a child repository.
    """
    return component.startswith(_INTERNAL_PREFIX)


def manifestsDirectory(name: str) -> str:
    return f"{repository(name)}/{MANIFESTS}"


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


def tagPulled(name: str, tag: str) -> str:
    """
    Rewritten (at most hourly) when the tag is pulled, while a retention
    policy asks for pull times: its time is the tag's last pull.
    """
    return f"{tagDirectory(name, tag)}/pulled"


def tagIndexLink(name: str, tag: str, digest: Digest) -> str:
    return f"{tagDirectory(name, tag)}/index/{digest.algorithm}/{digest.encoded}/link"


def referrersDirectory(name: str, subject: Digest) -> str:
    return f"{repository(name)}/_referrers/{subject.algorithm}/{subject.encoded}"


def referrerDirectory(name: str, subject: Digest, referrer: Digest) -> str:
    return f"{referrersDirectory(name, subject)}/{referrer.algorithm}/{referrer.encoded}"


def referrerLink(name: str, subject: Digest, referrer: Digest) -> str:
    """
    The descriptor (JSON) of a manifest whose C{subject} is C{subject}.
    """
    return f"{referrerDirectory(name, subject, referrer)}/link"


#: A file the storage health check writes, to learn that storage takes
#: writes (a stat alone does not see a read-only or full disk).
HEALTH_PROBE = f"{ROOT}/_health"

#: The upload-signing secret generated when C{http.secret} is empty, kept
#: so that every instance on this storage, and the next start, share it.
HTTP_SECRET = f"{ROOT}/_txregistry/httpsecret"
#: An HMAC of a fixed string under C{http.secret}: how an instance learns
#: at start that the others on this storage were given another secret.
HTTP_SECRET_CHECK = f"{ROOT}/_txregistry/httpsecretcheck"
