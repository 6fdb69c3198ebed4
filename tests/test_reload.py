"""
SIGHUP: what it reloads (the TLS files, C{log.level}), each logged.
"""

from __future__ import annotations

import io
import os
import signal
import time

from twisted.logger import Logger
from twisted.trial.unittest import TestCase

from tests.support import RegistryProcess
from txregistry.config import LogConfig
from txregistry.logs import makeObserver
from txregistry.reload import Reloader


class LogLevelTests(TestCase):
    def test_setLevel(self) -> None:
        """
        The registry's observer drops debug events at C{info} and keeps
        them once set to C{debug}.
        """
        out = io.StringIO()
        observer = makeObserver(LogConfig("info", "text", {}, True), out)
        log = Logger(namespace="test", observer=observer)
        log.debug("hidden")
        observer.setLevel("debug")
        log.debug("shown")
        self.assertNotIn("hidden", out.getvalue())
        self.assertIn("shown", out.getvalue())

    def test_reloaderRunsEveryAction(self) -> None:
        """
        An action that fails is logged; the ones after it still run.
        """
        done = []
        reloader = Reloader()
        reloader.add("first", lambda: 1 / 0)
        reloader.add("second", lambda: done.append(True))
        reloader.reload()
        self.assertEqual(done, [True])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class SIGHUPTests(TestCase):
    def test_logLevelReloaded(self) -> None:
        """
        A running daemon told C{kill -HUP} after its file says
        C{log.level: debug} logs at debug from then on, and says so.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "config.yml")
        with open(path, "w") as f:
            f.write("version: 0.1\nlog: {level: info}\n")
        registry = RegistryProcess(directory, config=path)
        self.addCleanup(registry.kill)
        with open(path, "w") as f:
            f.write("version: 0.1\nlog: {level: debug}\n")
        registry.process.send_signal(signal.SIGHUP)
        for _ in range(100):
            if "SIGHUP: log level is now debug (was info)" in registry.log():
                break
            time.sleep(0.05)
        self.assertIn("SIGHUP: log level is now debug (was info)", registry.log())
        self.assertIsNone(registry.process.poll())
        registry.process.send_signal(signal.SIGHUP)
        for _ in range(100):
            if "SIGHUP: log level unchanged (debug)" in registry.log():
                break
            time.sleep(0.05)
        self.assertIn("SIGHUP: log level unchanged (debug)", registry.log())
