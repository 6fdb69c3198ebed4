# -*- test-case-name: tests.notifications.test_dispatcher -*-
"""
Delivery to one endpoint: its events, read from the journal from its
cursor, in journal order, one request at a time (so in order), up to
L{MAX_EVENTS} per envelope.

A request succeeds on a 2xx answer.  Anything else (another status, a
refused connection, no answer within C{timeout}) is retried, at once up
to C{threshold} times in a row and then after C{backoff} doubling per
failure up to L{txregistry.notifications.config.MAX_BACKOFF}.  Redirects
are never followed: a 3xx is a failure (following one would let whoever
answers send the registry's events, with their headers and signature,
anywhere).

Each endpoint has its own connection pool and timers, and a push never
waits for any of it: a slow or dead endpoint delays only itself.

The journal's bound for the endpoint (C{maxbytes}, C{maxage}) is kept
here too: past it, the oldest undelivered events go to the endpoint's
dead-letter file and the cursor moves past them.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from datetime import datetime
from typing import Any

from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers

from txregistry.notifications.config import EndpointConfig
from txregistry.notifications.events import EVENTS_MEDIA_TYPE, envelope
from txregistry.notifications.intents import Outcomes
from txregistry.notifications.outbox.intents import EVENT, INTENT, classify
from txregistry.notifications.outbox.journal import Journal, Record
from txregistry.notifications.outbox.state import EndpointState
from txregistry.notifications.signing import messageID, signatureHeaders

__all__ = ["EndpointDispatcher", "DeliveryFailed", "MAX_EVENTS", "deliver", "httpClient"]

_log = Logger()

#: The most events in one envelope, and the most bytes of them.
MAX_EVENTS = 100
MAX_ENVELOPE_BYTES = 1024 * 1024

#: Seconds between the starts of two envelopes to one endpoint while
#: fewer than L{MAX_EVENTS} wait: under load, the events of this window
#: go in one envelope rather than one request each (a request costs the
#: registry far more than an event in it), and an event after a quiet
#: spell still goes at once.
BATCH_WINDOW = 0.05


class DeliveryFailed(Exception):
    """
    The endpoint did not take an envelope; the message says why.

    @ivar code: the HTTP status it answered, or L{None} when it did not
        answer (refused, reset, timed out).
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def _event(record: Record) -> dict[str, Any] | None:
    """
    The event a record holds (a plain event's, or an intent's), or
    L{None} for one that holds none (an outcome record, a torn line).
    """
    kind, _, line = classify(record.line)
    if kind not in (EVENT, INTENT):
        return None
    return Record(record.offset, record.next, line).event()


def _age(event: dict[str, Any] | None, now: float) -> float:
    if event is None:
        return 0.0
    try:
        return now - datetime.fromisoformat(str(event.get("timestamp"))).timestamp()
    except ValueError:
        return 0.0


