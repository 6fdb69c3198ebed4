# -*- test-case-name: tests.client.test_copy -*-
"""
C{docker://}: images in a registry, through L{txregistry.client.registry}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from zope.interface import implementer

from txregistry import errors as model
from txregistry.client.references import RegistryReference
from txregistry.client.registry import Registry, RemoteRepository
from txregistry.client.transports import IImageDestination, IImageSource
from txregistry.interfaces import IBlobReader, IBlobWriter, Manifest
from txregistry.registry.digest import Digest

__all__ = ["RegistrySource", "RegistryDestination"]


@implementer(IImageSource)
class RegistrySource:
    """
    The image C{reference} names in C{registry}.
    """

    def __init__(self, registry: Registry, reference: RegistryReference) -> None:
        self.registry = registry
        self.ref = reference
        self.reference = f"docker://{reference}"
        self.tag = reference.tag
        self.repository: RemoteRepository = registry.repository(reference.repository)

    def manifest(self, digest: Digest | None = None) -> Deferred[Manifest]:
        return ensureDeferred(self._manifest(digest))

    async def _manifest(self, digest: Digest | None) -> Manifest:
        manifests = self.repository.manifests()
        if digest is not None:
            return await manifests.get(digest)
        # name:tag@digest: the digest decides, as docker reads it.
        return await manifests.fetch(self.ref.reference)

    def blob(self, descriptor: dict[str, Any]) -> Deferred[IBlobReader]:
        return self.repository.blobs().reader(Digest.parse(descriptor["digest"]))

    def close(self) -> Deferred[None]:
        return succeed(None)


@implementer(IImageDestination)
class RegistryDestination:
    """
    C{reference} in C{registry}: tagged with its tag (or C{defaultTag}),
    or stored by digest only when it names a digest and no tag.
    """

    concurrency = 4
    holdsIndexes = True
    keepsManifests = True

    def __init__(self, registry: Registry, reference: RegistryReference,
                 defaultTag: str | None = None) -> None:
        self.registry = registry
        self.ref = reference
        self.reference = f"docker://{reference}"
        self.tag = reference.tag or (None if reference.digest else (defaultTag or "latest"))
        self.repository = registry.repository(reference.repository)

    def hasBlob(self, digest: Digest, size: int) -> Deferred[bool]:
        return self.repository.blobs().exists(digest)

    def mount(self, digest: Digest, source: IImageSource) -> Deferred[bool]:
        return ensureDeferred(self._mount(digest, source))

    async def _mount(self, digest: Digest, source: IImageSource) -> bool:
        if not isinstance(source, RegistrySource) or source.registry.url != self.registry.url \
                or source.repository.name == self.repository.name:
            return False
        return await self.repository.blobs().mount(digest, source.repository.name) is not None

    def blobWriter(self, descriptor: dict[str, Any]) -> Deferred[IBlobWriter]:
        return self.repository.blobs().put(Digest.parse(descriptor["digest"]), descriptor["size"])

    def putManifest(self, manifest: Manifest, top: bool) -> Deferred[None]:
        return ensureDeferred(self._putManifest(manifest, top))

    async def _putManifest(self, manifest: Manifest, top: bool) -> None:
        manifests = self.repository.manifests()
        if top and self.ref.digest is not None and self.ref.digest != manifest.digest:
            raise model.DigestInvalid(
                f"{self.reference}: the image's digest is {manifest.digest}",
                str(self.ref.digest), str(manifest.digest))
        if top and self.tag:
            stored = await manifests.putTagged(manifest.content, manifest.mediaType, self.tag)
        else:
            stored = await manifests.put(manifest.content, manifest.mediaType, manifest.digest)
        if stored.digest != manifest.digest:
            raise model.DigestInvalid(
                f"{self.reference}: the registry stored the manifest as {stored.digest}",
                str(manifest.digest), str(stored.digest))

    def commit(self) -> Deferred[None]:
        return succeed(None)

    def abort(self) -> Deferred[None]:
        return succeed(None)
