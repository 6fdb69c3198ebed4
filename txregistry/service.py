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

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.cred.portal import Portal
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import ILogObserver, Logger

from txregistry.api.app import RegistryAPI, RegistryRoot
from txregistry.api.door import Door
from txregistry.api.errors import errorBody
from txregistry.api.responses import URLBuilder
from txregistry.api.tokens import TokenEndpoint
from txregistry.auth.cred import registryPortal
from txregistry.auth.errors import AuthConfigurationError
from txregistry.auth.issuer import TokenIssuer, alwaysExists, loadOrCreateKey
from txregistry.auth.policy import IAccessPolicy, policyFromConfig
from txregistry.auth.schemes import schemeFor, withTokenServer
from txregistry.auth.throttle import LoginThrottle
from txregistry.config import Configuration, ConfigurationError, HTTPConfig
from txregistry.interfaces import INamespace
from txregistry.logs import makeObserver
from txregistry.maintenance import OnlineCollector, UploadPurger
from txregistry.patterns import compileRepositoryPattern
from txregistry.registry.immutability import ImmutabilityRule, ImmutableTags
from txregistry.registry.namespace import StorageNamespace
from txregistry.registry.quotas import Quota, Quotas
from txregistry.registry.retention import KeepTags, RetentionPolicies, RetentionPolicy
from txregistry.registry.switches import deletesDisabled, readOnly
from txregistry.registry.visibility import VisibleCatalog
from txregistry.storage.factories import createDriver
from txregistry.storage.interfaces import IStorageDriver
from txregistry.systemd import notify
from txregistry.tls import ReloadOnSIGHUP, ServerTLS, serverEndpoint
from txregistry.ui.app import WebUI
from txregistry.ui.reading import Reader
from txregistry.ui.sessions import Sessions
from txregistry.web.site import RegistrySite

_log = Logger()


Layer = Callable[[INamespace], INamespace]


def accessPolicy(config: Configuration) -> IAccessPolicy | None:
    """
    The C{auth.access} policy, or L{None} for none.
    """
    if config.auth.access is None:
        return None
    try:
        return policyFromConfig(config.auth.access)
    except AuthConfigurationError as e:
        raise ConfigurationError(str(e)) from None


def layers(
    config: Configuration, policy: IAccessPolicy | None = None, clock: Any = None
) -> list[Layer]:
    """
    The layers C{config} asks for, innermost first.

    @param policy: the access policy (L{accessPolicy}), whose catalog
        lists only what each caller may pull.
    @param clock: the reactor, for the layers' timers and connections
        (the Redis cache's); the global reactor when L{None}.
    """
    chain: list[Layer] = []
    if config.storage.blobDescriptorCache == "redis" and config.redis is not None:
        from txregistry.rediscache.layer import redisCached

        if clock is None:
            from twisted.internet import reactor as clock
        # Innermost: what the switches refuse never reaches it, and every
        # write that reaches storage invalidates it.
        chain.append(redisCached(config.redis, clock))
    if not config.storage.deleteEnabled:
        chain.append(deletesDisabled)
    if config.storage.readOnly:
        chain.append(readOnly)
    storage = config.storage
    if storage.immutableTags:
        rules = [ImmutabilityRule(rule.repository, compileRepositoryPattern(rule.repository),
                                  rule.tags) for rule in storage.immutableTags]
        chain.append(lambda namespace: ImmutableTags(namespace, rules))
    if storage.quotas:
        if clock is None:
            from twisted.internet import reactor as clock
        quotas = [Quota(rule.repository, compileRepositoryPattern(rule.repository),
                        rule.maxBytes, rule.maxTags) for rule in storage.quotas]
        chain.append(lambda namespace: Quotas(namespace, quotas, clock))
    if policy is not None:
        def mayPull(account: str | None, name: str) -> bool:
            return "pull" in policy.granted(account, name)

        chain.append(lambda namespace: VisibleCatalog(namespace, mayPull))
    return chain


def retentionPolicies(config: Configuration) -> RetentionPolicies:
    """
    C{storage.retention.policies}, for the collections to apply.
    """
    return RetentionPolicies([
        RetentionPolicy(
            rule.repository, compileRepositoryPattern(rule.repository),
            tuple(KeepTags(k.patterns, k.mostRecentlyPushedCount, k.pushedWithin, k.pulledWithin)
                  for k in rule.keepTags),
            rule.deleteUntagged, rule.deleteReferrers,
        ) for rule in config.storage.retention
    ])


def makeNamespace(
    config: Configuration, driver: IStorageDriver, clock: Any, policy: IAccessPolicy | None = None
) -> INamespace:
    """
    The registry's namespace over C{driver}, wrapped in every layer.
    """
    gc = config.storage.gc
    namespace: INamespace = StorageNamespace(
        driver, clock, tagTTL=config.storage.tagTTL, redirect=config.storage.redirect,
        collectionGrace=gc.delay if gc.enabled else None,
        retention=retentionPolicies(config),
    )
    for layer in layers(config, policy, clock):
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


#: Where the built-in token server answers, below C{http.prefix}.
TOKEN_PATH = "auth/token"


def _keyDirectory(config: Configuration) -> str | None:
    """
    Where the token server keeps its key: C{auth.tokenserver.keydirectory},
    or beside the filesystem driver's content.
    """
    assert config.auth.tokenServer is not None
    if config.auth.tokenServer.keyDirectory:
        return config.auth.tokenServer.keyDirectory
    if config.storage.driver == "filesystem":
        root = str(config.storage.parameters.get("rootdirectory") or "/var/lib/registry")
        return os.path.join(root, "tokenserver")
    return None


