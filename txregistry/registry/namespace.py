# -*- test-case-name: tests.registry.test_store -*-
"""
L{StorageNamespace}: the registry's service model over one storage
driver, in the reference implementation's storage layout.

This is the innermost provider of L{INamespace}; every layer of the
composition (read-only mode, the delete switch, and the features of
later issues) wraps it.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from txregistry.errors import NameInvalid
from txregistry.interfaces import (
    IBlobStore,
    IManifestService,
    INamespace,
    IRepository,
    ITagService,
    Page,
)
from txregistry.registry import layout
from txregistry.registry.blobs import BlobContent, RepositoryBlobs
from txregistry.registry.digest import Digest
from txregistry.registry.index import ManifestIndex, RepositoryManifests, RepositoryTags, page
from txregistry.registry.names import isValidName
from txregistry.registry.uploads import UploadArea
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageDriver


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
    ) -> None:
        self._driver = driver
        self._redirect = redirect
        self._content = BlobContent(driver)
        self._uploads = UploadArea(driver, self._content, clock)
        self._index = ManifestIndex(driver, self._content, clock, referenceTTL=tagTTL)

    def repository(self, name: str) -> IRepository:
        if not isValidName(name):
            raise NameInvalid(name)
        return StorageRepository(name, self._content, self._uploads, self._index, self._redirect)

    def catalog(self, n: int | None, last: str | None) -> Deferred[Page]:
        return Deferred.fromCoroutine(self._catalog(n, last))

    async def _catalog(self, n: int | None, last: str | None) -> Page:
        return page(await self._repositories(), n, last)

    async def _repositories(self) -> list[str]:
        """
        Every repository with manifests, sorted.
        """
        found: list[str] = []

        async def visit(path: str, name: str) -> None:
            try:
                children = await self._driver.list(path)
            except PathNotFoundError:
                return
            leaves = [layout.leaf(child) for child in children]
            if layout.MANIFESTS in leaves and name:
                found.append(name)
            for child, leaf in zip(children, leaves, strict=True):
                if not layout.isInternal(leaf):
                    await visit(child, f"{name}/{leaf}" if name else leaf)

        await visit(layout.REPOSITORIES, "")
        return sorted(found)

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
    ) -> None:
        self.name = name
        self._redirect = redirect
        self._content = content
        self._uploads = uploads
        self._index = index

    def manifests(self) -> IManifestService:
        return RepositoryManifests(self.name, self._index)

    def tags(self) -> ITagService:
        return RepositoryTags(self.name, self._index)

    def blobs(self) -> IBlobStore:
        return RepositoryBlobs(self.name, self._content, self._uploads, self._redirect)

    def referrers(self, subject: Digest) -> Deferred[list[dict]]:  # type: ignore[type-arg]
        return Deferred.fromCoroutine(self._index.referrers(self.name, subject))