class EndpointDispatcher:
    """
    Sends one endpoint its events.

    @ivar cursor: the journal offset of the first event not delivered.
    @ivar pending: events journaled for it and not yet delivered (or
        dead-lettered).
    @ivar lastSuccess: when a delivery last succeeded, or L{None}.
    @ivar lastFailure: when one last failed and why, or L{None}.
    @ivar deadLettered: events moved to the dead-letter file since start.
    @ivar events: events journaled for it since start.
    @ivar failedEvents: events in envelopes it answered with a status
        other than 2xx, since start (one event counts once per attempt).
    @ivar erroredEvents: events in envelopes it did not answer at all.
    @ivar statuses: answers by status (C{"204 No Content"}), per attempt.

    The counters are what C{registry_notifications_*} reports
    (L{txregistry.telemetry.notifications}).
    """

    def __init__(
        self,
        endpoint: EndpointConfig,
        journal: Journal,
        state: EndpointState,
        reactor: Any,
        segmentBytes: int,
        onAdvance: Any = None,
        traceparents: dict[str, str] | None = None,
        outcomes: Outcomes | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.filtering = endpoint.filtering
        self.journal = journal
        self.state = state
        self.cursor = state.cursor
        self.pending = 0
        self.failures = 0
        self.delivered = 0
        self.deadLettered = 0
        self.events = 0
        self.failedEvents = 0
        self.erroredEvents = 0
        self.statuses: Tally[int] = Tally()
        self._sending = 0
        self.lastSuccess: float | None = None
        self.lastFailure: tuple[float, str] | None = None
        # The bound keeps room for the partly compacted oldest segment.
        self.budget = max(endpoint.maxBytes - 2 * segmentBytes, segmentBytes)
        self.lowWater = max(self.budget - segmentBytes, 0)
        self._reactor = reactor
        self._onAdvance = onAdvance
        self._traceparents = traceparents if traceparents is not None else {}
        self.outcomes = outcomes if outcomes is not None else Outcomes()
        #: The intent at the head of the queue whose write is under way
        #: (or being verified), or L{None}: delivery waits for it.
        self.waitingFor: str | None = None
        self._running = False
        self._busy = False
        self._timer: Any = None
        #: When the last envelope was sent, or L{None}.
        self._lastSent: float | None = None
        self._attempt: Deferred[Any] | None = None
        self._trimming: Deferred[None] | None = None
        self._client, self._pool = httpClient(reactor, endpoint)

    # Life

    def start(self) -> None:
        self._running = True
        self.kick()

    def stop(self) -> Deferred[None]:
        """
        Stop sending; what is undelivered stays in the journal for the
        next start.
        """
        self._running = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._attempt is not None:
            self._attempt.cancel()

        async def stopped() -> None:
            if self._trimming is not None:
                await self._trimming
            await self.state.flush()
            await self._pool.closeCachedConnections()

        return Deferred.fromCoroutine(stopped())

    # Journal side

    def journaled(self, accepted: bool) -> None:
        """
        One event was appended; C{accepted} if this endpoint wants it.
        """
        if accepted:
            self.pending += 1
            self.events += 1

    def flushed(self, end: int) -> Deferred[None] | None:
        """
        The journal reached C{end}: deliver, and keep the bound.

        @return: a L{Deferred} while the bound is being enforced (the
            journal acknowledges the appends once it fires), else L{None}.
        """
        self.kick()
        if end - self.cursor <= self.budget:
            return None
        return self._trim(lambda record: end - record.offset > self.lowWater, "maxbytes")

    # Delivery

    def settled(self, identifier: str | None) -> None:
        """
        The intent C{identifier} (L{None}: every one from before the
        start) now has an outcome: deliver on if it was the one waited for.
        """
        if self.waitingFor is not None and identifier in (None, self.waitingFor):
            self.waitingFor = None
            self.kick()

    def kick(self) -> None:
        if not self._running or self._busy or self._timer is not None or self.waitingFor is not None:
            return
        if self.cursor >= self.journal.end:
            return
        if self._lastSent is not None and self.pending < MAX_EVENTS:
            wait = self._lastSent + BATCH_WINDOW - self._reactor.seconds()
            if wait > 0:
                self._timer = self._reactor.callLater(wait, self._retry)
                return
        self._busy = True
        self._attempt = Deferred.fromCoroutine(self._deliverOnce())
        self._attempt.addBoth(self._attempted)

    def _retry(self) -> None:
        self._timer = None
        self.kick()

    async def _deliverOnce(self) -> None:
        if self._trimming is not None:
            await self._trimming
        records = await self.journal.read(self.cursor, MAX_EVENTS, MAX_ENVELOPE_BYTES)
        if not records:
            return
        maxAge = self.endpoint.maxAge
        now = self._reactor.seconds()
        if maxAge > 0 and _age(_event(records[0]), now) > maxAge:
            # Too old to send: dead letters, then deliver what is left.
            await self._trim(lambda record: _age(_event(record), now) > maxAge, "maxage")
            return
        wanted: list[tuple[str, bytes]] = []
        skipped: list[str] = []
        filtering = self.endpoint.filtering
        outcome = self.outcomes.outcome
        upTo = records[-1].next
        for record in records:
            # Every event is wanted, or not, without parsing it unless
            # filtering needs to (its id is first, L{events.eventLine}).
            kind, identifier, line = classify(record.line)
            if kind == INTENT:
                decided = outcome(identifier)
                if decided is None:
                    # Its write is under way: journal order is delivery
                    # order, so what follows waits too.
                    self.waitingFor = identifier
                    upTo = record.offset
                    break
                if not decided:
                    skipped.append(identifier)
                    continue
            elif kind != EVENT:
                continue
            if not filtering:
                wanted.append((identifier, line))
                continue
            event = Record(record.offset, record.next, line).event()
            if event is not None and self.endpoint.accepts(event):
                wanted.append((identifier, line))
        if wanted:
            await self._post(wanted)
        if self.failures:
            _log.info(
                "notifications: endpoint {name} delivered again after {failures} failed"
                " attempts; {pending} events pending",
                name=self.endpoint.name, failures=self.failures,
                pending=max(self.pending - len(wanted), 0),
            )
        self.failures = 0
        if wanted:
            self.lastSuccess = time.time()
        self.delivered += len(wanted)
        self._advance(upTo, len(wanted))
        for identifier in skipped:
            self.outcomes.skipped(identifier)

    async def _post(self, events: list[tuple[str, bytes]]) -> None:
        self._sending = len(events)
        self._lastSent = self._reactor.seconds()
        # The envelope continues the trace of the request that made its
        # first traced event.
        traced = self._traceparents
        parent = next((traced[i] for i, _ in events if i in traced), None) if traced else None
        code = await deliver(self._client, self.endpoint, events, self._reactor, parent)
        self.statuses[code] += 1
        self._sending = 0

    def _attempted(self, result: Any) -> None:
        self._busy = False
        self._attempt = None
        if not isinstance(result, Failure):
            self.kick()
            return
        if not self._running:
            return
        reason = result.getErrorMessage() if result.check(DeliveryFailed) else repr(result.value)
        code = getattr(result.value, "code", None)
        sending, self._sending = self._sending, 0
        if code is not None:
            self.statuses[code] += 1
            self.failedEvents += sending
        else:
            self.erroredEvents += sending
        if not result.check(DeliveryFailed):
            _log.failure("notifications: endpoint {name} failed", result, name=self.endpoint.name)
        self.failures += 1
        self.lastFailure = (time.time(), reason)
        delay = self.endpoint.retryDelay(self.failures)
        if self.failures == 1 or delay > 0:
            _log.warn(
                "notifications: endpoint {name} ({url}) failed: {reason}; {pending} events"
                " pending, attempt {failures}, retrying in {delay:.1f}s",
                name=self.endpoint.name, url=self.endpoint.url, reason=reason,
                pending=self.pending, failures=self.failures, delay=delay,
            )
        self._timer = self._reactor.callLater(delay, self._retry)

    def _advance(self, offset: int, events: int) -> None:
        if offset <= self.cursor:
            return
        self.cursor = offset
        self.pending = max(self.pending - events, 0)
        self.state.save(offset)
        if self._onAdvance is not None:
            self._onAdvance()

    # The bound

    def _trim(self, expired: Any, bound: str) -> Deferred[None]:
        """
        Move events from the cursor on to the dead-letter file while
        C{expired(record)} holds.
        """
        if self._trimming is not None:
            return self._trimming

        async def trim() -> None:
            moved = 0
            while True:
                records = await self.journal.read(self.cursor, 1000, 4 * 1024 * 1024)
                doomed: list[Record] = []
                for record in records:
                    if not expired(record):
                        break
                    doomed.append(record)
                if not doomed:
                    break
                lines = []
                skipped = []
                for record in doomed:
                    kind, identifier, line = classify(record.line)
                    if kind == INTENT and self.outcomes.outcome(identifier) is False:
                        skipped.append(identifier)
                        continue
                    # An intent still under way is kept: at least once.
                    event = _event(record)
                    if event is not None and self.endpoint.accepts(event):
                        lines.append(line)
                await self.state.deadLetter(lines)
                moved += len(lines)
                self._advance(doomed[-1].next, len(lines))
                for identifier in skipped:
                    self.outcomes.skipped(identifier)
                if len(doomed) < len(records):
                    break
            if moved:
                self.deadLettered += moved
                _log.warn(
                    "notifications: endpoint {name}: {count} undelivered events moved to its"
                    " dead-letter file ({bound} reached); {total} since start",
                    name=self.endpoint.name, count=moved, bound=bound, total=self.deadLettered,
                )

        def done(result: Any) -> Any:
            self._trimming = None
            return result

        self._trimming = Deferred.fromCoroutine(trim()).addBoth(done)
        if self._trimming.called:
            d, self._trimming = self._trimming, None
            return d
        return self._trimming

    def status(self) -> dict[str, Any]:
        """
        What an operator asks about it.
        """
        return {
            "name": self.endpoint.name,
            "url": self.endpoint.url,
            "pending": self.pending,
            "pendingBytes": max(self.journal.end - self.cursor, 0),
            "delivered": self.delivered,
            "deadLettered": self.deadLettered,
            "lastSuccess": self.lastSuccess,
            "lastFailure": self.lastFailure,
            "events": self.events,
            "failedEvents": self.failedEvents,
            "erroredEvents": self.erroredEvents,
            "statuses": dict(self.statuses),
        }


def httpClient(reactor: Any, endpoint: EndpointConfig) -> tuple[HTTPClient, HTTPConnectionPool]:
    """
    A client for C{endpoint} alone: one persistent connection, no
    automatic retry (the dispatcher retries, in order).
    """
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 1
    pool.retryAutomatically = False
    return HTTPClient(Agent(reactor, connectTimeout=endpoint.timeout, pool=pool)), pool


async def deliver(
    client: HTTPClient, endpoint: EndpointConfig, events: list[tuple[str, bytes]], reactor: Any,
    traceparent: str | None = None,
) -> int:
    """
    POST one envelope of C{events} (id and journaled JSON) to C{endpoint},
    signed when it has a secret, within its timeout, redirects refused.

    @param traceparent: the W3C C{traceparent} header to send, if any.

    @return: the (2xx) status it answered.
    @raise DeliveryFailed: saying why it was not taken.
    """
    body = envelope(line for _, line in events)
    headers = Headers({"Content-Type": [EVENTS_MEDIA_TYPE], "User-Agent": ["txregistry"]})
    for name, values in endpoint.headers.items():
        headers.setRawHeaders(name, values)
    if traceparent is not None:
        headers.setRawHeaders("traceparent", [traceparent])
    if endpoint.secret is not None:
        signed = signatureHeaders(endpoint.secret, messageID(i for i, _ in events), int(time.time()), body)
        for name, value in signed.items():
            headers.setRawHeaders(name, [value])
    request = client.post(endpoint.url, data=body, headers=headers, allow_redirects=False)
    request.addTimeout(endpoint.timeout, reactor)
    try:
        response = await request
        # Read the answer, so that the connection can be reused.
        reading = response.content()
        reading.addTimeout(endpoint.timeout, reactor)
        await reading
    except (CancelledError, TimeoutError):
        raise DeliveryFailed(f"no answer within {endpoint.timeout:g}s") from None
    except Exception as e:
        raise DeliveryFailed(_describe(e)) from None
    if not 200 <= response.code < 300:
        where = response.headers.getRawHeaders("location", [""])[0]
        extra = f" to {where} (redirects are not followed)" if 300 <= response.code < 400 else ""
        raise DeliveryFailed(f"HTTP {response.code}{extra}", response.code)
    return int(response.code)


def _describe(error: Exception) -> str:
    reasons = getattr(error, "reasons", None)
    if reasons:
        return "; ".join(r.getErrorMessage() for r in reasons)
    return str(error) or error.__class__.__name__

