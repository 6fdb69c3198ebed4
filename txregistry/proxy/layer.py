# -*- test-case-name: tests.proxy.test_layer -*-
"""
The pull-through cache as a layer of the service model.

A repository under an upstream's prefix (every repository, in the
reference's C{remoteurl} mode) is that upstream's: what the cache (the
namespace inside) holds is served from it, what it lacks is fetched once
(L{txregistry.proxy.fetch}), stored and served as it streams in, and
every push into it is refused with L{Unsupported}.  Repositories outside
every prefix pass through untouched: they are the registry's own.

Freshness: a manifest by digest never changes, so it is never asked for
again; a tag is checked with a C{HEAD} once its C{tagttl} has passed, and
its manifest fetched only when the digest moved.  Tags and referrers are
the upstream's.  When the upstream is down, slow or rate-limiting
(L{UpstreamUnavailable}), what the cache holds is served with a log line
and a warning for the client (L{Caller.warnings}); what it does not hold
is a quick 503.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.logger import Logger
from zope.interface import implementer

from txregistry.client.streams import ResponseReader
from txregistry.errors import (
    BlobUnknown,
    ManifestUnknown,
    NameUnknown,
    RegistryModelError,
    Unsupported,
)
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
)
from txregistry.proxy.config import DOCKER_HUB_HOSTS
from txregistry.proxy.fetch import BlobFetch, Flights
from txregistry.proxy.stats import BLOB, MANIFEST, ProxyStats
from txregistry.proxy.upstream import Upstream, UpstreamUnavailable
from txregistry.registry.digest import Digest
from txregistry.registry.forwarding import ForwardingNamespace, ForwardingRepository

__all__ = ["PullThrough"]

_log = Logger()


class _Cache:
    """
    What every request's copy of the layer shares: calls in flight, blob
    fetches, when each tag was last checked, the figures.
    """

    def __init__(self, clock: Any, stats: ProxyStats) -> None:
        self.clock = clock
        self.stats = stats
        self.flights: Flights[tuple[str, ...], Any] = Flights()
        self.fetches: dict[tuple[str, str], BlobFetch] = {}
        #: (local name, tag) -> when it was last checked upstream.
        self.checked: dict[tuple[str, str], float] = {}
        #: (local name, digest) of manifests a tag check just fetched, so
        #: that the GET which follows counts as the miss it is.
        self.fresh: set[tuple[str, Digest]] = set()

    async def settled(self) -> None:
        """
        Wait until every blob being fetched is stored (or given up).
        """
        while self.fetches:
            await next(iter(self.fetches.values())).whenCached()

    def stale(self, caller: Caller, what: str, error: Exception) -> None:
        """
        Say that C{what} is served from the cache because the upstream
        failed with C{error}.
        """
        _log.warn("proxy: serving {what} from the cache: {error}", what=what, error=str(error))
        # The caller of the registry's own work is shared: nobody to tell.
        if caller is not ANONYMOUS and len(caller.warnings) < 10:
            caller.warnings.append(f"stale: {what} served from the cache, the upstream is unavailable")


class PullThrough(ForwardingNamespace):
    """
    C{inner} (the cache, and the local repositories) with C{upstreams}
    under their prefixes.

    @param reference: the reference's mode: one upstream for every
        repository, C{?ns=} not looked at.
    """

    dependsOnCaller = True

    def __init__(self, inner: INamespace, upstreams: Sequence[Upstream], clock: Any,
                 stats: ProxyStats | None = None, reference: bool = False) -> None:
        super().__init__(inner)
        # Longest prefix first: the most specific upstream owns a name.
        self.upstreams = sorted(upstreams, key=lambda u: len(u.config.prefix), reverse=True)
        self.reference = reference
        self.stats = stats or ProxyStats()
        self._cache = _Cache(clock, self.stats)

    def upstreamFor(self, name: str) -> Upstream | None:
        """
        The upstream whose prefix C{name} is under, or L{None} for a local
        repository.
        """
        for upstream in self.upstreams:
            if upstream.owns(name):
                return upstream
        return None

    def _named(self, name: str) -> str:
        """
        C{name} as the caller's C{?ns=} places it: C{library/alpine} asked
        of a mirror for C{docker.io} is C{docker.io/library/alpine}.
        """
        ns = self.caller.ns
        if not ns or self.reference:
            return name
        for upstream in self.upstreams:
            prefix = upstream.config.prefix
            if ns == prefix or (ns in DOCKER_HUB_HOSTS and upstream.config.dockerHub):
                return f"{prefix}/{name}"
        return name

    def repository(self, name: str) -> IRepository:
        name = self._named(name)
        upstream = self.upstreamFor(name)
        if upstream is None:
            return self.inner.repository(name)
        local = upstream.localName(name)
        return CachedRepository(self.inner.repository(local), upstream, self._cache, self.caller,
                                self.inner)

    def settled(self) -> Deferred[None]:
        """
        @return: a L{Deferred} that fires once no blob is being fetched.
        """
        return ensureDeferred(self._cache.settled())

    def collectGarbage(
        self, deleteUntagged: bool = False, dryRun: bool = False, online: bool = False,
        progress: Any = None,
    ) -> Deferred[CollectionReport]:
        d = self.inner.collectGarbage(deleteUntagged, dryRun, online, progress)

        def collected(report: CollectionReport) -> CollectionReport:
            for upstream in self.upstreams:
                upstream.budget.forget()
            return report

        return d.addCallback(collected)

    def closeLayer(self) -> Deferred[None]:
        """
        Close the upstreams' idle connections (the service stops).
        """
        return ensureDeferred(self._close())

    async def _close(self) -> None:
        for upstream in self.upstreams:
            await upstream.close()


def _refused(upstream: Upstream) -> Callable[..., Deferred[Any]]:
    def refuse(*args: Any, **kwargs: Any) -> Deferred[Any]:
        return fail(Unsupported(
            f"this repository is a pull-through cache of {upstream.config.url}: "
            "it cannot be pushed to or deleted from"))

    return refuse


class CachedRepository(ForwardingRepository):
    """
    A repository of an upstream, through the cache.
    """

    def __init__(self, inner: IRepository, upstream: Upstream, cache: _Cache,
                 caller: Caller, namespace: INamespace) -> None:
        """
        @param namespace: the cache's (what C{inner} is one repository of).
        """
        super().__init__(inner)
        self.namespace = namespace
        self.upstream = upstream
        self.remote = upstream.repository(inner.name)
        self.cache = cache
        self.caller = caller

    @property
    def label(self) -> str:
        return self.upstream.label

    def manifests(self) -> IManifestService:
        return CachedManifests(self)

    def tags(self) -> ITagService:
        return CachedTags(self)

    def blobs(self) -> IBlobStore:
        return CachedBlobs(self)

    def referrers(self, subject: Digest) -> Deferred[list[dict[str, Any]]]:
        return ensureDeferred(self._referrers(subject))

    async def _referrers(self, subject: Digest) -> list[dict[str, Any]]:
        try:
            return await self.upstream.call(  # type: ignore[no-any-return]
                f"the referrers of {self.remote.name}@{subject}",
                lambda: self.remote.referrers(subject))
        except UpstreamUnavailable as e:
            self.cache.stale(self.caller, f"the referrers of {self.name}@{subject}", e)
            return await self.inner.referrers(subject)  # type: ignore[no-any-return]


@implementer(IManifestService)
class CachedManifests:
    """
    A cached repository's manifests: from the cache, or fetched once.
    """

    def __init__(self, repository: CachedRepository) -> None:
        self.repository = repository
        self.inner: IManifestService = repository.inner.manifests()
        refuse = _refused(repository.upstream)
        self.put: Callable[..., Deferred[PutManifest]] = refuse
        self.delete: Callable[..., Deferred[None]] = refuse

    def exists(self, digest: Digest) -> Deferred[bool]:
        return ensureDeferred(self._exists(digest))

    async def _exists(self, digest: Digest) -> bool:
        if await self.inner.exists(digest):
            return True
        remote = self.repository.remote
        found = await self.repository.upstream.call(
            f"manifest {remote.name}@{digest}", lambda: remote.manifests().head(str(digest)))
        return found is not None

    def get(self, digest: Digest) -> Deferred[Manifest]:
        return ensureDeferred(self._get(digest))

    async def _get(self, digest: Digest) -> Manifest:
        repository = self.repository
        cache, label = repository.cache, repository.label
        try:
            manifest: Manifest = await self.inner.get(digest)
        except ManifestUnknown:
            pass
        else:
            if (repository.name, digest) in cache.fresh:
                cache.fresh.discard((repository.name, digest))
                cache.stats.miss(MANIFEST, label)
            else:
                cache.stats.hit(MANIFEST, label)
            return manifest
        cache.stats.miss(MANIFEST, label)
        return await self.fetch(digest)  # type: ignore[no-any-return]

    def fetch(self, digest: Digest) -> Deferred[Manifest]:
        """
        The manifest C{digest} from upstream, stored in the cache: one
        request however many ask meanwhile.
        """
        repository = self.repository
        return repository.cache.flights.run(
            ("manifest", repository.name, str(digest)), lambda: self._fetch(digest))

    async def _fetch(self, digest: Digest) -> Manifest:
        repository = self.repository
        remote = repository.remote
        manifest: Manifest = await repository.upstream.call(
            f"manifest {remote.name}@{digest}", lambda: remote.manifests().get(digest))
        repository.cache.stats.pulled(MANIFEST, repository.label, len(manifest.content))
        budget = repository.upstream.budget
        if not await budget.admit(repository.namespace, len(manifest.content)):
            return manifest
        try:
            await self.inner.put(manifest.content, manifest.mediaType, manifest.digest)
        except RegistryModelError as e:
            # Served all the same; the next pull asks the upstream again.
            _log.warn("proxy: {name}@{digest} not cached: {error}", name=repository.name,
                      digest=str(digest), error=str(e))
        else:
            budget.stored(len(manifest.content))
            _log.info("proxy: cached {name}@{digest} from {upstream} ({size} bytes)",
                      name=repository.name, digest=str(digest), upstream=repository.label,
                      size=len(manifest.content))
        return manifest


@implementer(ITagService)
class CachedTags:
    """
    A cached repository's tags: the upstream's, checked with a C{HEAD}
    once C{tagttl} has passed.
    """

    def __init__(self, repository: CachedRepository) -> None:
        self.repository = repository
        self.inner: ITagService = repository.inner.tags()
        refuse = _refused(repository.upstream)
        self.tag: Callable[..., Deferred[None]] = refuse
        self.untag: Callable[..., Deferred[None]] = refuse

    def get(self, tag: str) -> Deferred[Digest]:
        return ensureDeferred(self._get(tag))

    async def _get(self, tag: str) -> Digest:
        repository = self.repository
        cache = repository.cache
        checked = cache.checked.get((repository.name, tag))
        ttl = repository.upstream.config.tagTTL
        if checked is not None and cache.clock.seconds() - checked < ttl:
            try:
                return await self.inner.get(tag)  # type: ignore[no-any-return]
            except ManifestUnknown:
                pass
        return await cache.flights.run(  # type: ignore[no-any-return]
            ("tag", repository.name, tag), lambda: self._check(tag))

    async def _check(self, tag: str) -> Digest:
        """
        Ask the upstream what C{tag} names (a C{HEAD}: no body), and make
        the cache's tag name the same, fetching the manifest only if the
        cache lacks it.
        """
        repository = self.repository
        cache, remote = repository.cache, repository.remote
        try:
            found = await repository.upstream.call(
                f"tag {remote.name}:{tag}", lambda: remote.manifests().head(tag))
        except UpstreamUnavailable as e:
            try:
                digest: Digest = await self.inner.get(tag)
            except ManifestUnknown:
                raise e from None
            cache.stale(repository.caller, f"{repository.name}:{tag}", e)
            return digest
        if found is None:
            cache.checked.pop((repository.name, tag), None)
            raise ManifestUnknown.tag(tag)
        digest = found.digest
        manifests = CachedManifests(repository)
        if not await manifests.inner.exists(digest):
            await manifests.fetch(digest)
            cache.fresh.add((repository.name, digest))
        try:
            current = await self.inner.get(tag)
        except ManifestUnknown:
            current = None
        if current != digest:
            try:
                await self.inner.tag(tag, digest)
            except RegistryModelError as e:
                _log.warn("proxy: {name}:{tag} not cached: {error}", name=repository.name,
                          tag=tag, error=str(e))
        cache.checked[repository.name, tag] = cache.clock.seconds()
        return digest

    def list(self, n: int | None, last: str | None) -> Deferred[Page]:
        return ensureDeferred(self._list(n, last))

    async def _list(self, n: int | None, last: str | None) -> Page:
        repository = self.repository
        remote = repository.remote
        try:
            return await repository.upstream.call(  # type: ignore[no-any-return]
                f"the tags of {remote.name}", lambda: remote.tags().list(n, last))
        except UpstreamUnavailable as e:
            try:
                page: Page = await self.inner.list(n, last)
            except NameUnknown:
                raise e from None
            repository.cache.stale(repository.caller, f"the tags of {repository.name}", e)
            return page

    def lookup(self, digest: Digest) -> Deferred[builtins.list[str]]:
        return self.inner.lookup(digest)

    def pushTimes(self, tags: builtins.list[str] | None = None) -> Deferred[dict[str, float]]:
        return self.inner.pushTimes(tags)


@implementer(IBlobStore)
class CachedBlobs:
    """
    A cached repository's blobs: from the cache, or fetched once and
    streamed to every client asking meanwhile as it is stored.
    """

    def __init__(self, repository: CachedRepository) -> None:
        self.repository = repository
        self.inner: IBlobStore = repository.inner.blobs()
        refuse = _refused(repository.upstream)
        self.create: Callable[..., Deferred[IBlobUpload]] = refuse
        self.resume: Callable[..., Deferred[IBlobUpload]] = refuse
        self.put: Callable[..., Deferred[IBlobWriter]] = refuse
        self.mount: Callable[..., Deferred[BlobDescriptor | None]] = refuse
        self.delete: Callable[..., Deferred[None]] = refuse

    def _key(self, digest: Digest) -> tuple[str, str]:
        return (self.repository.name, str(digest))

    def stat(self, digest: Digest) -> Deferred[BlobDescriptor]:
        return ensureDeferred(self._stat(digest))

    async def _stat(self, digest: Digest) -> BlobDescriptor:
        try:
            return await self.inner.stat(digest)  # type: ignore[no-any-return]
        except BlobUnknown:
            pass
        fetch = self.repository.cache.fetches.get(self._key(digest))
        if fetch is not None:
            return BlobDescriptor(digest, fetch.size)
        repository = self.repository
        remote = repository.remote
        return await repository.cache.flights.run(  # type: ignore[no-any-return]
            ("stat",) + self._key(digest),
            lambda: repository.upstream.call(f"blob {remote.name}@{digest}",
                                             lambda: remote.blobs().stat(digest)))

    def redirectURL(self, digest: Digest, method: str = "GET") -> Deferred[str | None]:
        return ensureDeferred(self._redirectURL(digest, method))

    async def _redirectURL(self, digest: Digest, method: str) -> str | None:
        try:
            await self.inner.stat(digest)
        except BlobUnknown:
            return None
        return await self.inner.redirectURL(digest, method)  # type: ignore[no-any-return]

    def reader(self, digest: Digest, offset: int = 0,
               length: int | None = None) -> Deferred[IBlobReader]:
        return ensureDeferred(self._reader(digest, offset, length))

    async def _reader(self, digest: Digest, offset: int, length: int | None) -> IBlobReader:
        repository = self.repository
        cache, label = repository.cache, repository.label
        try:
            reader: IBlobReader = await self.inner.reader(digest, offset, length)
        except BlobUnknown:
            pass
        else:
            cache.stats.hit(BLOB, label)
            cache.stats.pushed(BLOB, label, reader.length)
            return reader
        cache.stats.miss(BLOB, label)
        fetch = cache.fetches.get(self._key(digest))
        if offset == 0 and (fetch is None or length in (None, fetch.size)):
            if fetch is None:
                fetch = await cache.flights.run(("fetch",) + self._key(digest),
                                                lambda: self._startFetch(digest))
            if length in (None, fetch.size):
                cache.stats.pushed(BLOB, label, fetch.size)
                return fetch.reader()
        # A range of a blob not cached: passed through, not stored.
        remote = repository.remote
        ranged: IBlobReader = await repository.upstream.call(
            f"blob {remote.name}@{digest}", lambda: remote.blobs().reader(digest, offset, length))
        cache.stats.pushed(BLOB, label, ranged.length)
        return ranged

    async def _startFetch(self, digest: Digest) -> BlobFetch:
        repository = self.repository
        cache, remote, label = repository.cache, repository.remote, repository.label
        source: IBlobReader = await repository.upstream.call(
            f"blob {remote.name}@{digest}", lambda: remote.blobs().reader(digest))
        writer: IBlobWriter | None = None
        budget = repository.upstream.budget
        try:
            if await budget.admit(repository.namespace, source.length):
                writer = await self.inner.put(digest, source.length)
        except RegistryModelError as e:
            _log.warn("proxy: {name}@{digest} streamed, not cached: {error}",
                      name=repository.name, digest=str(digest), error=str(e))
        if writer is not None and isinstance(source, ResponseReader):
            # The cache's writer checks the digest (off the reactor thread)
            # before the clients' reads end: hashing here as well would
            # only spend the reactor's time again.
            source.expected = None
        fetch = BlobFetch(source, writer, lambda: self.inner.reader(digest),
                          lambda size: cache.stats.pulled(BLOB, label, size))
        key = self._key(digest)
        cache.fetches[key] = fetch

        def ended(result: object) -> object:
            if cache.fetches.get(key) is fetch:
                del cache.fetches[key]
            if fetch.cached:
                budget.stored(fetch.size)
                _log.info("proxy: cached {name}@{digest} from {upstream} ({size} bytes)",
                          name=repository.name, digest=str(digest), upstream=label,
                          size=fetch.size)
            return result

        fetch.whenCached().addBoth(ended)
        # Started on the next turn: every client resumed by this fetch's
        # result starts reading before the first byte.
        cache.clock.callLater(0, fetch.start)
        return fetch
