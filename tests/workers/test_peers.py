"""
L{WorkerPeers}: how a worker announces a change to its supervisor, and
hears of the others'.
"""

from __future__ import annotations

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from txregistry.registry.peers import ReferenceChange
from txregistry.workers.messages import FORGET, MessageWriter
from txregistry.workers.peers import WorkerPeers


class WorkerPeersTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.readEnd, writeEnd = os.pipe()
        self.addCleanup(os.close, self.readEnd)
        self.addCleanup(os.close, writeEnd)
        self.peers = WorkerPeers(MessageWriter(writeEnd))

    def test_announcedUntilAcknowledged(self) -> None:
        """
        Each announcement is one numbered line on the message pipe, done
        when the supervisor acknowledges its number.
        """
        first = self.peers.announce(ReferenceChange("a/b", tag="v1"))
        second = self.peers.announce(ReferenceChange("a/b", digest="sha256:" + "0" * 64))
        lines = os.read(self.readEnd, 4096).splitlines()
        self.assertEqual([line[:1] for line in lines], [FORGET, FORGET])
        numbers = [line[1:].split(b" ", 1)[0] for line in lines]
        self.assertEqual(json.loads(lines[0][1:].split(b" ", 1)[1]), {"name": "a/b", "tag": "v1", "digest": None, "blob": None})
        self.peers.acknowledged(int(numbers[1]))
        self.assertNoResult(first)
        self.successResultOf(second)
        self.peers.acknowledged(int(numbers[0]))
        self.successResultOf(first)
        # Twice, or a number never announced: nothing happens.
        self.peers.acknowledged(int(numbers[0]))
        self.peers.acknowledged(999)

    def test_forgetReachesListeners(self) -> None:
        """
        A change another worker announced reaches every listener; what is
        not one is refused.
        """
        heard: list[ReferenceChange] = []
        self.peers.listen(heard.append)
        self.peers.forget(json.dumps({"name": "a", "tag": "t", "digest": None}))
        self.assertEqual(heard, [ReferenceChange("a", tag="t")])
        for bad in ("", "{", "[]", json.dumps({"tag": "t"})):
            self.assertRaises(ValueError, self.peers.forget, bad)
        self.assertEqual(len(heard), 1)
