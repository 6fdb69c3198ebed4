# -*- test-case-name: tests.notifications.outbox.test_state -*-
"""
What the outbox keeps per endpoint: its cursor (the journal offset of
the first event it has not been sent yet) and its dead-letter file (the
events the journal's bound pushed out before they were delivered).

    <outbox>/endpoints/<name>.cursor     {"offset": N}
    <outbox>/dead/<name>.jsonl           one event per line

The cursor is replaced by rename and not synced: after a power cut it may
be older than it was, which sends some events again (delivery is at
least once, and each event keeps its id); it is never newer than what was
delivered.  The dead-letter file is synced before the cursor moves past
what it took, so an event is always in one of the two.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.internet.defer import Deferred, succeed

from txregistry.storage.blocking import BlockingPool

__all__ = ["EndpointState", "cursorPath", "deadLetterPath"]


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
    Replace endpoint C{name}'s cursor.  Blocking.
    """
    path = cursorPath(directory, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".new"
    with open(temporary, "wb") as f:
        f.write(json.dumps({"offset": offset}).encode("ascii"))
    os.replace(temporary, path)


class EndpointState:
    """
    One endpoint's cursor and dead-letter file.

    @ivar cursor: the offset saved (or being saved) last.
    """

    def __init__(self, directory: str, name: str, pool: BlockingPool) -> None:
        self.directory = directory
        self.name = name
        self.cursor = 0
        self._pool = pool
        self._saving: Deferred[None] | None = None
        self._wanted: int | None = None

    def load(self, default: int) -> int:
        """
        Read the saved cursor; a new endpoint starts at C{default} (the
        journal's end: what was journaled before it existed is not for
        it) and saves it.  Blocking: called while the registry is made.
        """
        saved = readCursor(self.directory, self.name)
        if saved is None:
            saved = default
            writeCursor(self.directory, self.name, saved)
        self.cursor = saved
        return saved

    def save(self, offset: int) -> Deferred[None]:
        """
        Save C{offset} as the cursor: at most one write at a time, the
        latest offset winning.
        """
        self.cursor = offset
        self._wanted = offset
        if self._saving is None:
            self._saving = self._pool.run(writeCursor, self.directory, self.name, offset)
            self._wanted = None
            self._saving.addBoth(self._saved)
        return succeed(None)

    def _saved(self, result: Any) -> Any:
        self._saving = None
        if self._wanted is not None:
            self.save(self._wanted)
        return None

    def flush(self) -> Deferred[None]:
        """
        Wait for the cursor write under way, if any (at stop).
        """
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
