"""
An endpoint's cursor (L{txregistry.notifications.outbox.state}): saved
at most once per L{SAVE_INTERVAL}, the latest offset winning, and at
once when the registry stops.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from tests.notifications.helpers import waitUntil
from txregistry.notifications.outbox.state import SAVE_INTERVAL, EndpointState, readCursor
from txregistry.storage.blocking import BlockingPool


class CursorTests(TestCase):
    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        self.pool = BlockingPool(reactor, "test-state", size=2)
        self.addCleanup(self.pool.close)
        self.clock = Clock()
        self.state = EndpointState(self.directory, "hook", self.pool, self.clock)

    def saved(self) -> int | None:
        return readCursor(self.directory, "hook")

    async def test_newEndpointStartsAtTheEnd(self) -> None:
        """
        An endpoint without a saved cursor starts at the journal's end
        and saves it.
        """
        self.assertEqual(self.state.load(1234), 1234)
        self.assertEqual(self.saved(), 1234)

    async def test_savedOncePerInterval(self) -> None:
        """
        The first move is written at once; the moves that follow within
        L{SAVE_INTERVAL} are one write, of the latest, when it is up.
        """
        self.state.load(0)
        self.state.save(10)
        await waitUntil(lambda: self.saved() == 10)
        for offset in (20, 30, 40):
            self.state.save(offset)
        self.assertEqual(self.state.cursor, 40)
        self.clock.advance(SAVE_INTERVAL / 2)
        self.assertEqual(self.saved(), 10)
        self.clock.advance(SAVE_INTERVAL / 2)
        await waitUntil(lambda: self.saved() == 40)

    async def test_flushWritesTheLatest(self) -> None:
        """
        Stopping writes the latest cursor without waiting for the
        interval.
        """
        self.state.load(0)
        self.state.save(10)
        self.state.save(99)
        await self.state.flush()
        self.assertEqual(self.saved(), 99)
        self.assertFalse(self.clock.getDelayedCalls())
