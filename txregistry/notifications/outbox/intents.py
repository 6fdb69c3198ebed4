# -*- test-case-name: tests.notifications.test_intents -*-
"""
The journal's records besides plain events: an event journaled as an
I{intent} before the storage write it announces, and the records that
later say how that write ended.

    {"intent":"<id>","check":{...},"event":{<the event line>}}
    {"resolved":"<id>"}     the write succeeded: the event is true
    {"cancelled":"<id>"}    the write failed: the event is not

An intent's C{check} says what storage shows once its write happened
(L{txregistry.notifications.recovery}); its C{event} is the event's line
exactly as it is delivered (the same bytes on every retry).  A plain
event line (a pull, or a push made without an intent) starts with
C{{"id":"}; the three kinds here start otherwise, so a reader tells
them apart from the first bytes, without parsing.

No string in a C{check} (repository names, tags, digests: their grammars
have no quote) can hold C{,"event":}, so an intent's event is the bytes
after its first occurrence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "EVENT", "INTENT", "RESOLVED", "CANCELLED", "OTHER",
    "intentLine", "resolvedLine", "cancelledLine", "classify", "intentCheck",
]

EVENT, INTENT, RESOLVED, CANCELLED, OTHER = "event", "intent", "resolved", "cancelled", "other"

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)
_INTENT = b'{"intent":"'
_RESOLVED = b'{"resolved":"'
_CANCELLED = b'{"cancelled":"'
_EVENT_KEY = b',"event":'


def eventID(line: bytes) -> str:
    """
    The C{id} of a plain event's line (first in every line,
    L{txregistry.notifications.events.eventLine}).
    """
    return line[7:line.index(b'"', 7)].decode("ascii")


def intentLine(line: bytes, check: Mapping[str, Any]) -> bytes:
    """
    The intent record of the event C{line}, with what storage shows once
    its write happened.
    """
    return b'%s%s",%s%s%s}' % (
        _INTENT, eventID(line).encode("ascii"),
        b'"check":', _ENCODER.encode(dict(check)).encode("ascii"), _EVENT_KEY + line,
    )


def resolvedLine(identifier: str) -> bytes:
    return _RESOLVED + identifier.encode("ascii") + b'"}'


def cancelledLine(identifier: str) -> bytes:
    return _CANCELLED + identifier.encode("ascii") + b'"}'


def classify(line: bytes) -> tuple[str, str, bytes]:
    """
    What a journal line is.

    @return: its kind (L{EVENT}, L{INTENT}, L{RESOLVED}, L{CANCELLED} or
        L{OTHER}: not a record, such as a torn line), the event id it
        concerns (empty for L{OTHER}) and, for an event or an intent, the
        event's line (else C{b""}).
    """
    if line.startswith(b'{"id":"') and line.endswith(b"}"):
        return EVENT, eventID(line), line
    if line.startswith(_INTENT) and line.endswith(b"}}"):
        end = line.find(b'"', len(_INTENT))
        at = line.find(_EVENT_KEY)
        if end > 0 and at > 0:
            return INTENT, line[len(_INTENT):end].decode("ascii"), line[at + len(_EVENT_KEY):-1]
    for prefix, kind in ((_RESOLVED, RESOLVED), (_CANCELLED, CANCELLED)):
        if line.startswith(prefix) and line.endswith(b'"}'):
            return kind, line[len(prefix):-2].decode("ascii", "replace"), b""
    try:
        parsed = json.loads(line)
    except ValueError:
        return OTHER, "", b""
    if isinstance(parsed, dict) and isinstance(parsed.get("id"), str):
        # An event encoded otherwise (an older journal's).
        return EVENT, parsed["id"], line
    return OTHER, "", b""


def intentCheck(line: bytes) -> dict[str, Any]:
    """
    The C{check} of an intent record (its line as journaled).
    """
    try:
        parsed = json.loads(line)
    except ValueError:
        return {}
    check = parsed.get("check") if isinstance(parsed, dict) else None
    return check if isinstance(check, dict) else {}
