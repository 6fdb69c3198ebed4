# -*- test-case-name: tests.ui.test_pages -*-
"""
What each page shows, read through the service model: a page of
repositories matching a search, a page of a repository's tags sorted by
name or push time, a manifest with its children, config, layers and
referrers.  Everything goes through L{INamespace} and the interfaces
below it, acting for the visitor, so the UI never sees more than the API
would serve them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, FirstError, gatherResults
from twisted.internet.interfaces import IConsumer, IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from txregistry.errors import BlobUnknown, ManifestUnknown, NameUnknown
from txregistry.interfaces import INamespace, IRepository, Manifest, Usage
from txregistry.registry.cache import BoundedCache
from txregistry.registry.digest import Digest, InvalidDigest
from txregistry.ui.images import (
    Descriptor,
    ImageConfig,
    annotationsOf,
    configDescriptor,
    descriptorsOf,
    isIndex,
    parseConfig,
    parseDocument,
)

__all__ = [
    "RepositorySummary",
    "TagRow",
    "Referrer",
    "ManifestDetails",
    "Reader",
    "findRepositories",
]

#: The largest image config read for a page; configs are a few KiB.
MAX_CONFIG = 1 << 20
#: How many children of an index are opened to add up its size.
MAX_CHILDREN = 32
#: How deep referrers of referrers (a signature of an SBOM) are followed.
MAX_REFERRER_DEPTH = 3
#: How many catalog entries are read per batch while searching.
CATALOG_BATCH = 1000


@dataclass(frozen=True)
class RepositorySummary:
    """
    One row of the repositories page.

    @ivar usage: what the repository's blobs take in storage (each once)
        and its quota, from the model.
    """

    name: str
    tags: int
    lastPush: float | None
    usage: Usage


@dataclass(frozen=True)
class TagRow:
    tag: str
    digest: str
    mediaType: str
    size: int
    platforms: list[str]
    created: str
    pushed: float | None


@dataclass(frozen=True)
class Referrer:
    """
    A manifest whose subject is another, with its own referrers.
    """

    descriptor: Descriptor
    referrers: list["Referrer"] = field(default_factory=list)


@dataclass(frozen=True)
class ManifestDetails:
    repository: str
    digest: str
    mediaType: str
    size: int
    totalSize: int
    artifactType: str
    annotations: dict[str, str]
    tags: list[str] | None
    children: list[Descriptor]
    config: Descriptor | None
    image: ImageConfig | None
    layers: list[Descriptor]
    subject: Descriptor | None
    referrers: dict[str, list[Referrer]]
    raw: bytes


async def findRepositories(
    namespace: INamespace, query: str, last: str | None, n: int
) -> tuple[list[str], bool]:
    """
    The first C{n} repository names after C{last} containing C{query},
    from the catalog (which lists only what the caller may pull).

    @return: the names, and whether more follow.
    """
    if not query:
        page = await namespace.catalog(n, last)
        return page.items, page.more
    found: list[str] = []
    while True:
        page = await namespace.catalog(CATALOG_BATCH, last)
        for name in page.items:
            if query in name:
                if len(found) == n:
                    return found, True
                found.append(name)
        if not page.more or not page.items:
            return found, False
        last = page.items[-1]


@implementer(IConsumer)
class _Collector:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))


async def readSmallBlob(repository: IRepository, digest: str, limit: int = MAX_CONFIG) -> bytes | None:
    """
    The content of a small blob (an image config), or L{None} when it is
    missing, not a digest, or larger than C{limit}: a page never holds a
    large blob in memory.
    """
    try:
        parsed = Digest.parse(digest)
        store = repository.blobs()
        described = await store.stat(parsed)
        if described.size > limit:
            return None
        reader = await store.reader(parsed, 0, described.size)
    except (BlobUnknown, InvalidDigest):
        return None
    collector = _Collector()
    await reader.startProducing(collector)
    return b"".join(collector.parts)


async def _manifest(repository: IRepository, digest: str) -> Manifest | None:
    try:
        return await repository.manifests().get(Digest.parse(digest))  # type: ignore[no-any-return]
    except (ManifestUnknown, InvalidDigest):
        return None


#: Seconds the push times of every tag of a repository are reused: the
#: repositories page and the tags page sorted by push time read them all
#: (one walk of a repository's tags), a few pages a second would
#: otherwise each pay for the walk.  The tags page sorted by name is
#: always current.
TIMES_TTL = 10.0


class Reader:
    """
    Reads what the pages show, with the caches that keep a repository of
    10 000 tags fast: every tag's push time for L{TIMES_TTL}, and what a
    manifest's content says (its size, platforms, creation) for as long
    as there is room, since content by digest never changes.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._times: BoundedCache[str, dict[str, float]] = BoundedCache(
            maxEntries=256, ttl=TIMES_TTL, clock=clock)
        self._facts: BoundedCache[str, tuple[int, list[str], str]] = BoundedCache(maxEntries=16384)
        #: Repositories whose times are being read, with who waits for them.
        self._reading: dict[str, list[Deferred[dict[str, float]]]] = {}

    def forget(self, name: str) -> None:
        """
        Drop what is kept of repository C{name} (after a change through
        the UI, so that its next page shows it).
        """
        self._times.pop(name)

    async def allPushTimes(self, repository: IRepository) -> dict[str, float]:
        """
        Every tag's push time, read once for all the pages that ask while
        it is read (a reading costs one stat per tag: eight browsers asking
        at once must not make it eight).

        @raise NameUnknown: no such repository.
        """
        name = repository.name
        times = self._times.get(name)
        if times is not None:
            return times
        waiting = self._reading.get(name)
        if waiting is not None:
            done: Deferred[dict[str, float]] = Deferred()
            waiting.append(done)
            return await done
        self._reading[name] = waiting = []
        try:
            times = await repository.tags().pushTimes()
        except Exception:
            failure = Failure()
            del self._reading[name]
            for done in waiting:
                done.errback(failure)
            raise
        del self._reading[name]
        self._times.put(name, times)
        for done in waiting:
            done.callback(times)
        return times

    async def imageFacts(self, repository: IRepository, manifest: Manifest) -> tuple[int, list[str], str]:
        """
        An image's or index's total size (each blob once), platforms and
        creation time (an index's: its newest child's).
        """
        key = str(manifest.digest)
        facts = self._facts.get(key)
        if facts is None:
            facts = await _imageFacts(repository, manifest)
            self._facts.put(key, facts)
        return facts

    async def summarize(self, repository: IRepository) -> RepositorySummary:
        """
        A repository's tag count, last push and storage usage.
        """
        usage = await repository.usage()
        try:
            times = await self.allPushTimes(repository)
        except NameUnknown:
            times = {}
        return RepositorySummary(repository.name, usage.tags, max(times.values(), default=None), usage)

    async def tagPage(
        self, repository: IRepository, sort: str, descending: bool, page: int, perPage: int,
        query: str = "",
    ) -> tuple[list[TagRow], int]:
        """
        One page of a repository's tags, sorted by C{name} or C{pushed}.

        Sorting and paging happen here, so a browser gets one page however
        many tags there are; only the page's tags are resolved and opened.

        @param page: counted from 1.
        @return: the page's rows and how many tags match in all.
        @raise NameUnknown: no such repository.
        """
        start = (page - 1) * perPage
        if sort == "pushed":
            times = await self.allPushTimes(repository)
            names = [tag for tag in times if query in tag]
            names.sort(key=lambda tag: (times[tag], tag), reverse=descending)
            shown = names[start:start + perPage]
        else:
            names = (await repository.tags().list(None, None)).items
            if query:
                names = [tag for tag in names if query in tag]
            if descending:
                names.reverse()
            shown = names[start:start + perPage]
            times = await repository.tags().pushTimes(shown)
        async def row(tag: str) -> TagRow | None:
            try:
                digest = await repository.tags().get(tag)
                manifest = await repository.manifests().get(digest)
            except ManifestUnknown:
                # Untagged since it was listed.
                return None
            size, platforms, created = await self.imageFacts(repository, manifest)
            return TagRow(tag, str(digest), manifest.mediaType, size, platforms, created, times.get(tag))

        # The page's rows are read side by side (the storage pool has
        # several threads), and kept in order.
        try:
            rows = await gatherResults([Deferred.fromCoroutine(row(tag)) for tag in shown], consumeErrors=True)
        except FirstError as e:
            e.subFailure.raiseException()
        return [r for r in rows if r is not None], len(names)

    async def manifestDetails(self, repository: IRepository, digest: Digest) -> ManifestDetails:
        """
        Everything the manifest page shows of C{digest}.

        @raise ManifestUnknown: no such manifest in the repository.
        """
        return await manifestDetails(repository, digest, self)


