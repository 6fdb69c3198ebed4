"""
The login throttle: failures slow the next attempt from the same address,
and only from it, and each failure is logged.
"""

from __future__ import annotations

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import TestCase

from txregistry.auth.throttle import LoginThrottle, addressKey


class ThrottleTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.throttle = LoginThrottle(self.clock)

    def waited(self, address: str) -> float:
        """
        How long an attempt from C{address} waits, on the clock: it has not
        begun a millisecond before, and has just after.
        """
        fired: list[None] = []
        self.throttle.delay(address).addCallback(fired.append)
        if fired:
            return 0.0
        [call] = self.clock.getDelayedCalls()
        wait = call.getTime() - self.clock.seconds()
        self.clock.advance(wait - 0.001)
        self.assertEqual(fired, [])
        self.clock.advance(0.002)
        self.assertEqual(fired, [None])
        return round(wait, 3)

    def assertImmediate(self, address: str) -> None:
        fired: list[None] = []
        self.throttle.delay(address).addCallback(fired.append)
        self.assertEqual(fired, [None])

    def test_noFailure(self) -> None:
        """
        An address without failures is never slowed.
        """
        for _ in range(5):
            self.assertImmediate("192.0.2.1")

    def test_doubling(self) -> None:
        """
        Each failure doubles the next attempt's wait, from half a second up
        to ten.
        """
        waits = []
        for _ in range(8):
            self.throttle.failed("192.0.2.1", b"alice")
            waits.append(self.waited("192.0.2.1"))
        self.assertEqual(waits, [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0])

    def test_otherAddresses(self) -> None:
        """
        Failures from one address slow no other.
        """
        for _ in range(5):
            self.throttle.failed("192.0.2.1", b"alice")
        self.assertImmediate("192.0.2.2")
        self.assertImmediate("2001:db8::1")

    def test_successForgives(self) -> None:
        for _ in range(3):
            self.throttle.failed("192.0.2.1", b"alice")
        self.throttle.succeeded("192.0.2.1")
        self.assertImmediate("192.0.2.1")
        self.throttle.failed("192.0.2.1", b"alice")
        self.assertEqual(self.waited("192.0.2.1"), 0.5)

    def test_quietForgives(self) -> None:
        """
        Failures are forgotten after five quiet minutes, not before.
        """
        for _ in range(4):
            self.throttle.failed("192.0.2.1", b"alice")
        self.clock.advance(299)
        self.throttle.failed("192.0.2.1", b"alice")
        self.assertEqual(self.waited("192.0.2.1"), 8.0)
        self.clock.advance(300)
        self.assertImmediate("192.0.2.1")
        self.throttle.failed("192.0.2.1", b"alice")
        self.assertEqual(self.waited("192.0.2.1"), 0.5)

    def test_parallelAttempts(self) -> None:
        """
        Attempts that arrive together after a failure wait one after the
        other, so parallel guesses gain nothing.
        """
        self.throttle.failed("192.0.2.1", b"alice")
        times: list[float] = []
        for _ in range(3):
            self.throttle.delay("192.0.2.1").addCallback(
                lambda _: times.append(self.clock.seconds())
            )
        self.clock.pump([0.25] * 8)
        self.assertEqual(times, [0.5, 1.0, 1.5])

    def test_waitIsFromTheFailure(self) -> None:
        """
        A client that waited out its penalty before trying again is not
        slowed further.
        """
        self.throttle.failed("192.0.2.1", b"alice")
        self.clock.advance(0.5)
        self.assertImmediate("192.0.2.1")

    def test_ipv6Network(self) -> None:
        """
        IPv6 clients are throttled by their /64, and an IPv4-mapped address
        as its IPv4 address.
        """
        self.throttle.failed("2001:db8::1", b"alice")
        self.assertEqual(self.waited("2001:db8::ffff:2"), 0.5)
        self.assertImmediate("2001:db8:0:1::1")
        self.throttle.failed("::ffff:192.0.2.7", b"alice")
        self.assertEqual(self.waited("192.0.2.7"), 0.5)
        self.assertEqual(addressKey("2001:db8::1"), "2001:db8::/64")
        self.assertEqual(addressKey("unix"), "unix")

    def test_bounded(self) -> None:
        """
        Past C{maxAddresses}, the address whose last failure is oldest is
        forgotten.
        """
        throttle = self.throttle = LoginThrottle(self.clock, maxAddresses=3)
        for i in range(5):
            throttle.failed(f"192.0.2.{i}", b"alice")
            self.clock.advance(1)
        self.assertEqual(len(throttle._records), 3)
        self.assertImmediate("192.0.2.0")
        self.assertImmediate("192.0.2.1")
        self.throttle.failed("192.0.2.2", b"alice")
        self.assertEqual(self.waited("192.0.2.2"), 1.0)

    def test_logged(self) -> None:
        """
        Each failure is logged as a warning with the user name and the
        address, quoted so that a name cannot forge a log line.
        """
        with capturedLogs() as events:
            self.throttle.failed("192.0.2.1", b"alice")
            self.throttle.failed("192.0.2.1", b"bob\nforged \xff" + b"x" * 200)
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn] * 2)
        texts = [formatEvent(e) for e in events]
        self.assertEqual(
            texts[0],
            "login failed for user 'alice' from 192.0.2.1 (1 in a row);"
            " its next attempt waits 0.5s",
        )
        self.assertIn("user 'bob\\nforged \\\\xff" + "x" * 85 + "' from 192.0.2.1", texts[1])
        self.assertNotIn("\n", texts[1])


class ThrottledTests(TestCase):
    """
    L{LoginThrottle.throttled} waits, logs in, and records the outcome.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.throttle = LoginThrottle(self.clock)
        self.calls: list[float] = []

    def login(self, result: Deferred[bytes]) -> Deferred[bytes]:
        def login() -> Deferred[bytes]:
            self.calls.append(self.clock.seconds())
            return result

        return self.throttle.throttled("192.0.2.1", b"alice", login)

    def test_refusedThenAccepted(self) -> None:
        """
        A refused login slows the next, which is not started before its
        wait; one accepted forgives the address.
        """
        self.failureResultOf(self.login(fail(UnauthorizedLogin())), UnauthorizedLogin)
        d = self.login(succeed(b"alice"))
        self.assertNoResult(d)
        self.assertEqual(self.calls, [0.0])
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(d), b"alice")
        self.assertEqual(self.calls, [0.0, 0.5])
        self.successResultOf(self.login(succeed(b"alice")))
        self.assertEqual(self.calls, [0.0, 0.5, 0.5])

    def test_otherErrors(self) -> None:
        """
        An error that is not a refusal is not the client's fault: it does
        not slow the next attempt, and is not logged as a failed login.
        """
        with capturedLogs() as events:
            self.failureResultOf(self.login(fail(RuntimeError("disk"))), RuntimeError)
        self.assertEqual(list(events), [])
        self.successResultOf(self.login(succeed(b"alice")))
