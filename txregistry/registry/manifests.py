"""
Manifests: validated on push, stored as blobs, linked into a repository
as revisions, named by tags, and indexed by their C{subject} for the
referrers API.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from txregistry.api.errors import RegistryError
from txregistry.registry import layout
from txregistry.registry.blobs import BlobStore
from txregistry.registry.digest import Digest, InvalidDigest
from txregistry.registry.names import isValidTag
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageDriver

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)

#: Manifest media types, and whether each is an index (a list of manifests).
MANIFEST_TYPES = {
    DOCKER_MANIFEST: False,
    OCI_MANIFEST: False,
    DOCKER_MANIFEST_LIST: True,
    OCI_INDEX: True,
}

#: The largest manifest accepted (the reference implementation's default).
MAX_MANIFEST_SIZE = 4 * 1024 * 1024

#: Layers that live elsewhere (Windows base layers) need not be pushed.
_FOREIGN_LAYERS = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
)


@dataclass(frozen=True)
class Manifest:
    """
    A stored manifest: its exact bytes and how to serve them.
    """

    digest: Digest
    mediaType: str
    content: bytes


def _invalid(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message, detail)


def _descriptor(value: Any, where: str) -> tuple[Digest, dict[str, Any]]:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a descriptor object")
    mediaType = value.get("mediaType")
    if not isinstance(mediaType, str) or not mediaType:
        raise _invalid(f"{where}.mediaType must be a non-empty string")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}.size must be a non-negative integer")
    try:
        digest = Digest.parse(value.get("digest"))  # type: ignore[arg-type]
    except InvalidDigest as e:
        raise _invalid(f"{where}.digest: {e}") from None
    return digest, value


def _stripParameters(contentType: str | None) -> str:
    return (contentType or "").split(";", 1)[0].strip().lower()


class ParsedManifest:
    """
    A manifest body checked for structure (not yet for references).
    """

    def __init__(self, content: bytes, contentType: str | None) -> None:
        try:
            document = json.loads(content)
        except (ValueError, UnicodeDecodeError) as e:
            raise _invalid(f"manifest is not valid JSON: {e}") from None
        except RecursionError:
            # json.loads recurses per nesting level: "[[[[..." would be a 500.
            raise _invalid("manifest JSON is nested too deeply") from None
        if not isinstance(document, dict):
            raise _invalid("manifest must be a JSON object")
        declared = document.get("mediaType")
        if declared is not None and not isinstance(declared, str):
            raise _invalid("mediaType must be a string")
        sent = _stripParameters(contentType)
        if declared and sent and declared != sent:
            raise _invalid(
                f"mediaType {declared!r} does not match Content-Type {sent!r}"
            )
        mediaType = declared or sent
        if not mediaType or mediaType in ("application/json", "application/octet-stream"):
            # Infer, as clients that omit both rely on.
            mediaType = OCI_INDEX if "manifests" in document else OCI_MANIFEST
        if mediaType in DOCKER_SCHEMA1:
            raise _invalid("Docker schema 1 manifests are not supported")
        if mediaType not in MANIFEST_TYPES:
            raise _invalid(f"unsupported manifest media type {mediaType!r}")
        if document.get("schemaVersion") != 2:
            raise _invalid("schemaVersion must be 2")
        self.document = document
        self.mediaType = mediaType
        self.declaresMediaType = bool(declared)
        self.isIndex = MANIFEST_TYPES[mediaType]
        self.blobs: list[Digest] = []
        self.children: list[Digest] = []
        if self.isIndex:
            manifests = document.get("manifests")
            if not isinstance(manifests, list):
                raise _invalid("manifests must be a list")
            for i, entry in enumerate(manifests):
                self.children.append(_descriptor(entry, f"manifests[{i}]")[0])
        else:
            configDigest, config = _descriptor(document.get("config"), "config")
            self.configMediaType: str = config["mediaType"]
            self.blobs.append(configDigest)
            layers = document.get("layers", [])
            if not isinstance(layers, list):
                raise _invalid("layers must be a list")
            for i, entry in enumerate(layers):
                digest, layer = _descriptor(entry, f"layers[{i}]")
                if layer["mediaType"] not in _FOREIGN_LAYERS and not layer.get("urls"):
                    self.blobs.append(digest)
        self.subject: Digest | None = None
        if document.get("subject") is not None:
            self.subject = _descriptor(document["subject"], "subject")[0]
        artifactType = document.get("artifactType")
        if artifactType is not None and not isinstance(artifactType, str):
            raise _invalid("artifactType must be a string")
        annotations = document.get("annotations")
        if annotations is not None and not isinstance(annotations, dict):
            raise _invalid("annotations must be an object")
        self.annotations = annotations
        self.artifactType = artifactType or (
            None if self.isIndex else self.configMediaType
        )

    def referrerDescriptor(self, digest: Digest, size: int) -> dict[str, Any]:
        """
        The descriptor of this manifest in its subject's referrers index.
        """
        descriptor: dict[str, Any] = {
            "mediaType": self.mediaType,
            "digest": str(digest),
            "size": size,
        }
        if self.artifactType:
            descriptor["artifactType"] = self.artifactType
        if self.annotations:
            descriptor["annotations"] = self.annotations
        return descriptor


def _declaredMediaType(content: bytes) -> str | None:
    try:
        declared = json.loads(content).get("mediaType")
    except (ValueError, AttributeError, RecursionError):
        return None
    return declared if isinstance(declared, str) and declared else None


class _ContentCache:
    """
    Manifests by digest, least recently used out first, within a byte
    budget.  Content is immutable by digest, so entries never go stale.
    Each holds the media type the content declares, or L{None}: a type
    given only by the pushing Content-Type belongs to one repository's
    revision, not to the content, and is read from there.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._used = 0
        self._entries: OrderedDict[Digest, tuple[bytes, str | None]] = OrderedDict()

    def get(self, digest: Digest) -> tuple[bytes, str | None] | None:
        entry = self._entries.get(digest)
        if entry is not None:
            self._entries.move_to_end(digest)
        return entry

    def put(self, digest: Digest, content: bytes, mediaType: str | None) -> None:
        if digest in self._entries or len(content) > self._budget:
            return
        self._entries[digest] = (content, mediaType)
        self._used += len(content)
        while self._used > self._budget:
            _, (old, _) = self._entries.popitem(last=False)
            self._used -= len(old)


