# -*- test-case-name: tests.registry.test_store -*-
"""
What a manifest is: the media types the registry stores, and the checks
of a pushed manifest's structure (L{ParsedManifest}).  Storing them is
L{txregistry.registry.index}'s.
"""

from __future__ import annotations

import json
from typing import Any

from txregistry.errors import ManifestInvalid
from txregistry.registry.digest import Digest, InvalidDigest

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


def _invalid(message: str, detail: Any = None) -> ManifestInvalid:
    return ManifestInvalid(message, detail)


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


def declaredMediaType(content: bytes) -> str | None:
    try:
        declared = json.loads(content).get("mediaType")
    except (ValueError, AttributeError, RecursionError):
        return None
    return declared if isinstance(declared, str) and declared else None
