# -*- test-case-name: tests.telemetry.test_activity -*-
"""
What the registry did besides answering requests, as figures: blob
uploads, garbage collections and quota refusals.

L{Activity} holds the counts (plain numbers: updating one is an
addition), L{MeasuredNamespace} is the layer of the model that counts
uploads and collections (the outermost, so that what a layer refuses is
not counted as done), and the quota layer is told of its refusals
through its C{refused} callable (L{Activity.quotaRefused}), given by the
composition root: the model imports no telemetry.

As Prometheus metrics (L{ActivityCollector}, read when scraped):

    registry_uploads_started_total            blob uploads begun (a session or a monolithic push)
    registry_uploads_completed_total          blob uploads stored
    registry_uploads_bytes_total              the bytes of the uploads stored
    registry_gc_runs_total                    garbage collections finished (dry runs too)
    registry_gc_duration_seconds              their times (a histogram)
    registry_gc_removed_blobs_total           blobs removed
    registry_gc_removed_manifests_total       manifests removed
    registry_gc_removed_bytes_total           the bytes of the blobs removed
    registry_quota_refusals_total{limit}      pushes refused by a quota (bytes or tags)
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from twisted.internet.defer import Deferred
from zope.interface import implementer

from txregistry.interfaces import (
    BlobDescriptor,
    CollectionReport,
    IBlobStore,
    IBlobUpload,
    IBlobWriter,
    IRepository,
)
from txregistry.registry.digest import Digest
from txregistry.registry.forwarding import (
    ForwardingBlobStore,
    ForwardingBlobUpload,
    ForwardingNamespace,
    ForwardingRepository,
)
from txregistry.telemetry.metrics import Histogram

__all__ = ["Activity", "ActivityCollector", "MeasuredNamespace", "GC_BUCKETS"]

#: Seconds: a collection of a small registry takes a second, of a large
#: one an hour.
GC_BUCKETS = (0.1, 1, 10, 60, 300, 900, 3600, 4 * 3600)


class Activity:
    """
    The counts, kept whether or not Prometheus is on (they are also in
    C{/debug/vars}).
    """

    def __init__(self) -> None:
        self.uploadsStarted = 0
        self.uploadsCompleted = 0
        self.uploadBytes = 0
        self.gcRuns = 0
        self.gcRemovedBlobs = 0
        self.gcRemovedManifests = 0
        self.gcRemovedBytes = 0
        self.gcDuration = Histogram(
            "registry_gc_duration_seconds", "The time a garbage collection took", (), GC_BUCKETS
        )
        self.quotaRefusals: Tally[str] = Tally()

    def quotaRefused(self, limit: str) -> None:
        """
        A push was refused by a quota's C{limit} (C{"bytes"} or C{"tags"}):
        the quota layer's C{refused}.
        """
        self.quotaRefusals[limit] += 1

    def collected(self, report: CollectionReport, seconds: float) -> None:
        self.gcRuns += 1
        self.gcDuration.observe((), seconds)
        if not report.dryRun:
            self.gcRemovedBlobs += len(report.blobs)
            self.gcRemovedManifests += len(report.manifests)
            self.gcRemovedBytes += report.bytes

    def snapshot(self) -> dict[str, Any]:
        return {
            "uploads": {"started": self.uploadsStarted, "completed": self.uploadsCompleted,
                        "bytes": self.uploadBytes},
            "gc": {"runs": self.gcRuns, "removed_blobs": self.gcRemovedBlobs,
                   "removed_manifests": self.gcRemovedManifests, "removed_bytes": self.gcRemovedBytes},
            "quota_refusals": dict(self.quotaRefusals),
        }


class ActivityCollector(Collector):
    def __init__(self, activity: Activity) -> None:
        self._activity = activity

    def collect(self) -> Iterator[Any]:
        a = self._activity
        for name, documentation, value in (
            ("registry_uploads_started", "The number of blob uploads begun", a.uploadsStarted),
            ("registry_uploads_completed", "The number of blob uploads stored", a.uploadsCompleted),
            ("registry_uploads_bytes", "The bytes of the blob uploads stored", a.uploadBytes),
            ("registry_gc_runs", "The number of garbage collections finished", a.gcRuns),
            ("registry_gc_removed_blobs", "The number of blobs garbage collection removed",
             a.gcRemovedBlobs),
            ("registry_gc_removed_manifests", "The number of manifests garbage collection removed",
             a.gcRemovedManifests),
            ("registry_gc_removed_bytes", "The bytes of the blobs garbage collection removed",
             a.gcRemovedBytes),
        ):
            family = CounterMetricFamily(name, documentation)
            family.add_metric([], value)
            yield family
        yield a.gcDuration.family()
        refusals = CounterMetricFamily(
            "registry_quota_refusals", "The number of pushes a quota refused", labels=["limit"]
        )
        for limit in ("bytes", "tags"):
            refusals.add_metric([limit], a.quotaRefusals[limit])
        yield refusals


class MeasuredNamespace(ForwardingNamespace):
    """
    C{inner}, counting into C{activity} the uploads begun and stored and
    the garbage collections.  Bound to no caller: it adds one wrapper per
    repository looked up, and nothing to a manifest's request.
    """

    def __init__(self, inner: Any, activity: Activity, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(inner)
        self.activity = activity
        self.clock = clock

    def wrapRepository(self, repository: IRepository) -> IRepository:
        return _Repository(repository, self.activity)

    def collectGarbage(
        self, deleteUntagged: bool = False, dryRun: bool = False, online: bool = False,
        progress: Any = None,
    ) -> Deferred[CollectionReport]:
        started = self.clock()

        def collected(report: CollectionReport) -> CollectionReport:
            self.activity.collected(report, self.clock() - started)
            return report

        return self.inner.collectGarbage(deleteUntagged, dryRun, online, progress).addCallback(collected)


class _Repository(ForwardingRepository):
    def __init__(self, inner: IRepository, activity: Activity) -> None:
        super().__init__(inner)
        self.activity = activity

    def blobs(self) -> IBlobStore:
        return _Blobs(self.inner.blobs(), self.activity)


class _Blobs(ForwardingBlobStore):
    def __init__(self, inner: IBlobStore, activity: Activity) -> None:
        super().__init__(inner)
        self.activity = activity

    def create(self) -> Deferred[IBlobUpload]:
        def created(upload: IBlobUpload) -> IBlobUpload:
            self.activity.uploadsStarted += 1
            return _Upload(upload, self.activity)

        return self.inner.create().addCallback(created)

    def wrapUpload(self, upload: IBlobUpload) -> IBlobUpload:
        # A resumed upload was counted as begun when it was created.
        return _Upload(upload, self.activity)

    def put(self, digest: Digest, length: int | None = None) -> Deferred[IBlobWriter]:
        def opened(writer: IBlobWriter) -> IBlobWriter:
            self.activity.uploadsStarted += 1
            return _Writer(writer, self.activity)

        return self.inner.put(digest, length).addCallback(opened)


class _Upload(ForwardingBlobUpload):
    def __init__(self, inner: IBlobUpload, activity: Activity) -> None:
        super().__init__(inner)
        self.activity = activity

    def commit(self, digest: Digest) -> Deferred[BlobDescriptor]:
        def committed(descriptor: BlobDescriptor) -> BlobDescriptor:
            self.activity.uploadsCompleted += 1
            self.activity.uploadBytes += descriptor.size
            return descriptor

        return self.inner.commit(digest).addCallback(committed)


@implementer(IBlobWriter)
class _Writer:
    """
    A monolithic push's writer: its C{close} is the upload stored.
    """

    def __init__(self, inner: IBlobWriter, activity: Activity) -> None:
        self.inner = inner
        self.activity = activity

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.inner.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self.inner.unregisterProducer()

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def close(self) -> Deferred[int]:
        def closed(size: int) -> int:
            self.activity.uploadsCompleted += 1
            self.activity.uploadBytes += size
            return size

        return self.inner.close().addCallback(closed)

    def abort(self) -> Deferred[None]:
        return self.inner.abort()
