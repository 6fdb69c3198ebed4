# -*- test-case-name: tests.registry.test_switches -*-
"""
Providers of the service model that pass every call to another provider.

A layer of the composition (read-only mode, access control,
notifications, quotas, a pull-through cache) subclasses these and
overrides only what it changes; everything else reaches the provider it
wraps unchanged.  Each C{wrap*} method is where a subclass puts its own
wrapper around the next level down (a namespace's repositories, a
repository's services, a blob store's uploads).
"""

from __future__ import annotations

import builtins
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from txregistry.interfaces import (
    ANONYMOUS,
    BlobDescriptor,
    Caller,
    CollectionReport,
    IBlobReader,
    IBlobStore,
    IBlobUpload,
    IBlobWriter,
    IManifestService,
    INamespace,
    IRepository,
    ITagService,
    Manifest,
    Page,
    PutManifest,
    Usage,
)
from txregistry.registry.digest import Digest

__all__ = [
    "ForwardingNamespace",
    "ForwardingRepository",
    "ForwardingManifestService",
    "ForwardingTagService",
    "ForwardingBlobStore",
    "ForwardingBlobUpload",
]


@implementer(INamespace)
class ForwardingNamespace:
    """
    @ivar caller: who this namespace acts for (see L{actingFor}).
    """

    caller: Caller = ANONYMOUS

    def __init__(self, inner: INamespace) -> None:
        self.inner = inner

    def actingFor(self, caller: Caller) -> INamespace:
        """
        A shallow copy of this layer acting for C{caller} around the inner
        namespace acting for it; this layer itself when neither it nor
        any layer inside depends on the caller (L{dependsOnCaller}).
        """
        inner = self.inner.actingFor(caller)
        if inner is self.inner and not self.dependsOnCaller:
            return self
        # What copy.copy does, without its pickling protocol's detour
        # (four times the cost, on every request).
        bound = object.__new__(type(self))
        bound.__dict__.update(self.__dict__)
        bound.inner = inner
        bound.caller = caller
        return bound

    #: Whether this layer does anything with L{caller}; a layer that does
    #: sets it, so that L{actingFor} binds a copy.
    dependsOnCaller = False

    def wrapRepository(self, repository: IRepository) -> IRepository:
        return repository

    def repository(self, name: str) -> IRepository:
        return self.wrapRepository(self.inner.repository(name))

    def catalog(self, n: int | None, last: str | None) -> Deferred[Page]:
        return self.inner.catalog(n, last)

    def collectGarbage(
        self, deleteUntagged: bool = False, dryRun: bool = False, online: bool = False,
        progress: Any = None,
    ) -> Deferred[CollectionReport]:
        return self.inner.collectGarbage(deleteUntagged, dryRun, online, progress)

    def purgeUploads(self, olderThan: float, dryRun: bool = False) -> Deferred[builtins.list[str]]:
        return self.inner.purgeUploads(olderThan, dryRun)


@implementer(IRepository)
class ForwardingRepository:
    def __init__(self, inner: IRepository) -> None:
        self.inner = inner
        self.name = inner.name

    def manifests(self) -> IManifestService:
        return self.inner.manifests()

    def tags(self) -> ITagService:
        return self.inner.tags()

    def blobs(self) -> IBlobStore:
        return self.inner.blobs()

    def referrers(self, subject: Digest) -> Deferred[list[dict[str, Any]]]:
        return self.inner.referrers(subject)

    def usage(self) -> Deferred[Usage]:
        return self.inner.usage()


@implementer(IManifestService)
class ForwardingManifestService:
    def __init__(self, inner: IManifestService) -> None:
        self.inner = inner

    def exists(self, digest: Digest) -> Deferred[bool]:
        return self.inner.exists(digest)

    def get(self, digest: Digest) -> Deferred[Manifest]:
        return self.inner.get(digest)

    def put(
        self, content: bytes, mediaType: str | None, digest: Digest | None = None
    ) -> Deferred[PutManifest]:
        return self.inner.put(content, mediaType, digest)

    def delete(self, digest: Digest) -> Deferred[None]:
        return self.inner.delete(digest)


@implementer(ITagService)
class ForwardingTagService:
    def __init__(self, inner: ITagService) -> None:
        self.inner = inner

    def get(self, tag: str) -> Deferred[Digest]:
        return self.inner.get(tag)

    def tag(self, tag: str, digest: Digest) -> Deferred[None]:
        return self.inner.tag(tag, digest)

    def untag(self, tag: str) -> Deferred[None]:
        return self.inner.untag(tag)

    def list(self, n: int | None, last: str | None) -> Deferred[Page]:
        return self.inner.list(n, last)

    def lookup(self, digest: Digest) -> Deferred[builtins.list[str]]:
        return self.inner.lookup(digest)

    def indexed(self, tag: str, digest: Digest) -> Deferred[bool]:
        return self.inner.indexed(tag, digest)

    def pushTimes(self, tags: builtins.list[str] | None = None) -> Deferred[dict[str, float]]:
        return self.inner.pushTimes(tags)


@implementer(IBlobStore)
class ForwardingBlobStore:
    def __init__(self, inner: IBlobStore) -> None:
        self.inner = inner

    def wrapUpload(self, upload: IBlobUpload) -> IBlobUpload:
        return upload

    def stat(self, digest: Digest) -> Deferred[BlobDescriptor]:
        return self.inner.stat(digest)

    def reader(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> Deferred[IBlobReader]:
        return self.inner.reader(digest, offset, length)

    def redirectURL(self, digest: Digest, method: str = "GET") -> Deferred[str | None]:
        return self.inner.redirectURL(digest, method)

    def create(self) -> Deferred[IBlobUpload]:
        return self.inner.create().addCallback(self.wrapUpload)

    def resume(self, uploadID: str) -> Deferred[IBlobUpload]:
        return self.inner.resume(uploadID).addCallback(self.wrapUpload)

    def put(self, digest: Digest, length: int | None = None) -> Deferred[IBlobWriter]:
        return self.inner.put(digest, length)

    def mount(self, digest: Digest, source: str) -> Deferred[BlobDescriptor | None]:
        return self.inner.mount(digest, source)

    def delete(self, digest: Digest) -> Deferred[None]:
        return self.inner.delete(digest)


@implementer(IBlobUpload)
class ForwardingBlobUpload:
    def __init__(self, inner: IBlobUpload) -> None:
        self.inner = inner

    @property
    def id(self) -> str:
        return self.inner.id  # type: ignore[no-any-return]

    @property
    def startedAt(self) -> float | None:
        return self.inner.startedAt  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        return self.inner.size  # type: ignore[no-any-return]

    def append(self, start: int | None = None, length: int | None = None) -> Deferred[IBlobWriter]:
        return self.inner.append(start, length)

    def commit(self, digest: Digest) -> Deferred[BlobDescriptor]:
        return self.inner.commit(digest)

    def cancel(self) -> Deferred[None]:
        return self.inner.cancel()
