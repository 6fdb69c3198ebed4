"""
The C{txregistry} command: C{config check} and C{serve}, run as a user
would, in a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

from twisted.trial.unittest import TestCase

from tests.support import _repositoryRoot, freePort
from txregistry.cli import masked

_CLI = [sys.executable, "-m", "txregistry.cli"]


def _run(*arguments: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["PYTHONPATH"] = os.pathsep.join([_repositoryRoot()] + sys.path)
    env.update(environ)
    return subprocess.run(_CLI + list(arguments), env=env, capture_output=True, text=True,
                          timeout=60, cwd=_repositoryRoot())


class ConfigCheckTests(TestCase):
    def test_exampleIsValid(self) -> None:
        result = _run("config", "check", "etc/config.yml")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("etc/config.yml: valid", result.stdout)
        self.assertIn("rootdirectory:", result.stdout)

    def test_brokenFileNamesTheKey(self) -> None:
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write("version: 0.1\nhttp:\n  addr: 127.0.0.1:5000\n  bogus: 1\n")
        result = _run("config", "check", path)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr.strip().splitlines(), [
            "txregistry: configuration error: http.bogus: unknown key",
        ])
        self.assertNotIn("Traceback", result.stderr)

    def test_secretsMasked(self) -> None:
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write("version: 0.1\nhttp: {secret: hunter2}\n")
        result = _run("config", "check", path, REGISTRY_HTTP_ADDR="127.0.0.1:5999")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("hunter2", result.stdout)
        self.assertIn("secret: '********'", result.stdout)
        # The environment's overrides are part of the effective configuration.
        self.assertIn("addr: 127.0.0.1:5999", result.stdout)

    def test_storageMiddleware(self) -> None:
        """
        A storage middleware's options are checked as the start checks them,
        one line naming the option; in a valid configuration its private
        key's path is masked, the rest shown.
        """
        from tests.storage.middleware.keys import writeKey

        path = os.path.abspath(self.mktemp())
        key = writeKey(self)
        with open(path, "w") as f:
            f.write("version: 0.1\nstorage: {s3: {bucket: b, region: us-east-1}}\nmiddleware:\n"
                    "  storage:\n    - name: cloudfront\n      options:\n"
                    "        baseurl: https://d111111abcdef8.cloudfront.net/\n"
                    f"        privatekey: {key}\n        keypairid: K2JCJMDEHXQW5F\n")
        result = _run("config", "check", path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn(key, result.stdout)
        self.assertIn("privatekey: '********'", result.stdout)
        self.assertIn("keypairid: K2JCJMDEHXQW5F", result.stdout)
        self.assertIn("baseurl: https://d111111abcdef8.cloudfront.net/", result.stdout)
        result = _run("config", "check", path, REGISTRY_MIDDLEWARE_STORAGE="[{name: redirect}]")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr.strip().splitlines(), [
            "txregistry: configuration error: middleware.storage[0].options.baseurl: required",
        ])

    def test_masked(self) -> None:
        self.assertEqual(
            masked({"a": {"Password": "p", "secret": "", "list": [{"accesskey": "k"}], "n": 1}}),
            {"a": {"Password": "********", "secret": "", "list": [{"accesskey": "********"}], "n": 1}},
        )


class ServeTests(TestCase):
    def test_serve(self) -> None:
        """
        C{txregistry serve} runs the registry in the foreground, with
        twistd's options before C{--} and the plugin's after it.
        """
        port = freePort()
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env.update(PYTHONPATH=os.pathsep.join([_repositoryRoot()] + sys.path),
                   REGISTRY_HTTP_ADDR=f"127.0.0.1:{port}", REGISTRY_STORAGE="inmemory")
        process = subprocess.Popen(_CLI + ["serve", "--umask=0022", "--"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(process.wait, 30)
        self.addCleanup(process.terminate)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as response:
                    self.assertEqual(response.status, 200)
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    self.fail(f"txregistry serve did not serve: {process.stdout.read() if process.stdout else ''}")
                time.sleep(0.1)


class PackageDataTests(TestCase):
    def test_exampleCommand(self) -> None:
        """
        C{config example} prints etc/config.yml, and C{config check
        --example} checks it.
        """
        result = _run("config", "example")
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(_repositoryRoot(), "etc", "config.yml")) as f:
            self.assertEqual(result.stdout, f.read())
        result = _run("config", "check", "--example")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("config.yml: valid", result.stdout)

    def test_wheelCarriesEtc(self) -> None:
        """
        The built package installs etc/ as txregistry/etc (and the health
        checks' plugin module), so that an installed registry has its
        example configuration and unit file.
        """
        import zipfile

        out = os.path.abspath(self.mktemp())
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "-q", "-w", out, _repositoryRoot()],
            check=True, capture_output=True, timeout=300,
        )
        [wheel] = [name for name in os.listdir(out) if name.endswith(".whl")]
        names = zipfile.ZipFile(os.path.join(out, wheel)).namelist()
        for name in ("txregistry/etc/config.yml", "txregistry/etc/txregistry.service",
                     "twisted/plugins/txregistry_health.py",
                     "twisted/plugins/txregistry_storagemiddleware.py"):
            self.assertIn(name, names)
