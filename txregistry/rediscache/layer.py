# -*- test-case-name: tests.rediscache.test_layer -*-
"""
L{redisCached}: blob descriptors, tags and small manifests cached in Redis,
shared by every registry instance on the same storage.

Reads look in Redis first and fill it on a miss; writes go to storage
first and then to Redis, before they are acknowledged, so that once a
client has its answer no instance serves what it replaced:

  - a tag write stores the new digest (overwriting what any instance
    cached);
  - an untag, and a manifest delete (for the manifest and every tag that
    named it), store a I{tombstone} for a while: an instance that read the
    old value from storage before the write, and fills the cache after it,
    fills only an absent key (C{SET NX}), so it cannot bring the old value
    back; a tombstone reads as a miss, answered from storage;
  - a blob delete removes its descriptor.

Every entry has a time to live besides (L{TAG_TTL}, L{MANIFEST_TTL},
L{BLOB_TTL}), which bounds what a write made while Redis was unreachable
can leave stale.  When Redis is down every read is answered from storage
(L{RedisCache} logs the outage).
"""

from __future__ import annotations

import builtins
from typing import Any

from twisted.internet.defer import Deferred

from txregistry.config import RedisConfig
from txregistry.interfaces import (
    BlobDescriptor,
    CollectionReport,
    IBlobStore,
    IManifestService,
    INamespace,
    IRepository,
    ITagService,
    Manifest,
    PutManifest,
)
from txregistry.rediscache.client import RedisCache
from txregistry.registry.digest import Digest
from txregistry.registry.forwarding import (
    ForwardingBlobStore,
    ForwardingManifestService,
    ForwardingNamespace,
    ForwardingRepository,
    ForwardingTagService,
)

__all__ = ["BLOB_TTL", "MANIFEST_TTL", "TAG_TTL", "RedisCachedNamespace", "redisCached"]

#: Seconds a tag's digest is kept.
TAG_TTL = 600.0
#: Seconds a manifest's content is kept (it never changes; a delete
#: tombstones it).
MANIFEST_TTL = 3600.0
#: Seconds a blob's size is kept (it never changes; a delete removes it).
BLOB_TTL = 86400.0
#: Seconds a tombstone stays: longer than any read of storage that began
#: before the write it marks.
TOMBSTONE_TTL = 600.0
#: Manifests above this size are not cached.
MAX_MANIFEST = 64 * 1024

_TOMBSTONE = b"!"
_PREFIX = b"txregistry:"


def _key(kind: bytes, repository: str, item: str) -> bytes:
    return _PREFIX + kind + b":" + repository.encode() + b"\x00" + item.encode()


def _digest(value: bytes | None) -> Digest | None:
    if value is None or value == _TOMBSTONE:
        return None
    try:
        return Digest.parse(value.decode("ascii"))
    except Exception:
        return None


class RedisCachedNamespace(ForwardingNamespace):
    """
    C{inner}, with its repositories' tags, manifests and blob descriptors
    cached in C{cache}.
    """

    def __init__(self, inner: INamespace, cache: RedisCache) -> None:
        super().__init__(inner)
        self.cache = cache

    def wrapRepository(self, repository: IRepository) -> IRepository:
        return _Repository(repository, self.cache)

    def collectGarbage(
        self, deleteUntagged: bool = False, dryRun: bool = False, online: bool = False,
        progress: Any = None,
    ) -> Deferred[CollectionReport]:
        """
        Collect, then tombstone what the collection deleted (tags,
        manifests, the links of removed blobs), so that no instance serves
        it from the cache.
        """
        async def collect() -> CollectionReport:
            report: CollectionReport = await self.inner.collectGarbage(
                deleteUntagged, dryRun, online, progress)
            if not report.dryRun:
                keys = [_key(b"tag", name, tag) for name, tag in report.tags]
                keys += [_key(b"manifest", name, str(digest)) for name, digest in report.manifests]
                keys += [_key(b"blob", name, str(digest)) for name, digest in report.unlinked]
                for key in keys:
                    await self.cache.set(key, _TOMBSTONE, TOMBSTONE_TTL)
            return report

        return Deferred.fromCoroutine(collect())

    def closeLayer(self) -> Deferred[None]:
        """
        Close the Redis connections (when the registry stops).
        """
        return self.cache.close()


def redisCached(config: RedisConfig, reactor: Any) -> Any:
    """
    The layer for C{config}: a callable wrapping a namespace in
    L{RedisCachedNamespace}, with one connection pool.
    """
    cache = RedisCache(config, reactor)
    return lambda inner: RedisCachedNamespace(inner, cache)


class _Repository(ForwardingRepository):
    def __init__(self, inner: IRepository, cache: RedisCache) -> None:
        super().__init__(inner)
        self._cache = cache

    def manifests(self) -> IManifestService:
        return _Manifests(self.inner.manifests(), self.inner.tags(), self._cache, self.name)

    def tags(self) -> ITagService:
        return _Tags(self.inner.tags(), self._cache, self.name)

    def blobs(self) -> IBlobStore:
        return _Blobs(self.inner.blobs(), self._cache, self.name)


