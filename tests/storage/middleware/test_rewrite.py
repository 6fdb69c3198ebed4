"""
The C{rewrite} middleware (storage-middleware-rewrite.md): the driver's
URL with its scheme, host or path prefix replaced, its query (the store's
signature) kept.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import TestCase

from txregistry.storage.errors import DriverConfigurationError
from txregistry.storage.inmemory import InMemoryDriver
from txregistry.storage.middleware import redirect, rewrite

WHERE = "middleware.storage[1]"


class _SigningDriver(InMemoryDriver):
    def urlFor(self, path: str, method: str = "GET", expiry: float = 1200.0) -> Deferred[str | None]:
        return succeed(f"https://account.blob.example:8443/container-name{path}?sig=a%2Bb&se=1")


def middleware(inner: Any = None, **options: Any) -> Any:
    inner = _SigningDriver() if inner is None else inner
    return rewrite.wrap(inner, rewrite.parse(options, WHERE), None, WHERE)


class RewriteTests(TestCase):
    async def test_rewrites(self) -> None:
        """
        The reference's example: the store's URL moved to the CDN, the
        container's prefix trimmed, the signature as it was.
        """
        driver = middleware(scheme="http", host="example-cdn-endpoint.azurefd.net",
                            trimpathprefix="/container-name")
        self.assertEqual(await driver.urlFor("/docker/x"),
                         "http://example-cdn-endpoint.azurefd.net/docker/x?sig=a%2Bb&se=1")

    async def test_eachPartAlone(self) -> None:
        self.assertEqual(await middleware(host="cdn.example").urlFor("/a"),
                         "https://cdn.example/container-name/a?sig=a%2Bb&se=1")
        self.assertEqual(await middleware(scheme="http").urlFor("/a"),
                         "http://account.blob.example:8443/container-name/a?sig=a%2Bb&se=1")
        self.assertEqual(await middleware(trimpathprefix="/container-name").urlFor("/a"),
                         "https://account.blob.example:8443/a?sig=a%2Bb&se=1")

    async def test_prefixThatDoesNotMatch(self) -> None:
        """
        A path that does not start with the prefix keeps its path.
        """
        self.assertEqual(await middleware(trimpathprefix="/other").urlFor("/a"),
                         "https://account.blob.example:8443/container-name/a?sig=a%2Bb&se=1")

    async def test_noURLStaysNone(self) -> None:
        """
        Over a driver that serves its content itself, there is nothing to
        rewrite: the registry streams the blob.
        """
        self.assertIsNone(await middleware(InMemoryDriver(), host="cdn.example").urlFor("/a"))

    async def test_afterRedirect(self) -> None:
        """
        Listed after C{redirect}, it rewrites redirect's URLs.
        """
        where = "middleware.storage[0]"
        inner = redirect.wrap(InMemoryDriver(), redirect.parse({"baseurl": "https://origin.example/root"}, where),
                              None, where)
        driver = middleware(inner, host="cdn.example", trimpathprefix="/root")
        self.assertEqual(await driver.urlFor("/docker/x"), "https://cdn.example/docker/x")

    def test_refused(self) -> None:
        cases: dict[str, Any] = {
            "options.scheme: rewrite needs scheme, host or trimpathprefix": {},
            "options.scheme: expected a URL scheme": {"scheme": "ht tp"},
            "options.host: expected HOST or HOST:PORT": {"host": "cdn.example/path"},
            "options.host: expected a string": {"host": 5},
            "options.trimpathprefix: must start with /": {"trimpathprefix": "container-name"},
            "options.trimprefix: unknown option (known: host, scheme, trimpathprefix)": {"trimprefix": "/x"},
        }
        for message, options in cases.items():
            e = self.assertRaises(DriverConfigurationError, rewrite.parse, options, WHERE)
            self.assertTrue(str(e).startswith(f"{WHERE}.{message}"), str(e))
