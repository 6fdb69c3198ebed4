# -*- test-case-name: tests.test_opsconfig -*-
"""
The operating sections of the configuration: C{http.debug} (the debug
listener and its Prometheus path) and C{health} (periodic checks).

Kept apart from L{txregistry.config}, which calls L{checkDebug} and
L{checkHealth} and keeps their results on its L{Configuration}.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from txregistry.config import ConfigurationError, parseDuration, splitAddress

#: The reference's interval when a check names none.
DEFAULT_INTERVAL = 10.0

#: The shortest interval accepted: a plain integer is nanoseconds (as in
#: the reference), and a check every few nanoseconds would keep the
#: reactor busy doing nothing else.
MINIMUM_INTERVAL = 0.1

#: The paths of the debug listener that metrics may not take.
DEBUG_PATHS = ("/debug/health", "/debug/vars")

#: Each kind of C{health} list entry: its required key and its others.
_CHECK_KEYS = {
    "file": ("file", ("interval",)),
    "http": ("uri", ("headers", "statuscode", "timeout", "interval", "threshold")),
    "tcp": ("addr", ("timeout", "interval", "threshold")),
}


@dataclass(frozen=True)
class DebugConfig:
    """
    C{http.debug}: where the debug listener listens (C{""}: nowhere) and
    whether it serves Prometheus metrics, at which path.
    """

    addr: str = ""
    prometheus: bool = False
    prometheusPath: str = "/metrics"

    def endpointDescription(self) -> str:
        """
        The C{twisted.internet.endpoints} server description for C{addr}.
        """
        host, port = splitAddress(self.addr, "http.debug.addr")
        interface = host.replace(":", "\\:")
        return f"tcp:{port}" + (f":interface={interface}" if host else "")


@dataclass(frozen=True)
class CheckConfig:
    """
    One health check.

    @ivar kind: C{storagedriver}, C{file}, C{http} or C{tcp}: which
        L{txregistry.health.interfaces.IHealthCheckFactory} builds it.
    @ivar target: what it checks (the file, the URI, the address; C{""}
        for the storage driver): with C{kind}, its name in
        C{/debug/health}.
    @ivar interval: seconds between two runs.
    @ivar threshold: how many failures in a row make it failing.
    @ivar timeout: seconds a run may take (C{http}, C{tcp}).
    @ivar headers: request headers (C{http}).
    @ivar statusCode: the expected status (C{http}).
    """

    kind: str
    target: str
    interval: float = DEFAULT_INTERVAL
    threshold: int = 1
    timeout: float = DEFAULT_INTERVAL
    headers: dict[str, list[str]] = field(default_factory=dict)
    statusCode: int = 200

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind


@dataclass(frozen=True)
class HealthConfig:
    """
    C{health}: every check configured, the storage driver's first.
    """

    checks: tuple[CheckConfig, ...] = ()


def checkDebug(http: Mapping[str, Any]) -> DebugConfig:
    """
    Check C{http.debug}.
    """
    debug = http.get("debug")
    if debug is None:
        return DebugConfig()
    _mapping("http.debug", debug)
    addr = debug.get("addr")
    if not isinstance(addr, str) or not addr:
        raise ConfigurationError("http.debug.addr: required (HOST:PORT) when http.debug is set")
    splitAddress(addr, "http.debug.addr")
    prometheus = _mapping("http.debug.prometheus", debug.get("prometheus") or {})
    enabled = prometheus.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigurationError(f"http.debug.prometheus.enabled: expected true or false, got {enabled!r}")
    path = prometheus.get("path", "/metrics") or "/metrics"
    if not isinstance(path, str) or not re.match(r"^/[A-Za-z0-9._~/-]*$", path):
        raise ConfigurationError(
            f"http.debug.prometheus.path: expected a path such as /metrics, got {path!r}"
        )
    if path.rstrip("/") in DEBUG_PATHS or path == "/":
        raise ConfigurationError(f"http.debug.prometheus.path: {path} is taken by the debug listener")
    return DebugConfig(addr, enabled, path)


def checkHealth(health: Any) -> HealthConfig:
    """
    Check C{health}: C{storagedriver} and the lists C{file}, C{http},
    C{tcp}.
    """
    if health is None:
        return HealthConfig()
    _mapping("health", health)
    checks: list[CheckConfig] = []
    driver = _mapping("health.storagedriver", health.get("storagedriver") or {})
    enabled = driver.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigurationError(f"health.storagedriver.enabled: expected true or false, got {enabled!r}")
    if enabled:
        checks.append(CheckConfig(
            "storagedriver", "",
            interval=_interval("health.storagedriver.interval", driver.get("interval")),
            threshold=_threshold("health.storagedriver.threshold", driver.get("threshold")),
        ))
    for kind, (required, optional) in _CHECK_KEYS.items():
        entries = health.get(kind) or []
        if not isinstance(entries, list):
            raise ConfigurationError(f"health.{kind}: expected a list of checks")
        for i, entry in enumerate(entries):
            checks.append(_checkEntry(f"health.{kind}[{i}]", kind, required, optional, entry))
    names = [check.name for check in checks]
    for name in names:
        if names.count(name) > 1:
            raise ConfigurationError(f"health: the check {name} is configured twice")
    return HealthConfig(tuple(checks))


def _checkEntry(
    key: str, kind: str, required: str, optional: tuple[str, ...], entry: Any
) -> CheckConfig:
    _mapping(key, entry)
    for name in entry:
        if name != required and name not in optional:
            raise ConfigurationError(f"{key}.{name}: unknown key")
    target = entry.get(required)
    if not isinstance(target, str) or not target:
        raise ConfigurationError(f"{key}.{required}: required")
    if kind == "http" and not re.match(r"^https?://[^/\s]+", target):
        raise ConfigurationError(f"{key}.uri: expected an http or https URL, got {target!r}")
    if kind == "tcp":
        splitAddress(target, f"{key}.addr")
    interval = _interval(f"{key}.interval", entry.get("interval"))
    timeout = entry.get("timeout")
    headers = _headers(f"{key}.headers", entry.get("headers") or {})
    status = entry.get("statuscode", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ConfigurationError(f"{key}.statuscode: expected an HTTP status, got {status!r}")
    return CheckConfig(
        kind, target,
        interval=interval,
        threshold=_threshold(f"{key}.threshold", entry.get("threshold")),
        # Never unbounded (the reference's default): a server that never
        # answers is a failing check, not a check that never ends.
        timeout=interval if timeout is None else _positiveDuration(f"{key}.timeout", timeout),
        headers=headers,
        statusCode=status,
    )


def healthDuration(key: str, value: Any) -> float:
    """
    Seconds in a health duration: a Go-style duration (C{10s}), or, as the
    specification says, a plain integer of nanoseconds.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigurationError(f"{key}: expected a duration such as 10s, got {value!r}")
        return value / 1e9
    return parseDuration(key, value)


def _positiveDuration(key: str, value: Any) -> float:
    seconds = healthDuration(key, value)
    if seconds <= 0:
        raise ConfigurationError(f"{key}: must be longer than 0, got {value!r}")
    return seconds


def _interval(key: str, value: Any) -> float:
    if value is None or value == 0:
        return DEFAULT_INTERVAL
    seconds = healthDuration(key, value)
    if seconds < MINIMUM_INTERVAL:
        raise ConfigurationError(
            f"{key}: {value!r} is too short (at least 100ms; a plain number is nanoseconds)"
        )
    return seconds


def _threshold(key: str, value: Any) -> int:
    if value is None or value == 0:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{key}: expected a positive integer, got {value!r}")
    return value


def _headers(key: str, headers: Any) -> dict[str, list[str]]:
    _mapping(key, headers)
    checked: dict[str, list[str]] = {}
    for name, values in headers.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            # The reference's rule: values are always lists.
            raise ConfigurationError(f"{key}.{name}: expected a list of strings")
        checked[str(name)] = values
    return checked


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{key}: expected a mapping, got {value!r}")
    return value
