# -*- test-case-name: tests.test_maintenance -*-
"""
The registry's timed housekeeping.

Upload purging: uploads nobody finished are removed once they have been
idle longer than C{storage.maintenance.uploadpurging.age}, every
C{interval}, as the reference implementation does.  Online garbage
collection (C{storage.gc}): every C{interval}, blobs no manifest needs are
removed while pushes go on.  What is removed is the model's to say
(L{INamespace.purgeUploads}, L{INamespace.collectGarbage}); these are the
timers.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import TimerService
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from txregistry.config import OnlineCollection, UploadPurging
from txregistry.interfaces import CollectionReport, INamespace

_log = Logger()


class UploadPurger(TimerService):
    """
    Purges stale uploads every C{interval} seconds (the first run at
    start), by C{clock}'s time.
    """

    def __init__(self, namespace: INamespace, settings: UploadPurging, clock: Any) -> None:
        self._namespace = namespace
        self._settings = settings
        super().__init__(settings.interval, self._purge)
        self.clock = clock

    def _purge(self) -> Deferred[list[str]]:
        clock: Any = self.clock
        cutoff = clock.seconds() - self._settings.age
        d = self._namespace.purgeUploads(cutoff, self._settings.dryRun)
        d.addCallback(self._purged)
        d.addErrback(lambda f: _log.failure("Upload purging failed", f))
        return d

    def _purged(self, uploads: list[str]) -> list[str]:
        verb = "Would purge" if self._settings.dryRun else "Purged"
        for upload in uploads:
            _log.info("{verb} stale upload {upload}", verb=verb, upload=upload)
        return uploads


class OnlineCollector(TimerService):
    """
    Collects garbage every C{interval} seconds while the registry serves
    (the first run one interval after the start, not during it), one
    collection at a time.
    """

    def __init__(self, namespace: INamespace, settings: OnlineCollection, clock: Any) -> None:
        self._namespace = namespace
        self._settings = settings
        self._running = False
        # TimerService calls at once when started; a collection during the
        # start would compete with it, so that first call is skipped.
        self._started = False
        super().__init__(settings.interval, self._collect)
        self.clock = clock

    def _collect(self) -> Deferred[CollectionReport] | None:
        if not self._started:
            self._started = True
            return None
        if self._running:
            return None
        self._running = True
        d = self._namespace.collectGarbage(dryRun=self._settings.dryRun, online=True)
        d.addCallback(self._collected)
        d.addErrback(lambda f: _log.failure("Online garbage collection failed", f))

        def done(result: object) -> object:
            self._running = False
            return result

        return d.addBoth(done)

    def _collected(self, report: CollectionReport) -> CollectionReport:
        for digest, size in report.blobs:
            _log.info("{verb} blob {digest} ({size} bytes)",
                      verb="Would collect" if report.dryRun else "Collected", digest=digest, size=size)
        _log.info("Online garbage collection {summary}; {spared} blobs in use were spared",
                  summary=report.summary(), spared=len(report.spared))
        return report
