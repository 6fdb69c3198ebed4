# -*- test-case-name: tests.registry.test_quotas -*-
"""
Quotas (C{storage.quotas}): each repository matching a rule may hold at
most so many bytes of blobs and so many tags.  The first rule whose
pattern matches a repository is its quota.

A push that would pass a limit is refused with L{Denied}, naming the
quota: before its body is read when its size is known (a monolithic
upload, a chunk with a C{Content-Length}), at commit otherwise (the
upload is then cancelled).  A blob the repository already links costs
nothing again; a tag that already exists is not counted again.

Usage comes from the model (L{IRepository.usage}) and is kept per
repository for C{refresh} seconds, updated at once by what this process
stores; with several instances on one storage, what others stored is
seen within that time, so concurrent pushes through several instances
may pass a limit by about what they push at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from txregistry.errors import BlobUnknown, Denied, ManifestUnknown, NameInvalid
from txregistry.interfaces import (
    BlobDescriptor,
    IBlobStore,
    IBlobUpload,
    IBlobWriter,
    IManifestService,
    INamespace,
    IRepository,
    ITagService,
    Usage,
)
from txregistry.registry.cache import BoundedCache
from txregistry.registry.digest import Digest
from txregistry.registry.forwarding import (
    ForwardingBlobStore,
    ForwardingBlobUpload,
    ForwardingManifestService,
    ForwardingNamespace,
    ForwardingRepository,
    ForwardingTagService,
)
from txregistry.sizes import formatSize as _size

__all__ = ["Quota", "Quotas"]


@dataclass(frozen=True)
class Quota:
    """
    One rule: C{repository} as written and compiled, and its limits.
    """

    repository: str
    pattern: re.Pattern[str]
    maxBytes: int | None
    maxTags: int | None


class Quotas(ForwardingNamespace):
    """
    Enforces C{quotas} over C{inner}.

    @ivar refused: told C{"bytes"} or C{"tags"} for each push refused
        (the composition root counts them as metrics; this layer knows no
        telemetry).
    """

    def __init__(self, inner: INamespace, quotas: Sequence[Quota], clock: IReactorTime,
                 refresh: float = 30.0, refused: Callable[[str], None] | None = None) -> None:
        super().__init__(inner)
        self.quotas = tuple(quotas)
        self.refused = refused
        self._usage: BoundedCache[str, Usage] = BoundedCache(4096, ttl=refresh, clock=clock)

    def quotaFor(self, name: str) -> Quota | None:
        for quota in self.quotas:
            if quota.pattern.fullmatch(name):
                return quota
        return None

    def wrapRepository(self, repository: IRepository) -> IRepository:
        quota = self.quotaFor(repository.name)
        if quota is None:
            return repository
        return _Repository(repository, quota, self)

    async def usage(self, repository: IRepository) -> Usage:
        known = self._usage.get(repository.name)
        if known is None:
            known = await repository.usage()
            self._usage.put(repository.name, known)
        return known

    def added(self, name: str, bytes: int = 0, blobs: int = 0, tags: int = 0) -> None:
        known = self._usage.get(name)
        if known is not None:
            self._usage.put(name, replace(known, bytes=known.bytes + bytes,
                                          blobs=known.blobs + blobs, tags=known.tags + tags))

    def forget(self, name: str) -> None:
        self._usage.pop(name)


class _Repository(ForwardingRepository):
    def __init__(self, inner: IRepository, quota: Quota, layer: Quotas) -> None:
        super().__init__(inner)
        self.quota = quota
        self.layer = layer

    def usage(self) -> Deferred[Usage]:
        async def withLimits() -> Usage:
            usage = await self.inner.usage()
            return replace(usage, maxBytes=self.quota.maxBytes, maxTags=self.quota.maxTags,
                           quota=self.quota.repository)

        return Deferred.fromCoroutine(withLimits())

    def blobs(self) -> IBlobStore:
        return _Blobs(self.inner.blobs(), self)

    def tags(self) -> ITagService:
        return _Tags(self.inner.tags(), self)

    def manifests(self) -> IManifestService:
        return _Manifests(self.inner.manifests(), self)

    def current(self) -> Deferred[Usage]:
        return Deferred.fromCoroutine(self.layer.usage(self.inner))

    def refusal(self, usage: Usage, adding: str, limit: str = "bytes") -> Denied:
        if self.layer.refused is not None:
            self.layer.refused(limit)
        quota = self.quota
        return Denied(
            f"quota exceeded for {self.name} (storage.quotas {quota.repository}): "
            f"{_size(usage.bytes)} of {_size(quota.maxBytes or 0)} used, {adding}")

    async def checkBytes(self, adding: int) -> None:
        if self.quota.maxBytes is None:
            return
        usage = await self.current()
        if usage.bytes + adding > self.quota.maxBytes:
            raise self.refusal(usage, f"this push adds {_size(adding)}")


class _Blobs(ForwardingBlobStore):
    def __init__(self, inner: IBlobStore, repository: _Repository) -> None:
        super().__init__(inner)
        self._repository = repository

    async def _has(self, digest: Digest) -> bool:
        try:
            await self.inner.stat(digest)
        except BlobUnknown:
            return False
        return True

    def wrapUpload(self, upload: IBlobUpload) -> IBlobUpload:
        return _Upload(upload, self._repository, self)

    def put(self, digest: Digest, length: int | None = None) -> Deferred[IBlobWriter]:
        async def checked() -> IBlobWriter:
            if await self._has(digest):
                return await self.inner.put(digest, length)
            if length is not None:
                await self._repository.checkBytes(length)
            writer = await self.inner.put(digest, length)
            return _CountingWriter(writer, self._repository)

        return Deferred.fromCoroutine(checked())

    def mount(self, digest: Digest, source: str) -> Deferred[BlobDescriptor | None]:
        async def checked() -> BlobDescriptor | None:
            if self._repository.quota.maxBytes is not None and not await self._has(digest):
                # What the mount would add: the source's blob, if it has it.
                namespace = self._repository.layer.inner
                try:
                    descriptor = await namespace.repository(source).blobs().stat(digest)
                except (BlobUnknown, NameInvalid):
                    return await self.inner.mount(digest, source)
                await self._repository.checkBytes(descriptor.size)
                mounted = await self.inner.mount(digest, source)
                if mounted is not None:
                    self._repository.layer.added(self._repository.name, mounted.size, 1)
                return mounted
            return await self.inner.mount(digest, source)

        return Deferred.fromCoroutine(checked())

    def delete(self, digest: Digest) -> Deferred[None]:
        self._repository.layer.forget(self._repository.name)
        return self.inner.delete(digest).addBoth(self._forget)

    def _forget(self, result: Any) -> Any:
        self._repository.layer.forget(self._repository.name)
        return result


@implementer(IBlobWriter)
class _CountingWriter:
    """
    A monolithic blob's writer whose close refuses (aborting it) when
    what was written passes the quota.
    """

    def __init__(self, inner: IBlobWriter, repository: _Repository) -> None:
        self._inner = inner
        self._repository = repository
        self._written = 0

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._inner.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._inner.unregisterProducer()

    def write(self, data: bytes) -> None:
        self._written += len(data)
        self._inner.write(data)

    def abort(self) -> Deferred[None]:
        return self._inner.abort()

    def close(self) -> Deferred[int]:
        async def checked() -> int:
            try:
                await self._repository.checkBytes(self._written)
            except Denied:
                await self._inner.abort()
                raise
            size: int = await self._inner.close()
            self._repository.layer.added(self._repository.name, size, 1)
            return size

        return Deferred.fromCoroutine(checked())


class _Upload(ForwardingBlobUpload):
    def __init__(self, inner: IBlobUpload, repository: _Repository, blobs: _Blobs) -> None:
        super().__init__(inner)
        self._repository = repository
        self._blobs = blobs

    def append(self, start: int | None = None, length: int | None = None) -> Deferred[IBlobWriter]:
        if length is None:
            return self.inner.append(start, length)

        async def checked() -> IBlobWriter:
            await self._repository.checkBytes(self.inner.size + length)
            return await self.inner.append(start, length)

        return Deferred.fromCoroutine(checked())

    def commit(self, digest: Digest) -> Deferred[BlobDescriptor]:
        async def checked() -> BlobDescriptor:
            if not await self._blobs._has(digest):
                try:
                    await self._repository.checkBytes(self.inner.size)
                except Denied:
                    await self.inner.cancel()
                    raise
                descriptor: BlobDescriptor = await self.inner.commit(digest)
                self._repository.layer.added(self._repository.name, descriptor.size, 1)
                return descriptor
            return await self.inner.commit(digest)

        return Deferred.fromCoroutine(checked())


class _Manifests(ForwardingManifestService):
    def __init__(self, inner: IManifestService, repository: _Repository) -> None:
        super().__init__(inner)
        self._repository = repository

    def delete(self, digest: Digest) -> Deferred[None]:
        # Its tags go with it.
        return self.inner.delete(digest).addBoth(self._forget)

    def _forget(self, result: Any) -> Any:
        self._repository.layer.forget(self._repository.name)
        return result


class _Tags(ForwardingTagService):
    def __init__(self, inner: ITagService, repository: _Repository) -> None:
        super().__init__(inner)
        self._repository = repository

    def tag(self, tag: str, digest: Digest) -> Deferred[None]:
        maxTags = self._repository.quota.maxTags
        if maxTags is None:
            return self.inner.tag(tag, digest)

        async def checked() -> None:
            try:
                await self.inner.get(tag)
                new = False
            except ManifestUnknown:
                new = True
            if new:
                usage = await self._repository.current()
                if usage.tags + 1 > maxTags:
                    if self._repository.layer.refused is not None:
                        self._repository.layer.refused("tags")
                    raise Denied(
                        f"quota exceeded for {self._repository.name} (storage.quotas "
                        f"{self._repository.quota.repository}): {usage.tags} of {maxTags} tags "
                        f"used, tag {tag} would be one more")
            await self.inner.tag(tag, digest)
            if new:
                self._repository.layer.added(self._repository.name, tags=1)

        return Deferred.fromCoroutine(checked())

    def untag(self, tag: str) -> Deferred[None]:
        return self.inner.untag(tag).addBoth(self._forget)

    def _forget(self, result: Any) -> Any:
        self._repository.layer.forget(self._repository.name)
        return result

