"""
Running registries for tests: in this process (on an ephemeral port, with
the trial reactor) or as a real C{twistd} child process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint

from txregistry.config import STORAGE_OPTIONS, checkConfiguration
from txregistry.service import (
    accessPolicy,
    closeLayers,
    makeNamespace,
    siteFor,
    storageDriver,
    uploadSecret,
)


class InProcessRegistry:
    """
    A registry served by the test's own reactor.

    @ivar url: C{http://127.0.0.1:<port>}.
    """

    def __init__(self, document: dict[str, Any] | None = None, driver: Any = None) -> None:
        document = dict(document or {})
        document.setdefault("storage", {"inmemory": {}})
        document.setdefault("log", {"accesslog": {"disabled": True}})
        self.config = checkConfiguration(document)
        self.driver = storageDriver(self.config, reactor, driver)
        policy = accessPolicy(self.config)
        self.namespace = makeNamespace(self.config, self.driver, reactor, policy)
        self.site = siteFor(self.config, self.namespace, reactor, policy=policy,
                            secret=uploadSecret(self.config, self.driver, settle=0))
        self.url = ""
        self._port: Any = None

    async def start(self) -> "InProcessRegistry":
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        self._port = await endpoint.listen(self.site)
        self.url = f"http://127.0.0.1:{self._port.getHost().port}"
        return self

    async def stop(self) -> None:
        if self._port is not None:
            await self._port.stopListening()
        await closeLayers(self.namespace)
        await self.driver.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Deferred[Any]:
        kwargs.setdefault("persistent", False)
        return treq.request(method, self.url + path, **kwargs)


class WorkersRegistry:
    """
    A registry of C{workers} worker processes (a L{RegistryProcess}) for a
    configuration document: how L{startRegistry} runs the API and client
    tests against workers (C{TXREGISTRY_TEST_WORKERS}).  In-memory storage
    becomes filesystem storage in the test's directory.

    @ivar url: C{http://127.0.0.1:<port>}.
    """

    def __init__(self, testCase: Any, document: dict[str, Any], workers: int) -> None:
        import yaml

        directory = os.path.abspath(testCase.mktemp())
        os.makedirs(directory)
        document = dict(document)
        storage = dict(document.get("storage") or {})
        storage.pop("inmemory", None)
        if not set(storage) - STORAGE_OPTIONS:
            storage["filesystem"] = {"rootdirectory": os.path.join(directory, "storage")}
        document["storage"] = storage
        document.setdefault("log", {"accesslog": {"disabled": True}})
        self.document = document
        self.config = checkConfiguration(document)
        path = os.path.join(directory, "config.yml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(document, f)
        # The test's own working directory: its files are named from there.
        self.process = RegistryProcess(directory, config=path, workers=workers, cwd=os.getcwd(),
                                       defaultStorage=False)
        self.url = self.process.url

    async def start(self) -> "WorkersRegistry":
        return self

    async def stop(self) -> None:
        self.process.stop()

    def request(self, method: str, path: str, **kwargs: Any) -> Deferred[Any]:
        kwargs.setdefault("persistent", False)
        return treq.request(method, self.url + path, **kwargs)


def inProcess(test: Any) -> Any:
    """
    Mark a test whose registry must be in its own process (it patches the
    server's code, or watches its log events): L{startRegistry} starts an
    L{InProcessRegistry} for it whatever C{TXREGISTRY_TEST_WORKERS} says.
    """
    test.inProcess = True
    return test


def _workersFor(testCase: Any, document: dict[str, Any] | None, driver: Any) -> int:
    """
    How many workers L{startRegistry} runs for C{document}: 1 (in this
    process) unless C{TXREGISTRY_TEST_WORKERS} asks for more and neither a
    driver object (which cannot cross to another process) nor something
    the document configures needs one process.
    """
    from txregistry.workers.combinations import conflicts

    workers = testWorkers()
    method = getattr(testCase, getattr(testCase, "_testMethodName", ""), None)
    if workers == 1 or driver is not None or getattr(method, "inProcess", False):
        return 1
    document = dict(document or {})
    storage = dict(document.get("storage") or {})
    storage.pop("inmemory", None)
    if not set(storage) - STORAGE_OPTIONS:
        storage["filesystem"] = {"rootdirectory": "unused"}
        document["storage"] = storage
    if conflicts(checkConfiguration(document), document):
        return 1
    return workers


async def startRegistry(
    testCase: Any, document: dict[str, Any] | None = None, driver: Any = None
) -> InProcessRegistry:
    """
    Start an L{InProcessRegistry} (over C{driver}, if given, instead of the
    configured one) that C{testCase} stops at cleanup; with
    C{TXREGISTRY_TEST_WORKERS} above 1, a L{WorkersRegistry} where it can be.
    """
    workers = _workersFor(testCase, document, driver)
    if workers > 1:
        running = WorkersRegistry(testCase, document or {}, workers)
        testCase.addCleanup(lambda: Deferred.fromCoroutine(running.stop()))
        return running  # type: ignore[return-value]
    registry = await InProcessRegistry(document, driver).start()
    testCase.addCleanup(lambda: Deferred.fromCoroutine(registry.stop()))
    return registry


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RegistryProcess:
    """
    C{twistd -n txregistry} as a child process, for tests that measure it
    or kill it: with C{http.workers} from C{workers}, or else
    C{TXREGISTRY_TEST_WORKERS} (default 1), unless C{env} sets
    C{REGISTRY_HTTP_WORKERS}.

    @param cwd: the process's working directory, C{directory} by default.
    @param defaultStorage: whether, when the environment names no driver,
        to store in C{directory} (else the configuration's storage is used).
    """

    def __init__(
        self, directory: str, config: str | None = None, env: dict[str, str] | None = None,
        workers: int | None = None, cwd: str | None = None, defaultStorage: bool = True,
    ) -> None:
        self.directory = directory
        self.port = freePort()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logPath = os.path.join(directory, "registry.log")
        environ = dict(os.environ)
        environ["REGISTRY_HTTP_ADDR"] = f"127.0.0.1:{self.port}"
        environ["REGISTRY_HTTP_WORKERS"] = str(workers or testWorkers())
        environ.update(env or {})
        self.workers = int(environ["REGISTRY_HTTP_WORKERS"])
        if defaultStorage and "REGISTRY_STORAGE" not in environ:
            # No driver chosen: filesystem storage in the test's directory.
            environ.setdefault(
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", os.path.join(directory, "storage")
            )
        environ["PYTHONPATH"] = os.pathsep.join([_repositoryRoot()] + sys.path)
        arguments = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "--nodaemon",
            "--pidfile=",
            "txregistry",
        ]
        if config:
            arguments += ["--config", config]
        self._log = open(self.logPath, "wb")
        self.process = subprocess.Popen(
            arguments, cwd=cwd or directory, env=environ, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._waitForPort()

    def _waitForPort(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"registry exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                # With workers the supervisor's socket listens before they
                # do: ready once the supervisor says all of them serve.
                if self.workers == 1 or WORKERS_READY in self.log():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"registry did not listen: {self.log()}")

    def waitForLog(self, text: str, count: int = 1, timeout: float = 60.0) -> str:
        """
        Wait until the log holds C{text} C{count} times, and return it.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if log.count(text) >= count:
                return log
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not {count} times in the log: {self.log()}")

    def log(self) -> str:
        with open(self.logPath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)
        self._log.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


#: What a supervisor logs once every worker serves.
WORKERS_READY = " workers (pids "


def testWorkers() -> int:
    """
    C{TXREGISTRY_TEST_WORKERS}: how many workers the test registries run
    (bin/test runs the API and client tests with 2 too); 1 by default.
    """
    return int(os.environ.get("TXREGISTRY_TEST_WORKERS") or 1)


def _repositoryRoot() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ServiceRegistry:
    """
    A whole L{RegistryService} (health checks, debug listener, telemetry)
    in this process, on ephemeral ports.

    @ivar url: the API's C{http://127.0.0.1:<port>}.
    @ivar debugURL: the debug listener's, or C{""} without one.
    """

    def __init__(self, service: Any) -> None:
        self.service = service
        self.url = ""
        self.debugURL = ""

    def request(self, method: str, path: str, **kwargs: Any) -> Deferred[Any]:
        kwargs.setdefault("persistent", False)
        return treq.request(method, self.url + path, **kwargs)

    def debug(self, path: str) -> Deferred[Any]:
        return treq.get(self.debugURL + path, persistent=False)


async def startService(testCase: Any, document: dict[str, Any], **kwargs: Any) -> ServiceRegistry:
    """
    Start a L{RegistryService} for C{document} (debug listener included
    when C{http.debug} is set) that C{testCase} stops at cleanup.

    @param kwargs: more arguments for L{RegistryService}.
    """
    from txregistry.service import RegistryService

    document = dict(document)
    document.setdefault("log", {"accesslog": {"disabled": True}})
    config = checkConfiguration(document)
    kwargs.setdefault("environ", {})
    if config.http.debug.addr:
        kwargs.setdefault("debugEndpoint", TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"))
    service = RegistryService(
        config, reactor, endpoint=TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"), **kwargs
    )
    service.startService()
    testCase.addCleanup(service.stopService)
    running = ServiceRegistry(service)
    port = await _portOf(service._listener)
    running.url = f"http://127.0.0.1:{port.getHost().port}"
    if service._debugListener is not None:
        port = await _portOf(service._debugListener)
        running.debugURL = f"http://127.0.0.1:{port.getHost().port}"
    return running


def _portOf(listener: Any) -> Deferred[Any]:
    # Not awaited directly: an await takes the result out of the chain the
    # listener stops its port through.
    port: Deferred[Any] = Deferred()

    def seen(result: Any) -> Any:
        port.callback(result)
        return result

    listener._waitingForPort.addCallback(seen)
    return port
