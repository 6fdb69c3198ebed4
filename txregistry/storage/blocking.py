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
import threading
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.failure import Failure

from txregistry.storage.errors import StorageFullError

__all__ = ["BlockingPool"]

T = TypeVar("T")

#: What L{BlockingPool.close} queues once per thread to end it.
_STOP: Any = object()


class BlockingPool:
    """
    Runs blocking callables on a private, lazily started pool of threads.

    A full disk or an exhausted quota (C{ENOSPC}, C{EDQUOT}) comes back as
    L{StorageFullError}, so the layers above can answer it as what it is.

    Meant for drivers whose storage is reached through a blocking API (the
    local filesystem, a synchronous SDK): call through L{run} and close the
    pool from L{IStorageDriver.close}.

    Most calls that come here are tiny (a C{stat}, a read of a link file
    of 71 bytes) and every request makes a few, so what a hand-off costs
    matters as much as what it runs: C{twisted.python.threadpool} spent
    about 55 CPU-microseconds on each (its team coordinator, a
    C{queue.Queue} whose condition variable is Python code, the context
    copied into the thread, a waker write per result), more than a blob
    C{HEAD}'s system calls.  This pool keeps the rule that a blocking call
    never runs on the reactor thread and makes the hand-off cheap: work
    goes through a L{SimpleQueue} (C code: no Python-level condition), and
    results are collected in a deque that the reactor drains in one
    C{callFromThread} however many finished meanwhile (one waker write for
    a burst instead of one each).  About 13 CPU-microseconds a hand-off.

    A thread is started when work is queued and none is idle, up to
    C{size}; threads stay until L{close}.
    """

    def __init__(self, reactor: IReactorFromThreads, name: str, size: int = 16) -> None:
        self._reactor = reactor
        self._name = name
        self._size = size
        self._work: SimpleQueue[Any] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        # Work queued that no thread took yet, and threads waiting for work.
        self._queued = 0
        self._idle = 0
        self._results: deque[tuple[Deferred[Any], bool, Any]] = deque()
        self._delivering = False

    def run(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """
        Call C{f(*args, **kwargs)} on a pool thread.

        @return: a L{Deferred} with its result or exception, fired on the
            reactor thread.
        """
        d: Deferred[T] = Deferred()
        with self._lock:
            self._queued += 1
            start = self._queued > self._idle and len(self._threads) < self._size
            if start:
                thread = threading.Thread(
                    target=self._serve, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
        self._work.put((f, args, kwargs, d))
        if start:
            thread.start()
        return d

    def _serve(self) -> None:
        """
        A pool thread: run queued work until L{_STOP}, handing each result
        to L{_deliver}.
        """
        work, lock, results = self._work, self._lock, self._results
        while True:
            with lock:
                self._idle += 1
            item = work.get()
            with lock:
                self._idle -= 1
                self._queued -= 1
            if item is _STOP:
                return
            f, args, kwargs, d = item
            try:
                outcome = (d, True, _translateFull(f, *args, **kwargs))
            except BaseException:
                outcome = (d, False, Failure())
            del f, args, kwargs, d, item
            with lock:
                results.append(outcome)
                wake = not self._delivering
                self._delivering = True
            del outcome
            if wake:
                self._reactor.callFromThread(self._deliver)

    def _deliver(self) -> None:
        """
        On the reactor thread: fire the L{Deferred} of every result the
        threads handed in since the last time.
        """
        with self._lock:
            self._delivering = False
            ready = list(self._results)
            self._results.clear()
        for d, succeeded, result in ready:
            if succeeded:
                d.callback(result)
            else:
                d.errback(result)

    def close(self) -> Deferred[None]:
        """
        Finish queued work and stop the threads.
        """
        threads, self._threads = self._threads, []
        with self._lock:
            self._queued += len(threads)
        for _ in threads:
            self._work.put(_STOP)
        for thread in threads:
            thread.join()
        # What finished during the join is delivered by the reactor's
        # next turn, as before.
        return succeed(None)


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def _translateFull(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return f(*args, **kwargs)
    except OSError as e:
        if e.errno in _FULL:
            raise StorageFullError(e.errno, e.strerror or "no space left on device") from None
        raise