@dataclass(frozen=True)
class Auth:
    """
    Access control as L{makeAuth} built it.

    @ivar door: guards the API; L{None} for no scheme.
    @ivar tokens: the built-in token server's endpoint, or L{None}.
    @ivar portal: what the door logs callers in through (the web UI logs
        its visitors in through it too); L{None} for no scheme.
    @ivar throttle: the door's login throttle, which the UI shares.
    """

    door: Door | None = None
    tokens: TokenEndpoint | None = None
    portal: Portal | None = None
    throttle: LoginThrottle | None = None


def makeAuth(config: Configuration, reactor: Any, policy: IAccessPolicy | None = None) -> Auth:
    """
    Access control for C{config}'s C{auth} section: the door, the built-in
    token server's endpoint and the portal (see L{Auth}).

    @raise ConfigurationError: naming the key when the scheme cannot be
        built (a missing htpasswd file, an unreadable root bundle, a key
        that does not fit its algorithm).
    """
    if config.auth.scheme is None:
        return Auth()
    throttle = LoginThrottle(reactor)
    endpoint = None
    try:
        scheme = schemeFor(config.auth.scheme, config.auth.parameters, reactor)
        server = config.auth.tokenServer
        if server is not None:
            passwords = scheme.checkers[0] if len(scheme.checkers) == 1 else None
            key = loadOrCreateKey(server.algorithm, server.key or None, _keyDirectory(config),
                                  server.issuer)
            issuer = TokenIssuer(key, server.algorithm, server.issuer, server.service, policy,
                                 getattr(passwords, "hasUser", alwaysExists), reactor, int(server.expiration),
                                 int(server.refreshExpiration))
            prefix = "/" + config.http.prefix.strip("/")
            tokenPath = prefix.rstrip("/") + "/" + TOKEN_PATH
            scheme = withTokenServer(scheme, issuer, server.realm, tokenPath, reactor)
    except AuthConfigurationError as e:
        raise ConfigurationError(str(e)) from None
    if scheme.name in ("htpasswd", "basic") and policy is not None and policy.anonymousUse:
        _log.warn(
            "auth.access grants anonymous callers access, but with auth.htpasswd alone docker "
            "cannot pull anonymously (it stops at a Basic challenge it has no password for); "
            "add auth.tokenserver for docker's anonymous pulls")
    portal = registryPortal(scheme.checkers, policy)
    if scheme.issuer is not None:
        endpoint = TokenEndpoint(scheme.issuer, portal, throttle, scheme.basicRealm)
    door = Door(portal, scheme.challenge, RegistryAPI.app.url_map, throttle, policy)
    return Auth(door, endpoint, portal, throttle)


def webUI(
    config: Configuration, namespace: INamespace, auth: Auth, policy: IAccessPolicy | None, reactor: Any
) -> dict[tuple[bytes, ...], Callable[[Any], Any]] | None:
    """
    The web UI's handler by its path below C{http.prefix} (for
    L{RegistryRoot}'s C{trees}), or L{None} unless C{ui.enabled}.
    """
    if not config.ui.enabled:
        return None
    root = "/" + "/".join(p for p in (config.http.prefix.strip("/"), config.ui.path.strip("/")) if p) + "/"
    sessions = Sessions(auth.portal, policy, auth.throttle, reactor, config.ui.sessionTimeout,
                        config.http.secret.encode("utf-8") or None)
    ui = WebUI(namespace, sessions, root, config.storage.deleteEnabled, Reader(reactor))
    return {tuple(config.ui.path.strip("/").encode("utf-8").split(b"/")): ui.handle}


def siteFor(
    config: Configuration, namespace: INamespace, reactor: Any = None,
    policy: IAccessPolicy | None = None,
) -> RegistrySite:
    """
    The HTTP site serving the V2 API over C{namespace}.
    """
    if reactor is None:
        from twisted.internet import reactor
    urls = URLBuilder(config.http.prefix, config.http.host, config.http.relativeURLs)
    api = RegistryAPI(namespace, urls)
    auth = makeAuth(config, reactor, policy)
    tokens = auth.tokens
    root = RegistryRoot(api, config.http.prefix, config.http.headers, auth.door,
                        {tuple(TOKEN_PATH.encode().split(b"/")): tokens.handle} if tokens else None,
                        webUI(config, namespace, auth, policy, reactor))
    return RegistrySite(root, errorBody, accessLog=config.log.accessLog, reactor=reactor)


def makeSite(config: Configuration, driver: IStorageDriver, clock: Any = None) -> RegistrySite:
    """
    The HTTP site serving the V2 API over C{driver}.

    @param clock: the time source (an L{IReactorTime}); the reactor's when
        L{None}.
    """
    if clock is None:
        from twisted.internet import reactor as clock
    policy = accessPolicy(config)
    return siteFor(config, makeNamespace(config, driver, clock, policy), clock, policy)


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
        policy = accessPolicy(config)
        self.namespace = makeNamespace(config, self.driver, reactor, policy)
        self.site = siteFor(config, self.namespace, reactor, policy)
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
        if config.storage.gc.enabled and not config.storage.readOnly:
            OnlineCollector(self.namespace, config.storage.gc, reactor).setServiceParent(self)

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
