"""
L{AWSIPRanges}: AWS's published ranges, read from a file or a URL and read
again every C{updatefrequency}; a failed read keeps what was read before.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.storage.middleware.ranges import document, writeRanges
from txregistry.storage.middleware.awsips import AWSIPRanges, RangeTable, isLocal, parseRanges


class RangeTableTests(TestCase):
    def test_contains(self) -> None:
        """
        IPv4 and IPv6 networks, overlapping or adjacent, with their edges;
        an IPv4-mapped address counts as IPv4; what is not an address is
        never inside.
        """
        import ipaddress

        table = RangeTable([ipaddress.ip_network(n) for n in (
            "3.5.140.0/22", "3.5.142.0/23", "52.94.76.0/22", "2600:1f00::/24")])
        for address in ("3.5.140.0", "3.5.143.255", "52.94.79.255", "2600:1f00::1",
                        "::ffff:3.5.141.1", " 52.94.76.1 "):
            self.assertTrue(table.contains(address), address)
        for address in ("3.5.139.255", "3.5.144.0", "52.94.80.0", "2600:1e00::1", "127.0.0.1",
                        "", "localhost", "3.5.140.0/24"):
            self.assertFalse(table.contains(address), address)

    def test_parseRegions(self) -> None:
        body = document(("3.5.140.0/22", "us-east-1"), ("15.230.0.0/24", "eu-west-1"),
                        ("2600:1f00::/24", "US-EAST-1"))
        table, seen = parseRanges(body, frozenset({"us-east-1"}))
        self.assertEqual(seen, {"us-east-1", "eu-west-1"})
        self.assertTrue(table.contains("3.5.140.1"))
        self.assertTrue(table.contains("2600:1f00::1"))
        self.assertFalse(table.contains("15.230.0.1"))
        table, _ = parseRanges(body, None)
        self.assertTrue(table.contains("15.230.0.1"))

    def test_notADocument(self) -> None:
        for body in (b"<html>", b"[]", b'{"prefixes": [{"region": "x"}]}'):
            self.assertRaises(ValueError, parseRanges, body, None)

    def test_local(self) -> None:
        self.assertTrue(isLocal("/etc/ip-ranges.json"))
        self.assertTrue(isLocal("file:///etc/ip-ranges.json"))
        self.assertFalse(isLocal("https://ip-ranges.amazonaws.com/ip-ranges.json"))


class _Ranges(Resource):
    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body
        self.code = 200
        self.requests = 0

    def render_GET(self, request: object) -> bytes:
        self.requests += 1
        request.setResponseCode(self.code)  # type: ignore[attr-defined]
        return self.body


class AWSIPRangesTests(TestCase):
    def ranges(self, source: str, frequency: float = 3600.0) -> AWSIPRanges:
        ranges = AWSIPRanges(source, None, frequency, reactor)
        self.addCleanup(ranges.stop)
        return ranges

    async def serve(self, resource: Resource) -> str:
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(resource))
        self.addCleanup(port.stopListening)
        return f"http://127.0.0.1:{port.getHost().port}/ip-ranges.json"

    async def waitFor(self, condition: object) -> None:
        for _ in range(200):
            if condition():  # type: ignore[operator]
                return
            await deferLater(reactor, 0.02, lambda: None)
        self.fail("condition never held")

    def test_loadNowFromFile(self) -> None:
        path = writeRanges(self, ("3.5.140.0/22", "us-east-1"))
        for source in (path, "file://" + path):
            ranges = self.ranges(source)
            self.assertFalse(ranges.contains("3.5.140.1"))
            ranges.loadNow()
            self.assertTrue(ranges.contains("3.5.140.1"))

    def test_loadNowFails(self) -> None:
        self.assertRaises(OSError, self.ranges(os.path.abspath(self.mktemp())).loadNow)
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write("not json")
        self.assertRaises(ValueError, self.ranges(path).loadNow)

    async def test_fromURLAndAgain(self) -> None:
        """
        Started, the ranges are fetched at once and again every
        C{frequency}; a fetch that fails keeps the ranges fetched before.
        """
        resource = _Ranges(document(("3.5.140.0/22", "us-east-1")))
        ranges = self.ranges(await self.serve(resource), frequency=0.2)
        ranges.start()
        await self.waitFor(lambda: ranges.contains("3.5.140.1"))
        resource.body = document(("15.230.0.0/24", "eu-west-1"))
        await self.waitFor(lambda: ranges.contains("15.230.0.1"))
        self.assertFalse(ranges.contains("3.5.140.1"))
        resource.code = 500
        seen = resource.requests
        await self.waitFor(lambda: resource.requests >= seen + 2)
        self.assertTrue(ranges.contains("15.230.0.1"))
        self.flushLoggedErrors()

    async def test_unreachableURL(self) -> None:
        """
        Until a fetch succeeds, nobody is inside AWS (everyone gets
        CloudFront, which works from anywhere).
        """
        resource = _Ranges(b"")
        resource.code = 404
        ranges = self.ranges(await self.serve(resource))
        done: Deferred[None] = ranges.refresh()
        await done
        self.assertFalse(ranges.loaded)
        self.assertFalse(ranges.contains("3.5.140.1"))
