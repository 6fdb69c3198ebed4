# -*- test-case-name: tests.storage.middleware.test_awsips -*-
"""
L{AWSIPRanges}: the address ranges AWS publishes (C{ip-ranges.json}),
for the CloudFront middleware's C{ipfilteredby}: a client inside AWS (or
inside some of its regions) downloads from the bucket directly, which is
cheaper than through CloudFront.

The ranges are read from C{iprangesurl}: AWS's own URL by default, which
needs the internet, or a copy the operator keeps (a local file, or a URL
inside their network).  They are read again every C{updatefrequency}; a
read that fails is logged and the ranges read before stay in use.  Until
the first read succeeds nobody counts as inside AWS, so every client gets
CloudFront's URL, which works from anywhere.
"""

from __future__ import annotations

import ipaddress
import json
from bisect import bisect_right
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from txregistry.storage.blocking import BlockingPool

__all__ = ["AWS_IP_RANGES_URL", "AWSIPRanges", "RangeTable", "parseRanges", "isLocal"]

#: Where AWS publishes its ranges (C{iprangesurl}'s default).
AWS_IP_RANGES_URL = "https://ip-ranges.amazonaws.com/ip-ranges.json"

#: How long one read of an http(s) C{iprangesurl} may take.
FETCH_TIMEOUT = 60.0

_log = Logger()

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RangeTable:
    """
    Sets of networks, searchable in logarithmic time: AWS publishes some
    ten thousand prefixes, and every redirected download asks.
    """

    def __init__(self, networks: Iterable[Network]) -> None:
        networks = list(networks)
        v4 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv4Network))
        v6 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv6Network))
        self._tables: dict[int, tuple[list[int], list[int]]] = {}
        for version, merged in ((4, list[Network](v4)), (6, list[Network](v6))):
            self._tables[version] = (
                [int(n.network_address) for n in merged],
                [int(n.broadcast_address) for n in merged],
            )

    def __len__(self) -> int:
        return sum(len(starts) for starts, _ in self._tables.values())

    def contains(self, address: str) -> bool:
        """
        Whether C{address} (an IPv4 or IPv6 address, an IPv4-mapped one
        counting as IPv4) is in one of the networks; C{False} for anything
        that is not an address.
        """
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        starts, ends = self._tables[ip.version]
        value = int(ip)
        index = bisect_right(starts, value) - 1
        return index >= 0 and value <= ends[index]


def parseRanges(document: bytes, regions: frozenset[str] | None) -> tuple[RangeTable, set[str]]:
    """
    The networks of an C{ip-ranges.json} document, of C{regions} only
    (lower case) unless that is L{None}.

    @return: the table, and the regions the document names.
    @raise ValueError: when C{document} is not such a document.
    """
    data = json.loads(document)
    if not isinstance(data, dict) or not isinstance(data.get("prefixes"), list):
        raise ValueError("not an AWS ip-ranges document (no prefixes list)")
    networks: list[Network] = []
    seen: set[str] = set()
    for field, entries in (("ip_prefix", data["prefixes"]),
                           ("ipv6_prefix", data.get("ipv6_prefixes") or [])):
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get(field), str):
                raise ValueError(f"a prefix entry without {field}: {entry!r}")
            region = str(entry.get("region", "")).lower()
            seen.add(region)
            if regions is None or region in regions:
                networks.append(ipaddress.ip_network(entry[field], strict=False))
    return RangeTable(networks), seen


def isLocal(source: str) -> bool:
    """
    Whether C{iprangesurl} names a file (a path, or a C{file:} URL) rather
    than an http(s) URL.
    """
    return urlsplit(source).scheme.lower() not in ("http", "https")


def _localPath(source: str) -> str:
    parts = urlsplit(source)
    return unquote(parts.path) if parts.scheme.lower() == "file" else source


def _readFile(source: str) -> bytes:
    with open(_localPath(source), "rb") as f:
        return f.read()


class AWSIPRanges:
    """
    The AWS networks of C{regions} (all of AWS when L{None}), read from
    C{source} every C{frequency} seconds once L{start}ed.
    """

    def __init__(
        self, source: str, regions: frozenset[str] | None, frequency: float, reactor: Any
    ) -> None:
        self.source = source
        self.regions = regions
        self.frequency = frequency
        self._reactor = reactor
        self._table: RangeTable | None = None
        self._pool = BlockingPool(reactor, "txregistry-awsips", 1)
        self._loop: LoopingCall | None = None
        self._reading: Deferred[None] | None = None
        self._stopped = False

    @property
    def loaded(self) -> bool:
        """
        Whether ranges have been read (until then, no client is inside).
        """
        return self._table is not None

    def contains(self, address: str) -> bool:
        """
        Whether the client at C{address} is inside the ranges.
        """
        return self._table is not None and self._table.contains(address)

    def loadNow(self) -> None:
        """
        Read a local C{source}, blocking: at start, before the reactor runs,
        so that a file the operator named but that cannot be used stops the
        start.

        @raise OSError: when the file cannot be read.
        @raise ValueError: when it is not an ip-ranges document.
        """
        self._use(parseRanges(_readFile(self.source), self.regions))

    def _use(self, parsed: tuple[RangeTable, set[str]]) -> None:
        table, seen = parsed
        if self.regions is not None:
            for region in sorted(self.regions - seen):
                _log.warn("cloudfront: AWS region {region} is in no range of {source}",
                          region=region, source=self.source)
        self._table = table
        _log.info("cloudfront: {count} AWS networks read from {source}",
                  count=len(table), source=self.source)

    def refresh(self) -> Deferred[None]:
        """
        Read the ranges again (the file through a thread, a URL with
        treq), keeping the old ones if that fails.

        @return: a L{Deferred} that fires when done; it never fails.
        """
        return Deferred.fromCoroutine(self._refresh())

    async def _refresh(self) -> None:
        try:
            if isLocal(self.source):
                body = await self._pool.run(_readFile, self.source)
            else:
                body = await self._fetch()
            self._use(await self._pool.run(parseRanges, body, self.regions))
        except CancelledError:
            return
        except Exception:
            self._failed(Failure())

    def _fetch(self) -> Deferred[bytes]:
        import treq

        def body(response: Any) -> Deferred[bytes]:
            if response.code != 200:
                raise ValueError(f"HTTP {response.code}")
            return treq.content(response)  # type: ignore[no-any-return]

        d: Deferred[Any] = treq.get(self.source, timeout=FETCH_TIMEOUT, persistent=False)
        return d.addCallback(body)

    def _failed(self, failure: Failure) -> None:
        kept = "keeping the ranges read before" if self.loaded else \
            "every client gets CloudFront's URL until a read succeeds"
        _log.error("cloudfront: cannot read AWS IP ranges from {source}: {reason}; {kept}",
                   source=self.source, reason=failure.getErrorMessage(), kept=kept)

    def start(self) -> None:
        """
        Read the ranges every C{frequency} seconds (at once, unless
        L{loadNow} has read them).
        """
        if self._stopped:
            return
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self._reactor
        self._loop.start(self.frequency, now=not self.loaded)

    def _tick(self) -> None:
        if self._reading is None:
            self._reading = self.refresh()
            self._reading.addBoth(self._read)

    def _read(self, _: object) -> None:
        self._reading = None

    def stop(self) -> Deferred[None]:
        """
        Stop reading, and release the thread.
        """
        self._stopped = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._reading is not None:
            self._reading.cancel()
        return self._pool.close()
