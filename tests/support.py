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

from txregistry.config import checkConfiguration
from txregistry.service import accessPolicy, closeLayers, makeNamespace, siteFor, storageDriver


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
        self.site = siteFor(self.config, self.namespace, reactor, policy=policy)
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


async def startRegistry(
    testCase: Any, document: dict[str, Any] | None = None, driver: Any = None
) -> InProcessRegistry:
    """
    Start an L{InProcessRegistry} (over C{driver}, if given, instead of the
    configured one) that C{testCase} stops at cleanup.
    """
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
    or kill it.
    """

    def __init__(self, directory: str, config: str | None = None, env: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.port = freePort()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logPath = os.path.join(directory, "registry.log")
        environ = dict(os.environ)
        environ["REGISTRY_HTTP_ADDR"] = f"127.0.0.1:{self.port}"
        environ.update(env or {})
        if "REGISTRY_STORAGE" not in environ:
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
            arguments, cwd=directory, env=environ, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._waitForPort()

    def _waitForPort(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"registry exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"registry did not listen: {self.log()}")

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
