# -*- test-case-name: tests.notifications.test_config -*-
"""
The C{notifications:} section: endpoints in the reference's shape, with
txregistry's additions (repository filters, a signing secret, the
outbox's bounds and directory), checked key by key.

Every mistake is a L{ConfigurationError} naming the key, as everywhere in
L{txregistry.config}, so that a registry told to notify never starts
without doing it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from txregistry.config import ConfigurationError, parseDuration

__all__ = [
    "EndpointConfig",
    "NotificationsConfig",
    "checkNotifications",
    "ENDPOINT_KEYS",
    "MAX_BACKOFF",
]

#: The keys one entry of C{notifications.endpoints} may have; C{ignore} and
#: C{only} are mappings of their own.
ENDPOINT_KEYS = frozenset({
    "name", "disabled", "url", "headers", "timeout", "threshold", "backoff",
    "ignoredmediatypes", "ignore", "only", "secret", "maxbytes", "maxage",
})

#: The longest wait between two attempts at one endpoint, however many
#: failures came before (unless C{backoff} itself is longer).
MAX_BACKOFF = 300.0

#: The smallest C{maxbytes}: a few events' worth, so that the bound is
#: still a journal and not a dead-letter file with extra steps.
MIN_MAXBYTES = 16 * 1024

_SIZE = re.compile(r"^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$", re.I)
_SIZE_UNITS = {
    None: 1, "b": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024 ** 2, "mb": 1000 ** 2, "mib": 1024 ** 2,
    "g": 1024 ** 3, "gb": 1000 ** 3, "gib": 1024 ** 3,
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class EndpointConfig:
    """
    One endpoint: where its events go, how, and which it wants.

    @ivar timeout: seconds an attempt may take, headers and body.
    @ivar threshold: failures in a row retried at once before backing off.
    @ivar backoff: the first wait after C{threshold} failures; it doubles
        with each further failure up to L{MAX_BACKOFF}.
    @ivar secret: the Standard Webhooks signing key (decoded), or L{None}.
    @ivar maxBytes: the most journal bytes kept undelivered for it.
    @ivar maxAge: the oldest (seconds) an undelivered event may get;
        0 for no limit.
    """

    name: str
    url: str
    disabled: bool = False
    headers: dict[str, list[str]] = field(default_factory=dict)
    timeout: float = 5.0
    threshold: int = 10
    backoff: float = 1.0
    ignoredMediaTypes: frozenset[str] = frozenset()
    ignoredActions: frozenset[str] = frozenset()
    ignoredRepositories: tuple[str, ...] = ()
    onlyRepositories: tuple[str, ...] = ()
    secret: bytes | None = field(default=None, repr=False)
    maxBytes: int = 1024 ** 3
    maxAge: float = 7 * 24 * 3600.0
    _ignored: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _only: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ignored", _globs(self.ignoredRepositories))
        object.__setattr__(self, "_only", _globs(self.onlyRepositories))

    @property
    def filtering(self) -> bool:
        """
        Whether any event could be refused by L{accepts}.
        """
        return bool(self.ignoredActions or self.ignoredMediaTypes or self._ignored or self._only)

    def accepts(self, event: Mapping[str, Any]) -> bool:
        """
        Whether C{event} is one this endpoint wants: not an ignored action
        or media type, and from a repository its filters let through.
        """
        return self.wants(event.get("action"), event.get("target") or {})

    def wants(self, action: Any, target: Mapping[str, Any]) -> bool:
        """
        L{accepts} for an event of C{action} about C{target}.
        """
        if action in self.ignoredActions:
            return False
        if target.get("mediaType") in self.ignoredMediaTypes:
            return False
        repository = str(target.get("repository", ""))
        ignored, only = self._ignored, self._only
        if ignored is not None and ignored.fullmatch(repository):
            return False
        return only is None or only.fullmatch(repository) is not None

    def retryDelay(self, failures: int) -> float:
        """
        How long to wait after C{failures} failures in a row: nothing
        below C{threshold}, then C{backoff} doubling per failure, capped
        at L{MAX_BACKOFF} (or C{backoff}, if longer).
        """
        if failures < self.threshold:
            return 0.0
        exponent = min(failures - self.threshold, 32)
        return min(self.backoff * 2 ** exponent, max(MAX_BACKOFF, self.backoff))


@dataclass(frozen=True)
class NotificationsConfig:
    """
    The checked C{notifications:} section.

    @ivar endpoints: every configured endpoint, disabled ones included.
    @ivar outbox: the journal's directory, or C{""} when no endpoint is
        enabled (nothing is journaled then).
    """

    endpoints: tuple[EndpointConfig, ...] = ()
    includeReferences: bool = False
    outbox: str = ""

    @property
    def enabled(self) -> tuple[EndpointConfig, ...]:
        return tuple(e for e in self.endpoints if not e.disabled)


def globPattern(glob: str) -> str:
    """
    A regular expression for a repository glob: C{*} is any run of
    characters within one path component, C{**} any run across them,
    C{?} one character other than C{/}.
    """
    parts = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            parts.append(".*")
            i += 2
        elif glob[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(glob[i]))
            i += 1
    return "".join(parts)


def _globs(globs: tuple[str, ...]) -> re.Pattern[str] | None:
    if not globs:
        return None
    return re.compile("|".join(f"(?:{globPattern(g)})" for g in globs))


def parseSize(key: str, value: Any) -> int:
    """
    Bytes in C{value}: an integer, or a number with a unit (C{64KiB},
    C{1GiB}, C{500MB}; C{k}, C{m}, C{g} are binary).
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ConfigurationError(f"{key}: expected a size such as 1GiB or 65536, got {value!r}")
    unit = match.group(2).lower() if match.group(2) else None
    return int(match.group(1)) * _SIZE_UNITS[unit]


