# -*- test-case-name: tests.storage.test_azure -*-
"""
L{AzureWriter}: a value written as the blocks of a block blob, staged with
C{Put Block} while the bytes arrive (L{ChunkedWriter}: equal blocks of
C{chunksize}, backpressure) and made visible, whole, by one C{Put Block
List}.

Azure discards a blob's uncommitted blocks whenever a block list is
committed to it, so two writers must never stage on one blob at once:

  - A replacing writer stages on a private blob of its own beside the
    target (C{.staging-<id>}, never listed or walked, removed with the
    directory), commits it there, and at commit copies it onto the target
    server-side (C{Copy Blob}, as a move does) and deletes it.  A value
    shorter than one block is one C{Put Blob} of the target instead.

  - An appending writer stages on the target itself, under an exclusive
    lease on it taken before its first block (and renewed while it
    writes): other appenders wait for the lease.  At commit it reads the
    committed block list and commits it followed by its own blocks, then
    releases the lease.  A value whose block list does not add up to its
    size (written by C{Put Blob} or copied) is first re-staged, a block at
    a time, from its own bytes.

The registry's upload is therefore in the container after every committed
chunk: a restarted registry (or another instance) appends the next chunk
to it.  A writer whose process dies leaves its lease to expire
(L{LEASE_SECONDS}) and its blocks uncommitted: Azure drops them at the
next commit, and they are never visible.
"""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from zope.interface import implementer

from txregistry.shielding import shielded
from txregistry.storage.chunked import ChunkedWriter
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageWriter

if TYPE_CHECKING:
    from txregistry.storage.azure.driver import AzureDriver, Lease

__all__ = ["AzureWriter", "blockID"]


def blockID(nonce: str, number: int) -> str:
    """
    The ID of a writer's C{number}th block: all of one length, as Azure
    requires of the blocks of a blob, and never another writer's.
    """
    return base64.b64encode(f"{nonce}{number:010d}".encode()).decode()


@implementer(IStorageWriter)
class AzureWriter(ChunkedWriter):
    """
    See the module's docstring.
    """

    def __init__(
        self, driver: AzureDriver, path: str, blob: str, append: bool, startSize: int
    ) -> None:
        super().__init__(path, driver.parameters.chunkSize, startSize)
        self._driver = driver
        self._blob = blob
        self._append = append
        self._startSize = startSize
        self._nonce = uuid.uuid4().hex
        self._target = blob if append else driver.stagingBlob(blob, self._nonce)
        self._lease: Lease | None = None

    def _begin(self) -> Deferred[None]:
        if not self._append:
            return super()._begin()

        async def lease() -> None:
            self._lease = await self._driver.acquireLease(self._blob, self.path)

        return Deferred.fromCoroutine(lease())

    def _leaseID(self) -> str | None:
        return self._lease.id if self._lease is not None else None

    def _stage(self, number: int, data: bytes) -> Deferred[None]:
        return Deferred.fromCoroutine(
            self._driver.putBlock(self._target, blockID(self._nonce, number), data, self._leaseID())
        )

    def commit(self) -> Deferred[int]:
        return shielded(Deferred.fromCoroutine(self._commit()))

    async def _commit(self) -> int:
        try:
            await self._close()
            if self._append:
                return await self._commitAppend()
            return await self._commitReplace()
        finally:
            await self._release()

    def _blocks(self, tail: bytes) -> list[str]:
        return [blockID(self._nonce, n) for n in range(self._next + (1 if tail else 0))]

    async def _commitReplace(self) -> int:
        tail = self._tail()
        d = self._driver
        if not self._begun:
            await d.checkPlace(self.path)
            await d.putBlob(self._blob, tail)
            return self.size
        if tail:
            await d.putBlock(self._target, blockID(self._nonce, self._next), tail)
        await d.putBlockList(self._target, self._blocks(tail))
        try:
            await d.checkPlace(self.path)
            await d.copyBlob(self._target, self._blob)
        finally:
            await d.deleteBlob(self._target, missingOK=True)
        return self.size

    async def _commitAppend(self) -> int:
        tail = self._tail()
        d = self._driver
        added = self.size - self._startSize
        if self._lease is None:
            self._lease = await d.acquireLease(self._blob, self.path)
        lease = self._lease.id
        committed, existing = await d.blockList(self._blob, lease)
        if added == 0:
            return existing
        if tail:
            await d.putBlock(self._blob, blockID(self._nonce, self._next), tail, lease)
        if sum(size for _, size in committed) != existing:
            committed = await d.restage(self._blob, existing, lease)
        await d.putBlockList(self._blob, [i for i, _ in committed] + self._blocks(tail), lease)
        return existing + added

    def cancel(self) -> Deferred[None]:
        return shielded(Deferred.fromCoroutine(self._cancel()))

    async def _cancel(self) -> None:
        if await self._discard() and not self._append and self._begun:
            await self._driver.deleteBlob(self._target, missingOK=True)
        await self._release()

    async def _release(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            try:
                await lease.release()
            except PathNotFoundError:
                pass
