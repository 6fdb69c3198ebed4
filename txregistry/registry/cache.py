# -*- test-case-name: tests.registry.test_cache -*-
"""
L{BoundedCache}: the one in-process cache of the registry's stores.

Uploads keep running hashes, manifests keep content by digest, tags keep
what they resolved to: each is a least-recently-used mapping bounded by a
count or a byte budget, some with a time to live.  One class serves them
all, with the clock passed in so that tests can move time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from twisted.internet.interfaces import IReactorTime

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CacheStats:
    """
    How often the caches of one name were asked, and how often they had
    the answer: the registry's C{registry_storage_cache_*} figures.
    """

    def __init__(self) -> None:
        self.requests = 0
        self.hits = 0


#: The statistics of every named cache in the process, by name.
CACHE_STATS: dict[str, CacheStats] = {}


class BoundedCache(Generic[K, V]):
    """
    A least-recently-used mapping.

    @param maxEntries: at most this many entries (L{None}: no count bound).
    @param maxBytes: at most this many bytes, as C{sizeOf} measures each
        value; a value larger than the whole budget is never kept.
    @param ttl: seconds an entry lives, by C{clock}; L{None} for ever, and
        C{0} keeps nothing.
    @param name: counts its lookups in L{CACHE_STATS} under this name
        (caches of one kind share it); L{None} counts nothing.
    """

    def __init__(
        self,
        maxEntries: int | None = None,
        maxBytes: int | None = None,
        sizeOf: Callable[[V], int] = lambda value: 0,
        ttl: float | None = None,
        clock: IReactorTime | None = None,
        name: str | None = None,
    ) -> None:
        self._stats = CACHE_STATS.setdefault(name, CacheStats()) if name else None
        if ttl is not None and clock is None:
            raise ValueError("a time to live needs a clock")
        self._maxEntries = maxEntries
        self._maxBytes = maxBytes
        self._sizeOf = sizeOf
        self._ttl = ttl
        self._clock = clock
        self._used = 0
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """
        Whether C{key} has an entry that has not expired (its value may be
        L{None}).
        """
        entry = self._entries.get(key)  # type: ignore[arg-type]
        if entry is None:
            return False
        if self._ttl is not None and entry[1] < self._clock.seconds():  # type: ignore[union-attr]
            self.pop(key)  # type: ignore[arg-type]
            return False
        return True

    def get(self, key: K) -> V | None:
        """
        The value for C{key}, or L{None} if absent or expired.
        """
        stats = self._stats
        if stats is not None:
            stats.requests += 1
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if self._ttl is not None and expires < self._clock.seconds():  # type: ignore[union-attr]
            self.pop(key)
            return None
        self._entries.move_to_end(key)
        if stats is not None:
            stats.hits += 1
        return value

    def put(self, key: K, value: V) -> None:
        """
        Keep C{value} for C{key}, evicting the least recently used entries
        past the bounds.
        """
        if self._ttl == 0:
            return
        size = self._sizeOf(value)
        if self._maxBytes is not None and size > self._maxBytes:
            return
        self.pop(key)
        expires = self._clock.seconds() + self._ttl if self._ttl is not None else 0.0  # type: ignore[union-attr]
        self._entries[key] = (value, expires)
        self._used += size
        while self._entries and (
            (self._maxEntries is not None and len(self._entries) > self._maxEntries)
            or (self._maxBytes is not None and self._used > self._maxBytes)
        ):
            _, (old, _) = self._entries.popitem(last=False)
            self._used -= self._sizeOf(old)

    def pop(self, key: K) -> V | None:
        """
        Remove C{key}; its value, or L{None}.
        """
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self._used -= self._sizeOf(entry[0])
        return entry[0]

    def discard(self, matches: Callable[[K, V], bool]) -> None:
        """
        Remove every entry for which C{matches(key, value)} is true.
        """
        for key in [k for k, (v, _) in self._entries.items() if matches(k, v)]:
            self.pop(key)
