# -*- test-case-name: tests.proxy.test_config -*-
"""
The C{proxy:} section: the reference's one upstream (C{remoteurl},
C{username}, C{password}, C{ttl}), or txregistry's several
(C{upstreams}, each under a repository prefix), checked key by key.

Every mistake is a L{ConfigurationError} naming the key, as everywhere in
L{txregistry.config}: a registry told to mirror never starts mirroring
something else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from txregistry.config import ConfigurationError, parseDuration, parseSize

__all__ = ["ProxyConfig", "UpstreamConfig", "checkProxy", "UPSTREAM_KEYS", "DOCKER_HUB_HOSTS"]

#: The keys one entry of C{proxy.upstreams} may have.
UPSTREAM_KEYS = frozenset({
    "prefix", "url", "username", "password", "ttl", "tagttl", "timeout", "tls", "maxbytes",
})

#: The keys of an entry's C{tls} mapping.
TLS_KEYS = frozenset({"ca", "certificate", "key", "insecure"})

#: Docker Hub's registry host names: a bare name there means C{library/<name>}.
DOCKER_HUB_HOSTS = frozenset({"registry-1.docker.io", "index.docker.io", "docker.io"})

#: One path component of a prefix: a registry host (with its port) or a
#: repository name component.
_COMPONENT = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?$")

#: The reference's default expiry: a week.
DEFAULT_TTL = 168 * 3600.0


@dataclass(frozen=True)
class UpstreamConfig:
    """
    One upstream registry.

    @ivar prefix: the repositories it serves: C{<prefix>/<name>} is its
        C{<name>}; C{""} (the reference's C{remoteurl}) for every
        repository.
    @ivar url: C{scheme://host[:port]}, no path.
    @ivar ttl: seconds cached content lives after its last pull (0: for
        ever); expired content goes at the next collection.
    @ivar tagTTL: seconds a tag's digest is trusted before it is checked
        again with a C{HEAD} (0: every pull checks).
    @ivar timeout: seconds an upstream request may take to answer; after
        it the upstream counts as down.
    @ivar dockerHub: whether a bare name means C{library/<name>} (a
        C{docker.io} prefix, or a Docker Hub URL).
    @ivar maxBytes: the most bytes its cached repositories may hold; past
        it content is served without being stored (L{None}: no limit).
    """

    prefix: str
    url: str
    username: str = ""
    password: str = ""
    ttl: float = DEFAULT_TTL
    tagTTL: float = 0.0
    timeout: float = 10.0
    caFile: str = ""
    certFile: str = ""
    keyFile: str = ""
    insecure: bool = False
    dockerHub: bool = False
    maxBytes: int | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def plainHTTP(self) -> bool:
        return self.url.startswith("http://")

    @property
    def label(self) -> str:
        """
        How logs and metrics name it: its prefix, or its host.
        """
        return self.prefix or self.host


@dataclass(frozen=True)
class ProxyConfig:
    """
    The C{proxy} section.

    @ivar reference: the reference's mode (C{remoteurl}): every repository
        is the one upstream's, and every push is refused.
    """

    upstreams: tuple[UpstreamConfig, ...] = ()
    reference: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.upstreams)


def _string(key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigurationError(f"{key}: expected a string, got {value!r}")
    return value


def _url(key: str, value: Any) -> str:
    url = _string(key, value)
    if not url:
        raise ConfigurationError(f"{key}: required (the upstream's URL, such as https://ghcr.io)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/") \
            or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigurationError(
            f"{key}: expected scheme://host[:port] with no path, such as "
            f"https://registry-1.docker.io, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _prefix(key: str, value: Any) -> str:
    prefix = _string(key, value).strip()
    if not prefix or prefix.startswith("/") or prefix.endswith("/") or not all(
            _COMPONENT.match(c) for c in prefix.split("/")):
        raise ConfigurationError(
            f"{key}: expected a repository prefix such as docker.io or mirror.internal/team, "
            f"got {value!r}")
    return prefix


def _upstream(where: str, entry: Mapping[str, Any], prefix: str) -> UpstreamConfig:
    url = _url(f"{where}.url" if prefix else "proxy.remoteurl",
               entry.get("url") if prefix else entry.get("remoteurl"))
    username = _string(f"{where}.username", entry.get("username"))
    password = _string(f"{where}.password", entry.get("password"))
    if bool(username) != bool(password):
        raise ConfigurationError(f"{where}: username and password must be given together")
    ttl = parseDuration(f"{where}.ttl", entry.get("ttl", "168h"))
    tagTTL = parseDuration(f"{where}.tagttl", entry.get("tagttl", 0))
    timeout = parseDuration(f"{where}.timeout", entry.get("timeout", "10s"))
    if timeout <= 0:
        raise ConfigurationError(f"{where}.timeout: must be positive")
    tls = entry.get("tls") or {}
    if not isinstance(tls, Mapping):
        raise ConfigurationError(f"{where}.tls: expected a mapping")
    unknown = sorted(set(tls) - TLS_KEYS)
    if unknown:
        raise ConfigurationError(f"{where}.tls.{unknown[0]}: unknown key")
    files = {}
    for name in ("ca", "certificate", "key"):
        path = _string(f"{where}.tls.{name}", tls.get(name))
        if path and not os.path.isfile(path):
            raise ConfigurationError(f"{where}.tls.{name}: no such file {path!r}")
        files[name] = path
    if files["key"] and not files["certificate"]:
        raise ConfigurationError(f"{where}.tls.key: needs {where}.tls.certificate")
    insecure = tls.get("insecure", False)
    if not isinstance(insecure, bool):
        raise ConfigurationError(f"{where}.tls.insecure: expected true or false")
    if url.startswith("http://") and (files["ca"] or files["certificate"] or insecure):
        raise ConfigurationError(f"{where}.tls: the URL is plain http://")
    dockerHub = prefix == "docker.io" or urlsplit(url).hostname in DOCKER_HUB_HOSTS
    maxBytes = entry.get("maxbytes")
    if maxBytes is not None:
        maxBytes = parseSize(f"{where}.maxbytes", maxBytes)
    return UpstreamConfig(
        prefix=prefix, url=url, username=username, password=password, ttl=ttl, tagTTL=tagTTL,
        timeout=timeout, caFile=files["ca"], certFile=files["certificate"], keyFile=files["key"],
        insecure=insecure, dockerHub=dockerHub, maxBytes=maxBytes,
    )


def checkProxy(section: Any) -> ProxyConfig:
    """
    The C{proxy} section (L{None}: no proxy).

    @raise ConfigurationError: naming the first wrong key.
    """
    if section is None:
        return ProxyConfig()
    if not isinstance(section, Mapping):
        raise ConfigurationError("proxy: expected a mapping")
    upstreams = section.get("upstreams")
    if section.get("remoteurl") is not None:
        if upstreams is not None:
            raise ConfigurationError(
                "proxy.upstreams: give proxy.remoteurl (one upstream for every repository) "
                "or proxy.upstreams (each under a prefix), not both")
        return ProxyConfig((_upstream("proxy", section, ""),), reference=True)
    for key in ("username", "password", "ttl", "tagttl", "timeout", "tls", "maxbytes"):
        if key in section:
            raise ConfigurationError(f"proxy.{key}: needs proxy.remoteurl (or set it per upstream)")
    if upstreams is None:
        raise ConfigurationError("proxy: needs remoteurl or upstreams")
    if not isinstance(upstreams, list) or not upstreams:
        raise ConfigurationError("proxy.upstreams: expected a list of upstreams")
    checked: list[UpstreamConfig] = []
    for index, entry in enumerate(upstreams):
        where = f"proxy.upstreams[{index}]"
        if not isinstance(entry, Mapping):
            raise ConfigurationError(f"{where}: expected a mapping")
        unknown = sorted(set(entry) - UPSTREAM_KEYS)
        if unknown:
            raise ConfigurationError(f"{where}.{unknown[0]}: unknown key")
        prefix = _prefix(f"{where}.prefix", entry.get("prefix"))
        for other in checked:
            if prefix == other.prefix or prefix.startswith(other.prefix + "/") \
                    or other.prefix.startswith(prefix + "/"):
                raise ConfigurationError(
                    f"{where}.prefix: {prefix!r} overlaps the prefix {other.prefix!r}")
        checked.append(_upstream(where, entry, prefix))
    return ProxyConfig(tuple(checked))
