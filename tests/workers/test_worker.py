"""
One worker's own parts (L{txregistry.workers.worker}).
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from txregistry.config import checkConfiguration
from txregistry.workers.worker import outboxFor


class OutboxTests(TestCase):
    def test_eachWorkerItsOwn(self) -> None:
        """
        Worker 0 keeps the configured outbox (what a single process left
        there is sent on); worker N has its C{worker-N} subdirectory, the
        same at every start.
        """
        outbox = os.path.abspath(self.mktemp())
        config = checkConfiguration({
            "storage": {"filesystem": {"rootdirectory": "/tmp/unused"}},
            "http": {"workers": 3},
            "notifications": {"endpoints": [{"name": "hook", "url": "http://127.0.0.1:1/"}],
                              "outbox": {"directory": outbox}},
        })
        self.assertEqual([outboxFor(config, i).notifications.outbox for i in range(3)],
                         [outbox, os.path.join(outbox, "worker-1"), os.path.join(outbox, "worker-2")])
        self.assertEqual(outboxFor(config, 2).notifications.endpoints, config.notifications.endpoints)

    def test_withoutNotifications(self) -> None:
        """
        Without endpoints there is no outbox to divide.
        """
        config = checkConfiguration({"storage": {"filesystem": {"rootdirectory": "/tmp/unused"}}})
        self.assertIs(outboxFor(config, 1), config)