def parseSecret(key: str, value: Any) -> bytes:
    """
    A Standard Webhooks secret: base64, optionally prefixed C{whsec_}
    (what the Standard Webhooks libraries generate and accept).
    """
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{key}: expected a base64 secret such as whsec_..., got {value!r}")
    encoded = value[len("whsec_"):] if value.startswith("whsec_") else value
    try:
        secret = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{key}: not base64 (expected whsec_ and base64, as Standard Webhooks secrets are)") from None
    if len(secret) < 16:
        raise ConfigurationError(f"{key}: too short: a secret needs at least 16 bytes (24 base64 characters)")
    return secret


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"{key}: expected a list of strings, got {value!r}")
    return tuple(value)


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{key}: expected a mapping, got {value!r}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{key}: expected true or false, got {value!r}")
    return value


def _positiveDuration(key: str, value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise ConfigurationError(f"{key}: must not be negative, got {value!r}")
    if isinstance(value, str) and value.startswith("-"):
        raise ConfigurationError(f"{key}: must not be negative, got {value!r}")
    return parseDuration(key, value)


def _checkEndpoint(key: str, entry: Any) -> EndpointConfig:
    entry = _mapping(key, entry)
    for name in entry:
        if name not in ENDPOINT_KEYS:
            raise ConfigurationError(f"{key}.{name}: unknown key")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"{key}.name: required: letters, digits, '.', '_' or '-' (it names the"
            f" endpoint's files in the outbox), got {name!r}"
        )
    url = entry.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{key}.url: required (endpoint {name})")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{key}.url: expected an http or https URL, got {url!r}")
    headers: dict[str, list[str]] = {}
    for header, values in _mapping(f"{key}.headers", entry.get("headers")).items():
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigurationError(f"{key}.headers.{header}: expected a list of strings")
        headers[str(header)] = list(values)
    threshold = entry.get("threshold", 10)
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
        raise ConfigurationError(f"{key}.threshold: expected a whole number >= 0, got {threshold!r}")
    timeout = _positiveDuration(f"{key}.timeout", entry.get("timeout", "5s"))
    if timeout == 0:
        raise ConfigurationError(f"{key}.timeout: must be more than 0")
    ignore = _mapping(f"{key}.ignore", entry.get("ignore"))
    for sub in ignore:
        if sub not in ("mediatypes", "actions", "repositories"):
            raise ConfigurationError(f"{key}.ignore.{sub}: unknown key")
    only = _mapping(f"{key}.only", entry.get("only"))
    for sub in only:
        if sub != "repositories":
            raise ConfigurationError(f"{key}.only.{sub}: unknown key")
    actions = _strings(f"{key}.ignore.actions", ignore.get("actions"))
    for action in actions:
        if action not in ("push", "pull", "mount", "delete"):
            raise ConfigurationError(
                f"{key}.ignore.actions: expected push, pull, mount or delete, got {action!r}"
            )
    maxBytes = parseSize(f"{key}.maxbytes", entry.get("maxbytes", "1GiB"))
    if maxBytes < MIN_MAXBYTES:
        raise ConfigurationError(f"{key}.maxbytes: must be at least {MIN_MAXBYTES} (16KiB), got {maxBytes}")
    secret = entry.get("secret")
    return EndpointConfig(
        name=name,
        url=url,
        disabled=_bool(f"{key}.disabled", entry.get("disabled", False)),
        headers=headers,
        timeout=timeout,
        threshold=threshold,
        backoff=_positiveDuration(f"{key}.backoff", entry.get("backoff", "1s")),
        ignoredMediaTypes=frozenset(
            _strings(f"{key}.ignoredmediatypes", entry.get("ignoredmediatypes"))
            + _strings(f"{key}.ignore.mediatypes", ignore.get("mediatypes"))
        ),
        ignoredActions=frozenset(actions),
        ignoredRepositories=_strings(f"{key}.ignore.repositories", ignore.get("repositories")),
        onlyRepositories=_strings(f"{key}.only.repositories", only.get("repositories")),
        secret=None if secret in (None, "") else parseSecret(f"{key}.secret", secret),
        maxBytes=maxBytes,
        maxAge=_positiveDuration(f"{key}.maxage", entry.get("maxage", "168h")),
    )


