# -*- test-case-name: tests.auth.test_throttle -*-
"""
Failed logins slow the next attempt from the same client.

A password guesser gets at most one guess per penalty from an address,
and the penalty doubles with each failure up to a cap, so guessing
becomes slow while someone who mistyped once waits half a second.  The
penalty belongs to the address, not the user name: throttling by user
would let anyone lock a user out.  Each failure is logged with the user
name and the address (never the password, which this module never sees).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["LoginThrottle", "addressKey"]

T = TypeVar("T")

#: How much of a user name a log line repeats.
_NAME_ECHO = 100


def addressKey(address: str) -> str:
    """
    What a client's address is throttled by.

    An IPv6 client is throttled by its /64, the least a site is given, so
    that walking through the addresses of one network does not start each
    guess afresh; an IPv4-mapped IPv6 address is its IPv4 address.  Anything
    that is not an IP address (a UNIX socket's peer) is itself.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _printable(username: bytes | str) -> str:
    if isinstance(username, bytes):
        username = username.decode("utf-8", "backslashreplace")
    return username[:_NAME_ECHO]


@dataclass
class _Record:
    """
    One address's failures: how many since it was last forgiven, when the
    last was, and when its next attempt may be checked.
    """

    failures: int
    last: float
    notBefore: float


class LoginThrottle:
    """
    Per-address delays before a login is checked.

    After the M{n}th failure from an address, its next attempt waits
    M{min(base * 2 ** (n - 1), cap)} seconds; attempts that arrive together
    wait one after another, so sending guesses in parallel does not get
    more of them checked.  A success forgives the address, as does a quiet
    C{forgiveAfter} seconds since its last failure.  Other addresses are
    never slowed.

    At most C{maxAddresses} addresses are remembered; past that the one
    whose last failure is oldest is forgotten, so a flood of addresses
    costs bounded memory (and forgets the patient ones first).

    Use L{throttled} around a login, or L{delay} before it and L{failed} or
    L{succeeded} after.

    @param clock: what the delays are measured and waited with.
    @param base: the wait after the first failure, in seconds.
    @param cap: the longest wait, in seconds.
    @param forgiveAfter: the quiet time after which failures are forgotten.
    @param maxAddresses: how many addresses are remembered at most.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        *,
        base: float = 0.5,
        cap: float = 10.0,
        forgiveAfter: float = 300.0,
        maxAddresses: int = 10000,
    ) -> None:
        self._clock = clock
        self._base = base
        self._cap = cap
        self._forgiveAfter = forgiveAfter
        self._maxAddresses = maxAddresses
        # Oldest last failure first: forgiven and evicted from the front.
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def _penalty(self, failures: int) -> float:
        return float(min(self._base * 2 ** min(failures - 1, 64), self._cap))

    def _record(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last >= self._forgiveAfter:
            del self._records[key]
            return None
        return record

    def delay(self, address: str) -> Deferred[None]:
        """
        Wait until an attempt from C{address} may be checked.

        @param address: the client's host (no port: each connection has a
            new one), as the door trusts it.
        @return: a L{Deferred} that fires with L{None} at once for an
            address with no recent failure, and otherwise after its
            penalty.  Cancelling it gives up the wait.
        """
        now = self._clock.seconds()
        record = self._record(addressKey(address), now)
        if record is None:
            return succeed(None)
        start = max(now, record.notBefore)
        # The next attempt to arrive waits for this one's turn too.
        record.notBefore = start + self._penalty(record.failures)
        if start <= now:
            return succeed(None)
        return deferLater(self._clock, start - now)

    def failed(self, address: str, username: bytes | str) -> None:
        """
        Record and log a failed login from C{address}, which slows its next
        attempt.

        @param username: the user name the client gave, logged as text (at
            most 100 characters, and quoted so it cannot forge a line).
        """
        now = self._clock.seconds()
        key = addressKey(address)
        record = self._record(key, now)
        if record is None:
            record = self._records[key] = _Record(0, now, now)
        record.failures += 1
        record.last = now
        record.notBefore = max(record.notBefore, now + self._penalty(record.failures))
        self._records.move_to_end(key)
        self._forget(now)
        self.log.warn(
            "login failed for user {user!r} from {address}"
            " ({failures} in a row); its next attempt waits {wait:.1f}s",
            user=_printable(username),
            address=address,
            failures=record.failures,
            wait=record.notBefore - now,
        )

    def succeeded(self, address: str) -> None:
        """
        Forgive C{address} after a successful login from it.
        """
        self._records.pop(addressKey(address), None)

    def _forget(self, now: float) -> None:
        """
        Drop the addresses forgiven by time, and the oldest past the cap.
        """
        records = self._records
        while records:
            key, oldest = next(iter(records.items()))
            if len(records) <= self._maxAddresses and now - oldest.last < self._forgiveAfter:
                break
            del records[key]

    def throttled(
        self, address: str, username: bytes | str, login: Callable[[], Deferred[T]]
    ) -> Deferred[T]:
        """
        Call C{login} after L{delay}, and record how it went: an
        L{UnauthorizedLogin} is a failure, a result a success, and any
        other error neither (the client is not to blame).

        @param login: starts the login, e.g. C{lambda: portal.login(...)}.
        @return: a L{Deferred} with C{login}'s result or failure.
        """

        def check(ignored: None) -> Deferred[T]:
            return login()

        def succeeded(result: T) -> T:
            self.succeeded(address)
            return result

        def failed(failure: Failure) -> Failure:
            if failure.check(UnauthorizedLogin):
                self.failed(address, username)
            return failure

        d = self.delay(address).addCallback(check)
        return d.addCallbacks(succeeded, failed)
