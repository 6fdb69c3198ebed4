"""
Upstreams and caches for the pull-through cache's tests: real registries
in this process, the upstream's requests recorded as they arrive.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from tests.api.helpers import pushBlob, pushManifest, sha256
from tests.support import InProcessRegistry, startRegistry
from txregistry.web.site import IRequestObserver


@implementer(IRequestObserver)
class Recorder:
    """
    Every request a site receives, as C{(method, path)}.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def requestStarted(self, request: Any) -> None:
        self.requests.append((request.method.decode(), request.uri.decode()))

    def requestEnded(self, request: Any) -> None:
        pass

    def count(self, method: str, fragment: str) -> int:
        return sum(1 for m, path in self.requests if m == method and fragment in path)


async def startUpstream(testCase: Any, document: dict[str, Any] | None = None) -> tuple[InProcessRegistry, Recorder]:
    """
    A registry to mirror, deleting allowed, with its requests recorded.
    """
    document = dict(document or {})
    document.setdefault("storage", {"inmemory": {}, "delete": {"enabled": True}})
    upstream = await startRegistry(testCase, document)
    recorder = Recorder()
    upstream.site.observers.append(recorder)
    return upstream, recorder


async def startCache(testCase: Any, proxy: dict[str, Any], **document: Any) -> InProcessRegistry:
    document.setdefault("storage", {"filesystem": {"rootdirectory": os.path.abspath(testCase.mktemp())}})
    cache = await startRegistry(testCase, {"proxy": proxy, **document})
    # Before it stops: what it is storing is stored.
    testCase.addCleanup(lambda: Deferred.fromCoroutine(settle(cache)))
    return cache


async def pushLayeredImage(testCase: Any, registry: InProcessRegistry, name: str, tag: str,
                           layer: bytes, configContent: bytes = b'{"architecture":"amd64","os":"linux"}'
                           ) -> tuple[bytes, str]:
    """
    Push C{configContent}, C{layer} and an image manifest naming them,
    tagged C{tag}.

    @return: the manifest and its digest.
    """
    import json

    await pushBlob(testCase, registry, name, configContent)
    await pushBlob(testCase, registry, name, layer)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(configContent), "size": len(configContent)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(layer), "size": len(layer)}],
    }).encode()
    await pushManifest(testCase, registry, name, tag, manifest)
    return manifest, sha256(manifest)


def pullThrough(registry: Any) -> Any:
    """
    The pull-through layer of C{registry}'s namespace (an
    L{InProcessRegistry}, or a L{RegistryService}).
    """
    from txregistry.proxy.layer import PullThrough

    layer: Any = registry.namespace
    while not isinstance(layer, PullThrough):
        layer = layer.inner
    return layer


async def settle(registry: Any) -> None:
    """
    Wait until C{registry}'s cache stored what it is fetching.
    """
    await pullThrough(registry).settled()


async def stopUpstream(upstream: InProcessRegistry, cache: InProcessRegistry) -> None:
    """
    Stop C{upstream} as a registry that went down: not listening, and no
    connection of C{cache}'s left to it.
    """
    await settle(cache)
    await upstream._port.stopListening()
    upstream._port = None
    for remote in pullThrough(cache).upstreams:
        await remote.close()
