"""
L{txregistry.ui.reading.Reader}'s caches: every tag's push time is read
once however many pages ask at once, and again after L{TIMES_TTL}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txregistry.errors import NameUnknown
from txregistry.ui.reading import TIMES_TTL, Reader


class _Tags:
    def __init__(self) -> None:
        self.reads: list[Deferred[dict[str, float]]] = []

    def pushTimes(self, tags: Any = None) -> Deferred[dict[str, float]]:
        self.reads.append(Deferred())
        return self.reads[-1]


class _Repository:
    name = "r"

    def __init__(self) -> None:
        self._tags = _Tags()

    def tags(self) -> _Tags:
        return self._tags


class ReaderTests(SynchronousTestCase):
    def test_oneReadForMany(self) -> None:
        """
        Pages asking while the times are read wait for that one reading;
        within the TTL they are reused, after it read again.
        """
        clock = Clock()
        reader, repository = Reader(clock), _Repository()
        asked = [ensureDeferred(reader.allPushTimes(repository)) for _ in range(8)]  # type: ignore[arg-type]
        self.assertEqual(len(repository.tags().reads), 1)
        repository.tags().reads[0].callback({"v1": 1.0})
        self.assertEqual([self.successResultOf(d) for d in asked], [{"v1": 1.0}] * 8)
        self.successResultOf(ensureDeferred(reader.allPushTimes(repository)))  # type: ignore[arg-type]
        self.assertEqual(len(repository.tags().reads), 1)
        clock.advance(TIMES_TTL + 1)
        ensureDeferred(reader.allPushTimes(repository))  # type: ignore[arg-type]
        self.assertEqual(len(repository.tags().reads), 2)

    def test_failureReachesEveryone(self) -> None:
        """
        A failed reading fails every page waiting for it, and is not kept.
        """
        reader, repository = Reader(Clock()), _Repository()
        asked = [ensureDeferred(reader.allPushTimes(repository)) for _ in range(3)]  # type: ignore[arg-type]
        repository.tags().reads[0].errback(NameUnknown("r"))
        for d in asked:
            self.failureResultOf(d, NameUnknown)
        ensureDeferred(reader.allPushTimes(repository))  # type: ignore[arg-type]
        self.assertEqual(len(repository.tags().reads), 2)
