"""
L{HealthMonitor}: thresholds, intervals, timeouts, with a fake clock.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from txregistry.health.interfaces import IHealthCheck
from txregistry.health.monitor import HealthMonitor


@implementer(IHealthCheck)
class Scripted:
    """
    A check whose next answers are given.
    """

    name = "scripted"

    def __init__(self) -> None:
        self.answers: list[Deferred[None]] = []
        self.runs = 0

    def check(self) -> Deferred[None]:
        self.runs += 1
        return self.answers.pop(0) if self.answers else succeed(None)


class MonitorTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.check = Scripted()
        self.monitor = HealthMonitor(self.clock)

    def test_threshold(self) -> None:
        """
        A check fails only after C{threshold} failures in a row, and one
        success makes it healthy again.
        """
        self.check.answers = [fail(OSError("disk gone")) for _ in range(3)]
        self.monitor.watch(self.check, 10, threshold=2)
        self.monitor.startService()
        self.addCleanup(self.monitor.stopService)
        self.assertEqual(self.monitor.failing(), {})
        self.clock.advance(10)
        self.assertEqual(self.monitor.failing(), {"scripted": "disk gone"})
        self.clock.advance(10)
        self.assertEqual(self.monitor.failing(), {"scripted": "disk gone"})
        self.clock.advance(10)
        self.assertEqual(self.monitor.failing(), {})
        self.assertEqual(self.check.runs, 4)

    def test_timeout(self) -> None:
        """
        A run that does not answer within its timeout is a failure, and the
        next run starts an interval later (runs never overlap).
        """
        self.check.answers = [Deferred()]
        self.monitor.watch(self.check, 10, timeout=3)
        self.monitor.startService()
        self.addCleanup(self.monitor.stopService)
        self.clock.advance(2)
        self.assertEqual(self.monitor.failing(), {})
        self.clock.advance(1)
        self.assertEqual(self.monitor.failing(), {"scripted": "no answer within 3s"})
        self.assertEqual(self.check.runs, 1)
        self.clock.advance(10)
        self.assertEqual(self.check.runs, 2)
        self.assertEqual(self.monitor.failing(), {})

    def test_stopCancels(self) -> None:
        """
        Stopping cancels the pending run: nothing is left in the reactor.
        """
        self.monitor.watch(self.check, 10)
        self.monitor.startService()
        self.monitor.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])
