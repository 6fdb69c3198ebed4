"""
Upload purging: uploads nobody finished are removed once they have been
idle longer than C{storage.maintenance.uploadpurging.age}, every
C{interval}, as the reference implementation does.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.application.internet import TimerService
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from txregistry.config import UploadPurging
from txregistry.registry import layout
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageDriver

_log = Logger()


async def purgeUploads(
    driver: IStorageDriver, olderThan: float, dryRun: bool = False
) -> list[str]:
    """
    Remove every upload whose data was last written before C{olderThan}
    (a time stamp).

    @return: the storage paths of the uploads removed (or, with
        C{dryRun}, that would be).
    """
    try:
        entries = await driver.walk(layout.REPOSITORIES)
    except PathNotFoundError:
        return []
    stale = []
    for entry in entries:
        parts = entry.path.rsplit("/", 3)
        if (
            len(parts) == 4
            and parts[1] == "_uploads"
            and parts[3] == "data"
            and not entry.isDirectory
            and entry.modified < olderThan
        ):
            stale.append(entry.path.rsplit("/", 1)[0])
    for upload in stale:
        if dryRun:
            _log.info("Would purge stale upload {upload}", upload=upload)
            continue
        try:
            await driver.delete(upload)
        except PathNotFoundError:
            continue
        _log.info("Purged stale upload {upload}", upload=upload)
    return stale


class UploadPurger(TimerService):
    """
    Runs L{purgeUploads} every C{interval} seconds (the first run at start).
    """

    def __init__(self, driver: IStorageDriver, settings: UploadPurging, clock: Any = None) -> None:
        self._driver = driver
        self._settings = settings
        super().__init__(settings.interval, self._purge)
        if clock is not None:
            self.clock = clock

    def _purge(self) -> Deferred[list[str]]:
        cutoff = time.time() - self._settings.age
        d = Deferred.fromCoroutine(purgeUploads(self._driver, cutoff, self._settings.dryRun))
        d.addErrback(lambda f: _log.failure("Upload purging failed", f))
        return d
