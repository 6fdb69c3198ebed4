# -*- test-case-name: tests.test_plugin -*-
"""
The C{txregistry} twistd plugin: C{twistd -n txregistry --config FILE}.

Every mistake that stops the start (a wrong key, an unreadable TLS file or
client CA, a storage root that cannot be made, an object store's refused
credentials or missing bucket, a port already taken) is
found here, while twistd is still in the process the user started, and
reported as one line on standard error naming the cause: nothing that fails
after twistd
daemonises can be reported whole (see L{PreboundEndpoint}).  The one
exception is a daemon's unix socket, listened on after the fork so that its
lock file names the daemon.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from twisted.application.service import IService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.python.logfile import LogFile
from zope.interface import implementer

from txregistry.config import ConfigurationError, loadConfiguration
from txregistry.logs import logDestination, rotateOnSIGUSR1


class Options(usage.Options):
    """
    C{twistd txregistry}'s own options; the configuration itself is the
    file and the environment, as for the reference registry.
    """

    synopsis = "[--config FILE]"
    longdesc = (
        "Serve a Docker Registry HTTP API V2 / OCI Distribution registry. "
        "Without --config the embedded defaults apply: filesystem storage "
        "under ./var/registry, listening on 127.0.0.1:5000. REGISTRY_* "
        "environment variables override the configuration "
        "(REGISTRY_HTTP_ADDR=127.0.0.1:5001, "
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data, ...)."
    )
    optParameters = [
        ["config", "c", None, "YAML configuration file (see etc/config.yml)."],
    ]


class StartError(Exception):
    """
    The registry cannot start; the message names the cause (and the key
    that leads to it), and is all the user needs to see.
    """


def makeService(options: Options) -> IService:
    """
    Build the registry from C{--config} (or C{REGISTRY_CONFIGURATION_PATH},
    or the embedded defaults) and the environment, listening already.

    @param options: this plugin's options; their C{parent}, twistd's own,
        says where the log goes, as it does for twistd's log.
    @raise SystemExit: after writing one line naming what stops the start.
    """
    try:
        return _makeService(options)
    except (ConfigurationError, StartError) as e:
        kind = "configuration error: " if isinstance(e, ConfigurationError) else ""
        sys.stderr.write(f"txregistry: {kind}{e}\n")
        sys.stderr.flush()
        raise SystemExit(1) from None


def _makeService(options: Options) -> IService:
    # Imported here, not above: importing the registry installs the
    # default reactor, and twistd imports this module merely to parse the
    # plugin's options (twistd txregistry --help).
    path = options["config"] or os.environ.get("REGISTRY_CONFIGURATION_PATH")
    config = loadConfiguration(path, os.environ)
    if config.http.workers > 1:
        # The supervisor of worker processes, which imports none of the
        # registry it does not run itself.
        from txregistry.workers.start import makeSupervisor

        return makeSupervisor(options, config, path)
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    from txregistry.service import RegistryService, endpointFor
    from txregistry.storage.errors import DriverConfigurationError, StorageError
    from txregistry.storage.interfaces import IStartChecked
    from txregistry.tls import ServerTLS, TLSFileError

    tls = None
    if config.http.tlsCertificate:
        try:
            tls = ServerTLS(config.http)
        except TLSFileError as e:
            raise StartError(str(e)) from None
    endpoint = PreboundEndpoint(endpointFor(reactor, config.http, tls))
    debugEndpoint = None
    if config.http.debug.addr:
        debugEndpoint = PreboundEndpoint(
            serverFromString(reactor, config.http.debug.endpointDescription())
        )
    output = logDestination(options.parent)
    try:
        service = RegistryService(config, reactor, output, endpoint=endpoint, tls=tls,
                                  debugEndpoint=debugEndpoint, configPath=path)
    except DriverConfigurationError as e:
        raise ConfigurationError(str(e)) from None
    except OSError as e:
        raise StartError(
            f"storage.{config.storage.driver}: {e.filename or 'storage'}: {e.strerror}"
        ) from None
    checked = IStartChecked(service.driver, None)
    if checked is not None:
        # A remote store's credentials and bucket, checked now: the reactor
        # does not run yet, so blocking is right, and a mistake is one line.
        try:
            checked.checkStart()
        except StorageError as e:
            raise StartError(str(e)) from None
    twistd: Mapping[str, Any] = options.parent or {}
    if config.http.net != "unix" or twistd.get("nodaemon"):
        # Not a daemon's unix socket: its lock file records the pid that
        # listened, which must be the daemon's, so that one listens after
        # the fork, and a failure there is still twistd's to report.
        endpoint.listenNow(service.site, config.http.addr)
    if debugEndpoint is not None and service.debugSite is not None:
        debugEndpoint.listenNow(service.debugSite, config.http.debug.addr, "http.debug.addr")
    if isinstance(output, LogFile):
        rotateOnSIGUSR1(output)
    from txregistry.collector import settle

    # After twistd has started the service (and daemonised).
    reactor.callWhenRunning(settle)
    return service


@implementer(IStreamServerEndpoint)
class PreboundEndpoint:
    """
    An endpoint that listens when the service is made, before twistd
    daemonises, and hands that port to the service when it starts.

    twistd starts services after it forks, and a daemon reports a failure
    to start through a status pipe that carries at most 100 bytes of the
    exception's repr (see C{UnixApplicationRunner._formatChildException});
    in the foreground the failure is a traceback.  Listening while
    C{makeService} runs, in the process the user started, lets a port
    already in use stop the start with one whole line as a configuration
    mistake does.  Reactors support listening before daemonising: that is
    what L{twisted.internet.interfaces.IReactorDaemonize} is for.

    @ivar _endpoint: the endpoint that really listens.
    @ivar _port: the port listened on by L{listenNow}, until L{listen}
        takes it.
    """

    def __init__(self, endpoint: IStreamServerEndpoint) -> None:
        self._endpoint = endpoint
        self._port: IListeningPort | None = None

    def listenNow(self, factory: IProtocolFactory, addr: str, key: str = "http.addr") -> None:
        """
        Listen with C{factory} now.

        @param addr: the address listened on, and C{key}, its key, to name
            them in the error.
        @raise StartError: when the address cannot be listened on.
        """
        results: list[Any] = []
        self._endpoint.listen(factory).addBoth(results.append)
        if not results:
            raise StartError(f"{key}: listening on {addr} did not finish at once")
        result = results[0]
        if isinstance(result, Failure):
            error = result.value
            if isinstance(error, CannotListenError):
                reason = getattr(error.socketError, "strerror", None) or error.socketError
                raise StartError(f"{key}: cannot listen on {addr}: {reason}")
            raise StartError(f"{key}: cannot listen on {addr}: {error}")
        self._port = result

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        The port L{listenNow} opened, the first time; listen anew after.
        """
        port, self._port = self._port, None
        if port is not None:
            return succeed(port)
        return self._endpoint.listen(protocolFactory)
