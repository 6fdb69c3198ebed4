# -*- test-case-name: tests.storage.middleware.test_rewrite -*-
"""
The C{rewrite} storage middleware (storage-middleware-rewrite.md): the
driver's direct URL with its scheme, its host or the start of its path
replaced, so that a download goes to a CDN in front of the store (Azure
CDN before a container, a proxy before a bucket) with the store's own
signature kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twisted.internet.defer import Deferred

from txregistry.storage.interfaces import IStorageDriver
from txregistry.storage.middleware.forwarding import ForwardingDriver, directURL
from txregistry.storage.middleware.options import Options

__all__ = ["RewriteMiddleware", "RewriteOptions", "parse", "wrap"]


@dataclass(frozen=True)
class RewriteOptions:
    """
    What to change; C{""} changes nothing of that part.
    """

    scheme: str = ""
    host: str = ""
    trimPathPrefix: str = ""


def parse(options: Any, where: str) -> RewriteOptions:
    """
    @raise DriverConfigurationError: for a scheme or host that cannot be
        one, a prefix that no path starts with, or no change at all.
    """
    checked = Options(options, where, {"scheme", "host", "trimpathprefix"})
    host = checked.string("host")
    if host and (urlsplit(f"//{host}").netloc != host or "/" in host or "@" in host):
        raise checked.error("host", f"expected HOST or HOST:PORT, got {host!r}")
    prefix = checked.string("trimpathprefix")
    if prefix and not prefix.startswith("/"):
        # A URL's path starts with a slash: this prefix would trim nothing.
        raise checked.error("trimpathprefix", f"must start with /, got {prefix!r}")
    rewrite = RewriteOptions(checked.scheme("scheme").lower(), host, prefix)
    if rewrite == RewriteOptions():
        raise checked.error("scheme", "rewrite needs scheme, host or trimpathprefix (it would change nothing)")
    return rewrite


class RewriteMiddleware(ForwardingDriver):
    """
    The inner driver's direct URLs, rewritten; no URL when it has none.
    """

    def __init__(self, inner: IStorageDriver, options: RewriteOptions) -> None:
        super().__init__(inner)
        self.options = options

    def urlForClient(
        self, path: str, method: str = "GET", expiry: float = 1200.0, client: str | None = None
    ) -> Deferred[str | None]:
        return directURL(self.inner, path, method, expiry, client).addCallback(self.rewrite)

    def rewrite(self, url: str | None) -> str | None:
        """
        C{url} as the options say (its query, which may hold the store's
        signature, kept as it is).
        """
        if url is None:
            return None
        o = self.options
        parts = urlsplit(url)
        path = parts.path
        if o.trimPathPrefix and path.startswith(o.trimPathPrefix):
            path = path[len(o.trimPathPrefix):]
        return urlunsplit((o.scheme or parts.scheme, o.host or parts.netloc, path,
                           parts.query, parts.fragment))


def wrap(driver: IStorageDriver, options: RewriteOptions, reactor: Any, where: str) -> IStorageDriver:
    return RewriteMiddleware(driver, options)
