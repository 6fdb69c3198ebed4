# -*- test-case-name: tests.ui.test_images -*-
"""
What a person wants to see of a manifest, read from its JSON: the
children of an index by platform, an image's config and layers, its
annotations.  Pure functions over parsed documents: no I/O, no HTTP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from txregistry.registry.manifests import MANIFEST_TYPES

__all__ = [
    "Descriptor",
    "ImageConfig",
    "HistoryEntry",
    "parseDocument",
    "isIndex",
    "descriptorsOf",
    "configDescriptor",
    "platformOf",
    "parseConfig",
]


@dataclass(frozen=True)
class Descriptor:
    """
    An OCI descriptor as the pages show it.
    """

    mediaType: str
    digest: str
    size: int
    platform: str = ""
    artifactType: str = ""
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HistoryEntry:
    created: str
    createdBy: str
    comment: str
    emptyLayer: bool


@dataclass(frozen=True)
class ImageConfig:
    """
    The parts of an image config (C{application/vnd.oci.image.config.v1+json}
    or Docker's) that say what the image runs and how it was made.
    """

    created: str = ""
    author: str = ""
    platform: str = ""
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    workingDir: str = ""
    user: str = ""
    exposedPorts: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)


def parseDocument(content: bytes) -> dict[str, Any]:
    """
    The manifest's JSON object; an empty one for content that is not one
    (a schema 1 manifest, bytes a client pushed as some other type).
    """
    try:
        document = json.loads(content)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def isIndex(mediaType: str, document: dict[str, Any]) -> bool:
    """
    Whether the manifest lists manifests (an OCI index, a Docker list).
    """
    if mediaType in MANIFEST_TYPES:
        return MANIFEST_TYPES[mediaType]
    return isinstance(document.get("manifests"), list)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float))]
    return []


def _stringMap(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, (str, int, float, bool))}


def platformOf(value: Any) -> str:
    """
    C{os/architecture[/variant]} of a descriptor's C{platform} or a
    config's fields; empty when they do not say.
    """
    if not isinstance(value, dict):
        return ""
    parts = [value.get("os"), value.get("architecture"), value.get("variant")]
    return "/".join(str(p) for p in parts if isinstance(p, str) and p)


def _descriptor(value: Any) -> Descriptor | None:
    if not isinstance(value, dict) or not isinstance(value.get("digest"), str):
        return None
    size = value.get("size")
    return Descriptor(
        mediaType=str(value.get("mediaType") or ""),
        digest=value["digest"],
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0,
        platform=platformOf(value.get("platform")),
        artifactType=str(value.get("artifactType") or ""),
        annotations=_stringMap(value.get("annotations")),
    )


def descriptorsOf(document: dict[str, Any], key: str) -> list[Descriptor]:
    """
    The descriptors listed under C{key} (C{manifests} of an index,
    C{layers} of an image), skipping any that is not one.
    """
    values = document.get(key)
    if not isinstance(values, list):
        return []
    return [d for d in (_descriptor(v) for v in values) if d is not None]


def configDescriptor(document: dict[str, Any]) -> Descriptor | None:
    return _descriptor(document.get("config"))


def annotationsOf(document: dict[str, Any]) -> dict[str, str]:
    return _stringMap(document.get("annotations"))


def parseConfig(content: bytes) -> ImageConfig | None:
    """
    The image config in C{content}, or L{None} when it is not an image
    config (an artifact's empty C{{}} config has nothing to show).
    """
    document = parseDocument(content)
    if not document or not any(k in document for k in ("config", "rootfs", "history", "architecture")):
        return None
    runs = document.get("config")
    runs = runs if isinstance(runs, dict) else {}
    history = []
    for entry in document.get("history") or []:
        if isinstance(entry, dict):
            history.append(HistoryEntry(
                created=str(entry.get("created") or ""),
                createdBy=str(entry.get("created_by") or ""),
                comment=str(entry.get("comment") or ""),
                emptyLayer=bool(entry.get("empty_layer")),
            ))
    ports = runs.get("ExposedPorts")
    return ImageConfig(
        created=str(document.get("created") or ""),
        author=str(document.get("author") or ""),
        platform=platformOf(document),
        entrypoint=_strings(runs.get("Entrypoint")),
        cmd=_strings(runs.get("Cmd")),
        env=_strings(runs.get("Env")),
        workingDir=str(runs.get("WorkingDir") or ""),
        user=str(runs.get("User") or ""),
        exposedPorts=sorted(ports) if isinstance(ports, dict) else [],
        labels=_stringMap(runs.get("Labels")),
        history=history,
    )
