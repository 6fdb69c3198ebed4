# -*- test-case-name: tests.registry.test_store -*-
"""
Manifests in storage: stored as blobs, linked into a repository as
revisions, named by tags, and indexed by their C{subject} for the
referrers API.

L{ManifestIndex} does the storage work for every repository and keeps
the caches they share; L{RepositoryManifests} and L{RepositoryTags} are
one repository's L{IManifestService} and L{ITagService} over it.
"""

from __future__ import annotations

import bisect
import builtins
import json
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from txregistry.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    TagInvalid,
)
from txregistry.interfaces import IManifestService, ITagService, Manifest, Page, PutManifest
from txregistry.registry import layout
from txregistry.registry.blobs import BlobContent
from txregistry.registry.cache import BoundedCache
from txregistry.registry.digest import Digest, InvalidDigest
from txregistry.registry.manifests import OCI_MANIFEST, ParsedManifest, declaredMediaType
from txregistry.registry.names import isValidTag
from txregistry.registry.peers import NO_PEERS, IReferencePeers, ReferenceChange, announcedDigest
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageDriver

_log = Logger()

#: How many tags' links L{ManifestIndex.pushTimes} stats at once.
_STAT_BATCH = 256

#: How many resolved references are kept.
_MAX_REFERENCES = 65536

#: The bytes of tag names L{ManifestIndex.tags} keeps, over all
#: repositories (each name counted with a list entry's overhead).
_TAG_LIST_BYTES = 16 << 20


def _tagListSize(tags: list[str]) -> int:
    return sum(map(len, tags)) + 64 * len(tags)


def page(items: list[str], n: int | None, last: str | None) -> Page:
    """
    The page of the sorted C{items} that follows C{last}, at most C{n} long.
    """
    start = bisect.bisect_right(items, last) if last else 0
    end = len(items) if n is None else min(len(items), start + n)
    return Page(items[start:end], end < len(items))


