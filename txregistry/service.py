# -*- test-case-name: tests.test_service -*-
"""
The composition root: assembles a running registry from a
L{Configuration}.

    driver -> StorageNamespace -> layers (outermost last) -> RegistryAPI
           -> RegistryRoot -> RegistrySite -> listening endpoint

Each layer provides L{INamespace} around the one before it; the API sees
only the outermost.  This is the one place that decides which layers a
registry has and in which order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import ILogObserver, Logger

from txregistry.api.app import RegistryAPI, RegistryRoot
from txregistry.api.door import Door
from txregistry.api.errors import errorBody
from txregistry.api.responses import URLBuilder
from txregistry.auth.cred import registryPortal
from txregistry.auth.errors import AuthConfigurationError
from txregistry.auth.schemes import schemeFor
from txregistry.auth.throttle import LoginThrottle
from txregistry.config import Configuration, ConfigurationError, HTTPConfig
from txregistry.interfaces import INamespace
from txregistry.logs import makeObserver
from txregistry.maintenance import UploadPurger
from txregistry.registry.namespace import StorageNamespace
from txregistry.registry.switches import deletesDisabled, readOnly
from txregistry.storage.factories import createDriver
from txregistry.storage.interfaces import IStorageDriver
from txregistry.systemd import notify
from txregistry.tls import ReloadOnSIGHUP, ServerTLS, serverEndpoint
from txregistry.web.site import RegistrySite

_log = Logger()


Layer = Callable[[INamespace], INamespace]


def layers(config: Configuration, reactor: Any = None) -> list[Layer]:
    """
    The layers C{config} asks for, innermost first.

    @param reactor: for the layers' timers and connections (the Redis
        cache's); the global reactor when L{None}.
    """
    chain: list[Layer] = []
    if config.storage.blobDescriptorCache == "redis" and config.redis is not None:
        from txregistry.rediscache.layer import redisCached

        if reactor is None:
            from twisted.internet import reactor
        # Innermost: what the switches refuse never reaches it, and every
        # write that reaches storage invalidates it.
        chain.append(redisCached(config.redis, reactor))
    if not config.storage.deleteEnabled:
        chain.append(deletesDisabled)
    if config.storage.readOnly:
        chain.append(readOnly)
    return chain


def makeNamespace(config: Configuration, driver: IStorageDriver, clock: Any) -> INamespace:
    """
    The registry's namespace over C{driver}, wrapped in every layer.
    """
    namespace: INamespace = StorageNamespace(
        driver, clock, tagTTL=config.storage.tagTTL, redirect=config.storage.redirect
    )
    for layer in layers(config, clock):
        namespace = layer(namespace)
    return namespace


async def closeLayers(namespace: INamespace) -> None:
    """
    Release what the layers of C{namespace} hold (the Redis cache's
    connections): each layer that has a C{closeLayer} method, outermost
    first.
    """
    layer: Any = namespace
    while layer is not None:
        close = getattr(layer, "closeLayer", None)
        if close is not None:
            await close()
        layer = getattr(layer, "inner", None)


def makeDoor(config: Configuration, reactor: Any) -> Door | None:
    """
    Access control for C{config}'s C{auth} scheme, or L{None} for none.

    @raise ConfigurationError: naming the key when the scheme cannot be
        built (a missing htpasswd file, an unreadable root bundle).
    """
    if config.auth.scheme is None:
        return None
    try:
        scheme = schemeFor(config.auth.scheme, config.auth.parameters, reactor)
    except AuthConfigurationError as e:
        raise ConfigurationError(str(e)) from None
    return Door(registryPortal(scheme.checkers), scheme.challenge, RegistryAPI.app.url_map,
                LoginThrottle(reactor))


def siteFor(config: Configuration, namespace: INamespace, reactor: Any = None) -> RegistrySite:
    """
    The HTTP site serving the V2 API over C{namespace}.
    """
    if reactor is None:
        from twisted.internet import reactor
    urls = URLBuilder(config.http.prefix, config.http.host, config.http.relativeURLs)
    api = RegistryAPI(namespace, urls)
    root = RegistryRoot(api, config.http.prefix, config.http.headers, makeDoor(config, reactor))
    return RegistrySite(root, errorBody, accessLog=config.log.accessLog, reactor=reactor)


def makeSite(config: Configuration, driver: IStorageDriver, clock: Any = None) -> RegistrySite:
    """
    The HTTP site serving the V2 API over C{driver}.

    @param clock: the time source (an L{IReactorTime}); the reactor's when
        L{None}.
    """
    if clock is None:
        from twisted.internet import reactor as clock
    return siteFor(config, makeNamespace(config, driver, clock), clock)


def endpointFor(reactor: Any, http: HTTPConfig, tls: ServerTLS | None) -> IStreamServerEndpoint:
    """
    Where the registry listens: C{http.addr}, over C{tls} when given.
    """
    if tls is not None:
        return serverEndpoint(reactor, http, tls)
    return serverFromString(reactor, http.endpointDescription())


class RegistryService(MultiService):
    """
    The registry as a service: listens on C{http.addr} (re-reading its TLS
    files on C{SIGHUP}), closes the storage driver on stop, and installs
    the configured log observer, writing to C{logOutput}, on the twistd
    application it joins.
    """

    def __init__(
        self,
        config: Configuration,
        reactor: Any,
        logOutput: IO[str] | None = None,
        endpoint: IStreamServerEndpoint | None = None,
        tls: ServerTLS | None = None,
    ) -> None:
        """
        @param endpoint: where to listen, if not C{http.addr} (the twistd
            plugin passes one that has listened already).
        @param tls: the TLS side of C{endpoint}, reloaded on C{SIGHUP};
            made from C{http.tls} when L{None} and a certificate is set.
        @raise TLSFileError: when C{http.tls} names a file that cannot be
            used.
        """
        super().__init__()
        if tls is None and config.http.tlsCertificate:
            tls = ServerTLS(config.http)
        self.tls = tls
        self.config = config
        self.logOutput = logOutput
        self.driver = createDriver(config.storage.driver, config.storage.parameters, reactor)
        self.namespace = makeNamespace(config, self.driver, reactor)
        self.site = siteFor(config, self.namespace, reactor)
        if endpoint is None:
            endpoint = endpointFor(reactor, config.http, tls)
        if tls is not None:
            ReloadOnSIGHUP(tls, reactor).setServiceParent(self)
        listener = StreamServerEndpointService(endpoint, self.site)
        listener._raiseSynchronously = True
        listener.setServiceParent(self)
        self._listener = listener
        purging = config.storage.uploadPurging
        if purging.enabled and not config.storage.readOnly and purging.interval > 0:
            UploadPurger(self.namespace, purging, reactor).setServiceParent(self)

    def setServiceParent(self, parent: Any) -> Any:
        # twistd asks the application for an ILogObserver before it starts
        # logging; offering ours there is how a plugin picks its format.
        setComponent = getattr(parent, "setComponent", None)
        if setComponent is not None and self.logOutput is not None:
            setComponent(ILogObserver, makeObserver(self.config.log, self.logOutput))
        return super().setServiceParent(parent)

    def startService(self) -> None:
        super().startService()
        # Once the port is open (it may already be: twistd's plugin listens
        # before it forks), say so: to the log, and to systemd.
        listening = getattr(self._listener, "_waitingForPort", None)
        if listening is not None:
            listening.addCallback(self._listening)
        else:
            self._listening(None)

    def _listening(self, port: object) -> object:
        _log.info(
            "txregistry serving on {addr} with {driver} storage",
            addr=self.config.http.addr,
            driver=self.config.storage.driver,
        )
        notify("READY=1")
        return port

    async def _stop(self) -> None:
        notify("STOPPING=1")
        await super().stopService()
        await closeLayers(self.namespace)
        await self.driver.close()

    def stopService(self) -> Any:
        from twisted.internet.defer import Deferred

        return Deferred.fromCoroutine(self._stop())
