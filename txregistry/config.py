# -*- test-case-name: tests.test_config -*-
"""
The registry's configuration: YAML in the reference implementation's shape
(see C{etc/config.yml}), overridden by C{REGISTRY_*} environment variables,
checked key by key.

A mistake is reported as L{ConfigurationError} naming the key and what is
wrong with it, so that C{twistd} can print one line and exit.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from txregistry.notifications.config import NotificationsConfig
    from txregistry.opsconfig import DebugConfig, HealthConfig
    from txregistry.proxy.config import ProxyConfig

#: Keys under C{storage:} that configure the registry, not a driver.
STORAGE_OPTIONS = frozenset(
    {"delete", "redirect", "maintenance", "cache", "tag", "gc", "tags", "quotas", "retention"})

#: Reference keys (and C{key=value} choices) that txregistry does not honour
#: yet.  They are refused at start, not ignored: a registry told to
#: authenticate (C{auth}) that silently served everyone would be a security
#: hole, and one told to notify, proxy or validate that silently did not
#: would be as wrong.  A feature that lands removes its entry here.
UNSUPPORTED = frozenset(
    {
        "compatibility",
        "loglevel",
        # Middleware around the namespace and repositories: txregistry's
        # own layers are composed in txregistry.service, not named here.
        "middleware.registry",
        "middleware.repository",
        # Credential helpers are not run: proxy.username/password only.
        "proxy.exec",
        "reporting",
        "validation",
        "log.hooks",
        "http.h2c",
        "http.http2",
        "http.tls.letsencrypt",
        "storage.cache.blobdescriptorsize",
        # txredisapi keeps a fixed pool, and its TLS does not check the
        # server's name: refused rather than half honoured.
        "redis.maxidleconns",
        "redis.connmaxidletime",
        "redis.tls",
        "storage.tag",
    }
)

#: Every key txregistry reads, as nested mappings; L{ANY} marks a mapping
#: whose keys are the user's own (header names, log fields).  The driver
#: sections of C{storage:} are not here: their parameters are the driver
#: factory's to check.
ANY = object()
KNOWN_KEYS: dict[str, Any] = {
    "version": None,
    # One scheme; auth.token's keys are checked by the token verifier and
    # auth.access's by its policy (a plugin may have keys of its own).
    "auth": {
        "silly": {"realm": None, "service": None},
        "htpasswd": {"realm": None, "path": None},
        "basic": {"realm": None, "checker": None},
        "token": ANY,
        "tokenserver": {
            "realm": None, "service": None, "issuer": None, "algorithm": None, "key": None,
            "keydirectory": None, "expiration": None, "refreshexpiration": None,
        },
        "access": ANY,
    },
    "log": {
        "level": None,
        "formatter": None,
        "fields": ANY,
        "accesslog": {"disabled": None},
    },
    "storage": {
        "delete": {"enabled": None},
        "redirect": {"disable": None},
        "cache": {"tagttl": None, "blobdescriptor": None},
        "gc": {"enabled": None, "interval": None, "delay": None, "dryrun": None},
        # Lists of rules, checked by _checkRules.
        "tags": {"immutable": None},
        "quotas": None,
        "retention": {"policies": None},
        "maintenance": {
            "uploadpurging": {"enabled": None, "age": None, "interval": None, "dryrun": None},
            "readonly": {"enabled": None},
        },
    },
    # Endpoints are a list: txregistry.notifications.config checks each.
    "notifications": {
        "events": {"includereferences": None},
        "endpoints": None,
        "outbox": {"directory": None},
    },
    "redis": {
        "addrs": None,
        "addr": None,
        "password": None,
        "db": None,
        "dialtimeout": None,
        "readtimeout": None,
        "writetimeout": None,
        "poolsize": None,
    },
    "ui": {"enabled": None, "path": None, "sessiontimeout": None},
    # The pull-through cache: the reference's one upstream, or upstreams
    # (a list, checked entry by entry by txregistry.proxy.config).
    "proxy": {
        "remoteurl": None,
        "username": None,
        "password": None,
        "ttl": None,
        "tagttl": None,
        "timeout": None,
        "maxbytes": None,
        "tls": {"ca": None, "certificate": None, "key": None, "insecure": None},
        "upstreams": None,
    },
    # A list of {name, options, disabled} entries: each middleware's
    # factory checks its options (txregistry.storage.middleware).
    "middleware": {"storage": None},
    "http": {
        "addr": None,
        "net": None,
        "host": None,
        "prefix": None,
        "relativeurls": None,
        "secret": None,
        "headers": ANY,
        "draintimeout": None,
        "debug": {"addr": None, "prometheus": {"enabled": None, "path": None}},
        "tls": {
            "certificate": None,
            "key": None,
            "clientcas": None,
            "clientauth": None,
            "minimumtls": None,
            "ciphersuites": None,
        },
    },
    # The lists file, http and tcp are checked entry by entry by
    # txregistry.opsconfig.
    "health": {
        "storagedriver": {"enabled": None, "interval": None, "threshold": None},
        "file": None,
        "http": None,
        "tcp": None,
    },
}

DEFAULTS: dict[str, Any] = {
    "version": "0.1",
    "log": {
        "level": "info",
        "formatter": "text",
        "fields": {},
        "accesslog": {"disabled": False},
    },
    "storage": {
        "delete": {"enabled": False},
        "redirect": {"disable": False},
        "cache": {"tagttl": "1s"},
        "maintenance": {
            "uploadpurging": {
                "enabled": True,
                "age": "168h",
                "interval": "24h",
                "dryrun": False,
            },
            "readonly": {"enabled": False},
        },
    },
    "ui": {"enabled": False, "path": "/ui/", "sessiontimeout": "8h"},
    "http": {
        "addr": "127.0.0.1:5000",
        "net": "tcp",
        "host": "",
        "prefix": "/",
        "relativeurls": False,
        "secret": "",
        "headers": {"X-Content-Type-Options": ["nosniff"]},
        "draintimeout": "10s",
        "tls": {"certificate": "", "key": ""},
    },
}

#: The driver used when the configuration names none.
DEFAULT_DRIVER = ("filesystem", {"rootdirectory": "./var/registry"})

_LOG_LEVELS = ("panic", "fatal", "error", "warn", "warning", "info", "debug", "trace")
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class ConfigurationError(Exception):
    """
    The configuration is wrong; the message names the key.
    """


@dataclass(frozen=True)
class LogConfig:
    level: str
    formatter: str
    fields: dict[str, Any]
    accessLog: bool


@dataclass(frozen=True)
class UploadPurging:
    enabled: bool
    age: float
    interval: float
    dryRun: bool


@dataclass(frozen=True)
class OnlineCollection:
    """
    C{storage.gc}: garbage collection inside the running registry.

    @ivar delay: the grace window: a blob used (pushed, mounted, named by
        a manifest) this recently is never collected.
    """

    enabled: bool = False
    interval: float = 3600.0
    delay: float = 3600.0
    dryRun: bool = False


@dataclass(frozen=True)
class ImmutableTagsRule:
    """
    One C{storage.tags.immutable} entry: in repositories matching
    C{repository}, tags matching one of C{tags} never move.
    """

    repository: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class QuotaRule:
    """
    One C{storage.quotas} entry: each repository matching C{repository}
    may hold at most C{maxBytes} of blobs and C{maxTags} tags (L{None}:
    no limit).
    """

    repository: str
    maxBytes: int | None
    maxTags: int | None


@dataclass(frozen=True)
class KeepTagsRule:
    """
    One C{keeptags} entry of a retention policy.
    """

    patterns: tuple[str, ...] = ()
    mostRecentlyPushedCount: int | None = None
    pushedWithin: float | None = None
    pulledWithin: float | None = None


@dataclass(frozen=True)
class RetentionRule:
    """
    One C{storage.retention.policies} entry.
    """

    repository: str
    keepTags: tuple[KeepTagsRule, ...] = ()
    deleteUntagged: bool = False
    deleteReferrers: bool = False


@dataclass(frozen=True)
class StorageConfig:
    driver: str
    parameters: dict[str, Any]
    deleteEnabled: bool
    redirect: bool
    readOnly: bool
    uploadPurging: UploadPurging
    tagTTL: float
    gc: OnlineCollection = OnlineCollection()
    immutableTags: tuple[ImmutableTagsRule, ...] = ()
    quotas: tuple[QuotaRule, ...] = ()
    retention: tuple[RetentionRule, ...] = ()
    #: C{storage.cache.blobdescriptor}: C{inmemory} (the registry's own
    #: caches only) or C{redis} (those, and L{RedisConfig}'s server, shared
    #: by every instance).
    blobDescriptorCache: str = "inmemory"


@dataclass(frozen=True)
class RedisConfig:
    """
    The C{redis} section: one server, its database and password, the
    connection pool's size and the timeouts (seconds).
    """

    host: str
    port: int
    password: str | None
    db: int
    dialTimeout: float
    readTimeout: float
    writeTimeout: float
    poolSize: int


@dataclass(frozen=True)
class HTTPConfig:
    addr: str
    net: str
    host: str
    prefix: str
    relativeURLs: bool
    secret: str
    headers: dict[str, list[str]]
    tlsCertificate: str
    tlsKey: str
    #: C{http.debug}: the debug listener.
    debug: DebugConfig
    tlsClientCAs: tuple[str, ...] = ()
    tlsClientAuth: str = "require-and-verify-client-cert"
    tlsMinimumVersion: str = "tls1.2"
    tlsCipherSuites: tuple[str, ...] = ()
    #: Seconds in-flight requests get to finish after SIGTERM.
    drainTimeout: float = 10.0

    def endpointDescription(self) -> str:
        """
        The C{twisted.internet.endpoints} server description for C{addr},
        without TLS: HTTPS is L{txregistry.tls.serverEndpoint}'s, since a
        description cannot carry the client CAs, versions and suites.
        """
        if self.net == "unix":
            return f"unix:{_escapeEndpoint(self.addr)}"
        host, port = splitAddress(self.addr)
        parts = [str(port)]
        if host:
            parts.append(f"interface={_escapeEndpoint(host)}")
        return "tcp:" + ":".join(parts)


@dataclass(frozen=True)
class TokenServerConfig:
    """
    C{auth.tokenserver}: the registry's own token server.

    @ivar realm: the token endpoint's absolute URL for challenges; empty to
        make it from the URL each client addressed.
    @ivar key: a PEM private key to sign with; empty to use (and at the
        first start make) one in C{keyDirectory}.
    """

    service: str = "txregistry"
    issuer: str = "txregistry"
    realm: str = ""
    algorithm: str = "ES256"
    key: str = ""
    keyDirectory: str = ""
    expiration: float = 300.0
    refreshExpiration: float = 7 * 86400.0


@dataclass(frozen=True)
class AuthConfig:
    """
    The C{auth} section: one scheme (C{silly}, C{htpasswd}, C{token}) and
    its parameters, or no scheme (everyone may do everything); the
    built-in token server beside C{htpasswd}; and the access policy.
    """

    scheme: str | None
    parameters: dict[str, Any]
    tokenServer: TokenServerConfig | None = None
    access: dict[str, Any] | None = None


@dataclass(frozen=True)
class UIConfig:
    """
    The C{ui} section: the web UI.

    @ivar path: where it is served below C{http.prefix}, as C{/a/b/}.
    @ivar sessionTimeout: seconds a login lasts without a page being seen.
    """

    enabled: bool = False
    path: str = "/ui/"
    sessionTimeout: float = 8 * 3600.0


@dataclass(frozen=True)
class StorageMiddlewareEntry:
    """
    One C{middleware.storage} entry: a middleware's C{name}, whether it is
    C{disabled}, and its C{options}, which are the middleware's to check
    (L{txregistry.storage.middleware.factories}, when the driver is made,
    and by C{txregistry config check}).

    @ivar where: the entry's key, C{middleware.storage[<index>]}.
    """

    name: str
    options: dict[str, Any] | None
    disabled: bool
    where: str


@dataclass(frozen=True)
class Configuration:
    """
    A checked configuration.  C{raw} holds the whole merged document.
    """

    log: LogConfig
    storage: StorageConfig
    http: HTTPConfig
    health: HealthConfig
    raw: dict[str, Any] = field(repr=False)
    auth: AuthConfig = AuthConfig(None, {})
    redis: RedisConfig | None = None
    ui: UIConfig = UIConfig()
    notifications: "NotificationsConfig" = field(default_factory=lambda: _noNotifications())
    #: C{proxy}: the pull-through cache's upstreams (none: no cache).
    proxy: "ProxyConfig" = field(default_factory=lambda: _noProxy())
    #: C{middleware.storage}'s entries, first listed (innermost) first.
    storageMiddleware: tuple[StorageMiddlewareEntry, ...] = ()


def _noNotifications() -> "NotificationsConfig":
    from txregistry.notifications.config import NotificationsConfig

    return NotificationsConfig()


def _noProxy() -> "ProxyConfig":
    from txregistry.proxy.config import ProxyConfig

    return ProxyConfig()


def _escapeEndpoint(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def splitAddress(addr: str, key: str = "http.addr") -> tuple[str, int]:
    """
    The host (empty for every interface) and port of a C{HOST:PORT}
    address such as C{http.addr}.

    @param key: the key C{addr} is the value of, for the error.
    @raise ConfigurationError: when C{addr} is not one.
    """
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigurationError(
            f"{key}: expected HOST:PORT or :PORT with a port from 0 to 65535, got {addr!r}"
        )
    return host.strip("[]"), int(port)


def parseDuration(key: str, value: Any) -> float:
    """
    Seconds in a Go-style duration (C{"168h"}, C{"1h30m"}, C{"500ms"}) or a
    plain number of seconds.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str) and _DURATION.match(value):
        return sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(value))
    raise ConfigurationError(f"{key}: expected a duration such as 168h or 30s, got {value!r}")


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def applyEnvironment(document: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """
    Apply C{REGISTRY_SECTION_KEY_...=value} variables, as the reference
    implementation does: each C{_}-separated word names one level, matched
    case-insensitively against keys that exist (new keys are made
    lowercase), and the value is parsed as YAML.
    """
    document = copy.deepcopy(document)
    for name in sorted(environ):
        if not name.startswith("REGISTRY_") or name == "REGISTRY_CONFIGURATION_PATH":
            continue
        words = name[len("REGISTRY_") :].split("_")
        if not all(words):
            continue
        try:
            value = yaml.safe_load(environ[name])
        except yaml.YAMLError as e:
            raise ConfigurationError(f"{name}: not a valid YAML value: {e}") from None
        node = document
        for i, word in enumerate(words):
            existing = next((k for k in node if str(k).lower() == word.lower()), None)
            key = existing if existing is not None else word.lower()
            if i == len(words) - 1:
                node[key] = value
            else:
                if node is document and str(key).lower() == "storage":
                    node[key] = _expandStorage(node.get(key))
                if not isinstance(node.get(key), dict):
                    node[key] = {}
                node = node[key]
    return document


def loadConfiguration(
    path: str | None = None, environ: Mapping[str, str] | None = None
) -> Configuration:
    """
    Read, merge, override and check a configuration.

    @param path: a YAML file, or L{None} for the embedded defaults.
    @param environ: the environment to take C{REGISTRY_*} overrides from.
    @raise ConfigurationError: naming the first wrong key.
    """
    document: Any = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                document = yaml.safe_load(f) or {}
        except OSError as e:
            raise ConfigurationError(f"cannot read configuration file {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigurationError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(document, dict):
            raise ConfigurationError(f"{path}: the top level must be a mapping")
    document = applyEnvironment(document, environ if environ is not None else {})
    return checkConfiguration(document)


def checkConfiguration(document: Mapping[str, Any]) -> Configuration:
    """
    Merge C{document} over the defaults and check every key.
    """
    _expectMapping("(top level)", document)
    document = dict(document)
    storage = document.get("storage")
    if storage is not None:
        document["storage"] = storage = _expandStorage(storage)
        _expectMapping("storage", storage)
    checkKeys(document)
    merged = _merge(DEFAULTS, document)
    from txregistry.opsconfig import checkHealth

    version = merged.get("version")
    if str(version) != "0.1":
        raise ConfigurationError(f"version: must be 0.1, got {version!r}")
    from txregistry.notifications.config import checkNotifications
    from txregistry.proxy.config import checkProxy

    storageConfig = _checkStorage(merged["storage"])
    redis = _checkRedis(merged.get("redis"))
    if storageConfig.blobDescriptorCache == "redis" and redis is None:
        raise ConfigurationError(
            "storage.cache.blobdescriptor: redis needs the redis section (redis.addrs)"
        )
    return Configuration(
        log=_checkLog(merged["log"]),
        storage=storageConfig,
        http=_checkHTTP(merged["http"]),
        raw=merged,
        auth=_checkAuth(merged.get("auth")),
        health=checkHealth(merged.get("health")),
        redis=redis,
        ui=_checkUI(merged["ui"]),
        notifications=checkNotifications(
            merged.get("notifications"), storageConfig.driver, storageConfig.parameters
        ),
        proxy=checkProxy(merged.get("proxy")),
        storageMiddleware=_checkMiddleware(merged.get("middleware")),
    )


def _checkMiddleware(middleware: Any) -> tuple[StorageMiddlewareEntry, ...]:
    """
    C{middleware.storage}: a list of C{{name, options, disabled}} entries.
    """
    if middleware is None:
        return ()
    _expectMapping("middleware", middleware)
    entries = middleware.get("storage")
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise ConfigurationError(
            f"middleware.storage: expected a list of {{name, options}} entries, got {entries!r}")
    checked = []
    for index, entry in enumerate(entries):
        where = f"middleware.storage[{index}]"
        entry = _expectEntry(where, entry, {"name", "options", "disabled"})
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{where}.name: required (the middleware's name)")
        options = entry.get("options")
        if options is not None:
            options = dict(_expectMapping(f"{where}.options", options))
        checked.append(StorageMiddlewareEntry(
            name, options, _expectBool(f"{where}.disabled", entry.get("disabled", False)), where))
    return tuple(checked)


#: The first path components below C{http.prefix} that are the API's or
#: the token server's, where the UI cannot be.
_RESERVED_UI_PATHS = ("v2", "auth")
_PATH_COMPONENT = re.compile(r"^[A-Za-z0-9._~-]+$")


def _checkUI(ui: Any) -> UIConfig:
    ui = _expectMapping("ui", ui)
    path = _expectString("ui.path", ui.get("path")) or "/ui/"
    components = path.strip("/").split("/")
    if (not path.startswith("/") or not path.strip("/") or "//" in path
            or not all(_PATH_COMPONENT.match(c) and c not in (".", "..") for c in components)):
        raise ConfigurationError(f"ui.path: expected a path such as /ui/, got {path!r}")
    if components[0] in _RESERVED_UI_PATHS:
        raise ConfigurationError(f"ui.path: /{components[0]}/ is the API's, got {path!r}")
    timeout = parseDuration("ui.sessiontimeout", ui.get("sessiontimeout", "8h"))
    if timeout <= 0:
        raise ConfigurationError("ui.sessiontimeout: must be positive")
    return UIConfig(
        enabled=_expectBool("ui.enabled", ui.get("enabled", False)),
        path="/" + "/".join(components) + "/",
        sessionTimeout=timeout,
    )


def _checkRedis(redis: Any) -> RedisConfig | None:
    """
    The C{redis} section, or L{None} when there is none.  One server
    (C{addrs} with one entry, or the older C{addr}); txredisapi speaks to
    one server, not a cluster or sentinels.
    """
    if redis is None:
        return None
    _expectMapping("redis", redis)
    addrs = redis.get("addrs")
    if addrs is None and redis.get("addr") is not None:
        addrs = [redis["addr"]]
    if isinstance(addrs, str):
        addrs = [addrs]
    if not isinstance(addrs, list) or len(addrs) != 1 or not isinstance(addrs[0], str):
        raise ConfigurationError(
            "redis.addrs: expected one HOST:PORT (clusters and sentinels are not supported)"
        )
    try:
        host, port = splitAddress(addrs[0])
    except ConfigurationError:
        raise ConfigurationError(f"redis.addrs: expected HOST:PORT, got {addrs[0]!r}") from None
    password = redis.get("password")
    if password is not None and not isinstance(password, str):
        raise ConfigurationError("redis.password: expected a string")
    db = redis.get("db", 0)
    if not isinstance(db, int) or isinstance(db, bool) or db < 0:
        raise ConfigurationError(f"redis.db: expected a database number, got {db!r}")
    poolSize = redis.get("poolsize", 10)
    if not isinstance(poolSize, int) or isinstance(poolSize, bool) or poolSize < 1:
        raise ConfigurationError(f"redis.poolsize: expected at least 1, got {poolSize!r}")
    timeouts = {}
    for key in ("dialtimeout", "readtimeout", "writetimeout"):
        timeouts[key] = parseDuration(f"redis.{key}", redis.get(key, "1s"))
        if timeouts[key] <= 0:
            raise ConfigurationError(f"redis.{key}: must be more than 0")
    return RedisConfig(
        host=host or "localhost",
        port=port,
        password=password or None,
        db=db,
        dialTimeout=timeouts["dialtimeout"],
        readTimeout=timeouts["readtimeout"],
        writeTimeout=timeouts["writetimeout"],
        poolSize=poolSize,
    )


def _checkTokenServer(section: Any) -> TokenServerConfig:
    section = _expectMapping("auth.tokenserver", section or {})
    strings = {key: _expectString(f"auth.tokenserver.{key}", section.get(key))
               for key in ("realm", "service", "issuer", "algorithm", "key", "keydirectory")}
    algorithm = (strings["algorithm"] or "ES256").upper()
    if algorithm not in ("ES256", "RS256"):
        raise ConfigurationError(f"auth.tokenserver.algorithm: expected ES256 or RS256, got {strings['algorithm']!r}")
    realm = strings["realm"]
    if realm and not realm.startswith(("https://", "http://")):
        raise ConfigurationError(f"auth.tokenserver.realm: {realm!r} is not an http(s) URL")
    expiration = parseDuration("auth.tokenserver.expiration", section.get("expiration", "5m"))
    if expiration < 60:
        # oauth.md: "a token should never be returned with less than 60
        # seconds to live".
        raise ConfigurationError("auth.tokenserver.expiration: at least 60s")
    refresh = parseDuration("auth.tokenserver.refreshexpiration",
                            section.get("refreshexpiration", "168h"))
    if refresh <= 0:
        raise ConfigurationError("auth.tokenserver.refreshexpiration: must be positive")
    return TokenServerConfig(
        service=strings["service"] or "txregistry", issuer=strings["issuer"] or "txregistry",
        realm=realm, algorithm=algorithm, key=strings["key"],
        keyDirectory=strings["keydirectory"], expiration=expiration, refreshExpiration=refresh,
    )


def _checkAuth(auth: Any) -> AuthConfig:
    if auth is None:
        return AuthConfig(None, {})
    _expectMapping("auth", auth)
    auth = dict(auth)
    tokenServer = None
    if "tokenserver" in auth:
        tokenServer = _checkTokenServer(auth.pop("tokenserver"))
        if "htpasswd" not in auth and "basic" not in auth:
            raise ConfigurationError(
                "auth.tokenserver: needs auth.htpasswd or auth.basic (the users it checks)")
    access = None
    if "access" in auth:
        access = dict(_expectMapping("auth.access", auth.pop("access") or {}))
        from txregistry.auth.errors import AuthConfigurationError
        from txregistry.auth.policy import policyFromConfig

        try:
            policyFromConfig(access)
        except AuthConfigurationError as e:
            raise ConfigurationError(str(e)) from None
    schemes = sorted(auth)
    if len(schemes) != 1:
        raise ConfigurationError(
            f"auth: exactly one of silly, htpasswd, basic, token must be configured, found {', '.join(schemes) or 'none'}"
        )
    scheme = schemes[0]
    parameters = dict(_expectMapping(f"auth.{scheme}", auth[scheme] or {}))
    required = {"silly": ("realm", "service"), "htpasswd": ("realm", "path"),
                "basic": ("realm", "checker")}.get(scheme, ())
    for key in required:
        if not _expectString(f"auth.{scheme}.{key}", parameters.get(key)):
            raise ConfigurationError(f"auth.{scheme}.{key}: required")
    return AuthConfig(scheme, parameters, tokenServer, access)


def checkKeys(
    document: Mapping[Any, Any], path: str = "", known: Mapping[str, Any] = KNOWN_KEYS
) -> None:
    """
    Refuse any key txregistry does not read, so that a misspelt key (or a
    C{REGISTRY_*} variable naming one) is not silently ignored, and any key
    in L{UNSUPPORTED}, so that a feature asked for is not silently missing.

    @param path: the dotted key of C{document}, C{""} for the top level.
    @param known: L{KNOWN_KEYS} below C{path}.
    @raise ConfigurationError: naming the first such key.
    """
    for key, value in document.items():
        dotted = f"{path}.{key}" if path else str(key)
        choice = f"{dotted}={value.lower()}" if isinstance(value, str) else None
        if dotted in UNSUPPORTED:
            raise ConfigurationError(f"{dotted}: not supported yet")
        if choice in UNSUPPORTED:
            raise ConfigurationError(f"{dotted}: {value} is not supported yet")
        if key not in known:
            if path == "storage":
                # A driver section: the driver's factory checks it.
                continue
            raise ConfigurationError(f"{dotted}: unknown key")
        below = known[key]
        if isinstance(below, dict) and isinstance(value, Mapping):
            checkKeys(value, dotted, below)


def _expandStorage(storage: Any) -> Any:
    """
    The reference's scalar form, C{storage: inmemory} (or
    C{REGISTRY_STORAGE=inmemory}), is that driver with no parameters.
    """
    if isinstance(storage, str) and storage:
        return {storage: {}}
    return storage


def _expectMapping(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{key}: expected a mapping, got {value!r}")
    return value


def _expectBool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{key}: expected true or false, got {value!r}")
    return value


def _expectString(key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigurationError(f"{key}: expected a string, got {value!r}")
    return value


def _checkLog(log: Any) -> LogConfig:
    _expectMapping("log", log)
    level = _expectString("log.level", log.get("level")).lower()
    if level not in _LOG_LEVELS:
        raise ConfigurationError(
            f"log.level: expected one of {', '.join(_LOG_LEVELS)}, got {log.get('level')!r}"
        )
    formatter = _expectString("log.formatter", log.get("formatter")).lower()
    if formatter not in ("text", "json", "logstash"):
        raise ConfigurationError(
            f"log.formatter: expected text, json or logstash, got {log.get('formatter')!r}"
        )
    fields = dict(_expectMapping("log.fields", log.get("fields") or {}))
    access = _expectMapping("log.accesslog", log.get("accesslog") or {})
    disabled = _expectBool("log.accesslog.disabled", access.get("disabled", False))
    return LogConfig(level, "json" if formatter == "logstash" else formatter, fields, not disabled)


def _checkStorage(storage: Mapping[str, Any]) -> StorageConfig:
    drivers = [k for k in storage if k not in STORAGE_OPTIONS]
    if len(drivers) > 1:
        raise ConfigurationError(
            f"storage: exactly one driver may be configured, found {', '.join(sorted(drivers))}"
        )
    if drivers:
        name = drivers[0]
        parameters = storage[name] or {}
        _expectMapping(f"storage.{name}", parameters)
    else:
        name, parameters = DEFAULT_DRIVER
    delete = _expectMapping("storage.delete", storage.get("delete") or {})
    redirect = _expectMapping("storage.redirect", storage.get("redirect") or {})
    maintenance = _expectMapping("storage.maintenance", storage.get("maintenance") or {})
    purging = _expectMapping(
        "storage.maintenance.uploadpurging", maintenance.get("uploadpurging") or {}
    )
    readonly = _expectMapping(
        "storage.maintenance.readonly", maintenance.get("readonly") or {}
    )
    cache = _expectMapping("storage.cache", storage.get("cache") or {})
    # The registry's own in-process caches are what the reference calls
    # inmemory.
    descriptor = cache.get("blobdescriptor", "inmemory")
    if not isinstance(descriptor, str) or descriptor.lower() not in ("inmemory", "redis"):
        raise ConfigurationError(
            f"storage.cache.blobdescriptor: expected inmemory or redis, got {descriptor!r}"
        )
    prefix = "storage.maintenance.uploadpurging"
    gc = _expectMapping("storage.gc", storage.get("gc") or {})
    online = OnlineCollection(
        enabled=_expectBool("storage.gc.enabled", gc.get("enabled", False)),
        interval=parseDuration("storage.gc.interval", gc.get("interval", "1h")),
        delay=parseDuration("storage.gc.delay", gc.get("delay", "1h")),
        dryRun=_expectBool("storage.gc.dryrun", gc.get("dryrun", False)),
    )
    if online.enabled and online.interval <= 0:
        raise ConfigurationError("storage.gc.interval: must be positive")
    if online.enabled and online.delay < 60:
        # The grace window also bounds how long a manifest PUT may take
        # (half of it): less than a minute would fail slow pushes.
        raise ConfigurationError("storage.gc.delay: at least 1m")
    return StorageConfig(
        driver=name,
        parameters=dict(parameters),
        deleteEnabled=_expectBool("storage.delete.enabled", delete.get("enabled", False)),
        redirect=not _expectBool("storage.redirect.disable", redirect.get("disable", False)),
        readOnly=_expectBool(
            "storage.maintenance.readonly.enabled", readonly.get("enabled", False)
        ),
        uploadPurging=UploadPurging(
            enabled=_expectBool(f"{prefix}.enabled", purging.get("enabled", True)),
            age=parseDuration(f"{prefix}.age", purging.get("age", "168h")),
            interval=parseDuration(f"{prefix}.interval", purging.get("interval", "24h")),
            dryRun=_expectBool(f"{prefix}.dryrun", purging.get("dryrun", False)),
        ),
        tagTTL=parseDuration("storage.cache.tagttl", cache.get("tagttl", "1s")),
        blobDescriptorCache=descriptor.lower(),
        gc=online,
        immutableTags=_checkImmutableTags(storage.get("tags")),
        quotas=_checkQuotas(storage.get("quotas")),
        retention=_checkRetention(storage.get("retention")),
    )


_KEEP_KEYS = {"patterns", "mostrecentlypushedcount", "pushedwithin", "pulledwithin"}


def _checkRetention(retention: Any) -> tuple[RetentionRule, ...]:
    retention = _expectMapping("storage.retention", retention or {})
    rules = []
    for where, entry in _ruleList("storage.retention.policies", retention.get("policies"),
                                  {"keeptags", "deleteuntagged", "deletereferrers"}):
        keep = entry.get("keeptags") or []
        if not isinstance(keep, list):
            raise ConfigurationError(f"{where}.keeptags: expected a list of rules")
        keepRules = []
        for index, rule in enumerate(keep):
            at = f"{where}.keeptags[{index}]"
            rule = _expectEntry(at, rule, _KEEP_KEYS)
            patterns = rule.get("patterns") or []
            if isinstance(patterns, str):
                patterns = [patterns]
            if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
                raise ConfigurationError(f"{at}.patterns: expected a list of tag patterns")
            count = rule.get("mostrecentlypushedcount")
            if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
                raise ConfigurationError(f"{at}.mostrecentlypushedcount: expected a count, got {count!r}")
            keepRules.append(KeepTagsRule(
                tuple(patterns), count,
                None if rule.get("pushedwithin") is None
                else parseDuration(f"{at}.pushedwithin", rule["pushedwithin"]),
                None if rule.get("pulledwithin") is None
                else parseDuration(f"{at}.pulledwithin", rule["pulledwithin"]),
            ))
        deleteUntagged = _expectBool(f"{where}.deleteuntagged", entry.get("deleteuntagged", False))
        deleteReferrers = _expectBool(f"{where}.deletereferrers", entry.get("deletereferrers", False))
        if not keepRules and not deleteUntagged and not deleteReferrers:
            raise ConfigurationError(
                f"{where}: deletes nothing (give keeptags, deleteuntagged or deletereferrers)")
        rules.append(RetentionRule(entry["repository"], tuple(keepRules), deleteUntagged,
                                   deleteReferrers))
    return tuple(rules)


def _expectEntry(where: str, entry: Any, known: set[str]) -> Mapping[str, Any]:
    """
    C{entry}, a mapping of list entry C{where} with only C{known} keys.
    """
    entry = _expectMapping(where, entry)
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ConfigurationError(f"{where}.{unknown[0]}: unknown key")
    return entry


def _ruleList(key: str, value: Any, known: set[str]) -> list[tuple[str, Mapping[str, Any]]]:
    """
    The entries of a list of per-repository rules, each with its
    C{repository} pattern checked.
    """
    from txregistry.patterns import PatternError, compileRepositoryPattern

    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigurationError(f"{key}: expected a list of rules")
    entries = []
    for index, entry in enumerate(value):
        where = f"{key}[{index}]"
        entry = _expectEntry(where, entry, known | {"repository"})
        pattern = entry.get("repository")
        if not isinstance(pattern, str):
            raise ConfigurationError(f"{where}.repository: required (a repository pattern)")
        try:
            compileRepositoryPattern(pattern, allowAccount=False)
        except PatternError as e:
            raise ConfigurationError(f"{where}.repository: {e}") from None
        entries.append((where, entry))
    return entries


def _checkImmutableTags(tags: Any) -> tuple[ImmutableTagsRule, ...]:
    tags = _expectMapping("storage.tags", tags or {})
    rules = []
    for where, entry in _ruleList("storage.tags.immutable", tags.get("immutable"), {"tags"}):
        patterns = entry.get("tags")
        if isinstance(patterns, str):
            patterns = [patterns]
        if not patterns or not isinstance(patterns, list) or not all(
                isinstance(p, str) and p for p in patterns):
            raise ConfigurationError(f"{where}.tags: required (tag patterns such as v*)")
        rules.append(ImmutableTagsRule(entry["repository"], tuple(patterns)))
    return tuple(rules)


def parseSize(key: str, value: Any) -> int:
    """
    Bytes in a size: a number, or C{"10GiB"}, C{"500MB"}, C{"1.5TiB"}.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]?i?B)?\s*", str(value)) \
        if isinstance(value, str) else None
    if match is None:
        raise ConfigurationError(f"{key}: expected a size (bytes, or such as 10GiB), got {value!r}")
    unit = (match.group(2) or "B").upper()
    powers = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "PB": 1000**5,
              "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4, "PIB": 1024**5}
    if unit not in powers:
        raise ConfigurationError(f"{key}: unknown unit in {value!r}")
    return int(float(match.group(1)) * powers[unit])


def _checkQuotas(quotas: Any) -> tuple[QuotaRule, ...]:
    rules = []
    for where, entry in _ruleList("storage.quotas", quotas, {"maxbytes", "maxtags"}):
        maxBytes = entry.get("maxbytes")
        maxTags = entry.get("maxtags")
        if maxBytes is None and maxTags is None:
            raise ConfigurationError(f"{where}: needs maxbytes, maxtags or both")
        if maxTags is not None and (
                not isinstance(maxTags, int) or isinstance(maxTags, bool) or maxTags < 0):
            raise ConfigurationError(f"{where}.maxtags: expected a count, got {maxTags!r}")
        rules.append(QuotaRule(
            entry["repository"],
            None if maxBytes is None else parseSize(f"{where}.maxbytes", maxBytes),
            maxTags,
        ))
    return tuple(rules)


def _checkHTTP(http: Any) -> HTTPConfig:
    from txregistry.opsconfig import checkDebug

    _expectMapping("http", http)
    net = _expectString("http.net", http.get("net")) or "tcp"
    if net not in ("tcp", "unix"):
        raise ConfigurationError(f"http.net: expected tcp or unix, got {net!r}")
    addr = _expectString("http.addr", str(http.get("addr", "")))
    if net == "tcp":
        splitAddress(addr)
    elif not addr:
        raise ConfigurationError("http.addr: a unix socket needs a path")
    host = _expectString("http.host", http.get("host"))
    if host and not re.match(r"^https?://[^/\s]+/?$", host):
        raise ConfigurationError(
            f"http.host: expected a URL such as https://registry.example.com, got {host!r}"
        )
    prefix = _expectString("http.prefix", http.get("prefix")) or "/"
    if not prefix.startswith("/"):
        raise ConfigurationError(f"http.prefix: must start with /, got {prefix!r}")
    headers = _expectMapping("http.headers", http.get("headers") or {})
    checkedHeaders: dict[str, list[str]] = {}
    for name, values in headers.items():
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigurationError(f"http.headers.{name}: expected a list of strings")
        checkedHeaders[str(name)] = values
    tls = _expectMapping("http.tls", http.get("tls") or {})
    certificate = _expectString("http.tls.certificate", tls.get("certificate"))
    key = _expectString("http.tls.key", tls.get("key"))
    if bool(certificate) != bool(key):
        raise ConfigurationError("http.tls: certificate and key must be given together")
    if certificate and net == "unix":
        raise ConfigurationError("http.tls: TLS on a unix socket (http.net: unix) is not supported yet")
    clientCAs = _expectStrings("http.tls.clientcas", tls.get("clientcas"))
    clientAuth, minimum, suites = _checkTLSOptions(tls, bool(clientCAs))
    if clientCAs and not certificate:
        # Refused, not ignored: a registry told to check client
        # certificates must not serve plain HTTP to everyone.
        raise ConfigurationError(
            "http.tls.clientcas: needs http.tls.certificate and http.tls.key"
            " (without them the registry serves plain HTTP)"
        )
    return HTTPConfig(
        addr=addr,
        net=net,
        host=host.rstrip("/"),
        prefix=prefix,
        relativeURLs=_expectBool("http.relativeurls", http.get("relativeurls", False)),
        secret=_expectString("http.secret", http.get("secret")),
        headers=checkedHeaders,
        tlsCertificate=certificate,
        tlsKey=key,
        tlsClientCAs=clientCAs,
        tlsClientAuth=clientAuth,
        tlsMinimumVersion=minimum,
        tlsCipherSuites=suites,
        drainTimeout=parseDuration("http.draintimeout", http.get("draintimeout", "10s")),
        debug=checkDebug(http),
    )


def _expectStrings(key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"{key}: expected a list of file names, got {value!r}")
    return tuple(value)


def _checkTLSOptions(tls: Mapping[str, Any], clientCAs: bool) -> tuple[str, str, tuple[str, ...]]:
    """
    Check C{http.tls.clientauth}, C{minimumtls} and C{ciphersuites} against
    what L{txregistry.tls} can honour.

    @param clientCAs: whether C{http.tls.clientcas} names any file.
    @return: the client authentication mode, the minimum version and the
        cipher suites' reference names.
    """
    from txregistry import tls as _tls

    clientAuth = _expectString("http.tls.clientauth", tls.get("clientauth")).lower()
    clientAuth = clientAuth or _tls.DEFAULT_CLIENT_AUTH
    if clientAuth in _tls.REFUSED_CLIENT_AUTH:
        raise ConfigurationError(
            f"http.tls.clientauth: {clientAuth} is not supported: "
            f"{_tls.REFUSED_CLIENT_AUTH[clientAuth]}; expected "
            + " or ".join(_tls.CLIENT_AUTH)
        )
    if clientAuth not in _tls.CLIENT_AUTH:
        raise ConfigurationError(
            "http.tls.clientauth: expected " + " or ".join(_tls.CLIENT_AUTH)
            + f", got {tls.get('clientauth')!r}"
        )
    if tls.get("clientauth") and not clientCAs:
        raise ConfigurationError(
            "http.tls.clientauth: needs http.tls.clientcas"
            " (without them no client certificate is asked for)"
        )
    minimum = _expectString("http.tls.minimumtls", tls.get("minimumtls")).lower() or "tls1.2"
    if minimum in ("tls1.0", "tls1.1"):
        raise ConfigurationError(
            f"http.tls.minimumtls: {minimum} is not supported: TLS 1.0 and 1.1 are"
            " always refused; expected tls1.2 or tls1.3"
        )
    if minimum not in _tls.MINIMUM_VERSIONS:
        raise ConfigurationError(
            f"http.tls.minimumtls: expected tls1.2 or tls1.3, got {tls.get('minimumtls')!r}"
        )
    suites = tls.get("ciphersuites")
    if suites is None or suites == []:
        return clientAuth, minimum, ()
    if isinstance(suites, str):
        suites = [suites]
    if not isinstance(suites, list) or not suites or not all(isinstance(s, str) for s in suites):
        raise ConfigurationError(
            f"http.tls.ciphersuites: expected a list of cipher suite names, got {suites!r}"
        )
    for name in suites:
        if name in _tls.INSECURE_CIPHER_SUITES:
            raise ConfigurationError(
                f"http.tls.ciphersuites: {name} is not supported: it is insecure (RC4 or 3DES)"
            )
        if name not in _tls.CIPHER_SUITES:
            raise ConfigurationError(
                f"http.tls.ciphersuites: unknown cipher suite {name!r}"
                " (expected names such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
            )
    if minimum == "tls1.2" and not any(_tls.CIPHER_SUITES[name] for name in suites):
        raise ConfigurationError(
            "http.tls.ciphersuites: names no TLS 1.2 cipher suite, so TLS 1.2 could not be"
            " negotiated; add one, or set http.tls.minimumtls: tls1.3"
        )
    return clientAuth, minimum, tuple(suites)
