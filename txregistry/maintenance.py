# -*- test-case-name: tests.test_maintenance -*-
"""
Upload purging: uploads nobody finished are removed once they have been
idle longer than C{storage.maintenance.uploadpurging.age}, every
C{interval}, as the reference implementation does.  Which uploads those
are is the model's to say (L{INamespace.purgeUploads}); this is the
timer.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import TimerService
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from txregistry.config import UploadPurging
from txregistry.interfaces import INamespace

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
