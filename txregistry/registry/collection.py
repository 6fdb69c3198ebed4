# -*- test-case-name: tests.registry.test_collection -*-
"""
Garbage collection: mark every blob some manifest revision needs, sweep
the rest.

Mark: every manifest revision of every repository keeps its own content
and the blobs it names (config, layers).  With C{deleteUntagged}, only
the manifests reachable from a tag are kept: a tagged manifest, the
children of a kept index, and the referrers of a kept manifest (a
manifest whose C{subject} is kept), recursively; the other revisions
are deleted first, as a manifest DELETE deletes them.

Sweep: every blob not marked is removed with the links repositories have
to it.

Offline (C{txregistry garbage-collect}) nothing else writes meanwhile.
Online (C{storage.gc}) pushes go on while it runs, and this is what keeps
them safe, with several registry instances on shared storage too:

  1. While online collection is on, every write that comes to depend on
     a blob touches the blob's lease file first (L{layout.blobLease}): a
     manifest PUT for each blob it names and for its own content, a
     mount, an upload commit.  A manifest PUT takes less than half the
     grace window C{delay} from its first touch to its last check, or
     fails (step 3).

  2. A collection notes the storage's time S as it starts (the time the
     storage stamps on a file it writes then), then walks and marks.  To
     remove a blob nothing marked, it writes the blob's C{condemned}
     marker, then reads the times of the blob's data and lease again and
     spares it (removing the marker) if either is later than S less the
     grace window; otherwise it removes the blob's data, then its lease
     and marker.

  3. A manifest PUT, after writing its revision, checks that each blob
     it names has no marker and then that it still has data (in that
     order: the collection removes the data before the marker); otherwise
     it withdraws the revision and fails with C{MANIFEST_BLOB_UNKNOWN}.

  Why no 201 can name a collected blob: say a PUT answered 201 for a
  manifest naming blob B, and a collection removed B.  The collection
  did not mark B, so the walk did not see the PUT's revision: the PUT
  wrote it after S, and touched B's lease less than half the grace
  window before that, so after S less the grace window.  The PUT saw no
  marker and then saw data: so it looked for the marker before the marker
  was written (had it looked after the removal, its data check, later
  still, would have found nothing), and its touch came before that: the
  collection's re-read, after the marker, sees that lease, later than S
  less the grace window, and spares B.  Every time compared in step 2 is
  the storage's, so instances' clocks need not agree; only the PUT's own
  duration is measured locally.  A PUT racing a removal may fail (the
  client pushes again, and its blob upload brings the blob back); it never
  succeeds without its blobs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults
from twisted.logger import Logger

from txregistry.errors import ManifestInvalid, ManifestUnknown
from txregistry.interfaces import CollectionReport
from txregistry.registry import layout
from txregistry.registry.blobs import BlobContent
from txregistry.registry.digest import Digest, InvalidDigest
from txregistry.registry.index import ManifestIndex
from txregistry.registry.manifests import ParsedManifest, declaredMediaType
from txregistry.registry.retention import RetentionPolicies
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import FileInfo, IStorageDriver

__all__ = ["Collector", "Inventory"]

_log = Logger()

#: How many manifests the mark phase reads at once.
PARALLEL_READS = 16

#: Told how far the mark phase is: repositories done, of how many, and
#: the one being marked.
Progress = Callable[[int, int, str], None]


@dataclass
class TagTimes:
    """
    Where a tag's current link is, when it was pushed (the link's time)
    and last pulled (L{None}: never recorded).
    """

    path: str
    pushed: float
    pulled: float | None = None


@dataclass
class RepositoryInventory:
    """
    One repository as a collection walked it.
    """

    revisions: set[Digest] = field(default_factory=set)
    tags: dict[str, TagTimes] = field(default_factory=dict)
    layers: dict[Digest, str] = field(default_factory=dict)  # digest -> link path


@dataclass
class Inventory:
    """
    One walk of the repositories and of the blob store.

    @ivar blobs: each blob's data: its size and the later of its data's
        and lease's times.
    """

    repositories: dict[str, RepositoryInventory] = field(default_factory=dict)
    blobs: dict[Digest, tuple[int, float]] = field(default_factory=dict)
    condemned: set[Digest] = field(default_factory=set)
    orphans: dict[Digest, float] = field(default_factory=dict)


class Collector:
    """
    Marks and sweeps over one storage driver, through the registry's own
    content store and manifest index (so their caches stay true).

    @param clock: a callable returning the current POSIX time.
    """

    def __init__(
        self, driver: IStorageDriver, content: BlobContent, index: ManifestIndex,
        clock: Callable[[], float] = time.time,
        retention: RetentionPolicies | None = None,
    ) -> None:
        self._driver = driver
        self._content = content
        self._index = index
        self._clock = clock
        self.retention = retention or RetentionPolicies()

    async def inventory(self) -> Inventory:
        """
        Walk the repositories and the blobs once.
        """
        found = Inventory()
        for entry in await self._walk(layout.REPOSITORIES):
            parsed = layout.parseRepositoryPath(entry.path)
            if entry.isDirectory or parsed is None:
                continue
            name, state = parsed
            repository = found.repositories.setdefault(name, RepositoryInventory())
            digest = _digestOf(state)
            if state[:2] == ["_manifests", "revisions"] and state[-1] == "link" and digest:
                repository.revisions.add(digest)
            elif state[:2] == ["_manifests", "tags"] and state[-2:] == ["current", "link"]:
                times = repository.tags.get(state[2])
                if times is None:
                    repository.tags[state[2]] = TagTimes(entry.path, entry.modified)
                else:
                    times.path, times.pushed = entry.path, entry.modified
            elif state[:2] == ["_manifests", "tags"] and len(state) == 4 and state[3] == "pulled":
                times = repository.tags.setdefault(state[2], TagTimes("", 0.0))
                times.pulled = entry.modified
            elif state[0] == "_layers" and state[-1] == "link" and digest:
                repository.layers[digest] = entry.path
        leases: dict[Digest, float] = {}
        for entry in await self._walk(layout.BLOBS):
            blob = layout.parseBlobPath(entry.path)
            if entry.isDirectory or blob is None:
                continue
            blobDigest, fileName = blob
            if fileName == "data":
                found.blobs[blobDigest] = (entry.size, entry.modified)
            elif fileName == "lease":
                leases[blobDigest] = entry.modified
            elif fileName == "condemned":
                found.condemned.add(blobDigest)
        for digest, leased in leases.items():
            if digest in found.blobs:
                size, modified = found.blobs[digest]
                found.blobs[digest] = (size, max(modified, leased))
        for digest in (set(leases) | found.condemned) - set(found.blobs):
            found.orphans[digest] = leases.get(digest, 0.0)
        return found

    async def _walk(self, path: str) -> list[FileInfo]:
        """
        Everything below C{path}; nothing if C{path} is not there.  A walk
        that fails while C{path} is there fails the collection: taking it
        for an empty registry would collect every blob.
        """
        try:
            return await self._driver.walk(path)
        except PathNotFoundError:
            try:
                await self._driver.list(path)
            except PathNotFoundError:
                return []
            raise

    async def _parsed(self, name: str, digest: Digest) -> ParsedManifest | None:
        try:
            # The walk found the revision: its content (and, for the few
            # manifests that do not declare one, the stored media type) is
            # all there is to read.
            content = await self._content.getContent(digest)
            declared = declaredMediaType(content)
            if declared is None:
                declared = (await self._index.get(name, digest)).mediaType
            return ParsedManifest(content, declared)
        except (ManifestUnknown, ManifestInvalid, PathNotFoundError):
            # Its content is gone or was never a manifest txregistry can
            # read: nothing to keep for it (its own digest is kept below).
            return None

    async def _parseAll(self, name: str, revisions: Iterable[Digest]) -> dict[Digest, ParsedManifest | None]:
        """
        Read and parse C{revisions}, several at once (as many as the
        driver's thread pool is likely to serve in parallel).
        """
        digests = sorted(revisions, key=str)
        semaphore = DeferredSemaphore(PARALLEL_READS)

        def one(digest: Digest) -> Deferred[ParsedManifest | None]:
            return semaphore.run(lambda: Deferred.fromCoroutine(self._parsed(name, digest)))

        results = await gatherResults([one(d) for d in digests], consumeErrors=True)
        return dict(zip(digests, results, strict=True))

    async def mark(
        self, found: Inventory, deleteUntagged: bool, report: CollectionReport,
        progress: Progress = lambda done, total, name: None,
    ) -> set[Digest]:
        """
        The blobs to keep; with C{deleteUntagged}, the revisions no tag
        reaches are deleted (unless C{report.dryRun}) and listed.
        """
        marked: set[Digest] = set()
        names = sorted(found.repositories)
        for done, name in enumerate(names):
            progress(done, len(names), name)
            repository = found.repositories[name]
            parsed = await self._parseAll(name, repository.revisions)
            kept = set(parsed)
            policy = self.retention.policyFor(name)
            untagged = deleteUntagged or (policy is not None and policy.deleteUntagged)
            # The command's --delete-untagged drops the referrers of what it
            # deletes; a policy only with deletereferrers.
            referrers = deleteUntagged or (policy is not None and policy.deleteReferrers)
            if untagged:
                kept = await self._reachable(name, repository, parsed, keepReferrers=not referrers)
            elif referrers:
                kept = {digest for digest, manifest in parsed.items()
                        if manifest is None or manifest.subject is None or manifest.subject in parsed}
            if kept != set(parsed):
                for digest in sorted(set(parsed) - kept, key=str):
                    report.manifests.append((name, digest))
                    if not report.dryRun:
                        try:
                            await self._index.delete(name, digest)
                        except ManifestUnknown:
                            pass
            for digest in kept:
                marked.add(digest)
                manifest = parsed[digest]
                if manifest is not None:
                    marked.update(manifest.blobs)
        return marked

    async def _reachable(
        self, name: str, repository: RepositoryInventory, parsed: dict[Digest, ParsedManifest | None],
        keepReferrers: bool = False,
    ) -> set[Digest]:
        """
        The revisions of one repository a tag reaches: tagged, children of
        kept indexes, referrers of kept manifests (and, with
        C{keepReferrers}, every referrer).
        """
        pending: list[Digest] = []
        if keepReferrers:
            pending.extend(d for d, m in parsed.items() if m is not None and m.subject is not None)
        for times in repository.tags.values():
            if not times.path:
                continue
            try:
                pending.append(Digest.parse(
                    (await self._driver.getContent(times.path)).decode().strip()))
            except (PathNotFoundError, InvalidDigest, UnicodeDecodeError):
                continue
        referrers: dict[Digest, list[Digest]] = {}
        for digest, manifest in parsed.items():
            if manifest is not None and manifest.subject is not None:
                referrers.setdefault(manifest.subject, []).append(digest)
        kept: set[Digest] = set()
        while pending:
            digest = pending.pop()
            if digest in kept or digest not in parsed:
                continue
            kept.add(digest)
            manifest = parsed[digest]
            if manifest is not None:
                pending.extend(manifest.children)
            pending.extend(referrers.get(digest, ()))
        return kept

    async def sweep(
        self, found: Inventory, marked: set[Digest], report: CollectionReport,
        grace: float | None = None, since: float | None = None,
    ) -> None:
        """
        Remove every blob not in C{marked}, and the repositories' links
        to it.

        @param grace: L{None} offline; online, the grace window in
            seconds (see the module's docstring for the protocol): blobs
            used more recently by this process's clock are not considered.
        @param since: online, the storage time (S less the grace window)
            after which a blob's use spares it; L{None} offline.
        """
        links: dict[Digest, list[tuple[str, str]]] = {}
        for name, repository in found.repositories.items():
            for digest, path in repository.layers.items():
                links.setdefault(digest, []).append((name, path))
        cutoff = None if grace is None else self._clock() - grace
        if not report.dryRun:
            # A marker a collection left behind (it stopped between writing
            # one and deciding) would fail every PUT naming the blob.
            for digest in found.condemned & marked:
                await self._remove(layout.blobCondemned(digest))
        for digest in sorted(found.blobs, key=str):
            if digest in marked:
                continue
            size, used = found.blobs[digest]
            if cutoff is not None and used > cutoff:
                if digest in found.condemned and not report.dryRun:
                    await self._remove(layout.blobCondemned(digest))
                continue
            if report.dryRun:
                report.blobs.append((digest, size))
                continue
            if since is not None and not await self._condemn(digest, since):
                report.spared.append(digest)
                continue
            await self._removeBlob(digest)
            report.blobs.append((digest, size))
            for name, path in links.get(digest, ()):
                await self._remove(path)
                # Every process that reused the link (another worker) has
                # forgotten it before the collection goes on.
                await self._content.forgetLink(name, digest)
                report.unlinked.append((name, digest))
        if not report.dryRun:
            for digest, leased in found.orphans.items():
                # A lease or marker whose blob has no data: left by a
                # removal a write raced, or by a write that gave up.  Only
                # those files go, and only once the lease is old: the data
                # of a push in progress may be about to arrive.
                if cutoff is not None and leased > cutoff:
                    continue
                for path in (layout.blobLease(digest), layout.blobCondemned(digest)):
                    await self._removeLeftover(path)

    async def applyRetention(self, found: Inventory, now: float, report: CollectionReport) -> None:
        """
        Delete (or, in a dry run, list) the tags the retention policies do
        not keep, and take them out of C{found} either way, so that the
        mark after sees what a real run leaves.
        """
        for name in sorted(found.repositories):
            policy = self.retention.policyFor(name)
            if policy is None:
                continue
            repository = found.repositories[name]
            tags = {tag: (times.pushed, times.pulled)
                    for tag, times in repository.tags.items() if times.path}
            for tag in policy.tagsToDelete(tags, now):
                report.tags.append((name, tag))
                del repository.tags[tag]
                if not report.dryRun:
                    try:
                        await self._index.untag(name, tag)
                    except ManifestUnknown:
                        pass

    async def storageTime(self) -> float:
        """
        What time the storage stamps on a file written now.
        """
        stamp = f"{layout.COLLECTIONS}/{uuid.uuid4().hex}"
        await self._driver.putContent(stamp, b"")
        try:
            return (await self._driver.stat(stamp)).modified
        finally:
            await self._remove(stamp)

    async def _condemn(self, digest: Digest, since: float) -> bool:
        """
        Step 2 of the protocol: mark, then re-read; whether to remove.
        """
        marker = layout.blobCondemned(digest)
        await self._driver.putContent(marker, b"")
        used = 0.0
        for path in (layout.blobData(digest), layout.blobLease(digest)):
            try:
                used = max(used, (await self._driver.stat(path)).modified)
            except PathNotFoundError:
                continue
        if used > since:
            await self._remove(marker)
            return False
        return True

    async def _removeBlob(self, digest: Digest) -> None:
        """
        Remove a blob: its data first, while the marker still tells a
        racing manifest PUT to fail; then its lease and marker, one by one
        (never the directory: a push of the same content may be moving new
        data into it meanwhile).
        """
        self._content.forget(digest)
        await self._remove(layout.blobData(digest))
        for path in (layout.blobLease(digest), layout.blobCondemned(digest)):
            await self._removeLeftover(path)

    async def _removeLeftover(self, path: str) -> None:
        """
        Remove what is left of a blob without data; a write racing the
        removal (a PUT touching the lease) may keep the directory, which
        the next collection finds again.
        """
        try:
            await self._remove(path)
        except OSError as e:
            _log.info("Garbage collection left {path} for the next run: {error}",
                      path=path, error=e)

    async def _remove(self, path: str) -> None:
        try:
            await self._driver.delete(path)
        except PathNotFoundError:
            pass

    async def collect(
        self, deleteUntagged: bool = False, dryRun: bool = False, grace: float | None = None,
        progress: Progress = lambda done, total, name: None,
    ) -> CollectionReport:
        """
        One whole collection: inventory, mark, sweep.
        """
        report = CollectionReport(dryRun)
        now = await self.storageTime()
        since = None if grace is None else now - grace
        found = await self.inventory()
        await self.applyRetention(found, now, report)
        marked = await self.mark(found, deleteUntagged, report, progress)
        await self.sweep(found, marked, report, grace, since)
        return report


def _digestOf(state: Iterable[str]) -> Digest | None:
    """
    The digest a state path names by its C{<algorithm>/<encoded>/link}
    ending, or L{None}.
    """
    parts = list(state)
    if len(parts) < 3:
        return None
    try:
        return Digest.parse(f"{parts[-3]}:{parts[-2]}")
    except InvalidDigest:
        return None