def defaultOutbox(driver: str, parameters: Mapping[str, Any]) -> str:
    """
    Where the outbox goes when C{notifications.outbox.directory} is not
    set: beside a filesystem storage root (C{<root>-outbox}); with any
    other driver there is no local directory to be beside, so C{""}.
    """
    if driver != "filesystem":
        return ""
    root = str(parameters.get("rootdirectory") or "./var/registry").rstrip("/") or "/"
    return os.path.join(os.path.dirname(root) or ".", os.path.basename(root) + "-outbox")


def checkNotifications(
    section: Any, driver: str, parameters: Mapping[str, Any]
) -> NotificationsConfig:
    """
    Check C{notifications:}.

    @param driver: the storage driver's name, and C{parameters} its
        parameters: they decide the outbox's default directory.
    @raise ConfigurationError: naming the first wrong key.
    """
    if section is None:
        return NotificationsConfig()
    section = _mapping("notifications", section)
    events = _mapping("notifications.events", section.get("events"))
    includeReferences = _bool(
        "notifications.events.includereferences", events.get("includereferences", False)
    )
    entries = section.get("endpoints") or []
    if not isinstance(entries, list):
        raise ConfigurationError(f"notifications.endpoints: expected a list, got {entries!r}")
    endpoints = tuple(
        _checkEndpoint(f"notifications.endpoints[{i}]", entry) for i, entry in enumerate(entries)
    )
    seen: set[str] = set()
    for i, endpoint in enumerate(endpoints):
        if endpoint.name.lower() in seen:
            raise ConfigurationError(
                f"notifications.endpoints[{i}].name: {endpoint.name!r} names two endpoints"
            )
        seen.add(endpoint.name.lower())
    outbox = _mapping("notifications.outbox", section.get("outbox"))
    directory = outbox.get("directory") or ""
    if not isinstance(directory, str):
        raise ConfigurationError(
            f"notifications.outbox.directory: expected a directory path, got {directory!r}"
        )
    if not any(not e.disabled for e in endpoints):
        return NotificationsConfig(endpoints, includeReferences, "")
    directory = directory or defaultOutbox(driver, parameters)
    if not directory:
        raise ConfigurationError(
            "notifications.outbox.directory: required with the "
            f"{driver} storage driver (the outbox is a local directory; by default it"
            " is beside a filesystem root)"
        )
    return NotificationsConfig(endpoints, includeReferences, directory)
