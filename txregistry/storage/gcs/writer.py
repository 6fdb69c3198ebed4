# -*- test-case-name: tests.storage.test_gcs -*-
"""
L{GCSWriter}: a value written as a resumable upload, fed with
backpressure (L{ChunkedWriter}: chunks of C{chunksize}, each sent while
the next fills, in order, as GCS takes them).

A replacing writer uploads to the target itself: GCS makes the object
appear, whole, when the last chunk finalizes the upload, so nothing is
visible before L{GCSWriter.commit}, and a cancelled upload is deleted.  A
value shorter than one chunk is one simple upload instead.

An appending writer uploads its bytes to a private object beside the
target (C{.staging-<id>}, never listed or walked, removed with the
directory), and at commit composes the target and it into the target
(C{compose}, server-side, with C{ifGenerationMatch} on the generation it
read, starting again from the read if the target changed meanwhile), then
deletes it; commits of appends to one object in this process also take
turns.  The registry's upload is in the bucket after every committed
chunk: a restarted registry (or another instance) resumes it from there.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from zope.interface import implementer

from txregistry.shielding import shielded
from txregistry.storage.chunked import ChunkedWriter
from txregistry.storage.errors import PathNotFoundError, StorageUnavailableError
from txregistry.storage.gcs.client import GCSError
from txregistry.storage.interfaces import IStorageWriter

if TYPE_CHECKING:
    from txregistry.storage.gcs.driver import GCSDriver

__all__ = ["GCSWriter"]

#: Commits of an append retried when the object keeps changing under them.
APPEND_ATTEMPTS = 10


@implementer(IStorageWriter)
class GCSWriter(ChunkedWriter):
    """
    See the module's docstring.
    """

    concurrency = 1

    def __init__(
        self, driver: GCSDriver, path: str, name: str, append: bool, startSize: int
    ) -> None:
        super().__init__(path, driver.parameters.chunkSize, startSize)
        self._driver = driver
        self._name = name
        self._append = append
        self._startSize = startSize
        self._target = driver.stagingName(name, uuid.uuid4().hex) if append else name
        self._session: str | None = None
        self._uploaded = 0

    def _begin(self) -> Deferred[None]:
        async def begin() -> None:
            self._session = await self._driver.startUpload(self._target)

        return Deferred.fromCoroutine(begin())

    def _stage(self, number: int, data: bytes) -> Deferred[None]:
        assert self._session is not None
        start = self._uploaded
        self._uploaded += len(data)
        return Deferred.fromCoroutine(
            self._driver.uploadChunk(self._session, start, data, None)
        )

    def commit(self) -> Deferred[int]:
        return shielded(Deferred.fromCoroutine(self._commit()))

    async def _commit(self) -> int:
        await self._close()
        tail = self._tail()
        added = self.size - self._startSize
        d = self._driver
        if self._append and added == 0:
            await self._abandon()
            found = await d.metadata(self._name)
            if found is None:
                raise PathNotFoundError(self.path)
            return int(found["size"])
        if not self._append:
            await d.checkPlace(self.path)
        try:
            if self._session is None:
                await d.simpleUpload(self._target, tail)
            else:
                session, self._session = self._session, None
                await d.uploadChunk(session, self._uploaded, tail, self._uploaded + len(tail))
        except BaseException:
            await self._abandon()
            raise
        if not self._append:
            return self.size
        try:
            return await d.locks.run(self._name, self._compose)
        finally:
            await d.deleteObject(self._target, missingOK=True)

    async def _compose(self) -> int:
        d = self._driver
        for _ in range(APPEND_ATTEMPTS):
            found = await d.metadata(self._name)
            if found is None:
                raise PathNotFoundError(self.path)
            try:
                result = await d.compose(self._name, [self._name, self._target], found["generation"])
            except GCSError as e:
                if e.status in (409, 412):
                    continue
                raise
            return int(result["size"])
        raise StorageUnavailableError(
            f"{self.path}: changed under {APPEND_ATTEMPTS} attempts to append to it"
        )

    def cancel(self) -> Deferred[None]:
        return shielded(Deferred.fromCoroutine(self._cancel()))

    async def _cancel(self) -> None:
        await self._discard()
        await self._abandon()

    async def _abandon(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await self._driver.cancelUpload(session)
