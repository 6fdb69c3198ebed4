"""
Running under systemd: the readiness protocol (L{txregistry.systemd}) and
the unit file C{etc/txregistry.service}.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys

from twisted.trial.unittest import SkipTest, TestCase

from tests.support import RegistryProcess, _repositoryRoot
from txregistry.systemd import notify


def _listen(testCase: TestCase) -> tuple[socket.socket, str]:
    path = os.path.abspath(testCase.mktemp())
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    testCase.addCleanup(sock.close)
    return sock, path


class NotifyTests(TestCase):
    def test_notify(self) -> None:
        sock, path = _listen(self)
        self.assertTrue(notify("READY=1", {"NOTIFY_SOCKET": path}))
        self.assertEqual(sock.recv(100), b"READY=1")

    def test_abstractSocket(self) -> None:
        name = f"txregistry-test-{os.getpid()}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind("\0" + name)
        self.addCleanup(sock.close)
        sock.settimeout(10)
        self.assertTrue(notify("READY=1", {"NOTIFY_SOCKET": "@" + name}))
        self.assertEqual(sock.recv(100), b"READY=1")

    def test_notUnderSystemd(self) -> None:
        self.assertFalse(notify("READY=1", {}))
        # A socket that went away is a warning, not a crash.
        self.assertFalse(notify("READY=1", {"NOTIFY_SOCKET": os.path.abspath(self.mktemp())}))

    def test_registryIsReadyWhenItListens(self) -> None:
        """
        A registry started with C{NOTIFY_SOCKET} says C{READY=1} once it
        accepts connections, and C{STOPPING=1} on SIGTERM.
        """
        sock, path = _listen(self)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        registry = RegistryProcess(directory, env={"NOTIFY_SOCKET": path})
        self.addCleanup(registry.stop)
        self.assertEqual(sock.recv(100), b"READY=1")
        socket.create_connection(("127.0.0.1", registry.port), timeout=5).close()
        registry.kill(signal.SIGTERM)
        self.assertEqual(sock.recv(100), b"STOPPING=1")

    def test_workersReadyWhenAllListen(self) -> None:
        """
        With C{http.workers: 2}, the supervisor says C{READY=1} (once) when
        both workers serve, and C{STOPPING=1} on SIGTERM; the workers say
        nothing themselves.
        """
        sock, path = _listen(self)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        registry = RegistryProcess(directory, env={"NOTIFY_SOCKET": path}, workers=2)
        self.addCleanup(registry.stop)
        self.assertEqual(sock.recv(100), b"READY=1")
        self.assertIn("2 workers (pids ", registry.log())
        registry.kill(signal.SIGTERM)
        self.assertEqual(sock.recv(100), b"STOPPING=1")
        sock.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            sock.recv(100)


class UnitFileTests(TestCase):
    def test_verifies(self) -> None:
        """
        C{systemd-analyze verify} accepts the unit, with C{ExecStart}
        pointed at this checkout's interpreter (the path it names must
        exist for verify to pass).
        """
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            raise SkipTest("systemd-analyze is not installed (Debian: apt-get install systemd)")
        with open(os.path.join(_repositoryRoot(), "etc", "txregistry.service"), encoding="utf-8") as f:
            unit = f.read()
        self.assertIn("Type=notify", unit)
        self.assertIn("/opt/txregistry/.venv/bin/txregistry serve", unit)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "txregistry.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write(unit.replace("/opt/txregistry/.venv/bin/txregistry", sys.executable))
        result = subprocess.run([analyze, "verify", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("txregistry.service:", result.stderr)
