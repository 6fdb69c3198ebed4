"""
The twistd plugin, run as a user would: C{twistd txregistry ...} in a
child process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from twisted.trial.unittest import TestCase

from tests.support import RegistryProcess, _repositoryRoot, freePort

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

    def test_pluginImportIsCheap(self) -> None:
        """
        twistd imports every plugin to list them; importing this one
        imports neither the registry nor a reactor.
        """
        result = subprocess.run(
            [sys.executable, "-c",
             "import sys, twisted.plugins.txregistry_plugin as p; "
             "print(p.serviceMaker.tapname, sorted(m for m in sys.modules"
             " if m.startswith('txregistry') or m == 'twisted.internet.reactor'))"],
            env=_env(), capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.stdout.strip(), "txregistry []", result.stderr)

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


def _twistd(arguments: list[str], cwd: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _TWISTD + arguments, env=_env(**env), cwd=cwd, capture_output=True, text=True, timeout=60
    )


class StartFailureTests(TestCase):
    """
    Whatever stops the start, the user sees one line naming the cause and
    no traceback, in the foreground and as a daemon alike.
    """

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.pidfile = os.path.join(self.directory, "twistd.pid")

    def assertOneLine(self, result: subprocess.CompletedProcess[str], *causes: str) -> None:
        output = result.stdout + result.stderr
        self.assertNotEqual(result.returncode, 0, output)
        self.assertNotIn("Traceback", output)
        lines = output.strip().splitlines()
        self.assertEqual(len(lines), 1, output)
        self.assertTrue(lines[0].startswith("txregistry: "), output)
        for cause in causes:
            self.assertIn(cause, lines[0])

    def assertFailsInOneLine(self, causes: tuple[str, ...], **env: str) -> None:
        """
        twistd txregistry, in the foreground and then as a daemon, fails
        with one line containing each of C{causes}; the daemon leaves no
        pidfile behind.
        """
        env.setdefault("REGISTRY_HTTP_ADDR", f"127.0.0.1:{freePort()}")
        if "REGISTRY_STORAGE" not in env:
            env.setdefault(
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", os.path.join(self.directory, "storage")
            )
        foreground = _twistd(["--nodaemon", "--pidfile=", "txregistry"], self.directory, **env)
        self.assertOneLine(foreground, *causes)
        daemon = _twistd(
            [f"--pidfile={self.pidfile}", f"--logfile={self.directory}/twistd.log", "txregistry"],
            self.directory,
            **env,
        )
        self.assertOneLine(daemon, *causes)
        self.assertFalse(os.path.exists(self.pidfile))

    def s3(self, **overrides: str) -> dict[str, str]:
        from tests.storage.servers import SeaweedFS, server

        parameters = server(SeaweedFS).parameters(self, **overrides)
        env = {"REGISTRY_STORAGE": "s3"}
        for key, value in parameters.items():
            env[f"REGISTRY_STORAGE_S3_{key.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
        return env

    def test_s3CredentialsRefused(self) -> None:
        """
        An S3 store that refuses the keys stops the start in one line.
        """
        self.assertFailsInOneLine(
            ("storage.s3", "credentials are refused"), **self.s3(secretkey="wrong")
        )

    def test_s3MissingBucket(self) -> None:
        self.assertFailsInOneLine(("storage.s3", "'missing'", "no such bucket"), **self.s3(bucket="missing"))

    def test_missingCertificate(self) -> None:
        missing = os.path.join(self.directory, "missing.pem")
        self.assertFailsInOneLine(
            ("http.tls.certificate", missing, "No such file or directory"),
            REGISTRY_HTTP_TLS_CERTIFICATE=missing,
            REGISTRY_HTTP_TLS_KEY=missing,
        )

    def test_certificateNotPEM(self) -> None:
        notPEM = os.path.join(self.directory, "cert.pem")
        with open(notPEM, "w") as f:
            f.write("this is not a certificate\n")
        self.assertFailsInOneLine(
            ("http.tls.certificate", notPEM, "not a PEM certificate"),
            REGISTRY_HTTP_TLS_CERTIFICATE=notPEM,
            REGISTRY_HTTP_TLS_KEY=notPEM,
        )

    def test_rootDirectoryCannotBeCreated(self) -> None:
        regular = os.path.join(self.directory, "file")
        open(regular, "w").close()
        root = os.path.join(regular, "registry")
        self.assertFailsInOneLine(
            ("storage.filesystem", root, "Not a directory"),
            REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=root,
        )

    def test_portInUse(self) -> None:
        """
        A port another process listens on is reported whole, also by a
        daemon (twistd's status pipe would cut it to 100 bytes).
        """
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            address = f"127.0.0.1:{taken.getsockname()[1]}"
            self.assertFailsInOneLine(
                ("http.addr", f"cannot listen on {address}", "Address already in use"),
                REGISTRY_HTTP_ADDR=address,
            )

    def test_debugPortInUse(self) -> None:
        """
        So is the debug listener's port, by its own key.
        """
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            address = f"127.0.0.1:{taken.getsockname()[1]}"
            self.assertFailsInOneLine(
                ("http.debug.addr", f"cannot listen on {address}", "Address already in use"),
                REGISTRY_HTTP_DEBUG_ADDR=address,
            )

    def test_tracingExporterMissing(self) -> None:
        """
        An OTEL_TRACES_EXPORTER that is not installed stops the start,
        naming the variable.
        """
        self.assertFailsInOneLine(
            ("OTEL_TRACES_EXPORTER", "no span exporter named 'zipkin' is installed"),
            OTEL_TRACES_EXPORTER="zipkin",
        )

    def test_unknownKey(self) -> None:
        """
        A key txregistry does not read, in the file or from the environment,
        is named.
        """
        config = os.path.join(self.directory, "config.yml")
        with open(config, "w") as f:
            f.write("version: 0.1\nhttp:\n  bogus: 1\n")
        result = _twistd(
            ["--nodaemon", "--pidfile=", "txregistry", "--config", config], self.directory
        )
        self.assertOneLine(result, "configuration error: http.bogus: unknown key")
        self.assertFailsInOneLine(
            ("configuration error: http.bogus: unknown key",), REGISTRY_HTTP_BOGUS="1"
        )
        self.assertFailsInOneLine(
            ("configuration error: http.bogus: unknown key",),
            REGISTRY_CONFIGURATION_PATH=config,
        )

    def test_unsupportedSection(self) -> None:
        """
        A registry asked to authenticate with what it cannot use refuses
        to start rather than serve everyone; so does one asked for a
        feature that is not built.
        """
        self.assertFailsInOneLine(
            ("configuration error: auth.htpasswd.path: /nonexistent/htpasswd: No such file or directory",),
            REGISTRY_AUTH_HTPASSWD_PATH="/nonexistent/htpasswd", REGISTRY_AUTH_HTPASSWD_REALM="r",
        )
        self.assertFailsInOneLine(
            ("configuration error: validation: not supported yet",),
            REGISTRY_VALIDATION_DISABLED="true",
        )
        self.assertFailsInOneLine(
            ("configuration error: notifications.endpoints[0].url: expected an http or https URL,"
             " got 'ftp://hooks.example.com/x'",),
            REGISTRY_NOTIFICATIONS_ENDPOINTS="[{name: a, url: 'ftp://hooks.example.com/x'}]",
        )

    def test_storageMiddlewareRefused(self) -> None:
        """
        A storage middleware's wrong option, or a middleware that cannot
        wrap the configured driver, stops the start in one line naming the
        key.
        """
        from tests.storage.middleware.keys import writeKey

        self.assertFailsInOneLine(
            ("configuration error: middleware.storage[0].options.privatekey: cannot read"
             " /nonexistent.pem: No such file or directory",),
            REGISTRY_MIDDLEWARE_STORAGE="[{name: cloudfront, options: {baseurl: cdn.example,"
                                        " privatekey: /nonexistent.pem, keypairid: k}}]",
        )
        self.assertFailsInOneLine(
            ("configuration error: middleware.storage[0]: cloudfront serves the objects of a bucket,"
             " and the filesystem driver keeps none",),
            REGISTRY_MIDDLEWARE_STORAGE="[{name: cloudfront, options: {baseurl: cdn.example,"
                                        " privatekey: '" + writeKey(self) + "', keypairid: k}}]",
        )


class DaemonTests(TestCase):
    def startDaemon(self, **env: str) -> tuple[int, str, str]:
        """
        C{twistd --logfile=registry.log txregistry} as a daemon in a new
        directory, killed at cleanup.

        @return: its pid, URL and directory once it answers C{/v2/}.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        port = freePort()
        pidfile = os.path.join(directory, "twistd.pid")
        logfile = os.path.join(directory, "registry.log")
        result = _twistd(
            [f"--pidfile={pidfile}", f"--logfile={logfile}", "txregistry"],
            directory,
            REGISTRY_HTTP_ADDR=f"127.0.0.1:{port}",
            **env,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        with open(pidfile) as f:
            pid = int(f.read().strip())
        self.addCleanup(_kill, pid)
        url = f"http://127.0.0.1:{port}"
        self.assertEqual(_waitFor(lambda: _status(url + "/v2/")), 200)
        return pid, url, directory

    def test_usr1RotatesTheLog(self) -> None:
        """
        C{kill -USR1}, as logrotate sends it, rotates the log file as twistd
        does: the daemon lives on, the old lines are in C{registry.log.1} and
        new ones go to a fresh C{registry.log}.
        """
        pid, url, directory = self.startDaemon(REGISTRY_STORAGE="inmemory")
        logfile = os.path.join(directory, "registry.log")
        _status(url + "/v2/?before")
        self.assertTrue(_waitFor(lambda: "/v2/?before" in _read(logfile)))
        os.kill(pid, signal.SIGUSR1)
        self.assertTrue(_waitFor(lambda: os.path.exists(logfile + ".1")))
        self.assertEqual(_status(url + "/v2/?after"), 200)
        self.assertTrue(_waitFor(lambda: "/v2/?after" in _read(logfile)))
        os.kill(pid, 0)
        self.assertNotIn("/v2/?before", _read(logfile))
        self.assertIn("/v2/?before", _read(logfile + ".1"))
        self.assertNotIn("/v2/?after", _read(logfile + ".1"))

    def test_unixSocketHeldByDaemon(self) -> None:
        """
        A daemon serving on a unix socket holds it: a second registry on the
        same path refuses to start, in one line, instead of taking it over.
        """
        # A unix socket's path must be short: not under _trial_temp.
        directory = tempfile.mkdtemp(prefix="txregistry-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "registry.sock")
        pidfile = os.path.join(directory, "twistd.pid")
        env = {"REGISTRY_HTTP_NET": "unix", "REGISTRY_HTTP_ADDR": path, "REGISTRY_STORAGE": "inmemory"}
        daemon = _twistd(
            [f"--pidfile={pidfile}", f"--logfile={directory}/twistd.log", "txregistry"],
            directory, **env,
        )
        self.assertEqual(daemon.returncode, 0, daemon.stdout + daemon.stderr)
        with open(pidfile) as f:
            self.addCleanup(_kill, int(f.read().strip()))
        self.assertTrue(_waitFor(lambda: os.path.exists(path)))
        second = _twistd(["--nodaemon", "--pidfile=", "txregistry"], directory, **env)
        self.assertNotEqual(second.returncode, 0)
        output = second.stdout + second.stderr
        self.assertEqual(output.strip().splitlines(), [
            f"txregistry: http.addr: cannot listen on {path}: Cannot acquire lock"
        ])

    def test_scalarStorageFromEnvironment(self) -> None:
        """
        C{REGISTRY_STORAGE=inmemory}, the reference's form, serves from
        memory: nothing is written under the default ./var/registry.
        """
        pid, url, directory = self.startDaemon(REGISTRY_STORAGE="inmemory")
        request = urllib.request.Request(url + "/v2/x/blobs/uploads/", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            self.assertEqual(response.status, 202)
        self.assertFalse(os.path.exists(os.path.join(directory, "var")))


    def test_daemonLogsToLogfile(self) -> None:
        """
        Run as a daemon (no --nodaemon), the registry's log lines, access
        log included, go to twistd's --logfile in the configured format.
        """
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


def _status(url: str) -> int | None:
    try:
        return _get(url)[0]
    except OSError:
        return None


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _waitFor(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    """
    Poll C{condition} until it is true or C{timeout} passes.

    @return: its last value.
    """
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(0.05)
        value = condition()
    return value


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
