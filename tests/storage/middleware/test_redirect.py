"""
The C{redirect} middleware: every direct URL is C{baseurl} followed by
the storage path, whatever the driver under it.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from txregistry.storage.errors import DriverConfigurationError
from txregistry.storage.inmemory import InMemoryDriver
from txregistry.storage.middleware import redirect

WHERE = "middleware.storage[0]"


def middleware(baseurl: str) -> Any:
    return redirect.wrap(InMemoryDriver(), redirect.parse({"baseurl": baseurl}, WHERE), None, WHERE)


class RedirectTests(TestCase):
    async def test_baseURLThenPath(self) -> None:
        """
        Over a driver with no URLs of its own, the URL is the base URL (its
        port and path kept) followed by the storage path, for GET and HEAD.
        """
        driver = middleware("https://blobs.example.com:5443/mirror/")
        path = "/docker/registry/v2/blobs/sha256/ab/abcd/data"
        for method in ("GET", "HEAD"):
            self.assertEqual(await driver.urlFor(path, method),
                             "https://blobs.example.com:5443/mirror" + path)
        self.assertEqual(await middleware("http://cdn.example").urlFor("/a/b"), "http://cdn.example/a/b")

    def test_refused(self) -> None:
        """
        A base URL without an http(s) scheme or a host, or with a query,
        and any unknown option, stop the start naming the option.
        """
        cases: dict[str, Any] = {
            "options.baseurl: required": {},
            "options.baseurl: expected a URL": {"baseurl": "blobs.example.com"},
            "options.baseurl: expected a URL such": {"baseurl": "ftp://blobs.example.com"},
            "options.baseurl: expected SCHEME://HOST[/PATH] only": {"baseurl": "https://b.example/?x=1"},
            "options.baseurl: expected a string": {"baseurl": 5},
            "options.host: unknown option (known: baseurl)": {"baseurl": "https://b.example", "host": "x"},
        }
        for message, options in cases.items():
            e = self.assertRaises(DriverConfigurationError, redirect.parse, options, WHERE)
            self.assertTrue(str(e).startswith(f"{WHERE}.{message}"), str(e))
        e = self.assertRaises(DriverConfigurationError, redirect.parse, ["baseurl"], WHERE)
        self.assertTrue(str(e).startswith(f"{WHERE}.options: expected a mapping"), str(e))
