"""
What the UI tests (and the screenshot command) browse: an image with a
full config, a multi-arch index, and referrers (an SBOM with a signature
of its own, and a signature) pushed through the API as clients push them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.api.helpers import (
    LAYER,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    dumps,
    imageManifest,
    pushBlob,
    pushManifest,
    sha256,
)
from tests.support import InProcessRegistry

SBOM = "application/spdx+json"
SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"


def imageConfig(architecture: str = "amd64", created: str = "2026-11-30T12:00:00Z") -> bytes:
    return dumps({
        "created": created,
        "author": "UI tests",
        "architecture": architecture,
        "os": "linux",
        "config": {
            "Entrypoint": ["/usr/bin/server"],
            "Cmd": ["--port", "8080"],
            "Env": ["PATH=/usr/bin:/bin", "MODE=production"],
            "WorkingDir": "/srv",
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.opencontainers.image.source": "https://example.com/server",
                       "maintainer": "ops <ops@example.com>"},
        },
        "rootfs": {"type": "layers", "diff_ids": [sha256(LAYER)]},
        "history": [
            {"created": "2026-11-30T11:59:00Z", "created_by": "ADD rootfs.tar /"},
            {"created": "2026-11-30T12:00:00Z", "created_by": "ENV MODE=production", "empty_layer": True},
        ],
    })


@dataclass
class Pushed:
    image: str
    index: str
    arm: str
    sbom: str
    signature: str
    sbomSignature: str


async def pushRichImage(testCase: Any, registry: InProcessRegistry, name: str, tag: str,
                        architecture: str = "amd64") -> str:
    """
    An image with a full config; returns its digest.
    """
    config = imageConfig(architecture)
    await pushBlob(testCase, registry, name, config)
    await pushBlob(testCase, registry, name, LAYER)
    manifest = imageManifest(config, annotations={"org.opencontainers.image.version": tag})
    await pushManifest(testCase, registry, name, tag, manifest)
    return sha256(manifest)


async def pushArtifact(testCase: Any, registry: InProcessRegistry, name: str, subject: str,
                       subjectSize: int, artifactType: str, content: bytes) -> str:
    await pushBlob(testCase, registry, name, b"{}")
    await pushBlob(testCase, registry, name, content)
    manifest = dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifactType,
        "config": descriptor(OCI_EMPTY, b"{}"),
        "layers": [descriptor(artifactType, content)],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subjectSize},
        "annotations": {"org.opencontainers.image.created": "2026-12-01T08:00:00Z"},
    })
    digest = sha256(manifest)
    await pushManifest(testCase, registry, name, digest, manifest)
    return digest


async def fill(testCase: Any, registry: InProcessRegistry, name: str = "team/server") -> Pushed:
    """
    C{name}: C{v1} (an image with referrers) and C{multi} (an index of
    two images), and C{library/alpine:3.20}.
    """
    image = await pushRichImage(testCase, registry, name, "v1")
    response = await registry.request("GET", f"/v2/{name}/manifests/{image}",
                                      headers={"Accept": [OCI_MANIFEST]})
    size = len(await response.content())
    arm = await pushRichImage(testCase, registry, name, "arm64-only", "arm64")
    children = []
    for digest in (image, arm):
        response = await registry.request("GET", f"/v2/{name}/manifests/{digest}",
                                          headers={"Accept": [OCI_MANIFEST]})
        children.append(await response.content())
    platforms = [{"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64", "variant": "v8"}]
    document = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                "manifests": [descriptor(OCI_MANIFEST, c, platform=p) for c, p in zip(children, platforms, strict=True)]}
    indexContent = json.dumps(document).encode()
    await pushManifest(testCase, registry, name, "multi", indexContent, OCI_INDEX)
    sbom = await pushArtifact(testCase, registry, name, image, size, SBOM, b'{"spdxVersion": "SPDX-2.3"}')
    signature = await pushArtifact(testCase, registry, name, image, size, SIGNATURE, b'{"critical": {}}')
    response = await registry.request("GET", f"/v2/{name}/manifests/{sbom}", headers={"Accept": [OCI_MANIFEST]})
    sbomSize = len(await response.content())
    sbomSignature = await pushArtifact(testCase, registry, name, sbom, sbomSize, SIGNATURE, b'{"sbom": "signed"}')
    await pushRichImage(testCase, registry, "library/alpine", "3.20")
    return Pushed(image, sha256(indexContent), arm, sbom, signature, sbomSignature)


__all__ = ["fill", "pushRichImage", "pushArtifact", "imageConfig", "Pushed", "OCI_CONFIG", "OCI_LAYER"]
