# -*- test-case-name: tests.storage.test_s3 -*-
"""
L{StreamingClaims}: which writer in this process streams parts to each
open value's upload (see L{txregistry.storage.s3.writer}): two writers
numbering parts in one upload would overwrite each other's.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

__all__ = ["StreamingClaims"]


class StreamingClaims:
    """
    One holder per key; others wait, or stage their parts elsewhere.
    """

    def __init__(self) -> None:
        self._holders: dict[str, object] = {}
        self._waiters: dict[str, list[Deferred[None]]] = {}

    def claim(self, key: str, owner: object) -> bool:
        """
        Let C{owner} stream parts to the upload of the value at C{key},
        unless another writer does.
        """
        return self._holders.setdefault(key, owner) is owner

    def release(self, key: str, owner: object) -> None:
        if self._holders.get(key) is owner:
            del self._holders[key]
            for d in self._waiters.pop(key, []):
                d.callback(None)

    async def wait(self, key: str, owner: object) -> None:
        """
        Wait until no other writer streams to C{key}'s upload, then claim
        it for C{owner}.
        """
        while not self.claim(key, owner):
            d: Deferred[None] = Deferred()
            self._waiters.setdefault(key, []).append(d)
            await d
