# -*- test-case-name: tests.storage.middleware.test_redirect -*-
"""
The C{redirect} storage middleware: blob downloads go to C{baseurl}
followed by the blob's storage path, whatever the driver: a web server or
a CDN that serves the storage (a filesystem root exported by nginx, a
bucket behind a proxy) takes the download off the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlunsplit

from twisted.internet.defer import Deferred, succeed

from txregistry.storage.interfaces import IStorageDriver
from txregistry.storage.middleware.forwarding import ForwardingDriver
from txregistry.storage.middleware.options import Options

__all__ = ["RedirectMiddleware", "RedirectOptions", "parse", "wrap"]


@dataclass(frozen=True)
class RedirectOptions:
    """
    C{baseurl}, split: every URL is C{scheme://host<basePath><path>}.
    """

    scheme: str
    host: str
    basePath: str


def parse(options: Any, where: str) -> RedirectOptions:
    """
    @raise DriverConfigurationError: unless C{baseurl} is an http(s) URL
        with a host.
    """
    checked = Options(options, where, {"baseurl"})
    url = checked.url("baseurl", required=True)
    assert url is not None
    if url.query or url.fragment:
        raise checked.error("baseurl", f"expected SCHEME://HOST[/PATH] only, got {url.geturl()!r}")
    return RedirectOptions(url.scheme.lower(), url.netloc, url.path.rstrip("/"))


class RedirectMiddleware(ForwardingDriver):
    """
    Direct URLs under a base URL, for every client and method.
    """

    def __init__(self, inner: IStorageDriver, options: RedirectOptions) -> None:
        super().__init__(inner)
        self.options = options

    def urlForClient(
        self, path: str, method: str = "GET", expiry: float = 1200.0, client: str | None = None
    ) -> Deferred[str | None]:
        o = self.options
        return succeed(urlunsplit((o.scheme, o.host, o.basePath + quote(path), "", "")))


def wrap(driver: IStorageDriver, options: RedirectOptions, reactor: Any, where: str) -> IStorageDriver:
    return RedirectMiddleware(driver, options)
