# -*- test-case-name: tests.notifications.test_notifier -*-
"""
The notifications service: the outbox (journal, cursors, dead letters)
and one dispatcher per enabled endpoint, started and stopped with the
registry; it is the L{IEventSink} of the layer it makes.

On start each dispatcher resumes from its saved cursor, so what was
journaled and not delivered before a stop, a crash or a C{kill -9} is
sent (again, possibly: each event keeps its id).

Several registry instances on one storage each have their own outbox (a
local directory; the lock file refuses a second process): an event is
made by the one instance that handled its request and journaled only in
that instance's outbox before the response, so no event is in two
outboxes (none is owned twice) and none acknowledged is in none (none is
lost while that instance's disk survives).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.logger import Logger
from zope.interface import implementer

from txregistry.config import ConfigurationError, HTTPConfig, splitAddress
from txregistry.interfaces import INamespace
from txregistry.notifications.config import EndpointConfig, NotificationsConfig
from txregistry.notifications.dispatcher import EndpointDispatcher
from txregistry.notifications.events import Source
from txregistry.notifications.intents import DESTRUCTIVE, Intent, Outcomes, conflicts, verify
from txregistry.notifications.interfaces import IEventSink
from txregistry.notifications.layer import NotifyingNamespace
from txregistry.notifications.outbox.intents import (
    CANCELLED,
    EVENT,
    INTENT,
    RESOLVED,
    cancelledLine,
    classify,
    eventID,
    intentCheck,
    intentLine,
    resolvedLine,
)
from txregistry.notifications.outbox.journal import Journal, OutboxLocked, Record, readRecords
from txregistry.notifications.outbox.state import EndpointState
from txregistry.storage.blocking import BlockingPool

__all__ = ["Notifier", "segmentBytesFor", "sourceAddress", "TRACED"]

_log = Logger()

#: How many events' traceparents are kept for their deliveries.
TRACED = 10_000


def segmentBytesFor(endpoints: tuple[EndpointConfig, ...]) -> int:
    """
    The journal's segment size: small enough that the smallest
    C{maxbytes} is kept to within a segment (a segment is removed only
    once every endpoint is past it), at most 4 MiB.
    """
    smallest = min((e.maxBytes for e in endpoints), default=1 << 30)
    return max(min(4 * 1024 * 1024, smallest // 8), 2048)


def sourceAddress(http: HTTPConfig) -> str:
    """
    The C{source.addr} of events: C{http.addr}, with this host's name
    when it names every interface.
    """
    if http.net == "unix":
        return f"{socket.gethostname()}:{http.addr}"
    host, port = splitAddress(http.addr)
    if not host or host in ("0.0.0.0", "::"):
        host = socket.gethostname()
    return f"{host}:{port}"


@implementer(IEventSink)
class Notifier(Service):
    """
    @ivar dispatchers: one per enabled endpoint.
    """

    name = "notifications"

    def __init__(
        self, config: NotificationsConfig, http: HTTPConfig, reactor: Any,
        traceparent: Callable[[], str | None] | None = None,
    ) -> None:
        """
        Open the outbox (blocking, once, while the registry is made).

        @param traceparent: the W3C C{traceparent} of the request being
            handled (tracing's), or L{None} without tracing: each event
            remembers it, and its delivery sends it (L{TRACED}).

        @raise ConfigurationError: naming C{notifications.outbox.directory}
            when it is locked by another process or cannot be used.
        """
        self.config = config
        self.http = http
        self._reactor = reactor
        self.pool = BlockingPool(reactor, "txregistry-notifications", size=4)
        segment = segmentBytesFor(config.enabled)
        self.journal = Journal(config.outbox, reactor, self.pool, segmentBytes=segment)
        key = "notifications.outbox.directory"
        try:
            self.journal.open()
        except OutboxLocked as e:
            raise ConfigurationError(f"{key}: {e}") from None
        except OSError as e:
            raise ConfigurationError(f"{key}: {config.outbox}: {e.strerror}") from None
        self._traceparent = traceparent
        #: event id -> the traceparent of the request that made it, the
        #: newest L{TRACED}; in memory only (after a restart an event is
        #: delivered without one).
        self.traceparents: dict[str, str] = {}
        self.dispatchers: list[EndpointDispatcher] = []
        #: What the dispatchers may do with each intent (L{intents}).
        self.outcomes = Outcomes()
        #: The namespace the layer wraps: where intents are verified.
        self.verifyIn: INamespace | None = None
        for endpoint in config.enabled:
            state = EndpointState(config.outbox, endpoint.name, self.pool, reactor)
            try:
                state.load(self.journal.end)
            except OSError as e:
                raise ConfigurationError(f"{key}: {config.outbox}: {e.strerror}") from None
            state.cursor = min(max(state.cursor, self.journal.start), self.journal.end)
            self.dispatchers.append(
                EndpointDispatcher(endpoint, self.journal, state, reactor, segment, self._compactSoon,
                                   self.traceparents, self.outcomes)
            )
        self.outcomes.readers = len(self.dispatchers)
        self.journal.flushed.append(self._flushed)
        self.source = Source.forAddress(sourceAddress(http))
        self._compacting: Deferred[None] | None = None

    def layer(self, inner: INamespace) -> INamespace:
        """
        The notifications layer around C{inner}, publishing here.
        """
        self.verifyIn = inner
        return NotifyingNamespace(
            inner, self, self.source, self._reactor,
            includeReferences=self.config.includeReferences,
            host=self.http.host, prefix=self.http.prefix,
        )

    def publish(
        self, line: bytes, action: str, target: Mapping[str, Any], durable: bool
    ) -> Deferred[None] | None:
        try:
            written = self.journal.append(line, durable)
        except RuntimeError as e:
            return fail(e)
        self._taken(line, action, target)
        return written if durable else None

    def intend(
        self, line: bytes, action: str, target: Mapping[str, Any], check: Mapping[str, Any]
    ) -> Intent:
        identifier = eventID(line)
        try:
            written = self.journal.append(intentLine(line, check), durable=True)
        except RuntimeError as e:
            intent = Intent(identifier, fail(e), self._settle)
            intent.settled = True
            return intent
        if self.dispatchers:
            self.outcomes.waiting[identifier] = None
        intent = Intent(identifier, written, self._settle)
        intent.action, intent.target = action, target

        def lost(failure: Any) -> Any:
            # Not in the journal: nothing will read it.
            intent.settled = True
            self.outcomes.waiting.pop(identifier, None)
            self._uncount(action, target)
            return failure

        written.addErrback(lost)
        self._taken(line, action, target)
        return intent

    def _taken(self, line: bytes, action: str, target: Mapping[str, Any]) -> None:
        """
        Count the event of C{line} for the endpoints that want it, and
        keep its request's traceparent.
        """
        if self._traceparent is not None:
            parent = self._traceparent()
            if parent is not None:
                traced = self.traceparents
                traced[eventID(line)] = parent
                if len(traced) > TRACED:
                    del traced[next(iter(traced))]
        for dispatcher in self.dispatchers:
            dispatcher.journaled(not dispatcher.filtering or dispatcher.endpoint.wants(action, target))

    def _uncount(self, action: str, target: Mapping[str, Any]) -> None:
        for dispatcher in self.dispatchers:
            if not dispatcher.filtering or dispatcher.endpoint.wants(action, target):
                dispatcher.pending = max(dispatcher.pending - 1, 0)

    def _settle(self, intent: Intent, resolved: bool) -> None:
        """
        Record C{intent}'s outcome in memory at once and in the journal
        with its next batch (nobody waits for that write: L{intents}).
        """
        identifier = intent.id
        if resolved:
            self.outcomes.waiting.pop(identifier, None)
            record = resolvedLine(identifier)
        else:
            if self.dispatchers:
                self.outcomes.waiting[identifier] = False
            self._uncount(intent.action, intent.target)
            record = cancelledLine(identifier)
        try:
            self.journal.append(record, durable=False)
        except RuntimeError:
            pass
        for dispatcher in self.dispatchers:
            dispatcher.settled(identifier)

    # The journal's side

    def _flushed(self, end: int) -> Deferred[Any] | None:
        enforcing = [d for d in (x.flushed(end) for x in self.dispatchers) if d is not None]
        if not enforcing:
            return None
        return DeferredList(enforcing, consumeErrors=True).addCallback(lambda _: self._compact())

    def _compact(self) -> Deferred[None]:
        if not self.dispatchers:
            return succeed(None)
        return self.journal.compact(min(d.cursor for d in self.dispatchers))

    def _compactSoon(self) -> None:
        if self._compacting is not None or not self.dispatchers:
            return
        if not self.journal.compactable(min(d.cursor for d in self.dispatchers)):
            return

        def done(result: Any) -> None:
            self._compacting = None

        self._compacting = self._compact()
        self._compacting.addBoth(done)

    # Life

    def startService(self) -> None:
        super().startService()
        for dispatcher in self.dispatchers:
            endpoint = dispatcher.endpoint
            _log.info(
                "notifications: endpoint {name} ({url}), timeout {timeout}s, threshold"
                " {threshold}, backoff {backoff}s{signed}; resuming at journal offset"
                " {cursor} of {end}",
                name=endpoint.name, url=endpoint.url, timeout=endpoint.timeout,
                threshold=endpoint.threshold, backoff=endpoint.backoff,
                signed=", signed" if endpoint.secret else "",
                cursor=dispatcher.cursor, end=self.journal.end,
            )
            dispatcher.start()
        self._countPending()
        self._recover()

    def _recover(self) -> None:
        """
        Find, in a pool thread, the intents of the journal that have no
        outcome record (a crash cut their request), verify each against
        storage, and only then let the dispatchers past any intent from
        before the start (L{intents}).
        """
        if not self.dispatchers:
            return
        self.outcomes.recovering = True
        start, end = self.journal.start, self.journal.end
        segments = self.journal.segments

        def scan() -> tuple[list[tuple[str, dict[str, Any]]], set[str], set[str]]:
            intents: list[tuple[str, dict[str, Any]]] = []
            resolved: set[str] = set()
            cancelled: set[str] = set()
            offset = start
            while offset < end:
                records = readRecords(self.config.outbox, segments, offset, end, 1000, 1 << 22)
                if not records:
                    break
                for record in records:
                    kind, identifier, _ = classify(record.line)
                    if kind == INTENT:
                        intents.append((identifier, intentCheck(record.line)))
                    elif kind == RESOLVED:
                        resolved.add(identifier)
                    elif kind == CANCELLED:
                        cancelled.add(identifier)
                offset = records[-1].next
            return intents, resolved, cancelled

        async def recover() -> None:
            try:
                intents, resolved, cancelled = await self.pool.run(scan)
                for identifier in cancelled:
                    self.outcomes.waiting[identifier] = False
                deletes = [check for identifier, check in intents
                           if check.get("kind") in DESTRUCTIVE and identifier not in cancelled]
                unsettled = [(i, c) for i, c in intents if i not in resolved and i not in cancelled]
                for identifier, _ in unsettled:
                    self.outcomes.waiting[identifier] = None
                for identifier, check in unsettled:
                    await self._verify(identifier, check, deletes)
            finally:
                self.outcomes.recovering = False
                for dispatcher in self.dispatchers:
                    dispatcher.settled(None)

        Deferred.fromCoroutine(recover()).addErrback(
            lambda f: _log.failure("notifications: verifying the journal's open intents", f)
        )

    async def _verify(self, identifier: str, check: dict[str, Any], deletes: list[dict[str, Any]]) -> None:
        true = True
        if self.verifyIn is not None:
            try:
                true = await verify(self.verifyIn, check)
            except Exception as e:
                # At least once: an event that cannot be checked is sent.
                _log.warn("notifications: cannot verify event {id} ({check}): {error}; delivering it",
                          id=identifier, check=check, error=e)
        if not true and check.get("kind") not in DESTRUCTIVE and conflicts(check, deletes):
            true = True
        _log.info(
            "notifications: event {id} was journaled before a crash cut its request; storage"
            " {shows} it ({check}): {what}", id=identifier, check=check,
            shows="shows" if true else "does not show", what="delivering it" if true else "dropped",
        )
        if true:
            self.outcomes.waiting.pop(identifier, None)
            record = resolvedLine(identifier)
        else:
            self.outcomes.waiting[identifier] = False
            record = cancelledLine(identifier)
        try:
            self.journal.append(record, durable=False)
        except RuntimeError:
            pass

    def _countPending(self) -> None:
        """
        Count, in a pool thread, what each endpoint has waiting from
        before the start.
        """
        if not self.dispatchers:
            return
        cursors = [(d, d.cursor) for d in self.dispatchers]
        start, end = min(c for _, c in cursors), self.journal.end
        segments = self.journal.segments

        def count() -> list[int]:
            counts = [0] * len(cursors)
            offset = start
            while offset < end:
                records = readRecords(self.config.outbox, segments, offset, end, 1000, 1 << 22)
                if not records:
                    break
                for record in records:
                    kind, _, line = classify(record.line)
                    event = Record(record.offset, record.next, line).event() if kind in (EVENT, INTENT) else None
                    if event is None:
                        continue
                    for i, (dispatcher, cursor) in enumerate(cursors):
                        if record.offset >= cursor and dispatcher.endpoint.accepts(event):
                            counts[i] += 1
                offset = records[-1].next
            return counts

        def counted(counts: list[int]) -> None:
            for (dispatcher, _), n in zip(cursors, counts, strict=True):
                dispatcher.pending += n
                if n:
                    _log.info(
                        "notifications: endpoint {name}: {count} events from before the"
                        " start to deliver", name=dispatcher.endpoint.name, count=n,
                    )

        self.pool.run(count).addCallbacks(
            counted, lambda f: _log.failure("notifications: counting pending events", f)
        )

    def stopService(self) -> Deferred[None]:
        super().stopService()

        async def stop() -> None:
            for dispatcher in self.dispatchers:
                await dispatcher.stop()
            await self.journal.close()
            await self.pool.close()

        return Deferred.fromCoroutine(stop())

    def status(self) -> list[dict[str, Any]]:
        return [d.status() for d in self.dispatchers]
