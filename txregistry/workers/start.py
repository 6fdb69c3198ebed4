# -*- test-case-name: tests.workers.test_supervisor -*-
"""
The twistd plugin's start with C{http.workers} above 1: every mistake
that would stop a worker's start is found here first, in the process the
user started, and reported as the single process reports it (one line,
see L{txregistry.tap}); then the port is opened (and the debug listener's,
L{txregistry.workers.debug}), and the supervisor spawns the workers once
twistd runs it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import ILogObserver
from twisted.python.logfile import LogFile

from txregistry.config import Configuration, ConfigurationError
from txregistry.logs import logDestination, makeObserver, reloadLogLevel, rotateOnSIGUSR1
from txregistry.tap import Options, PreboundEndpoint, StartError
from txregistry.workers.debug import workersDebugSite
from txregistry.workers.supervisor import WorkerSupervisor


def _checkStorage(config: Configuration, reactor: Any) -> None:
    from txregistry.service import storageDriver
    from txregistry.storage.errors import DriverConfigurationError, StorageError
    from txregistry.storage.interfaces import IStartChecked

    try:
        # With its middleware: a middleware's bad option stops the start
        # here, in one line, as in a lone process.
        driver = storageDriver(config, reactor)
    except DriverConfigurationError as e:
        raise ConfigurationError(str(e)) from None
    except OSError as e:
        raise StartError(
            f"storage.{config.storage.driver}: {e.filename or 'storage'}: {e.strerror}"
        ) from None
    checked = IStartChecked(driver, None)
    if checked is not None:
        try:
            checked.checkStart()
        except StorageError as e:
            raise StartError(str(e)) from None


class _Server(MultiService):
    """
    The supervisor and its debug listener as twistd's application service:
    it offers twistd the registry's log observer, as
    L{txregistry.service.RegistryService} does.
    """

    logObserver: Any = None

    def setServiceParent(self, parent: Any) -> Any:
        setComponent = getattr(parent, "setComponent", None)
        if setComponent is not None and self.logObserver is not None:
            setComponent(ILogObserver, self.logObserver)
        return super().setServiceParent(parent)


def _checkStart(config: Configuration, reactor: Any) -> None:
    """
    Build once what each worker builds, to find its mistakes.

    @raise ConfigurationError: for a mistake in the configuration.
    @raise StartError: for anything else that stops the start.
    """
    from txregistry.service import accessPolicy, makeAuth, telemetryFor
    from txregistry.tls import ServerTLS, TLSFileError

    if config.http.tlsCertificate:
        try:
            ServerTLS(config.http)
        except TLSFileError as e:
            raise StartError(str(e)) from None
    _checkStorage(config, reactor)
    makeAuth(config, reactor, accessPolicy(config))
    telemetryFor(config, os.environ)


def _checkInChild(config: Configuration, reactor: Any) -> None:
    """
    L{_checkStart} in a forked child, its mistake raised here.
    """
    readEnd, writeEnd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child's exit status is checked)
        os.close(readEnd)
        status = 0
        try:
            _checkStart(config, reactor)
            message = b""
        except ConfigurationError as e:
            message = b"C" + str(e).encode("utf-8")
        except StartError as e:
            message = b"S" + str(e).encode("utf-8")
        except BaseException as e:
            message = b"S" + f"cannot start: {e!r}".encode()
            status = 1
        os.write(writeEnd, message)
        os._exit(status)
    os.close(writeEnd)
    chunks = []
    while chunk := os.read(readEnd, 65536):
        chunks.append(chunk)
    os.close(readEnd)
    os.waitpid(pid, 0)
    found = b"".join(chunks).decode("utf-8", "replace")
    if found[:1] == "C":
        raise ConfigurationError(found[1:])
    if found[:1] == "S":
        raise StartError(found[1:])


def makeSupervisor(options: Options, config: Configuration, path: str | None) -> IService:
    """
    The supervisor of C{config.http.workers} workers, listening already.

    What the workers build is built first, once, to find its mistakes: the
    TLS context, the storage driver (and its start check), access control
    (which makes the token server's key at the first start: once, rather
    than in several workers racing), telemetry.

    The checks import most of the registry (its API, TLS, storage
    drivers), which the supervisor itself never uses: they run in a
    child forked for them (before the reactor runs, with no thread yet),
    so that the supervisor's memory stays that of a process that only
    listens, spawns and copies log lines.
    """
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    _checkInChild(config, reactor)
    environ = dict(os.environ)
    if config.ui.enabled and not config.http.secret:
        # The UI's forms are signed with http.secret, random per process
        # when unset: one shared by the workers, made for this run.
        environ["REGISTRY_HTTP_SECRET"] = secrets.token_urlsafe(32)
    # Plain TCP (or a unix socket): each worker adds TLS over what it accepts.
    endpoint = PreboundEndpoint(serverFromString(reactor, config.http.endpointDescription()))
    unread = Factory.forProtocol(Protocol)  # the port is never read here
    unread.noisy = False
    twistd: Mapping[str, Any] = options.parent or {}
    if config.http.net != "unix" or twistd.get("nodaemon"):
        endpoint.listenNow(unread, config.http.addr)
    output = logDestination(options.parent)
    observer = makeObserver(config.log, output) if output is not None else None
    configPath = os.path.abspath(path) if path else None
    server = _Server()
    server.logObserver = observer
    supervisor = WorkerSupervisor(
        config, reactor, lambda: endpoint.listen(unread), configPath, environ,
        reloadLogLevel=lambda: reloadLogLevel(observer, configPath, environ), logOutput=output)
    supervisor.setServiceParent(server)
    debug = config.http.debug
    if debug.addr:
        site = workersDebugSite(supervisor.ask, supervisor.variables,
                                debug.prometheusPath if debug.prometheus else None)
        debugEndpoint = PreboundEndpoint(serverFromString(reactor, debug.endpointDescription()))
        debugEndpoint.listenNow(site, debug.addr, "http.debug.addr")
        listener = StreamServerEndpointService(debugEndpoint, site)
        listener._raiseSynchronously = True
        listener.setServiceParent(server)
    if isinstance(output, LogFile):
        rotateOnSIGUSR1(output)
    return server
