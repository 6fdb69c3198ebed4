# -*- test-case-name: tests.notifications.test_operator -*-
"""
What C{txregistry notifications list|replay} does: read an outbox (the
registry may be running: nothing here writes the journal or a cursor)
and send events again.

    list                         each endpoint: pending events and bytes,
                                 the oldest pending, its dead letters
    replay NAME --dead-letter    send NAME's dead-letter file, then set it
                                 aside as <file>.replayed-<time>
    replay NAME --file PATH      send the events in PATH (one per line)
    replay NAME --since TIME     send every event from TIME on that the
                                 outbox still has (dead letters, then the
                                 journal: delivered events are compacted
                                 away once every endpoint has them)

Replays go straight to the endpoint, in order, signed as the registry
signs; receivers drop the ones they have by id.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from twisted.internet.defer import Deferred

from txregistry.config import Configuration, ConfigurationError, parseDuration
from txregistry.notifications.config import EndpointConfig
from txregistry.notifications.dispatcher import MAX_EVENTS, deliver, httpClient
from txregistry.notifications.outbox.intents import CANCELLED, EVENT, INTENT, classify
from txregistry.notifications.outbox.journal import (
    Record,
    listSegments,
    readRecords,
    segmentDataLength,
    segmentName,
)
from txregistry.notifications.outbox.state import deadLetterPath, readCursor

__all__ = ["EndpointReport", "report", "listOutbox", "replay", "parseSince"]


@dataclass(frozen=True)
class EndpointReport:
    name: str
    url: str
    disabled: bool
    cursor: int | None
    end: int
    pending: int
    oldest: str | None
    deadLetters: int
    deadLetterPath: str


def _journalRecords(directory: str, offset: int) -> Iterator[tuple[str, str, Record]]:
    """
    The journal's records from C{offset}: each one's kind and event id
    (L{classify}), with the event it holds, if any, as a L{Record}.
    """
    segments = listSegments(directory) if os.path.isdir(directory) else []
    end = _journalEnd(directory)
    while offset < end:
        records = readRecords(directory, segments, offset, end, 1000, 1 << 22)
        if not records:
            return
        for record in records:
            kind, identifier, line = classify(record.line)
            yield kind, identifier, Record(record.offset, record.next, line)
        offset = records[-1].next


def _journalEvents(directory: str, offset: int) -> Iterator[dict[str, Any]]:
    """
    The events journaled from C{offset}: plain events and intents, less
    the intents cancelled (their write failed).
    """
    cancelled = {i for kind, i, _ in _journalRecords(directory, offset) if kind == CANCELLED}
    for kind, identifier, record in _journalRecords(directory, offset):
        if kind == EVENT or (kind == INTENT and identifier not in cancelled):
            event = record.event()
            if event is not None:
                yield event


def _journalEnd(directory: str) -> int:
    segments = listSegments(directory) if os.path.isdir(directory) else []
    if not segments:
        return 0
    return segments[-1] + segmentDataLength(os.path.join(directory, segmentName(segments[-1])))


def _fileEvents(path: str) -> Iterator[dict[str, Any]]:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                yield event


def _outbox(config: Configuration) -> str:
    directory = config.notifications.outbox
    if not directory:
        raise ConfigurationError("notifications: no endpoint is enabled, so there is no outbox")
    return directory


def report(config: Configuration) -> list[EndpointReport]:
    """
    Each configured endpoint's state in the outbox.
    """
    directory = _outbox(config)
    end = _journalEnd(directory)
    reports = []
    for endpoint in config.notifications.endpoints:
        cursor = readCursor(directory, endpoint.name) if os.path.isdir(directory) else None
        pending, oldest = 0, None
        if cursor is not None and not endpoint.disabled:
            for event in _journalEvents(directory, cursor):
                if endpoint.accepts(event):
                    pending += 1
                    oldest = oldest or str(event.get("timestamp"))
        dead = deadLetterPath(directory, endpoint.name)
        reports.append(EndpointReport(
            endpoint.name, endpoint.url, endpoint.disabled, cursor, end, pending, oldest,
            sum(1 for _ in _fileEvents(dead)), dead,
        ))
    return reports


def listOutbox(config: Configuration, out: TextIO) -> int:
    """
    C{txregistry notifications list}.
    """
    for r in report(config):
        state = "disabled" if r.disabled else (
            f"{r.pending} pending" + (f" since {r.oldest}" if r.oldest else "")
            + (f", {r.end - r.cursor} journal bytes" if r.cursor is not None else ", never started")
        )
        out.write(f"{r.name}\t{r.url}\t{state}\t{r.deadLetters} dead letters ({r.deadLetterPath})\n")
    return 0


def parseSince(value: str, now: float) -> float:
    """
    A time: RFC 3339 (C{2026-12-01T12:00:00Z}) or a duration before
    C{now} (C{2h}, C{30m}).
    """
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return now - parseDuration("--since", value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def endpointNamed(config: Configuration, name: str) -> EndpointConfig:
    for endpoint in config.notifications.endpoints:
        if endpoint.name == name:
            return endpoint
    raise ConfigurationError(f"notifications: no endpoint named {name!r}")


def _time(event: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(event.get("timestamp"))).timestamp()
    except ValueError:
        return 0.0


async def _send(reactor: Any, endpoint: EndpointConfig, events: list[dict[str, Any]], out: TextIO) -> None:
    client, pool = httpClient(reactor, endpoint)
    try:
        for start in range(0, len(events), MAX_EVENTS):
            batch = events[start:start + MAX_EVENTS]
            await deliver(
                client, endpoint,
                [(str(e.get("id", "")), json.dumps(e, separators=(",", ":")).encode()) for e in batch],
                reactor,
            )
            out.write(f"sent {start + len(batch)} of {len(events)}\n")
    finally:
        await pool.closeCachedConnections()


def replay(
    config: Configuration,
    reactor: Any,
    name: str,
    out: TextIO,
    deadLetter: bool = False,
    path: str | None = None,
    since: float | None = None,
) -> Deferred[int]:
    """
    C{txregistry notifications replay}: exactly one of C{deadLetter},
    C{path} and C{since}.

    @return: a L{Deferred} of the exit status.
    """
    directory = _outbox(config)
    endpoint = endpointNamed(config, name)
    setAside: str | None = None
    if deadLetter:
        source = deadLetterPath(directory, name)
        if not os.path.exists(source):
            out.write(f"{name}: no dead letters ({source})\n")
            return Deferred.fromCoroutine(_zero())
        # Set aside first: the registry appends new dead letters to a new
        # file meanwhile, and none is sent twice or missed.
        setAside = f"{source}.replaying-{int(time.time())}"
        os.replace(source, setAside)
        events = list(_fileEvents(setAside))
    elif path is not None:
        events = list(_fileEvents(path))
    else:
        assert since is not None
        # Dead letters may still be in the journal's oldest segment too:
        # each event once, oldest first.
        found: dict[str, dict[str, Any]] = {}
        for event in [*_fileEvents(deadLetterPath(directory, name)), *_journalEvents(directory, 0)]:
            if _time(event) >= since:
                found.setdefault(str(event.get("id")), event)
        events = sorted(found.values(), key=_time)
    events = [e for e in events if endpoint.accepts(e)]

    async def run() -> int:
        try:
            await _send(reactor, endpoint, events, out)
        except Exception as e:
            out.write(f"{name}: replay failed: {e}\n")
            if setAside is not None:
                out.write(f"{name}: the dead letters are in {setAside} (replay --file sends them)\n")
            return 1
        if setAside is not None:
            done = setAside.replace(".replaying-", ".replayed-")
            os.replace(setAside, done)
            out.write(f"{name}: {len(events)} dead letters sent; kept in {done}\n")
        else:
            out.write(f"{name}: {len(events)} events sent\n")
        return 0

    return Deferred.fromCoroutine(run())


async def _zero() -> int:
    return 0
