# -*- test-case-name: tests.storage.test_filesystem -*-
"""
A thread pool for a driver's blocking system calls.

Opening, reading, writing, fsync and rename can each stall for as long as
the disk likes; a driver sends them here so the reactor never waits on
them.  Each driver owns one pool, so a slow disk cannot starve other work
that uses the reactor's own pool (name resolution, for one).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from txregistry.storage.errors import StorageFullError

__all__ = ["BlockingPool"]

T = TypeVar("T")


class BlockingPool:
    """
    Runs blocking callables on a private, lazily started thread pool.

    A full disk or an exhausted quota (C{ENOSPC}, C{EDQUOT}) comes back as
    L{StorageFullError}, so the layers above can answer it as what it is.

    Meant for drivers whose storage is reached through a blocking API (the
    local filesystem, a synchronous SDK): call through L{run} and close the
    pool from L{IStorageDriver.close}.
    """

    def __init__(self, reactor: IReactorFromThreads, name: str, size: int = 16) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=size, name=name)
        self._started = False

    def run(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """
        Call C{f(*args, **kwargs)} on a pool thread.

        @return: a L{Deferred} with its result or exception.
        """
        if not self._started:
            self._pool.start()
            self._started = True
        return deferToThreadPool(self._reactor, self._pool, _translateFull, f, *args, **kwargs)

    def close(self) -> Deferred[None]:
        """
        Finish queued work and stop the threads.
        """
        if self._started:
            self._started = False
            self._pool.stop()
        return succeed(None)


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def _translateFull(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return f(*args, **kwargs)
    except OSError as e:
        if e.errno in _FULL:
            raise StorageFullError(e.errno, e.strerror or "no space left on device") from None
        raise
