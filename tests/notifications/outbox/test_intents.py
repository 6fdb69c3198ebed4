"""
The journal's intent and outcome records
(L{txregistry.notifications.outbox.intents}).
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from txregistry.interfaces import Caller
from txregistry.notifications.events import PUSH, Source, eventLine, target
from txregistry.notifications.outbox.intents import (
    CANCELLED,
    EVENT,
    INTENT,
    OTHER,
    RESOLVED,
    cancelledLine,
    classify,
    intentCheck,
    intentLine,
    resolvedLine,
)


class RecordTests(TestCase):
    def setUp(self) -> None:
        found = target("a/b", "http://x", "manifests", None, tag="t")
        self.line = eventLine(PUSH, found, Caller(), Source("h:1", "i"), 0.0)
        self.id = self.line[7:43].decode("ascii")

    def test_intentKeepsTheEventBytes(self) -> None:
        """
        An intent's event is the event's line byte for byte (what is
        delivered), and its check reads back as written, even when a
        check's string looks like the record's own syntax.
        """
        check = {"kind": "tagged", "repository": "a/b", "tag": 'x,"event":{', "digest": "d"}
        record = intentLine(self.line, check)
        self.assertEqual(classify(record), (INTENT, self.id, self.line))
        self.assertEqual(intentCheck(record), check)

    def test_kinds(self) -> None:
        self.assertEqual(classify(self.line), (EVENT, self.id, self.line))
        self.assertEqual(classify(resolvedLine(self.id)), (RESOLVED, self.id, b""))
        self.assertEqual(classify(cancelledLine(self.id)), (CANCELLED, self.id, b""))
        self.assertEqual(classify(b'{"torn'), (OTHER, "", b""))
