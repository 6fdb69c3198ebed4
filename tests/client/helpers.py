"""
Images for the client's tests, pushed with the API tests' raw helpers
(not with the client under test): several layers, some large enough to
cross many reads and pauses.
"""

from __future__ import annotations

import os
from typing import Any

from tests.api.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    config,
    descriptor,
    dumps,
    imageManifest,
    pushBlob,
    pushManifest,
    sha256,
)
from tests.support import InProcessRegistry, startRegistry


async def filesystemRegistry(testCase: Any, **document: Any) -> InProcessRegistry:
    """
    An in-process registry on filesystem storage in the test's temporary
    directory, deletes enabled.
    """
    root = os.path.abspath(testCase.mktemp())
    storage = {"filesystem": {"rootdirectory": root}, "delete": {"enabled": True}}
    return await startRegistry(testCase, {"storage": storage, **document})


async def pushLayeredImage(testCase: Any, registry: InProcessRegistry, name: str, tag: str,
                           sizes: tuple[int, ...] = (1000, 3 * 1024 * 1024 + 17),
                           architecture: str = "amd64") -> dict[str, Any]:
    """
    Push a config and random layers of C{sizes}, and a manifest tagged
    C{tag}.

    @return: C{manifest} (bytes), C{digest}, C{blobs} (digest to content).
    """
    blobs = {}
    configContent = config(f"{name}:{tag}").replace(b'"amd64"', f'"{architecture}"'.encode())
    layers = [os.urandom(size) for size in sizes]
    for content in [configContent, *layers]:
        blobs[await pushBlob(testCase, registry, name, content)] = content
    manifest = imageManifest(configContent, layers)
    await pushManifest(testCase, registry, name, tag, manifest)
    return {"manifest": manifest, "digest": sha256(manifest), "blobs": blobs}


async def pushTwoPlatformIndex(testCase: Any, registry: InProcessRegistry, name: str,
                               tag: str) -> dict[str, Any]:
    """
    Push a linux/amd64 and a linux/arm64 image and an index of them
    tagged C{tag}.
    """
    children = []
    blobs: dict[str, bytes] = {}
    images = {}
    for architecture in ("amd64", "arm64"):
        image = await pushLayeredImage(testCase, registry, name, f"only-{architecture}",
                                       (2000 + len(architecture),), architecture)
        blobs.update(image["blobs"])
        images[architecture] = image
        children.append(descriptor(OCI_MANIFEST, image["manifest"],
                                   platform={"os": "linux", "architecture": architecture}))
    content = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
    await pushManifest(testCase, registry, name, tag, content, OCI_INDEX)
    return {"manifest": content, "digest": sha256(content), "blobs": blobs, "images": images}
