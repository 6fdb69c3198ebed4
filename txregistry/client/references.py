# -*- test-case-name: tests.client.test_references -*-
"""
Image references in skopeo's transport syntax:

    docker://HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]
    oci:DIRECTORY[:TAG]
    docker-archive:FILE[:REFERENCE]

A C{docker://} reference without a host is Docker Hub's (C{docker.io},
C{library/} for a one-part name), as docker reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from txregistry.registry.digest import Digest, InvalidDigest
from txregistry.registry.names import isValidName, isValidTag

__all__ = ["ReferenceError", "RegistryReference", "LayoutReference", "ArchiveReference", "parse",
           "parseRegistry"]

HUB = "docker.io"


class ReferenceError(ValueError):
    """
    A string is not an image reference.
    """


@dataclass(frozen=True)
class RegistryReference:
    """
    C{docker://host/repository[:tag][@digest]}.
    """

    host: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def reference(self) -> str:
        """
        What names the manifest in the API: the digest, else the tag
        (C{latest} when neither is given).
        """
        return str(self.digest) if self.digest else (self.tag or "latest")


@dataclass(frozen=True)
class LayoutReference:
    """
    C{oci:DIRECTORY[:TAG]}.
    """

    directory: str
    tag: str | None = None

    def __str__(self) -> str:
        return f"oci:{self.directory}" + (f":{self.tag}" if self.tag else "")


@dataclass(frozen=True)
class ArchiveReference:
    """
    C{docker-archive:FILE[:REFERENCE]}: REFERENCE is the C{RepoTags}
    entry (C{name:tag}) written, or read.
    """

    path: str
    reference: str | None = None

    def __str__(self) -> str:
        return f"docker-archive:{self.path}" + (f":{self.reference}" if self.reference else "")


Reference = RegistryReference | LayoutReference | ArchiveReference


def parseRegistry(text: str) -> RegistryReference:
    """
    C{[host/]repository[:tag][@digest]}, without C{docker://}.
    """
    rest, digest = text, None
    if "@" in rest:
        rest, _, digestText = rest.partition("@")
        try:
            digest = Digest.parse(digestText)
        except InvalidDigest as e:
            raise ReferenceError(f"{text}: {e}") from None
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not isValidTag(tag):
            raise ReferenceError(f"{text}: invalid tag {tag!r}")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        host, repository = first, remainder
    else:
        host, repository = HUB, rest
        if "/" not in repository:
            repository = f"library/{repository}"
    if not isValidName(repository):
        raise ReferenceError(f"{text}: invalid repository name {repository!r}")
    return RegistryReference(host, repository, tag, digest)


def parse(text: str) -> Reference:
    """
    @raise ReferenceError: not a reference of a known transport.
    """
    transport, _, rest = text.partition(":")
    if transport == "docker" and rest.startswith("//"):
        return parseRegistry(rest[2:])
    if transport == "oci" and rest:
        directory, _, tag = rest.partition(":")
        if tag and not isValidTag(tag) and "/" in tag:
            raise ReferenceError(f"{text}: invalid tag {tag!r}")
        return LayoutReference(directory, tag or None)
    if transport == "docker-archive" and rest:
        path, _, reference = rest.partition(":")
        if reference:
            parseRegistry(reference)
        return ArchiveReference(path, reference or None)
    raise ReferenceError(
        f"{text}: not docker://HOST/REPOSITORY[:TAG], oci:DIR[:TAG] or docker-archive:FILE[:REF]")
