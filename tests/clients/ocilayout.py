"""
OCI image layouts written by hand: gzip-compressed layer tarballs, image
configs, image manifests and image indexes, stored as blobs under
C{blobs/sha256} with C{index.json} naming them.

Manifests are serialized with an unusual indentation on purpose: a client
or registry that re-serializes them changes their digest, which the tests
would notice.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from typing import Any

from tests.clients.wire import tarBytes

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _serialize(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=3).encode() + b"\n"


class Layout:
    """
    An OCI image layout directory being written.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.refs: list[dict[str, Any]] = []

    def blob(self, data: bytes, mediaType: str) -> dict[str, Any]:
        """
        Store C{data}; return its descriptor.
        """
        digest = _digest(data)
        with open(os.path.join(self.path, "blobs", "sha256", digest.split(":")[1]), "wb") as f:
            f.write(data)
        return {"mediaType": mediaType, "digest": digest, "size": len(data)}

    def layer(self, files: dict[str, bytes]) -> tuple[dict[str, Any], str]:
        """
        A gzip-compressed layer holding C{files}; its descriptor and its
        uncompressed digest (the config's diff_id).
        """
        uncompressed = tarBytes(files)
        compressed = gzip.compress(uncompressed, mtime=0)
        return self.blob(compressed, OCI_LAYER_GZIP), _digest(uncompressed)

    def image(self, layers: list[dict[str, bytes]], architecture: str = "amd64",
              os_: str = "linux") -> tuple[dict[str, Any], bytes]:
        """
        An image manifest over one layer per C{layers} entry; its
        descriptor (with platform) and its exact bytes.
        """
        descriptors, diffIDs = [], []
        for files in layers:
            descriptor, diffID = self.layer(files)
            descriptors.append(descriptor)
            diffIDs.append(diffID)
        config = {
            "created": "2024-01-01T00:00:00Z",
            "architecture": architecture,
            "os": os_,
            "config": {"Cmd": ["/none"]},
            "rootfs": {"type": "layers", "diff_ids": diffIDs},
        }
        configDescriptor = self.blob(_serialize(config), OCI_CONFIG)
        manifest = _serialize({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": configDescriptor,
            "layers": descriptors,
        })
        descriptor = self.blob(manifest, OCI_MANIFEST)
        descriptor["platform"] = {"architecture": architecture, "os": os_}
        return descriptor, manifest

    def index(self, manifests: list[dict[str, Any]]) -> tuple[dict[str, Any], bytes]:
        """
        An image index over C{manifests} descriptors; its descriptor and bytes.
        """
        index = _serialize({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
        return self.blob(index, OCI_INDEX), index

    def tag(self, descriptor: dict[str, Any], name: str) -> None:
        """
        Name C{descriptor} C{name} in C{index.json} (written at once).
        """
        entry = {k: v for k, v in descriptor.items() if k != "platform"}
        entry["annotations"] = {REF_NAME: name}
        self.refs = [r for r in self.refs if r["annotations"][REF_NAME] != name] + [entry]
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs}, f)


def readIndex(path: str) -> dict[str, Any]:
    with open(os.path.join(path, "index.json"), "rb") as f:
        return json.load(f)


def readBlob(path: str, digest: str) -> bytes:
    algorithm, hexa = digest.split(":")
    with open(os.path.join(path, "blobs", algorithm, hexa), "rb") as f:
        return f.read()


def refDescriptor(path: str, name: str) -> dict[str, Any]:
    """
    The descriptor C{index.json} names C{name}.
    """
    for entry in readIndex(path)["manifests"]:
        if (entry.get("annotations") or {}).get(REF_NAME) == name:
            return entry
    raise KeyError(f"{name!r} not in {path}/index.json: {readIndex(path)}")
