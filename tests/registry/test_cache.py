"""
L{BoundedCache}: least recently used out first, within a count or a byte
budget, with a time to live by the clock it is given.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txregistry.registry.cache import BoundedCache


class BoundedCacheTests(SynchronousTestCase):
    def test_count(self) -> None:
        cache: BoundedCache[str, int] = BoundedCache(maxEntries=2)
        cache.put("a", 1)
        cache.put("b", 2)
        self.assertEqual(cache.get("a"), 1)  # now the most recent
        cache.put("c", 3)
        self.assertEqual((cache.get("a"), cache.get("b"), cache.get("c")), (1, None, 3))
        self.assertEqual(len(cache), 2)

    def test_bytes(self) -> None:
        cache: BoundedCache[str, bytes] = BoundedCache(maxBytes=10, sizeOf=len)
        cache.put("a", b"12345")
        cache.put("b", b"12345")
        cache.put("c", b"1")
        self.assertIsNone(cache.get("a"))
        self.assertEqual(cache.get("b"), b"12345")
        cache.put("huge", b"x" * 11)
        self.assertIsNone(cache.get("huge"))
        self.assertEqual(cache.get("c"), b"1")
        # Replacing an entry gives its bytes back.
        cache.put("b", b"123")
        cache.put("d", b"123456")
        self.assertEqual((cache.get("b"), cache.get("c"), cache.get("d")), (b"123", b"1", b"123456"))

    def test_ttl(self) -> None:
        clock = Clock()
        cache: BoundedCache[str, int] = BoundedCache(ttl=1.0, clock=clock)
        cache.put("a", 1)
        clock.advance(0.9)
        self.assertEqual(cache.get("a"), 1)
        clock.advance(0.2)
        self.assertIsNone(cache.get("a"))
        self.assertEqual(len(cache), 0)

    def test_zeroTTLKeepsNothing(self) -> None:
        cache: BoundedCache[str, int] = BoundedCache(ttl=0, clock=Clock())
        cache.put("a", 1)
        self.assertIsNone(cache.get("a"))

    def test_noTTLWithClock(self) -> None:
        clock = Clock()
        cache: BoundedCache[str, int] = BoundedCache(maxEntries=4, clock=clock)
        cache.put("a", 1)
        clock.advance(10**6)
        self.assertEqual(cache.get("a"), 1)

    def test_popAndDiscard(self) -> None:
        cache: BoundedCache[tuple[str, str], int] = BoundedCache()
        for key, value in ((("r", "a"), 1), (("r", "b"), 2), (("s", "a"), 1)):
            cache.put(key, value)
        self.assertEqual(cache.pop(("r", "b")), 2)
        self.assertIsNone(cache.pop(("r", "b")))
        cache.discard(lambda key, value: key[0] == "r" and value == 1)
        self.assertEqual((cache.get(("r", "a")), cache.get(("s", "a"))), (None, 1))

    def test_contains(self) -> None:
        """
        C{in} tells a kept L{None} from a missing entry, and honours the TTL.
        """
        clock = Clock()
        cache: BoundedCache[str, int | None] = BoundedCache(ttl=1.0, clock=clock)
        cache.put("none", None)
        self.assertIn("none", cache)
        self.assertNotIn("other", cache)
        clock.advance(2)
        self.assertNotIn("none", cache)
        self.assertEqual(len(cache), 0)

    def test_ttlNeedsClock(self) -> None:
        self.assertRaises(ValueError, BoundedCache, ttl=1.0)