async def _imageFacts(repository: IRepository, manifest: Manifest) -> tuple[int, list[str], str]:
    """
    An image's or index's total size (each blob once), platforms and
    creation time (an index's: its newest child's).
    """
    document = parseDocument(manifest.content)
    blobs: dict[str, int] = {str(manifest.digest): len(manifest.content)}
    platforms: list[str] = []
    created = ""
    images: list[tuple[Manifest, dict[str, Any], str]] = []
    if isIndex(manifest.mediaType, document):
        for child in descriptorsOf(document, "manifests")[:MAX_CHILDREN]:
            blobs[child.digest] = child.size
            childManifest = await _manifest(repository, child.digest)
            if childManifest is not None:
                images.append((childManifest, parseDocument(childManifest.content), child.platform))
            elif child.platform:
                platforms.append(child.platform)
    else:
        images.append((manifest, document, ""))
    for _, image, platform in images:
        config = configDescriptor(image)
        if config is not None:
            blobs[config.digest] = config.size
        for layer in descriptorsOf(image, "layers"):
            blobs[layer.digest] = layer.size
        parsed = None
        if config is not None:
            content = await readSmallBlob(repository, config.digest)
            parsed = parseConfig(content) if content is not None else None
        if parsed is not None:
            created = max(created, parsed.created)
            platform = platform or parsed.platform
        if platform and platform not in platforms:
            platforms.append(platform)
    return sum(blobs.values()), platforms, created