class ManifestIndex:
    """
    The manifests, tags and referrers of every repository.

    Manifests are kept by digest within a byte budget (content is
    immutable by digest, so entries never go stale).  Each holds the media
    type the content declares, or L{None}: a type given only by the
    pushing Content-Type belongs to one repository's revision, not to the
    content, and is read from there.

    What a reference resolved to in a repository, and a repository's tag
    list, are reused for C{referenceTTL} seconds.  Resolving a tag reads a link file on the
    storage pool, the largest cost of a manifest GET.  Writes through this
    process update the entries at once, and are announced to C{peers}
    (the other workers of this registry), which forget theirs before the
    write is acknowledged; a write by another registry process over the
    same storage is seen within the TTL.  Only references that exist are
    kept, so a tag pushed elsewhere is never hidden.

    A read that started before a change and ends after it must not keep
    what it read: every change (here or announced) moves L{_epoch} on, and
    what a read or write resolved is kept only if the epoch is the one it
    started in.

    @param referenceTTL: seconds a resolved tag (or a digest found in a
        repository) is reused before storage is asked again; 0 asks every
        time.
    @param peers: the other processes caching references over this
        storage.
    """

    def __init__(
        self,
        driver: IStorageDriver,
        content: BlobContent,
        clock: IReactorTime,
        cacheBytes: int = 64 << 20,
        referenceTTL: float = 0.0,
        peers: IReferencePeers = NO_PEERS,
    ) -> None:
        self._driver = driver
        self._content = content
        self._manifests: BoundedCache[Digest, tuple[bytes, str | None]] = BoundedCache(
            maxBytes=cacheBytes, sizeOf=lambda entry: len(entry[0]), name="manifests"
        )
        self._references: BoundedCache[tuple[str, str], Digest] = BoundedCache(
            _MAX_REFERENCES, ttl=referenceTTL, clock=clock, name="references"
        )
        # Each repository's sorted tags, for tags/list, as long as tags.
        self._tagLists: BoundedCache[str, list[str]] = BoundedCache(
            maxBytes=_TAG_LIST_BYTES, sizeOf=_tagListSize, ttl=referenceTTL, clock=clock,
            name="tag lists")
        self._epoch = 0
        self._peers = peers
        peers.listen(self._forgetAnnounced)
        # Tags whose pull was recorded within the hour (see notePull).
        self._pulled: BoundedCache[tuple[str, str], bool] = BoundedCache(
            _MAX_REFERENCES, ttl=3600.0, clock=clock
        )
        self.recordPulls = False
        #: Which repositories hold manifests before their blobs (a
        #: pull-through cache stores a manifest first and each blob when a
        #: client pulls it): their PUTs skip the reference checks.
        self.partial: Callable[[str], bool] = lambda name: False

    def notePull(self, name: str, tag: str) -> None:
        """
        Record that C{tag} was pulled, for retention's C{pulledwithin}: at
        most once an hour per tag, and without making the pull wait.
        """
        if not self.recordPulls or (name, tag) in self._pulled:
            return
        self._pulled.put((name, tag), True)
        d = self._driver.putContent(layout.tagPulled(name, tag), b"")
        d.addErrback(lambda failure: _log.failure(
            "Recording a pull of {name}:{tag} failed", failure, name=name, tag=tag))

    # Reading

    def cachedTag(self, name: str, tag: str) -> Digest | None:
        """
        What C{tag} resolved to within the TTL, without I/O; or L{None}.
        """
        return self._references.get((name, tag))

    def cachedManifest(self, name: str, digest: Digest) -> Manifest | None:
        """
        The manifest, if the repository is known to have it and its
        content (declaring its own media type) is cached; else L{None}.
        """
        if self._references.get((name, str(digest))) is None:
            return None
        cached = self._manifests.get(digest)
        if cached is None or cached[1] is None:
            return None
        return Manifest(digest, cached[1], cached[0])

    async def resolveTag(self, name: str, tag: str) -> Digest:
        known = self._references.get((name, tag))
        if known is not None:
            return known
        epoch = self._epoch
        try:
            link = await self._driver.getContent(layout.tagCurrentLink(name, tag))
            digest = Digest.parse(link.decode("ascii").strip())
        except (PathNotFoundError, InvalidDigest, UnicodeDecodeError):
            raise ManifestUnknown.tag(tag) from None
        if epoch == self._epoch:
            self._references.put((name, tag), digest)
            # A tag names a revision of its own repository: that revision
            # is known to exist as well.
            self._references.put((name, str(digest)), digest)
        return digest

    async def hasRevision(self, name: str, digest: Digest) -> bool:
        if self._references.get((name, str(digest))) is not None:
            return True
        epoch = self._epoch
        try:
            await self._driver.stat(layout.revisionLink(name, digest))
        except PathNotFoundError:
            return False
        if epoch == self._epoch:
            self._references.put((name, str(digest)), digest)
        return True

    async def get(self, name: str, digest: Digest) -> Manifest:
        if not await self.hasRevision(name, digest):
            raise ManifestUnknown.digest(str(digest))
        cached = self._manifests.get(digest)
        if cached is not None:
            content, declared = cached
        else:
            try:
                content = await self._content.getContent(digest)
            except PathNotFoundError:
                raise ManifestUnknown.digest(str(digest)) from None
            declared = declaredMediaType(content)
            self._manifests.put(digest, (content, declared))
        mediaType = declared or await self._storedMediaType(name, digest)
        return Manifest(digest, mediaType, content)

    async def _storedMediaType(self, name: str, digest: Digest) -> str:
        try:
            stored = await self._driver.getContent(layout.revisionMediaType(name, digest))
            return stored.decode("utf-8").strip()
        except (PathNotFoundError, UnicodeDecodeError):
            return OCI_MANIFEST

    # Writing

    async def put(
        self, name: str, content: bytes, contentType: str | None, expected: Digest | None
    ) -> PutManifest:
        if expected is not None:
            digest = Digest.of(content, expected.algorithm)
            if digest != expected:
                raise DigestInvalid(
                    "manifest digest did not match the reference",
                    digest=str(expected), actual=str(digest),
                )
        else:
            digest = Digest.of(content)
        parsed = ParsedManifest(content, contentType)
        started = time.monotonic()
        existed = False
        partial = self.partial(name)
        if self._content.leases and not partial:
            existed = await self.hasRevision(name, digest)
            for blob in parsed.blobs:
                try:
                    await self._content.touch(blob)
                except (OSError, PathNotFoundError):
                    # A collection removing the blob's directory meanwhile
                    # makes the touch fail: that blob is gone, not broken.
                    if await self._content.usable(blob):
                        raise
                    raise ManifestBlobUnknown([str(blob)]) from None
        if not partial:
            await self._checkReferences(name, parsed)
        await self._content.putContent(content, digest)
        if self._content.leases:
            # Its own content's lease only once the content is there: a
            # lease without data is what a collection cleans up.
            await self._content.touch(digest)
        if not parsed.declaresMediaType:
            await self._driver.putContent(
                layout.revisionMediaType(name, digest), parsed.mediaType.encode()
            )
        await self._putLink(layout.revisionLink(name, digest), digest)
        if parsed.subject is not None:
            await self._driver.putContent(
                layout.referrerLink(name, parsed.subject, digest),
                json.dumps(parsed.referrerDescriptor(digest, len(content))).encode(),
            )
        if self._content.leases and not partial:
            await self._stillThere(name, digest, parsed, started, existed)
        self._manifests.put(
            digest, (content, parsed.mediaType if parsed.declaresMediaType else None)
        )
        return PutManifest(digest, parsed.subject)

    async def _stillThere(
        self, name: str, digest: Digest, parsed: ParsedManifest, started: float, existed: bool
    ) -> None:
        """
        Step 3 of online collection's protocol
        (L{txregistry.registry.collection}): with the revision written,
        every blob it names must still be usable and the PUT quick enough
        for its leases to count; else the revision is withdrawn.
        """
        gone = [str(blob) for blob in (*parsed.blobs, digest)
                if not await self._content.usable(blob)]
        if not gone and time.monotonic() - started < self.maxPutSeconds:
            return
        if not existed:
            self._forgetDigest(name, digest)
            paths = [layout.revisionDirectory(name, digest)]
            if parsed.subject is not None:
                paths.append(layout.referrerDirectory(name, parsed.subject, digest))
            for path in paths:
                try:
                    await self._driver.delete(path)
                except PathNotFoundError:
                    pass
            await self._peers.announce(ReferenceChange(name, digest=str(digest)))
        raise ManifestBlobUnknown(gone or [str(blob) for blob in parsed.blobs])

    async def _putLink(self, path: str, digest: Digest) -> None:
        """
        Write the link at C{path}, whose content is always C{digest} (a
        revision's, a tag's index entry), unless it is there already.

        A link is written to a temporary file, fsync'd and renamed into
        place, so one that is there is whole, and its content can only be
        C{digest}: a stat (one call on the storage pool) stands for the
        write, its fsyncs and those of the directories it would create,
        which is most of what a manifest PUT of a manifest the repository
        has (a new tag of it) costs.  The stat is of storage, never of a
        cache: a revision deleted by another process is written again.
        """
        try:
            info = await self._driver.stat(path)
        except PathNotFoundError:
            pass
        else:
            if not info.isDirectory and info.size == len(str(digest)):
                return
        await self._driver.putContent(path, str(digest).encode())

    #: A manifest PUT under online collection must finish its checks in
    #: less than half the grace window (set by the composition).
    maxPutSeconds = float("inf")

    async def _checkReferences(self, name: str, parsed: ParsedManifest) -> None:
        missing = []
        for digest in parsed.blobs:
            if await self._content.sizeIn(name, digest) is None:
                missing.append(str(digest))
        for digest in parsed.children:
            try:
                await self._driver.stat(layout.revisionLink(name, digest))
            except PathNotFoundError:
                missing.append(str(digest))
        if missing:
            raise ManifestBlobUnknown(missing)

    async def tag(self, name: str, tag: str, digest: Digest) -> None:
        if not isValidTag(tag):
            raise TagInvalid(tag)
        await self._putLink(layout.tagIndexLink(name, tag, digest), digest)
        self._epoch += 1
        epoch = self._epoch
        # Always written: its time is the tag's push time (pushTimes).
        await self._driver.putContent(layout.tagCurrentLink(name, tag), str(digest).encode())
        moved = epoch == self._epoch
        # A listing made while the tag was written may lack it.
        self._forgetTagList(name)
        if moved:
            self._references.put((name, tag), digest)
        else:
            self._references.pop((name, tag))
        await self._peers.announce(ReferenceChange(name, tag=tag))

    # Deleting

    async def indexed(self, name: str, tag: str, digest: Digest) -> bool:
        """
        Whether C{tag}'s index links C{digest}: L{tag} writes the link
        before it moves the tag, and only L{untag} (the tag's whole
        directory) removes it.
        """
        if not isValidTag(tag):
            return False
        try:
            await self._driver.stat(layout.tagIndexLink(name, tag, digest))
        except PathNotFoundError:
            return False
        return True

    async def untag(self, name: str, tag: str) -> None:
        self._forgetTag(name, tag)
        try:
            await self._driver.delete(layout.tagDirectory(name, tag))
        except PathNotFoundError:
            raise ManifestUnknown.tag(tag) from None
        finally:
            self._forgetTag(name, tag)
            await self._peers.announce(ReferenceChange(name, tag=tag))

    async def delete(self, name: str, digest: Digest) -> None:
        manifest = await self.get(name, digest)
        self._forgetDigest(name, digest)
        for tag in await self.lookup(name, digest):
            try:
                await self.untag(name, tag)
            except ManifestUnknown:
                continue
        try:
            subject = ParsedManifest(manifest.content, manifest.mediaType).subject
        except ManifestInvalid:
            subject = None
        if subject is not None:
            try:
                await self._driver.delete(layout.referrerDirectory(name, subject, digest))
            except PathNotFoundError:
                pass
        await self._driver.delete(layout.revisionDirectory(name, digest))
        # Again: a GET while this ran may have cached what is gone now.
        self._forgetDigest(name, digest)
        await self._peers.announce(ReferenceChange(name, digest=str(digest)))

    def _forgetTag(self, name: str, tag: str) -> None:
        self._forgetTagList(name)
        self._references.pop((name, tag))

    def _forgetTagList(self, name: str) -> None:
        self._epoch += 1
        self._tagLists.pop(name)

    def _forgetDigest(self, name: str, digest: Digest | None) -> None:
        """
        Drop every reference in C{name} that resolves to C{digest} (every
        reference in C{name}, for L{None}).
        """
        self._forgetTagList(name)
        self._references.discard(
            lambda key, value: key[0] == name and (digest is None or value == digest))

    def _forgetAnnounced(self, change: ReferenceChange) -> None:
        """
        A peer changed storage: forget what is cached of it.
        """
        if change.tag is not None:
            self._forgetTag(change.name, change.tag)
        if change.digest is not None:
            self._forgetDigest(change.name, announcedDigest(change.digest))

    # Listing

    async def tags(self, name: str, cached: bool = False) -> list[str]:
        """
        The repository's tags, sorted.

        @param cached: whether a listing made within the TTL will do (for
            tags/list, which, like a tag's GET, sees this process's and
            its peers' changes at once and another registry's within the
            TTL); else storage is listed, as what deletes a manifest's
            tags or applies retention must.  The list is shared: callers
            copy what they keep.
        @raise NameUnknown: the repository holds no manifests.
        """
        if cached:
            known = self._tagLists.get(name)
            if known is not None:
                return known
        epoch = self._epoch
        directory = layout.tagsDirectory(name)
        try:
            paths = await self._driver.list(directory)
        except PathNotFoundError:
            if not await self.exists(name):
                raise NameUnknown(name) from None
            return []
        # Each path is the directory's, a slash and the tag: cut, rather
        # than split each (once per tag on every tags/list).
        start = len(directory) + 1
        tags = sorted(p[start:] for p in paths)
        if epoch == self._epoch:
            self._tagLists.put(name, tags)
        return tags

    async def pushTimes(self, name: str, tags: list[str] | None = None) -> dict[str, float]:
        """
        When each tag of C{name} (or of C{tags}) was last pointed at a
        manifest: its current link's modification time.

        The links are stat'ed side by side, L{_STAT_BATCH} at a time, so
        that the storage pool's threads share them without a repository
        of many tags filling the pool's queue for everyone else.

        @raise NameUnknown: the repository holds no manifests.
        """
        if tags is None:
            tags = await self.tags(name)
        elif not await self.exists(name):
            raise NameUnknown(name)
        valid = [tag for tag in tags if isValidTag(tag)]
        found: dict[str, float] = {}
        result: Any
        for start in range(0, len(valid), _STAT_BATCH):
            batch = valid[start:start + _STAT_BATCH]
            stats = await DeferredList(
                [self._driver.stat(layout.tagCurrentLink(name, tag)) for tag in batch], consumeErrors=True)
            for tag, (ok, result) in zip(batch, stats, strict=True):
                if ok:
                    found[tag] = result.modified
                elif not result.check(PathNotFoundError):
                    result.raiseException()
        return found

    async def lookup(self, name: str, digest: Digest) -> list[str]:
        """
        The tags of C{name} whose current link names C{digest}.
        """
        try:
            tags = await self.tags(name)
        except NameUnknown:
            return []
        found = []
        for tag in tags:
            try:
                current = await self._driver.getContent(layout.tagCurrentLink(name, tag))
            except PathNotFoundError:
                continue
            if current.decode("ascii", "replace").strip() == str(digest):
                found.append(tag)
        return found

    async def exists(self, name: str) -> bool:
        """
        Whether repository C{name} exists: whether content (a manifest or
        a blob) was pushed to it.  Its directory alone does not say (C{a}
        has one as soon as C{a/b} is pushed), nor do uploads.
        """
        try:
            children = await self._driver.list(layout.repository(name))
        except PathNotFoundError:
            return False
        return any(layout.leaf(child) in layout.CONTENT for child in children)

    async def referrers(self, name: str, subject: Digest) -> list[dict[str, Any]]:
        try:
            entries = await self._driver.walk(layout.referrersDirectory(name, subject))
        except PathNotFoundError:
            return []
        descriptors = []
        for entry in entries:
            if entry.isDirectory or not entry.path.endswith("/link"):
                continue
            try:
                raw = await self._driver.getContent(entry.path)
                descriptors.append(json.loads(raw))
            except (PathNotFoundError, ValueError):
                continue
        return sorted(descriptors, key=lambda d: d.get("digest", ""))


