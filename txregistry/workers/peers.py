# -*- test-case-name: tests.workers.test_peers -*-
"""
L{WorkerPeers}: a worker's L{IReferencePeers}, through its supervisor.

Every worker caches what tags resolved to, as a lone process does.  A
worker that moves or deletes a tag (or deletes a revision) announces it on
its message pipe: a L{FORGET} line with a number of its own, a space and
the change as JSON.  The supervisor asks every other worker to forget it
(the question C{forget <change>} on their standard input, answered like
any other), and once each has answered, or has ended, writes
C{!<number>} on the announcing worker's standard input
(L{ACKNOWLEDGED}); only then does that worker answer its client.  So what
one worker acknowledged is what the next request to any worker reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from twisted.internet.defer import Deferred
from zope.interface import implementer

from txregistry.registry.peers import IReferencePeers, ReferenceChange
from txregistry.workers.messages import FORGET, MessageWriter

#: The question a worker is asked for each change another announced.
FORGET_QUESTION = "forget"
#: The first byte of the supervisor's line that a change was forgotten
#: by every other worker.
ACKNOWLEDGED = b"!"


@implementer(IReferencePeers)
class WorkerPeers:
    """
    The other workers, as one worker reaches them: through its supervisor.
    """

    def __init__(self, writer: MessageWriter) -> None:
        self._writer = writer
        self._waiting: dict[int, Deferred[None]] = {}
        self._announced = 0
        self._listeners: list[Callable[[ReferenceChange], None]] = []

    def announce(self, change: ReferenceChange) -> Deferred[None]:
        self._announced += 1
        forgotten: Deferred[None] = Deferred()
        self._waiting[self._announced] = forgotten
        body = json.dumps(change.asDict()).encode("ascii")
        self._writer.send(FORGET, b"%d %s" % (self._announced, body))
        return forgotten

    def listen(self, forget: Callable[[ReferenceChange], None]) -> None:
        self._listeners.append(forget)

    def acknowledged(self, number: int) -> None:
        """
        The supervisor says every other worker forgot announcement
        C{number}.
        """
        forgotten = self._waiting.pop(number, None)
        if forgotten is not None:
            forgotten.callback(None)

    def forget(self, change: str) -> None:
        """
        Another worker announced C{change} (as JSON): every listener
        forgets it.

        @raise ValueError: when C{change} is not one.
        """
        parsed = ReferenceChange.fromDict(json.loads(change))
        for listener in self._listeners:
            listener(parsed)