async def _referrers(repository: IRepository, digest: str, depth: int) -> dict[str, list[Referrer]]:
    """
    The referrers of C{digest} grouped by C{artifactType}, each with its
    own, C{depth} levels down.
    """
    if depth <= 0:
        return {}
    try:
        found = await repository.referrers(Digest.parse(digest))
    except InvalidDigest:
        return {}
    grouped: dict[str, list[Referrer]] = {}
    for raw in found:
        descriptor = descriptorsOf({"d": [raw]}, "d")
        if not descriptor:
            continue
        below = await _referrers(repository, descriptor[0].digest, depth - 1)
        children = [r for group in below.values() for r in group]
        artifactType = descriptor[0].artifactType or descriptor[0].mediaType
        grouped.setdefault(artifactType, []).append(Referrer(descriptor[0], children))
    return dict(sorted(grouped.items()))


#: Up to how many tags a repository may have for the manifest page to name
#: the tags of a manifest (which reads every tag's link).
MAX_LOOKUP_TAGS = 500


async def _tagsNaming(repository: IRepository, digest: Digest) -> list[str] | None:
    """
    The tags naming C{digest}, or L{None} in a repository with too many
    tags to look them all up for one page.
    """
    try:
        listed = await repository.tags().list(MAX_LOOKUP_TAGS, None)
    except NameUnknown:
        return []
    if listed.more:
        return None
    return await repository.tags().lookup(digest)  # type: ignore[no-any-return]


async def manifestDetails(repository: IRepository, digest: Digest, reader: Reader) -> ManifestDetails:
    """
    Everything the manifest page shows of C{digest}.

    @raise ManifestUnknown: no such manifest in the repository.
    """
    manifest = await repository.manifests().get(digest)
    document = parseDocument(manifest.content)
    index = isIndex(manifest.mediaType, document)
    config = None if index else configDescriptor(document)
    image = None
    if config is not None:
        content = await readSmallBlob(repository, config.digest)
        image = parseConfig(content) if content is not None else None
    subject = descriptorsOf({"s": [document.get("subject")]}, "s")
    totalSize = (await reader.imageFacts(repository, manifest))[0]
    return ManifestDetails(
        repository=repository.name,
        digest=str(digest),
        mediaType=manifest.mediaType,
        size=len(manifest.content),
        totalSize=totalSize,
        artifactType=str(document.get("artifactType") or ""),
        annotations=annotationsOf(document),
        tags=await _tagsNaming(repository, digest),
        children=descriptorsOf(document, "manifests") if index else [],
        config=config,
        image=image,
        layers=[] if index else descriptorsOf(document, "layers"),
        subject=subject[0] if subject else None,
        referrers=await _referrers(repository, str(digest), MAX_REFERRER_DEPTH),
        raw=manifest.content,
    )
