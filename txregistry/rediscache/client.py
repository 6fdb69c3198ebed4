# -*- test-case-name: tests.rediscache.test_client -*-
"""
L{RedisCache}: the few Redis commands the cache layer needs, each bounded
by a timeout, none ever failing.

The cache is an optimisation, never a source of truth: when Redis is down,
slow or refusing, a read is a miss and a write is skipped, the registry
goes on from storage, and the outage is logged once when it starts and once
when it ends (not once per request).  txredisapi is the field's Twisted
Redis client (a lazy pool that reconnects by itself).
"""

from __future__ import annotations

from typing import Any

import txredisapi
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from txregistry.config import RedisConfig

__all__ = ["RedisCache"]

_log = Logger()


class RedisCache:
    """
    Keys and values as bytes on one Redis server.

    @ivar available: whether the last command succeeded.
    """

    def __init__(self, config: RedisConfig, reactor: Any) -> None:
        self._config = config
        self._reactor = reactor
        self._timeout = max(config.readTimeout, config.writeTimeout)
        self._pool: Any = None
        self.available = True

    def _connection(self) -> Any:
        if self._pool is None:
            c = self._config
            self._pool = txredisapi.lazyConnectionPool(
                host=c.host, port=c.port, dbid=c.db, poolsize=c.poolSize, password=c.password,
                connectTimeout=c.dialTimeout, replyTimeout=self._timeout, charset=None,
                convertNumbers=False,
            )
        return self._pool

    def _run(self, what: str, command: str, *args: Any, **kwargs: Any) -> Deferred[Any]:
        """
        Run C{command}; fire with its answer, or with L{None} (logged, as
        the start of an outage) when it fails or takes too long.
        """
        try:
            d = getattr(self._connection(), command)(*args, **kwargs)
        except Exception:
            return succeed(self._failed(Failure(), what))
        d.addTimeout(self._timeout, self._reactor)
        d.addCallbacks(self._succeeded, self._failed, errbackArgs=(what,))
        return d

    def _succeeded(self, result: Any) -> Any:
        if not self.available:
            self.available = True
            _log.info("Redis is back: the cache is in use again")
        return result

    def _failed(self, failure: Failure, what: str) -> Any:
        if self.available:
            self.available = False
            _log.warn(
                "Redis is unavailable ({what}: {error}): serving from storage until it is back",
                what=what, error=failure.getErrorMessage() or getattr(failure.type, "__name__", "error"),
            )
        return None

    def get(self, key: bytes) -> Deferred[bytes | None]:
        """
        The value at C{key}, or L{None} (absent, or Redis unavailable).
        """
        return self._run("GET", "get", key)

    def set(
        self, key: bytes, value: bytes, ttl: float | None, onlyIfAbsent: bool = False
    ) -> Deferred[bool]:
        """
        Store C{value} at C{key} for C{ttl} seconds (for ever: L{None});
        with C{onlyIfAbsent}, only if nothing is there.

        @return: whether it was stored.
        """
        kwargs: dict[str, Any] = {"only_if_not_exists": onlyIfAbsent}
        if ttl is not None:
            kwargs["expire"] = max(1, int(ttl))
        d = self._run("SET", "set", key, value, **kwargs)
        return d.addCallback(lambda answer: answer is not None)

    def delete(self, *keys: bytes) -> Deferred[bool]:
        """
        Delete C{keys}.

        @return: whether Redis answered (so the keys are gone).
        """
        d = self._run("DEL", "delete", list(keys))
        return d.addCallback(lambda answer: answer is not None)

    def close(self) -> Deferred[None]:
        """
        Close the connections.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return succeed(None)
        return pool.disconnect().addErrback(lambda _: None)
