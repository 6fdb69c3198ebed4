"""
L{txregistry.client.hashing}: a blob hashed on a thread of its own.
"""

from __future__ import annotations

import hashlib
import os

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from txregistry.client.hashing import HashingThread


class HashingThreadTests(TestCase):
    async def test_digestOfThePiecesInOrder(self) -> None:
        pieces = [os.urandom(n) for n in (1, 70000, 1 << 20, 3)]
        thread = HashingThread(hashlib.sha256(), lambda: None)
        for piece in pieces:
            thread.update(piece)
        self.assertEqual(await thread.hexdigest(), hashlib.sha256(b"".join(pieces)).hexdigest())

    async def test_behindThenCaughtUp(self) -> None:
        """
        Once more than C{highWater} bytes wait, L{HashingThread.update}
        says to pause, and C{caughtUp} is called once the thread is below
        C{lowWater}; the digest is still of everything.
        """
        caughtUp: Deferred[None] = Deferred()
        thread = HashingThread(hashlib.sha256(), lambda: caughtUp.callback(None))
        thread.highWater, thread.lowWater = 1 << 20, 1 << 19
        piece = os.urandom(1 << 18)
        answers = [thread.update(piece) for _ in range(64)]
        self.assertIn(True, answers)
        await caughtUp
        self.assertEqual(await thread.hexdigest(), hashlib.sha256(piece * 64).hexdigest())

    async def test_stopped(self) -> None:
        """
        After L{HashingThread.stop} (a dropped download) the thread ends;
        what is given later is not hashed.
        """
        thread = HashingThread(hashlib.sha256(), lambda: None)
        thread.update(b"kept")
        thread.stop()
        self.assertFalse(thread.update(b"dropped"))
        self.assertEqual(await thread.hexdigest(), hashlib.sha256(b"kept").hexdigest())
        thread._thread.join(5)
        self.assertFalse(thread._thread.is_alive())
