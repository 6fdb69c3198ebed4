# -*- test-case-name: tests.notifications.outbox.test_state -*-
"""
What the outbox keeps per endpoint: its cursor (the journal offset of
the first event it has not been sent yet) and its dead-letter file (the
events the journal's bound pushed out before they were delivered).

    <outbox>/endpoints/<name>.cursor     {"offset": N}
    <outbox>/dead/<name>.jsonl           one event per line

The cursor is replaced by rename, not synced, and at most once every
L{SAVE_INTERVAL} (a live endpoint under load takes dozens of envelopes a
second, and a file replaced for each cost more than the envelope): after
a crash or a power cut it may be older than it was, which sends up to
that last second's events again (delivery is at least once, and each
event keeps its id); it is never newer than what was delivered.  The
dead-letter file is synced before the cursor moves past what it took, so
an event is always in one of the two.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from txregistry.storage.blocking import BlockingPool

__all__ = ["EndpointState", "cursorPath", "deadLetterPath", "SAVE_INTERVAL"]

#: The least seconds between two writes of one endpoint's cursor.
SAVE_INTERVAL = 1.0


def cursorPath(directory: str, name: str) -> str:
    return os.path.join(directory, "endpoints", f"{name}.cursor")


def deadLetterPath(directory: str, name: str) -> str:
    return os.path.join(directory, "dead", f"{name}.jsonl")


def readCursor(directory: str, name: str) -> int | None:
    """
    The saved cursor of endpoint C{name}, or L{None} if it has none (a
    new endpoint).  Blocking.
    """
    try:
        with open(cursorPath(directory, name), "rb") as f:
            saved = json.loads(f.read())
    except FileNotFoundError:
        return None
    except ValueError:
        # A torn cursor: start from the journal's beginning (at least once).
        return 0
    offset = saved.get("offset") if isinstance(saved, dict) else None
    return offset if isinstance(offset, int) and offset >= 0 else 0


def writeCursor(directory: str, name: str, offset: int) -> None:
    """
    Replace endpoint C{name}'s cursor (its directory exists).  Blocking.
    """
    path = cursorPath(directory, name)
    temporary = path + ".new"
    with open(temporary, "wb") as f:
        f.write(json.dumps({"offset": offset}).encode("ascii"))
    os.replace(temporary, path)


class EndpointState:
    """
    One endpoint's cursor and dead-letter file.

    @ivar cursor: the offset saved (or to be saved) last.
    """

    def __init__(self, directory: str, name: str, pool: BlockingPool, clock: IReactorTime) -> None:
        self.directory = directory
        self.name = name
        self.cursor = 0
        self._pool = pool
        self._clock = clock
        self._saving: Deferred[None] | None = None
        self._wanted: int | None = None
        self._timer: IDelayedCall | None = None
        #: When the last write began.
        self._lastWrite = float("-inf")

    def load(self, default: int) -> int:
        """
        Read the saved cursor; a new endpoint starts at C{default} (the
        journal's end: what was journaled before it existed is not for
        it) and saves it.  Blocking: called while the registry is made.
        """
        os.makedirs(os.path.dirname(cursorPath(self.directory, self.name)), exist_ok=True)
        saved = readCursor(self.directory, self.name)
        if saved is None:
            saved = default
            writeCursor(self.directory, self.name, saved)
        self.cursor = saved
        return saved

    def save(self, offset: int) -> None:
        """
        Save C{offset} as the cursor, soon: at most one write at a time
        and one per L{SAVE_INTERVAL}, the latest offset winning.
        """
        self.cursor = offset
        self._wanted = offset
        if self._saving is not None or self._timer is not None:
            return
        wait = self._lastWrite + SAVE_INTERVAL - self._clock.seconds()
        if wait > 0:
            self._timer = self._clock.callLater(wait, self._due)
        else:
            self._write()

    def _due(self) -> None:
        self._timer = None
        self._write()

    def _write(self) -> None:
        """
        Start writing the latest offset wanted, unless a write is under
        way (its end writes what is wanted then) or none is wanted.
        """
        if self._saving is not None or self._wanted is None:
            return
        offset, self._wanted = self._wanted, None
        self._lastWrite = self._clock.seconds()
        self._saving = self._pool.run(writeCursor, self.directory, self.name, offset)
        self._saving.addBoth(self._saved)

    def _saved(self, result: Any) -> Any:
        self._saving = None
        if self._wanted is not None:
            self.save(self._wanted)
        return None

    def flush(self) -> Deferred[None]:
        """
        Write the latest cursor now if it waits for its interval, and wait
        for the write under way, if any (at stop).
        """
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        self._write()
        if self._saving is None:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._saving.addBoth(lambda _: self.flush().chainDeferred(d))
        return d

    def deadLetter(self, lines: list[bytes]) -> Deferred[None]:
        """
        Append C{lines} (events' JSON) to the dead-letter file and sync it.
        """
        if not lines:
            return succeed(None)
        return self._pool.run(_appendSynced, deadLetterPath(self.directory, self.name), lines)


def _appendSynced(path: str, lines: list[bytes]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        data = b"".join(line + b"\n" for line in lines)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fdatasync(fd)
    finally:
        os.close(fd)