class _Tags(ForwardingTagService):
    def __init__(self, inner: ITagService, cache: RedisCache, name: str) -> None:
        super().__init__(inner)
        self._cache = cache
        self._name = name

    def get(self, tag: str) -> Deferred[Digest]:
        return Deferred.fromCoroutine(self._get(tag))

    async def _get(self, tag: str) -> Digest:
        key = _key(b"tag", self._name, tag)
        found = await self._cache.get(key)
        digest = _digest(found)
        if digest is not None:
            return digest
        digest = await self.inner.get(tag)
        if found is None:
            await self._cache.set(key, str(digest).encode(), TAG_TTL, onlyIfAbsent=True)
        return digest

    def tag(self, tag: str, digest: Digest) -> Deferred[None]:
        return Deferred.fromCoroutine(self._tag(tag, digest))

    async def _tag(self, tag: str, digest: Digest) -> None:
        await self.inner.tag(tag, digest)
        await self._cache.set(_key(b"tag", self._name, tag), str(digest).encode(), TAG_TTL)

    def untag(self, tag: str) -> Deferred[None]:
        return Deferred.fromCoroutine(self._untag(tag))

    async def _untag(self, tag: str) -> None:
        try:
            await self.inner.untag(tag)
        finally:
            await self._cache.set(_key(b"tag", self._name, tag), _TOMBSTONE, TOMBSTONE_TTL)


class _Manifests(ForwardingManifestService):
    def __init__(
        self, inner: IManifestService, tags: ITagService, cache: RedisCache, name: str
    ) -> None:
        super().__init__(inner)
        self._tags = tags
        self._cache = cache
        self._name = name

    def get(self, digest: Digest) -> Deferred[Manifest]:
        return Deferred.fromCoroutine(self._get(digest))

    async def _get(self, digest: Digest) -> Manifest:
        key = _key(b"manifest", self._name, str(digest))
        found = await self._cache.get(key)
        if found is not None and found != _TOMBSTONE:
            mediaType, _, content = found.partition(b"\n")
            return Manifest(digest, mediaType.decode("utf-8", "replace"), content)
        manifest: Manifest = await self.inner.get(digest)
        if found is None and len(manifest.content) <= MAX_MANIFEST and "\n" not in manifest.mediaType:
            value = manifest.mediaType.encode() + b"\n" + manifest.content
            await self._cache.set(key, value, MANIFEST_TTL, onlyIfAbsent=True)
        return manifest

    def put(
        self, content: bytes, mediaType: str | None, digest: Digest | None = None
    ) -> Deferred[PutManifest]:
        return Deferred.fromCoroutine(self._put(content, mediaType, digest))

    async def _put(self, content: bytes, mediaType: str | None, digest: Digest | None) -> PutManifest:
        stored: PutManifest = await self.inner.put(content, mediaType, digest)
        # A manifest pushed again after a delete: its tombstone goes.
        await self._cache.delete(_key(b"manifest", self._name, str(stored.digest)))
        return stored

    def delete(self, digest: Digest) -> Deferred[None]:
        return Deferred.fromCoroutine(self._delete(digest))

    async def _delete(self, digest: Digest) -> None:
        try:
            tags: builtins.list[str] = await self._tags.lookup(digest)
        except Exception:
            tags = []
        try:
            await self.inner.delete(digest)
        finally:
            keys = [_key(b"manifest", self._name, str(digest))]
            keys += [_key(b"tag", self._name, tag) for tag in tags]
            for key in keys:
                await self._cache.set(key, _TOMBSTONE, TOMBSTONE_TTL)


class _Blobs(ForwardingBlobStore):
    def __init__(self, inner: IBlobStore, cache: RedisCache, name: str) -> None:
        super().__init__(inner)
        self._cache = cache
        self._name = name

    def stat(self, digest: Digest) -> Deferred[BlobDescriptor]:
        return Deferred.fromCoroutine(self._stat(digest))

    async def _stat(self, digest: Digest) -> BlobDescriptor:
        key = _key(b"blob", self._name, str(digest))
        found = await self._cache.get(key)
        if found is not None and found != _TOMBSTONE and found.isdigit():
            return BlobDescriptor(digest, int(found))
        descriptor: BlobDescriptor = await self.inner.stat(digest)
        if found is None:
            await self._cache.set(key, str(descriptor.size).encode(), BLOB_TTL, onlyIfAbsent=True)
        return descriptor

    def delete(self, digest: Digest) -> Deferred[None]:
        return Deferred.fromCoroutine(self._delete(digest))

    async def _delete(self, digest: Digest) -> None:
        try:
            await self.inner.delete(digest)
        finally:
            await self._cache.set(_key(b"blob", self._name, str(digest)), _TOMBSTONE, TOMBSTONE_TTL)
