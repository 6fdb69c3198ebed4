"""
L{RedisCache} against a real C{redis-server}: commands work, and when Redis
goes away every command answers "nothing" at once instead of failing, with
one log line for the outage and one when Redis is back.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from tests.rediscache.redisserver import RedisServer
from txregistry.config import checkConfiguration
from txregistry.rediscache.client import RedisCache


class RedisCacheTests(TestCase):
    def setUp(self) -> None:
        self.server = RedisServer(self).start()
        config = checkConfiguration(
            {"redis": self.server.section, "storage": {"inmemory": {}}}
        ).redis
        assert config is not None
        self.cache = RedisCache(config, reactor)
        self.addCleanup(self.cache.close)
        self.events: list[dict] = []  # type: ignore[type-arg]
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    async def test_commands(self) -> None:
        self.assertIsNone(await self.cache.get(b"k"))
        self.assertTrue(await self.cache.set(b"k", b"v\x00\xff", 60))
        self.assertEqual(await self.cache.get(b"k"), b"v\x00\xff")
        self.assertFalse(await self.cache.set(b"k", b"other", 60, onlyIfAbsent=True))
        self.assertEqual(await self.cache.get(b"k"), b"v\x00\xff")
        self.assertIn(b":", self.server.command("TTL", "k"))
        self.assertTrue(await self.cache.delete(b"k"))
        self.assertIsNone(await self.cache.get(b"k"))

    def messages(self) -> list[str]:
        return [e.get("log_format", "") for e in self.events if "Redis" in e.get("log_format", "")]

    async def test_outage(self) -> None:
        """
        With Redis gone, reads are misses and writes report they did not
        happen; the outage is logged once; when Redis is back, so is the
        cache.
        """
        await self.cache.set(b"k", b"v", 60)
        self.server.stop()
        for _ in range(3):
            self.assertIsNone(await self.cache.get(b"k"))
            self.assertFalse(await self.cache.set(b"k", b"v", 60))
        self.assertFalse(self.cache.available)
        self.assertEqual(len(self.messages()), 1, self.messages())
        self.server.start()
        for _ in range(100):
            if await self.cache.set(b"k", b"back", 60):
                break
            await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(await self.cache.get(b"k"), b"back")
        self.assertTrue(self.cache.available)
        self.assertEqual(len(self.messages()), 2, self.messages())
