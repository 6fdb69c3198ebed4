# -*- test-case-name: tests.registry.test_store -*-
"""
L{StorageNamespace}: the registry's service model over one storage
driver, in the reference implementation's storage layout.

This is the innermost provider of L{INamespace}; every layer of the
composition (read-only mode, the delete switch, and the features of
later issues) wraps it.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from txregistry.errors import NameInvalid, NameUnknown
from txregistry.interfaces import (
    Caller,
    CollectionReport,
    IBlobStore,
    IManifestService,
    INamespace,
    IRepository,
    ITagService,
    Page,
    Usage,
)
from txregistry.registry import layout
from txregistry.registry.blobs import BlobContent, RepositoryBlobs
from txregistry.registry.collection import Collector
from txregistry.registry.digest import Digest
from txregistry.registry.faults import FaultTranslatingDriver
from txregistry.registry.index import ManifestIndex, RepositoryManifests, RepositoryTags
from txregistry.registry.names import isValidName
from txregistry.registry.peers import NO_PEERS, IReferencePeers
from txregistry.registry.retention import RetentionPolicies
from txregistry.registry.uploads import UploadArea
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IClientRoutedURLs, IStorageDriver


@implementer(INamespace)
class StorageNamespace:
    """
    Every repository stored by C{driver}.

    @param clock: the time source of the caches and of upload ids.
    @param tagTTL: see L{ManifestIndex}'s C{referenceTTL}.
    @param redirect: whether blob reads go to the driver's direct URL when
        it has one (C{storage.redirect}).
    """

    def __init__(
        self,
        driver: IStorageDriver,
        clock: IReactorTime,
        tagTTL: float = 0.0,
        redirect: bool = True,
        collectionGrace: float | None = None,
        retention: RetentionPolicies | None = None,
        partial: Callable[[str], bool] | None = None,
        peers: IReferencePeers = NO_PEERS,
    ) -> None:
        """
        @param collectionGrace: with online garbage collection, its grace
            window in seconds: writes then touch the leases of the blobs
            they depend on (L{txregistry.registry.collection}).
        @param retention: the retention policies collections apply.
        @param partial: which repositories may hold a manifest before its
            blobs and children (a pull-through cache's); none when
            L{None}.
        @param peers: the other processes caching this storage's
            references (the other workers), told of every tag or revision
            change before it is acknowledged.
        """
        driver = FaultTranslatingDriver(driver)
        self._driver = driver
        self._redirect = redirect
        # Asked once, not on every request (see actingFor).
        self._clientRouted = redirect and IClientRoutedURLs.providedBy(driver)
        #: The address of the caller this namespace acts for, when the
        #: driver's direct URLs depend on it (see L{actingFor}).
        self._client: str | None = None
        self._content = BlobContent(driver, leases=collectionGrace is not None, clock=clock,
                                    linkTTL=tagTTL, peers=peers)
        self._uploads = UploadArea(driver, self._content, clock)
        self._index = ManifestIndex(driver, self._content, clock, referenceTTL=tagTTL, peers=peers)
        self._grace = collectionGrace
        if collectionGrace is not None:
            self._index.maxPutSeconds = collectionGrace / 2
        self._collector = Collector(driver, self._content, self._index, retention=retention)
        self._index.recordPulls = self._collector.retention.recordsPulls
        if partial is not None:
            self._index.partial = partial

    def actingFor(self, caller: Caller) -> INamespace:
        # Storage is the same for every caller, but a driver's direct URLs
        # may not be (the cloudfront middleware sends clients inside AWS to
        # the bucket): then blob reads are told the caller's address.
        if not self._clientRouted:
            return self
        bound = copy.copy(self)
        bound._client = caller.address or None
        return bound

    def repository(self, name: str) -> IRepository:
        if not isValidName(name):
            raise NameInvalid(name)
        return StorageRepository(name, self._content, self._uploads, self._index, self._redirect,
                                 self._client)

    def catalog(self, n: int | None, last: str | None) -> Deferred[Page]:
        return Deferred.fromCoroutine(self._catalog(n, last))

    async def _catalog(self, n: int | None, last: str | None) -> Page:
        """
        Walk the repositories in name order, best first, and stop once the
        page is full: a page costs the directories it covers (and the
        path down to C{last}), not the whole tree.

        A repository's children are named after it (C{a} before C{a/b}),
        so taking the smallest name seen so far from a heap yields names
        in sorted order, as the spec's C{last} paging needs, although a
        walk by directory would give C{a/b} before C{a-b}.
        """
        found: list[str] = []
        heap: list[tuple[str, str]] = []
        await self._expand(heap, layout.REPOSITORIES, "", last)
        while heap and (n is None or len(found) <= n):
            name, path = heapq.heappop(heap)
            try:
                children = await self._driver.list(path)
            except PathNotFoundError:
                continue
            if (not last or name > last) and any(
                layout.leaf(child) == layout.MANIFESTS for child in children
            ):
                found.append(name)
            self._push(heap, children, name, last)
        more = n is not None and len(found) > n
        return Page(found[:n] if n is not None else found, more)

    async def _expand(self, heap: list[tuple[str, str]], path: str, name: str, last: str | None) -> None:
        try:
            children = await self._driver.list(path)
        except PathNotFoundError:
            return
        self._push(heap, children, name, last)

    @staticmethod
    def _push(heap: list[tuple[str, str]], children: list[str], name: str, last: str | None) -> None:
        """
        Queue the child repositories of C{name} below which a name after
        C{last} may be.
        """
        for child in children:
            leaf = layout.leaf(child)
            if layout.isInternal(leaf):
                continue
            childName = f"{name}/{leaf}" if name else leaf
            if _mayFollow(childName, last):
                heapq.heappush(heap, (childName, child))

    def collectGarbage(
        self, deleteUntagged: bool = False, dryRun: bool = False, online: bool = False,
        progress: Any = None,
    ) -> Deferred[CollectionReport]:
        if online and self._grace is None:
            raise ValueError("online collection needs the namespace made with a collectionGrace")
        return Deferred.fromCoroutine(self._collector.collect(
            deleteUntagged, dryRun, self._grace if online else None,
            progress or (lambda done, total, name: None)))

    @property
    def collector(self) -> Collector:
        """
        The collector itself, for the offline command's progress.
        """
        return self._collector

    def purgeUploads(self, olderThan: float, dryRun: bool = False) -> Deferred[list[str]]:
        return Deferred.fromCoroutine(self._uploads.purge(olderThan, dryRun))


@implementer(IRepository)
class StorageRepository:
    """
    One repository of a L{StorageNamespace}.
    """

    def __init__(
        self,
        name: str,
        content: BlobContent,
        uploads: UploadArea,
        index: ManifestIndex,
        redirect: bool,
        client: str | None = None,
    ) -> None:
        """
        @param client: the address of the client this repository is read
            for, when the driver's direct URLs depend on it.
        """
        self.name = name
        self._redirect = redirect
        self._client = client
        self._content = content
        self._uploads = uploads
        self._index = index

    def manifests(self) -> IManifestService:
        return RepositoryManifests(self.name, self._index)

    def tags(self) -> ITagService:
        return RepositoryTags(self.name, self._index)

    def blobs(self) -> IBlobStore:
        return RepositoryBlobs(self.name, self._content, self._uploads, self._redirect, self._client)

    def referrers(self, subject: Digest) -> Deferred[list[dict]]:  # type: ignore[type-arg]
        return Deferred.fromCoroutine(self._index.referrers(self.name, subject))

    def usage(self) -> Deferred[Usage]:
        return Deferred.fromCoroutine(self._usage())

    async def _usage(self) -> Usage:
        sizes = await self._content.linkedSizes(self.name)
        try:
            tags = len(await self._index.tags(self.name))
        except NameUnknown:
            tags = 0
        return Usage(self.name, sum(sizes.values()), len(sizes), tags)


def _mayFollow(name: str, last: str | None) -> bool:
    """
    Whether C{name} or a name below it (C{name/...}) sorts after C{last}.

    Below C{name} every name starts C{name + "/"}: if C{last} is C{name}
    followed by a character after C{"/"} (C{a} and C{ab}), or differs from
    C{name} earlier and is larger, nothing below C{name} comes after it.
    """
    if not last or name > last:
        return True
    if not last.startswith(name):
        return False
    rest = last[len(name):]
    return rest == "" or rest[0] <= "/"
