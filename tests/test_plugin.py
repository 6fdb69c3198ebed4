"""
The twistd plugin, run as a user would: C{twistd txregistry ...} in a
child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

from twisted.trial.unittest import TestCase

from tests.support import RegistryProcess, _repositoryRoot

_TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def _env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    environ["PYTHONPATH"] = os.pathsep.join([_repositoryRoot()] + sys.path)
    environ.update(extra)
    return environ


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


class PluginTests(TestCase):
    def test_helpListsOptions(self) -> None:
        result = subprocess.run(
            _TWISTD + ["txregistry", "--help"],
            env=_env(), capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--config", result.stdout)
        self.assertIn("REGISTRY_HTTP_ADDR", result.stdout)

    def test_badConfigurationNamesTheKey(self) -> None:
        """
        A wrong value stops the start with one line naming the key, and no
        traceback.
        """
        config = self.mktemp()
        with open(config, "w") as f:
            f.write("version: 0.1\nstorage:\n  delete:\n    enabled: perhaps\n")
        result = subprocess.run(
            _TWISTD + ["--nodaemon", "--pidfile=", "txregistry", "--config", config],
            env=_env(), capture_output=True, text=True, timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        output = result.stdout + result.stderr
        self.assertIn("storage.delete.enabled", output)
        self.assertNotIn("Traceback", output)

    def test_environmentMovesThePort(self) -> None:
        """
        REGISTRY_HTTP_ADDR decides where the registry listens; with no
        configuration file, content goes under ./var/registry.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        registry = RegistryProcess(
            directory, env={"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "./var/registry"}
        )
        self.addCleanup(registry.stop)
        status, headers, body = _get(registry.url + "/v2/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Docker-Distribution-Api-Version"], "registry/2.0")
        self.assertEqual(json.loads(body), {})
        request = urllib.request.Request(registry.url + "/v2/x/blobs/uploads/", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            self.assertEqual(response.status, 202)
        self.assertTrue(
            os.path.isdir(os.path.join(directory, "var", "registry", "docker", "registry", "v2"))
        )

    def test_jsonLogs(self) -> None:
        """
        With log.formatter json, every line is a JSON object, and each
        request has an access-log line with method, path, status, bytes,
        duration and remote address.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        config = os.path.join(directory, "config.yml")
        with open(config, "w") as f:
            f.write("version: 0.1\nlog:\n  formatter: json\n  fields: {service: test}\n")
        registry = RegistryProcess(directory, config=config)
        _get(registry.url + "/v2/")
        registry.stop()
        records = [json.loads(line) for line in registry.log().splitlines() if line.strip()]
        access = [r for r in records if r.get("path") == "/v2/"]
        self.assertEqual(len(access), 1, records)
        self.assertEqual(access[0]["method"], "GET")
        self.assertEqual(access[0]["status"], 200)
        self.assertEqual(access[0]["bytes"], 2)
        self.assertEqual(access[0]["remote"], "127.0.0.1")
        self.assertEqual(access[0]["service"], "test")
        self.assertIn("duration", access[0])
        self.assertEqual(access[0]["level"], "info")
        self.assertEqual(access[0]["namespace"], "txregistry.access")


class DaemonTests(TestCase):
    def test_daemonLogsToLogfile(self) -> None:
        """
        Run as a daemon (no --nodaemon), the registry's log lines, access
        log included, go to twistd's --logfile in the configured format.
        """
        import signal
        import time

        from tests.support import freePort

        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        port = freePort()
        pidfile = os.path.join(directory, "twistd.pid")
        logfile = os.path.join(directory, "registry.log")
        config = os.path.join(directory, "config.yml")
        with open(config, "w") as f:
            f.write("version: 0.1\nlog:\n  formatter: json\n")
        result = subprocess.run(
            _TWISTD + [f"--pidfile={pidfile}", f"--logfile={logfile}", "txregistry", "--config", config],
            env=_env(
                REGISTRY_HTTP_ADDR=f"127.0.0.1:{port}",
                REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=os.path.join(directory, "storage"),
            ),
            cwd=directory, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        deadline = time.monotonic() + 30
        while not os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(pidfile) as f:
            pid = int(f.read().strip())
        self.addCleanup(lambda: _kill(pid))
        status = None
        while status is None and time.monotonic() < deadline:
            try:
                status, _, _ = _get(f"http://127.0.0.1:{port}/v2/")
            except OSError:
                time.sleep(0.05)
        self.assertEqual(status, 200)
        os.kill(pid, signal.SIGTERM)
        while os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(logfile) as f:
            records = [json.loads(line) for line in f if line.strip()]
        access = [r for r in records if r.get("namespace") == "txregistry.access"]
        self.assertEqual([r["path"] for r in access], ["/v2/"])


def _kill(pid: int) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
