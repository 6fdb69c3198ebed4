# -*- test-case-name: tests.test_service -*-
"""
The composition root: assembles a running registry from a
L{Configuration}.

    driver -> storage middleware -> ObservedDriver -> StorageNamespace
           -> layers (outermost last)
           -> RegistryAPI -> RegistryRoot -> UnavailableWhileFailing
           -> RegistrySite (+ observers: drain, metrics, spans) -> endpoint

Each layer provides L{INamespace} around the one before it; the API sees
only the outermost.  This is the one place that decides which layers a
registry has and in which order.  Beside the registry run the health
checks and the debug listener (C{http.debug.addr}).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.cred.portal import Portal
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import ILogObserver, Logger
from twisted.python.failure import Failure

from txregistry.api.app import RegistryAPI, RegistryRoot
from txregistry.api.door import Door
from txregistry.api.errors import errorBody
from txregistry.api.responses import URLBuilder
from txregistry.api.routenames import RouteNames
from txregistry.api.tokens import TokenEndpoint
from txregistry.api.unavailable import UnavailableWhileFailing
from txregistry.api.uploadstate import FixedSecret
from txregistry.auth.cred import registryPortal
from txregistry.auth.errors import AuthConfigurationError
from txregistry.auth.issuer import TokenIssuer, alwaysExists, loadOrCreateKey
from txregistry.auth.policy import IAccessPolicy, policyFromConfig
from txregistry.auth.schemes import schemeFor, withTokenServer
from txregistry.auth.throttle import LoginThrottle
from txregistry.config import Configuration, ConfigurationError, HTTPConfig
from txregistry.health.factories import createCheck
from txregistry.health.interfaces import CheckContext
from txregistry.health.monitor import HealthMonitor
from txregistry.interfaces import INamespace, ISecretSource
from txregistry.logs import makeObserver, reloadLogLevel
from txregistry.maintenance import OnlineCollector, UploadPurger
from txregistry.notifications.notifier import Notifier
from txregistry.patterns import compileRepositoryPattern
from txregistry.registry.httpsecret import SecretMismatch, StoredSecret
from txregistry.registry.immutability import ImmutabilityRule, ImmutableTags
from txregistry.registry.namespace import StorageNamespace
from txregistry.registry.peers import NO_PEERS, IReferencePeers
from txregistry.registry.quotas import Quota, Quotas
from txregistry.registry.retention import KeepTags, RetentionPolicies, RetentionPolicy
from txregistry.registry.switches import deletesDisabled, readOnly
from txregistry.registry.visibility import VisibleCatalog
from txregistry.reload import Reloader
from txregistry.storage.factories import createDriver
from txregistry.storage.interfaces import IStorageDriver
from txregistry.storage.middleware.factories import wrapDriver
from txregistry.systemd import notify
from txregistry.telemetry.activity import Activity, ActivityCollector, MeasuredNamespace
from txregistry.telemetry.debug import debugSite
from txregistry.telemetry.http import RequestMetrics
from txregistry.telemetry.metrics import Counters, PrometheusMetrics
from txregistry.telemetry.notifications import NotificationsCollector
from txregistry.telemetry.storage import ObservedDriver
from txregistry.telemetry.tracing import Tracing, TracingConfigurationError, tracingFromEnvironment
from txregistry.tls import ReloadOnSIGHUP, ServerTLS, serverEndpoint
from txregistry.ui.app import WebUI
from txregistry.ui.reading import Reader
from txregistry.ui.sessions import Sessions
from txregistry.web.drain import InFlight
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
    config: Configuration,
    policy: IAccessPolicy | None = None,
    clock: Any = None,
    notifier: Notifier | None = None,
    activity: Activity | None = None,
) -> list[Layer]:
    """
    The layers C{config} asks for, innermost first.

    Notifications are next to storage (inside them only the Redis cache,
    which passes every write through): only what reached storage (and was
    not refused by a layer outside: a switch, an immutable tag, a quota)
    makes an event.  The pull-through cache (C{proxy}) is outside the
    switches, immutable tags and quotas, whose checks its own writes into
    the cache pass through, and inside the per-caller catalog.

    @param policy: the access policy (L{accessPolicy}), whose catalog
        lists only what each caller may pull.
    @param clock: the reactor, for the layers' timers and connections
        (the Redis cache's); the global reactor when L{None}.
    @param notifier: the running notifications service, which
        C{notifications} needs (L{RegistryService} makes it).
    @param activity: where upload, collection and quota figures are
        counted (the outermost layer, L{MeasuredNamespace}, and the
        quotas' refusals), or L{None}.
    @raise ValueError: when C{config} has enabled endpoints and there is
        no C{notifier}: a registry told to notify must not run without.
    """
    chain: list[Layer] = []
    if config.storage.blobDescriptorCache == "redis" and config.redis is not None:
        from txregistry.rediscache.layer import redisCached

        if clock is None:
            from twisted.internet import reactor as clock
        # Innermost: what the switches refuse never reaches it, and every
        # write that reaches storage invalidates it.
        chain.append(redisCached(config.redis, clock))
    if config.notifications.enabled:
        if notifier is None:
            raise ValueError("notifications need a Notifier: build the registry with RegistryService")
        chain.append(notifier.layer)
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
        refused = activity.quotaRefused if activity is not None else None
        chain.append(lambda namespace: Quotas(namespace, quotas, clock, refused=refused))
    if config.proxy.enabled:
        if clock is None:
            from twisted.internet import reactor as clock
        # Outside the switches, immutable tags and quotas: what it stores
        # in the cache is written through them (a read-only registry
        # serves through without storing; a quota bounds the cache).
        chain.append(pullThrough(config, clock))
    if policy is not None:
        def mayPull(account: str | None, name: str) -> bool:
            return "pull" in policy.granted(account, name)

        chain.append(lambda namespace: VisibleCatalog(namespace, mayPull))
    if activity is not None:
        # Outermost: what any layer refuses is not counted as done.
        chain.append(lambda namespace: MeasuredNamespace(namespace, activity))
    return chain


def pullThrough(config: Configuration, clock: Any) -> Layer:
    """
    The pull-through cache's layer for C{config.proxy}.
    """
    from txregistry.proxy.layer import PullThrough
    from txregistry.proxy.upstream import Upstream

    upstreams = [Upstream(upstream, clock) for upstream in config.proxy.upstreams]
    return lambda namespace: PullThrough(namespace, upstreams, clock,
                                         reference=config.proxy.reference)


def _proxyRetention(config: Configuration) -> list[RetentionPolicy]:
    """
    The cache's expiry as retention policies, ahead of the configured
    ones: under each upstream's prefix, a tag neither cached nor pulled
    within its C{ttl} goes, and with it what no kept tag reaches.
    """
    policies = []
    for upstream in config.proxy.upstreams:
        if upstream.ttl <= 0:
            continue
        pattern = f"{upstream.prefix}/**" if upstream.prefix else "**"
        policies.append(RetentionPolicy(
            pattern, compileRepositoryPattern(pattern, allowAccount=False),
            (KeepTags(pushedWithin=upstream.ttl, pulledWithin=upstream.ttl),),
            deleteUntagged=True, deleteReferrers=True))
    return policies


def retentionPolicies(config: Configuration) -> RetentionPolicies:
    """
    C{storage.retention.policies}, for the collections to apply (after the
    pull-through cache's expiry).
    """
    return RetentionPolicies(_proxyRetention(config) + [
        RetentionPolicy(
            rule.repository, compileRepositoryPattern(rule.repository),
            tuple(KeepTags(k.patterns, k.mostRecentlyPushedCount, k.pushedWithin, k.pulledWithin)
                  for k in rule.keepTags),
            rule.deleteUntagged, rule.deleteReferrers,
        ) for rule in config.storage.retention
    ])


def _partial(config: Configuration) -> Callable[[str], bool] | None:
    """
    Which repositories are the pull-through cache's, which hold manifests
    before their blobs; L{None} without a cache.
    """
    prefixes = tuple(upstream.prefix for upstream in config.proxy.upstreams)
    if not prefixes:
        return None
    if "" in prefixes:
        return lambda name: True
    return lambda name: any(name.startswith(prefix + "/") for prefix in prefixes)


def storageDriver(
    config: Configuration, reactor: Any, driver: IStorageDriver | None = None
) -> IStorageDriver:
    """
    The configured driver (or C{driver}), inside the configured storage
    middleware (C{middleware.storage}, the first listed innermost).

    @raise DriverConfigurationError: when the driver refuses its
        parameters, or a middleware cannot wrap it.
    """
    if driver is None:
        driver = createDriver(config.storage.driver, config.storage.parameters, reactor)
    return wrapDriver(driver, config.storageMiddleware, reactor)


def makeNamespace(
    config: Configuration,
    driver: IStorageDriver,
    clock: Any,
    policy: IAccessPolicy | None = None,
    notifier: Notifier | None = None,
    activity: Activity | None = None,
    peers: IReferencePeers = NO_PEERS,
) -> INamespace:
    """
    The registry's namespace over C{driver}, wrapped in every layer.

    @param peers: the other workers, which cache references too.
    """
    gc = config.storage.gc
    namespace: INamespace = StorageNamespace(
        driver, clock, tagTTL=config.storage.tagTTL, redirect=config.storage.redirect,
        collectionGrace=gc.delay if gc.enabled else None,
        retention=retentionPolicies(config), partial=_partial(config), peers=peers,
    )
    for layer in layers(config, policy, clock, notifier, activity):
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


@dataclass
class Telemetry:
    """
    What a registry measures: the C{/debug/vars} counters and Prometheus
    metrics (with a debug listener), and traces (with an exporter).  Each
    is L{None} when off, and then costs nothing.
    """

    counters: Counters | None = None
    prometheus: PrometheusMetrics | None = None
    tracing: Tracing | None = None
    activity: Activity | None = None

    def __post_init__(self) -> None:
        if self.activity is not None and self.prometheus is not None:
            self.prometheus.registry.register(ActivityCollector(self.activity))

    def observedDriver(self, driver: IStorageDriver) -> IStorageDriver:
        """
        C{driver}, measured when anything is.
        """
        if self.counters is None and self.tracing is None:
            return driver
        return ObservedDriver(driver, self.counters, self.prometheus, self.tracing)


def telemetryFor(config: Configuration, environ: Mapping[str, str]) -> Telemetry:
    """
    The L{Telemetry} C{config} (C{http.debug}) and C{environ} (the
    C{OTEL_*} variables) ask for.

    @raise ConfigurationError: naming the C{OTEL_*} variable that asks for
        an exporter that is not installed.
    """
    debug = config.http.debug
    try:
        tracing = tracingFromEnvironment(environ)
    except TracingConfigurationError as e:
        raise ConfigurationError(str(e)) from None
    return Telemetry(
        counters=Counters() if debug.addr else None,
        prometheus=PrometheusMetrics() if debug.addr and debug.prometheus else None,
        tracing=tracing,
        activity=Activity() if debug.addr else None,
    )


def uploadSecret(config: Configuration, driver: IStorageDriver,
                 settle: float | None = None) -> StoredSecret:
    """
    The key of upload URLs: C{http.secret}, checked against the one the
    other instances on C{driver} use, or the one generated and kept there
    (L{txregistry.registry.httpsecret}).

    @param settle: seconds a generated secret's read-back waits for the
        other processes starting at once; 0 where one process alone uses
        the storage (the in-process test registry).
    """
    return StoredSecret(driver, config.http.secret, config.storage.readOnly, settle=settle)


def siteFor(
    config: Configuration,
    namespace: INamespace,
    reactor: Any = None,
    telemetry: Telemetry | None = None,
    failing: Callable[[], Mapping[str, str]] | None = None,
    policy: IAccessPolicy | None = None,
    secret: ISecretSource | None = None,
) -> RegistrySite:
    """
    The HTTP site serving the V2 API over C{namespace}.

    @param failing: the failing health checks, when any are configured:
        while it names any, every request is answered 503.
    @param secret: the key of upload URLs (L{uploadSecret}); without one,
        C{http.secret}, or a random key for this site's life.
    """
    if reactor is None:
        from twisted.internet import reactor
    urls = URLBuilder(config.http.prefix, config.http.host, config.http.relativeURLs)
    if secret is None and config.http.secret:
        secret = FixedSecret(config.http.secret.encode("utf-8"))
    api = RegistryAPI(namespace, urls, secret)
    auth = makeAuth(config, reactor, policy)
    tokens = auth.tokens
    root: Any = RegistryRoot(
        api, config.http.prefix, config.http.headers, auth.door,
        {tuple(TOKEN_PATH.encode().split(b"/")): tokens.handle} if tokens else None,
        webUI(config, namespace, auth, policy, reactor))
    if failing is not None:
        root = UnavailableWhileFailing(root, failing)
    site = RegistrySite(root, errorBody, accessLog=config.log.accessLog, reactor=reactor)
    telemetry = telemetry or Telemetry()
    if telemetry.counters is not None or telemetry.tracing is not None:
        routeNames = RouteNames(config.http.prefix)
        if telemetry.counters is not None:
            site.observers.append(
                RequestMetrics(routeNames, telemetry.counters, reactor, telemetry.prometheus)
            )
        if telemetry.tracing is not None:
            from txregistry.telemetry.tracing import RequestSpans

            site.observers.append(RequestSpans(telemetry.tracing, routeNames))
    return site


def makeSite(
    config: Configuration, driver: IStorageDriver, clock: Any = None,
    telemetry: Telemetry | None = None,
) -> RegistrySite:
    """
    The HTTP site serving the V2 API over C{driver}.

    @param clock: the time source (an L{IReactorTime}); the reactor's when
        L{None}.
    """
    if clock is None:
        from twisted.internet import reactor as clock
    telemetry = telemetry or Telemetry()
    policy = accessPolicy(config)
    namespace = makeNamespace(config, telemetry.observedDriver(driver), clock, policy,
                              activity=telemetry.activity)
    return siteFor(config, namespace, clock, telemetry, policy=policy,
                   secret=uploadSecret(config, driver))


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
    files on C{SIGHUP}), sends notifications (when endpoints are
    configured), closes the storage driver on stop, and installs the
    configured log observer, writing to C{logOutput}, on the twistd
    application it joins.

    @ivar notifier: the notifications service, or L{None}.
    """

    def __init__(
        self,
        config: Configuration,
        reactor: Any,
        logOutput: IO[str] | None = None,
        endpoint: IStreamServerEndpoint | None = None,
        tls: ServerTLS | None = None,
        telemetry: Telemetry | None = None,
        debugEndpoint: IStreamServerEndpoint | None = None,
        configPath: str | None = None,
        environ: Mapping[str, str] | None = None,
        worker: int | None = None,
        logObserver: Any = None,
        peers: IReferencePeers = NO_PEERS,
    ) -> None:
        """
        @param endpoint: where to listen, if not C{http.addr} (the twistd
            plugin passes one that has listened already).
        @param tls: the TLS side of C{endpoint}, reloaded on C{SIGHUP};
            made from C{http.tls} when L{None} and a certificate is set.
        @param telemetry: what to measure; by default what C{config} and
            C{environ} ask for (L{telemetryFor}).
        @param debugEndpoint: where the debug listener listens, if not
            C{http.debug.addr}.
        @param configPath: the file C{config} was read from, read again on
            C{SIGHUP} for what can change while running (C{log.level}).
        @param environ: the environment (C{REGISTRY_*} overrides, C{OTEL_*});
            the process's when L{None}.
        @param worker: this process's index among C{http.workers}
            (L{txregistry.workers}), or L{None} for a lone process: only
            worker 0 runs the background services (online collection,
            upload purging), once for the whole server.
        @param logObserver: the log observer already installed (a
            worker's), whose C{log.level} C{SIGHUP} reloads.
        @param peers: the other workers, told of each tag or revision
            change before it is acknowledged, so that every worker may
            cache references as a lone process does.
        @raise TLSFileError: when C{http.tls} names a file that cannot be
            used.
        @raise ConfigurationError: when the notifications outbox cannot be
            opened (another process has it, or it is unusable).
        """
        super().__init__()
        if tls is None and config.http.tlsCertificate:
            tls = ServerTLS(config.http)
        self.tls = tls
        self.config = config
        self.logOutput = logOutput
        self.reactor = reactor
        self._environ = os.environ if environ is None else environ
        self._configPath = configPath
        self._observer: Any = logObserver
        self.telemetry = telemetry or telemetryFor(config, self._environ)
        self.driver = storageDriver(config, reactor)
        self.notifier: Notifier | None = None
        if config.notifications.enabled:
            # Started before the listener and stopped after it: no request
            # is served while events cannot be journaled.
            tracing = self.telemetry.tracing
            self.notifier = Notifier(config.notifications, config.http, reactor,
                                     tracing.traceparent if tracing is not None else None)
            self.notifier.setServiceParent(self)
            if self.telemetry.prometheus is not None:
                self.telemetry.prometheus.registry.register(
                    NotificationsCollector(self.notifier.status))
        policy = accessPolicy(config)
        self.namespace = makeNamespace(config, self.telemetry.observedDriver(self.driver), reactor,
                                       policy, self.notifier, self.telemetry.activity, peers)
        self.health = HealthMonitor(reactor)
        context = CheckContext(reactor, self.driver, config.storage.readOnly)
        for check in config.health.checks:
            self.health.watch(createCheck(check, context), check.interval, check.threshold,
                              check.timeout)
        self.health.setServiceParent(self)
        self._observeProxy()
        self.secret = uploadSecret(config, self.driver)
        self.site = siteFor(config, self.namespace, reactor, self.telemetry,
                            self.health.failing if config.health.checks else None, policy,
                            self.secret)
        self.inFlight = InFlight(self.site.channels)
        self.site.observers.insert(0, self.inFlight)
        if endpoint is None:
            endpoint = endpointFor(reactor, config.http, tls)
        reloader = Reloader()
        if tls is not None:
            reloader.add("TLS certificate", tls.reload)
        reloader.add("log level", self._reloadLogLevel)
        ReloadOnSIGHUP(reloader, reactor).setServiceParent(self)  # type: ignore[arg-type]
        listener = StreamServerEndpointService(endpoint, self.site)
        listener._raiseSynchronously = True
        listener.setServiceParent(self)
        self._listener = listener
        self.debugSite = None
        self._debugListener: Any = None
        if config.http.debug.addr and worker is None:
            # A worker's figures are its supervisor's to serve, summed
            # (txregistry.workers.debug).
            self.debugSite = self._makeDebugSite()
            if debugEndpoint is None:
                debugEndpoint = serverFromString(reactor, config.http.debug.endpointDescription())
            debug = StreamServerEndpointService(debugEndpoint, self.debugSite)
            debug._raiseSynchronously = True
            debug.setServiceParent(self)
            self._debugListener = debug
        self._started = time.time()
        if not worker:
            # Once for the whole server: in a lone process, or worker 0.
            self._addMaintenance()

    def _addMaintenance(self) -> None:
        """
        The background services: upload purging and online collection.
        """
        config = self.config
        purging = config.storage.uploadPurging
        if purging.enabled and not config.storage.readOnly and purging.interval > 0:
            UploadPurger(self.namespace, purging, self.reactor).setServiceParent(self)
        if config.storage.gc.enabled and not config.storage.readOnly:
            OnlineCollector(self.namespace, config.storage.gc, self.reactor).setServiceParent(self)

    def _observeProxy(self) -> None:
        """
        With Prometheus on, the pull-through cache's figures as the
        reference's C{registry_proxy_*} metrics.
        """
        prometheus = self.telemetry.prometheus
        if prometheus is None or not self.config.proxy.enabled:
            return
        from txregistry.proxy.layer import PullThrough
        from txregistry.proxy.stats import ProxyCollector

        layer: Any = self.namespace
        while layer is not None:
            if isinstance(layer, PullThrough):
                prometheus.registry.register(ProxyCollector(layer.stats))
                return
            layer = getattr(layer, "inner", None)

    def _makeDebugSite(self) -> Any:
        prometheus = self.telemetry.prometheus
        metrics = (self.config.http.debug.prometheusPath, prometheus.registry) if prometheus else None
        return debugSite(self.health.failing, self._variables, metrics)

    def _variables(self) -> dict[str, Any]:
        """
        The document of C{/debug/vars}.
        """
        counters = self.telemetry.counters
        activity = self.telemetry.activity
        return {
            "uptime_seconds": round(time.time() - self._started, 3),
            "storage_driver": self.config.storage.driver,
            "health": {"checks": list(self.health.checks), "failing": self.health.failing()},
            **(counters.snapshot() if counters is not None else {}),
            **(activity.snapshot() if activity is not None else {}),
            **({"notifications": {
                "endpoints": self.notifier.status(),
                "journal": {"syncs": self.notifier.journal.syncs,
                            "durable_appends": self.notifier.journal.durableAppends},
            }} if self.notifier is not None else {}),
        }

    def _reloadLogLevel(self) -> None:
        reloadLogLevel(self._observer, self._configPath, self._environ)

    def setServiceParent(self, parent: Any) -> Any:
        # twistd asks the application for an ILogObserver before it starts
        # logging; offering ours there is how a plugin picks its format.
        setComponent = getattr(parent, "setComponent", None)
        if setComponent is not None and self.logOutput is not None:
            self._observer = makeObserver(self.config.log, self.logOutput)
            setComponent(ILogObserver, self._observer)
        return super().setServiceParent(parent)

    def startService(self) -> None:
        super().startService()
        # The upload secret now, not at the first upload: instances that
        # do not share http.secret are told at start.
        self.secret.key().addErrback(self._noSecret)
        # Once the port is open (it may already be: twistd's plugin listens
        # before it forks), say so: to the log, and to systemd.
        listening = getattr(self._listener, "_waitingForPort", None)
        if listening is not None:
            listening.addCallback(self._listening)
        else:
            self._listening(None)

    def _noSecret(self, failure: Failure) -> None:
        if failure.check(CancelledError):
            return  # stopped before it was read back (StoredSecret.stop)
        if failure.check(SecretMismatch):
            # One line, then stop: an instance signing unlike the others
            # behind the same proxy would refuse their uploads at random.
            _log.critical("txregistry: {error}", error=str(failure.value))
            if self.reactor.running:
                self.reactor.stop()
            return
        _log.warn("upload secret not read from storage yet (tried again at the next upload):"
                  " {error}", error=str(failure.value))

    def _listening(self, port: object) -> object:
        _log.info(
            "txregistry serving on {addr} with {driver} storage",
            addr=self.config.http.addr,
            driver=self.config.storage.driver,
        )
        if self.config.http.oneWorkerBecause:
            _log.info("One process rather than a worker per CPU (http.workers): {why}",
                      why=self.config.http.oneWorkerBecause)
        notify("READY=1")
        return port

    async def _stop(self) -> None:
        notify("STOPPING=1")
        # Stop listening first, then let what is in flight finish (up to
        # http.draintimeout), then stop the rest.
        await self._listener.stopService()
        await Deferred.fromCoroutine(self.inFlight.drain(self.config.http.drainTimeout, self.reactor))
        self.secret.stop()
        await super().stopService()
        await closeLayers(self.namespace)
        await self.driver.close()
        if self.telemetry.tracing is not None:
            from twisted.internet.threads import deferToThread

            # Exports what is pending: a network call, so not here.
            await deferToThread(self.telemetry.tracing.shutdown)

    def stopService(self) -> Any:
        return Deferred.fromCoroutine(self._stop())
