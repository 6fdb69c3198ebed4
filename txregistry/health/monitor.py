# -*- test-case-name: tests.health.test_monitor -*-
"""
L{HealthMonitor}: runs every configured check on its interval and knows
which are failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, TimeoutError
from twisted.logger import Logger
from twisted.python.failure import Failure

from txregistry.health.interfaces import IHealthCheck

_log = Logger()


class _Watched:
    """
    One check's state: its failures in a row and the last reason.
    """

    def __init__(self, check: IHealthCheck, interval: float, threshold: int, timeout: float) -> None:
        self.check = check
        self.interval = interval
        self.threshold = threshold
        self.timeout = timeout
        self.failures = 0
        self.reason = ""
        self.call: Any = None
        self.running: Any = None

    @property
    def failing(self) -> bool:
        return self.failures >= self.threshold


class HealthMonitor(Service):
    """
    Runs each check when the service starts and then C{interval} seconds
    after its previous run ended (a slow check never overlaps itself).
    A check is failing once it failed C{threshold} times in a row, and
    healthy again after one success; each change is logged.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._watched: list[_Watched] = []

    def watch(self, check: IHealthCheck, interval: float, threshold: int = 1,
              timeout: float | None = None) -> None:
        """
        Run C{check} every C{interval} seconds, each run given at most
        C{timeout} seconds (the interval by default).
        """
        watched = _Watched(check, interval, threshold, timeout or interval)
        self._watched.append(watched)
        if self.running:
            self._run(watched)

    @property
    def checks(self) -> Sequence[str]:
        """
        The names of every check watched.
        """
        return [w.check.name for w in self._watched]

    def failing(self) -> dict[str, str]:
        """
        Each failing check's name and reason: empty when healthy.
        """
        return {w.check.name: w.reason for w in self._watched if w.failing}

    def startService(self) -> None:
        super().startService()
        for watched in self._watched:
            self._run(watched)

    def stopService(self) -> Any:
        for watched in self._watched:
            if watched.call is not None and watched.call.active():
                watched.call.cancel()
            watched.call = None
            if watched.running is not None:
                watched.running.cancel()
        return super().stopService()

    def _run(self, watched: _Watched) -> None:
        watched.call = None
        try:
            running = watched.check.check()
        except Exception:
            running = None
            self._failed(Failure(), watched)
        if running is None:
            self._schedule(watched)
            return
        watched.running = running
        running.addTimeout(watched.timeout, self._reactor)
        running.addCallbacks(self._passed, self._failed, (watched,), errbackArgs=(watched,))
        running.addBoth(self._ended, watched)

    def _ended(self, result: object, watched: _Watched) -> None:
        watched.running = None
        if self.running:
            self._schedule(watched)

    def _schedule(self, watched: _Watched) -> None:
        watched.call = self._reactor.callLater(watched.interval, self._run, watched)

    def _passed(self, result: object, watched: _Watched) -> None:
        if watched.failing:
            _log.info("Health check {check} passes again", check=watched.check.name)
        watched.failures = 0
        watched.reason = ""

    def _failed(self, failure: Failure, watched: _Watched) -> None:
        if failure.check(CancelledError) and not self.running:
            return
        if failure.check(TimeoutError):
            reason = f"no answer within {watched.timeout:g}s"
        else:
            reason = str(failure.value) or type(failure.value).__name__
        wasFailing = watched.failing
        watched.failures += 1
        watched.reason = reason
        if watched.failing and not wasFailing:
            _log.warn("Health check {check} is failing: {reason}", check=watched.check.name,
                      reason=reason)