class _ReferenceCache:
    """
    What a reference resolved to in a repository, reused for C{ttl}
    seconds.

    Resolving a tag reads a link file on the storage pool, the largest
    cost of a manifest GET.  Writes through this process update the
    entries at once; a write by another registry process over the same
    storage is seen within C{ttl}.  Only references that exist are kept,
    so a tag pushed elsewhere is never hidden.
    """

    def __init__(self, ttl: float, maxEntries: int = 65536) -> None:
        self._ttl = ttl
        self._maxEntries = maxEntries
        self._entries: OrderedDict[tuple[str, str], tuple[Digest, float]] = OrderedDict()

    def get(self, name: str, reference: str) -> Digest | None:
        entry = self._entries.get((name, reference))
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self._entries[(name, reference)]
            return None
        return entry[0]

    def put(self, name: str, reference: str, digest: Digest) -> None:
        if self._ttl <= 0:
            return
        key = (name, reference)
        self._entries[key] = (digest, time.monotonic() + self._ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._maxEntries:
            self._entries.popitem(last=False)

    def forget(self, name: str, reference: str) -> None:
        self._entries.pop((name, reference), None)

    def forgetDigest(self, name: str, digest: Digest) -> None:
        """
        Drop every reference in C{name} that resolves to C{digest}.
        """
        for key in [k for k, (d, _) in self._entries.items() if k[0] == name and d == digest]:
            del self._entries[key]


class ManifestStore:
    """
    The manifests, tags and referrers of every repository.

    @param referenceTTL: seconds a resolved tag (or a digest found in a
        repository) is reused before storage is asked again; 0 asks every
        time.
    """

    def __init__(
        self,
        driver: IStorageDriver,
        blobs: BlobStore,
        cacheBytes: int = 64 << 20,
        referenceTTL: float = 0.0,
    ) -> None:
        self._driver = driver
        self._blobs = blobs
        self._cache = _ContentCache(cacheBytes)
        self._references = _ReferenceCache(referenceTTL)

    # Reading

    async def resolve(self, name: str, reference: str) -> Digest:
        """
        The digest a tag names, or a digest the repository has.

        @raise RegistryError: C{MANIFEST_UNKNOWN}.
        """
        known = self._references.get(name, reference)
        if known is not None:
            return known
        if ":" in reference:
            digest = Digest.parse(reference)
            try:
                await self._driver.stat(layout.revisionLink(name, digest))
            except PathNotFoundError:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": reference}) from None
        else:
            try:
                link = await self._driver.getContent(layout.tagCurrentLink(name, reference))
                digest = Digest.parse(link.decode("ascii").strip())
            except (PathNotFoundError, InvalidDigest, UnicodeDecodeError):
                raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": reference}) from None
        self._references.put(name, reference, digest)
        return digest

    async def get(self, name: str, reference: str) -> Manifest:
        digest = await self.resolve(name, reference)
        cached = self._cache.get(digest)
        if cached is not None:
            content, declared = cached
        else:
            try:
                content = await self._blobs.getContent(digest)
            except PathNotFoundError:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": str(digest)}) from None
            declared = _declaredMediaType(content)
            self._cache.put(digest, content, declared)
        mediaType = declared or await self._storedMediaType(name, digest)
        return Manifest(digest, mediaType, content)

    async def _storedMediaType(self, name: str, digest: Digest) -> str:
        try:
            stored = await self._driver.getContent(layout.revisionMediaType(name, digest))
            return stored.decode("utf-8").strip()
        except (PathNotFoundError, UnicodeDecodeError):
            return OCI_MANIFEST

    # Writing

    async def put(
        self, name: str, reference: str, contentType: str | None, content: bytes
    ) -> tuple[Digest, Digest | None]:
        """
        Validate and store a manifest, tagging it if C{reference} is a tag.

        @return: its digest and its subject's digest (if any).
        @raise RegistryError: C{MANIFEST_INVALID}, C{DIGEST_INVALID},
            C{MANIFEST_BLOB_UNKNOWN}, C{TAG_INVALID}.
        """
        isDigest = ":" in reference
        if isDigest:
            expected = Digest.parse(reference)
            digest = Digest.of(content, expected.algorithm)
            if digest != expected:
                raise RegistryError(
                    "DIGEST_INVALID",
                    "manifest digest did not match the reference",
                    detail={"digest": reference, "actual": str(digest)},
                )
        else:
            if not isValidTag(reference):
                raise RegistryError("TAG_INVALID", detail={"tag": reference})
            digest = Digest.of(content)
        parsed = ParsedManifest(content, contentType)
        await self._checkReferences(name, parsed)
        await self._blobs.putContent(content, digest)
        if not parsed.declaresMediaType:
            await self._driver.putContent(
                layout.revisionMediaType(name, digest), parsed.mediaType.encode()
            )
        await self._driver.putContent(layout.revisionLink(name, digest), str(digest).encode())
        if parsed.subject is not None:
            await self._driver.putContent(
                layout.referrerLink(name, parsed.subject, digest),
                json.dumps(parsed.referrerDescriptor(digest, len(content))).encode(),
            )
        if not isDigest:
            await self.tag(name, reference, digest)
        self._cache.put(digest, content, parsed.mediaType if parsed.declaresMediaType else None)
        return digest, parsed.subject

    async def _checkReferences(self, name: str, parsed: ParsedManifest) -> None:
        missing = []
        for digest in parsed.blobs:
            if await self._blobs.sizeIn(name, digest) is None:
                missing.append(str(digest))
        for digest in parsed.children:
            try:
                await self._driver.stat(layout.revisionLink(name, digest))
            except PathNotFoundError:
                missing.append(str(digest))
        if missing:
            raise RegistryError(
                "MANIFEST_BLOB_UNKNOWN", detail={"digests": missing}
            )

    async def tag(self, name: str, tag: str, digest: Digest) -> None:
        await self._driver.putContent(layout.tagIndexLink(name, tag, digest), str(digest).encode())
        await self._driver.putContent(layout.tagCurrentLink(name, tag), str(digest).encode())
        self._references.put(name, tag, digest)

    # Deleting

    async def deleteTag(self, name: str, tag: str) -> None:
        """
        @raise RegistryError: C{MANIFEST_UNKNOWN} if there is no such tag.
        """
        self._references.forget(name, tag)
        try:
            await self._driver.delete(layout.tagDirectory(name, tag))
        except PathNotFoundError:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": tag}) from None
        finally:
            self._references.forget(name, tag)

    async def delete(self, name: str, digest: Digest) -> None:
        """
        Remove a manifest from a repository, with every tag that names it
        and its entry in its subject's referrers.

        @raise RegistryError: C{MANIFEST_UNKNOWN}.
        """
        manifest = await self.get(name, str(digest))
        self._references.forgetDigest(name, digest)
        for tag in await self.tags(name):
            try:
                current = await self._driver.getContent(layout.tagCurrentLink(name, tag))
            except PathNotFoundError:
                continue
            if current.decode("ascii", "replace").strip() == str(digest):
                await self.deleteTag(name, tag)
        try:
            subject = ParsedManifest(manifest.content, manifest.mediaType).subject
        except RegistryError:
            subject = None
        if subject is not None:
            try:
                await self._driver.delete(
                    layout.referrerLink(name, subject, digest).rsplit("/", 1)[0]
                )
            except PathNotFoundError:
                pass
        await self._driver.delete(layout.revisionDirectory(name, digest))
        # Again: a GET while this ran may have cached what is gone now.
        self._references.forgetDigest(name, digest)

    # Listing

    async def tags(self, name: str) -> list[str]:
        """
        The repository's tags, sorted.

        @raise RegistryError: C{NAME_UNKNOWN} if the repository does not exist.
        """
        try:
            paths = await self._driver.list(layout.tagsDirectory(name))
        except PathNotFoundError:
            if not await self._exists(name):
                raise RegistryError("NAME_UNKNOWN", detail={"name": name}) from None
            return []
        return sorted(p.rsplit("/", 1)[1] for p in paths)

    async def _exists(self, name: str) -> bool:
        """
        Whether repository C{name} holds anything.  Its directory alone
        does not say: C{a} has one as soon as C{a/b} is pushed.
        """
        try:
            children = await self._driver.list(layout.repository(name))
        except PathNotFoundError:
            return False
        leaves = {child.rsplit("/", 1)[1] for child in children}
        return bool(leaves & {"_manifests", "_layers", "_uploads"})

    async def referrers(self, name: str, subject: Digest) -> list[dict[str, Any]]:
        """
        The descriptors of the manifests in C{name} whose subject is
        C{subject}, sorted by digest.
        """
        try:
            entries = await self._driver.walk(layout.referrersDirectory(name, subject))
        except PathNotFoundError:
            return []
        descriptors = []
        for entry in entries:
            if entry.isDirectory or not entry.path.endswith("/link"):
                continue
            try:
                raw = await self._driver.getContent(entry.path)
                descriptors.append(json.loads(raw))
            except (PathNotFoundError, ValueError):
                continue
        return sorted(descriptors, key=lambda d: d.get("digest", ""))
