# -*- test-case-name: tests.client.test_hashing -*-
"""
Hashing a blob beside the reactor: L{HashingThread}.

A copy between two registries is the client's reactor reading from one
connection and writing to another; hashing what goes through on the same
thread made the digest about half of that thread's work per GiB, while
the second CPU of a small machine waited.  Handing each read to the
reactor's thread pool (L{twisted.internet.threads.deferToThread}, as
L{txregistry.registry.digest.DigestingConsumer} does for the server) costs
a Deferred and a wake-up of the reactor per read, which for a client moving
one blob at wire speed was more CPU than the hashing itself.  Here each
blob has a thread of its own, fed through a queue: the reactor thread only
appends, and hears back only when it paused the source for the hash to
catch up, and at the end.  C{hashlib} lets go of the GIL while it hashes a
large piece, so the hash runs on the other CPU.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

__all__ = ["HashingThread"]

#: What ends the input of the thread.
_END: Any = object()


class HashingThread:
    """
    Hashes the pieces given to L{update}, in order, on a thread of its own.

    @ivar highWater: L{update} says to pause once more than this many bytes
        wait to be hashed (memory stays bounded when the hash is slower than
        the network).
    @ivar lowWater: C{caughtUp} is called (in the reactor thread) once
        fewer than this many wait, after L{update} said to pause.
    """

    highWater = 8 * 1024 * 1024
    lowWater = 2 * 1024 * 1024

    def __init__(self, hasher: Any, caughtUp: Callable[[], None], reactor: Any = None) -> None:
        """
        @param hasher: a L{hashlib} object.
        @param caughtUp: what to call once the hash caught up after
            L{update} returned C{True}.
        """
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self._reactor = reactor
        self._hasher = hasher
        self._caughtUp = caughtUp
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting = 0
        self._behind = False
        self._done: Deferred[str] = Deferred()
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="txregistry-client-hash", daemon=True)
        self._thread.start()

    def update(self, data: bytes) -> bool:
        """
        Hash C{data} after what came before it.

        @return: whether the caller should stop giving more until
            C{caughtUp} is called.
        """
        if not data or self._ended:
            return False
        with self._lock:
            self._waiting += len(data)
            behind = self._behind = self._waiting > self.highWater
        self._queue.put(data)
        return behind

    def hexdigest(self) -> Deferred[str]:
        """
        End the input.

        @return: a L{Deferred} firing (in the reactor thread) with the hex
            digest of everything given to L{update}.
        """
        self.stop()
        return self._done

    def stop(self) -> None:
        """
        No more input: the thread ends after what it has (safe to call more
        than once; L{hexdigest} still gives the digest of what came).
        """
        if not self._ended:
            self._ended = True
            self._queue.put(_END)

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is _END:
                self._reactor.callFromThread(self._done.callback, self._hasher.hexdigest())
                return
            self._hasher.update(data)
            with self._lock:
                self._waiting -= len(data)
                wake = self._behind and self._waiting < self.lowWater
                if wake:
                    self._behind = False
            if wake:
                self._reactor.callFromThread(self._caughtUp)
