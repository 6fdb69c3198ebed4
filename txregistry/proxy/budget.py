# -*- test-case-name: tests.proxy.test_layer -*-
"""
An upstream's size limit (C{maxbytes}): what its cached repositories hold
counts toward it, and past it the cache serves without storing.

What they hold is learned once, by asking each cached repository its
usage (L{IRepository.usage}: its blobs, each counted once per
repository, so a blob two repositories share counts twice: the limit
errs on the safe side), then kept up to date by what the cache stores;
a collection (which is how cached content goes) makes it be learned
again.
"""

from __future__ import annotations

from twisted.logger import Logger

from txregistry.interfaces import INamespace

__all__ = ["Budget"]

_log = Logger()


class Budget:
    """
    The bytes the repositories under C{prefix} may hold.
    """

    def __init__(self, prefix: str, maxBytes: int | None) -> None:
        self.prefix = prefix
        self.maxBytes = maxBytes
        self.used: int | None = None
        self._full = False

    def _under(self, name: str) -> bool:
        return not self.prefix or name.startswith(self.prefix + "/")

    async def _learn(self, namespace: INamespace) -> int:
        used = 0
        last = self.prefix or None
        while True:
            page = await namespace.catalog(1000, last)
            for name in page.items:
                if self._under(name):
                    used += (await namespace.repository(name).usage()).bytes
                elif self.prefix and name > self.prefix + "/":
                    return used
            if not page.more or not page.items:
                return used
            last = page.items[-1]

    async def admit(self, namespace: INamespace, size: int) -> bool:
        """
        Whether C{size} more bytes may be stored.
        """
        if self.maxBytes is None:
            return True
        if self.used is None:
            self.used = await self._learn(namespace)
        admitted = self.used + size <= self.maxBytes
        if not admitted and not self._full:
            _log.warn("proxy: the cache of {prefix} holds {used} of its {limit} bytes: serving "
                      "without storing until collections expire some",
                      prefix=self.prefix or "(every repository)", used=self.used,
                      limit=self.maxBytes)
        self._full = not admitted
        return admitted

    def stored(self, size: int) -> None:
        if self.used is not None:
            self.used += size

    def forget(self) -> None:
        """
        A collection ran: learn again what is held.
        """
        self.used = None