@implementer(IManifestService)
class RepositoryManifests:
    """
    The manifests of repository C{name}.
    """

    def __init__(self, name: str, index: ManifestIndex) -> None:
        self._name = name
        self._index = index

    def exists(self, digest: Digest) -> Deferred[bool]:
        return Deferred.fromCoroutine(self._index.hasRevision(self._name, digest))

    def get(self, digest: Digest) -> Deferred[Manifest]:
        # Most GETs are answered from the caches: no coroutine for those.
        cached = self._index.cachedManifest(self._name, digest)
        if cached is not None:
            return succeed(cached)
        return Deferred.fromCoroutine(self._index.get(self._name, digest))

    def put(
        self, content: bytes, mediaType: str | None, digest: Digest | None = None
    ) -> Deferred[PutManifest]:
        return Deferred.fromCoroutine(self._index.put(self._name, content, mediaType, digest))

    def delete(self, digest: Digest) -> Deferred[None]:
        return Deferred.fromCoroutine(self._index.delete(self._name, digest))


@implementer(ITagService)
class RepositoryTags:
    """
    The tags of repository C{name}.
    """

    def __init__(self, name: str, index: ManifestIndex) -> None:
        self._name = name
        self._index = index

    def get(self, tag: str) -> Deferred[Digest]:
        # A tag resolved is a tag pulled (or, through the immutable-tag and
        # quota layers, checked by a push: retention then keeps it longer,
        # never shorter).
        cached = self._index.cachedTag(self._name, tag)
        if cached is not None:
            self._index.notePull(self._name, tag)
            return succeed(cached)
        d = Deferred.fromCoroutine(self._index.resolveTag(self._name, tag))
        if self._index.recordPulls:
            d.addCallback(self._pulled, tag)
        return d

    def _pulled(self, digest: Digest, tag: str) -> Digest:
        self._index.notePull(self._name, tag)
        return digest

    def tag(self, tag: str, digest: Digest) -> Deferred[None]:
        return Deferred.fromCoroutine(self._index.tag(self._name, tag, digest))

    def untag(self, tag: str) -> Deferred[None]:
        return Deferred.fromCoroutine(self._index.untag(self._name, tag))

    def list(self, n: int | None, last: str | None) -> Deferred[Page]:
        return Deferred.fromCoroutine(self._list(n, last))

    async def _list(self, n: int | None, last: str | None) -> Page:
        return page(await self._index.tags(self._name, cached=True), n, last)

    def lookup(self, digest: Digest) -> Deferred[builtins.list[str]]:
        return Deferred.fromCoroutine(self._index.lookup(self._name, digest))

    def pushTimes(self, tags: builtins.list[str] | None = None) -> Deferred[dict[str, float]]:
        return Deferred.fromCoroutine(self._index.pushTimes(self._name, tags))

    def indexed(self, tag: str, digest: Digest) -> Deferred[bool]:
        return Deferred.fromCoroutine(self._index.indexed(self._name, tag, digest))
