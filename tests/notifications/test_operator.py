"""
C{txregistry notifications list|replay}
(L{txregistry.notifications.operator}): an operator sees what each
endpoint has pending and in its dead letters, and sends them again.
"""

from __future__ import annotations

import io
import os
import sys

import yaml
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.api.helpers import pushBlob
from tests.notifications.helpers import NotifyingRegistry, endpoint, startReceiver
from txregistry.cli import main
from txregistry.config import loadConfiguration
from txregistry.notifications import operator


def blob(i: int) -> bytes:
    return b"operator blob %d\n" % i


class OperatorTests(TestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        """
        A registry whose endpoint answered 500 to 60 pushes with a small
        bound: some events are dead letters, the rest pending.
        """
        self.receiver = await startReceiver(self, status=500)
        self.entries = [endpoint(self.receiver, maxbytes="16KiB")]
        registry = await NotifyingRegistry(self, self.entries).start()
        self.outbox = registry.outbox
        self.digests = [await pushBlob(self, registry, "ops", blob(i)) for i in range(60)]
        await registry.stop()
        self.path = os.path.abspath(self.mktemp())
        with open(self.path, "w") as f:
            yaml.safe_dump({
                "storage": {"inmemory": {}},
                "notifications": {"endpoints": self.entries, "outbox": {"directory": self.outbox}},
            }, f)
        self.config = loadConfiguration(self.path, {})

    def test_list(self) -> None:
        """
        C{list} shows, per endpoint, its pending events and its dead
        letters, which together are every push.
        """
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        self.assertEqual(main(["notifications", "list", "--config", self.path]), 0)
        (line,) = out.getvalue().splitlines()
        self.assertTrue(line.startswith(f"hook\t{self.receiver.url}\t"), line)
        (report,) = operator.report(self.config)
        self.assertGreater(report.deadLetters, 0)
        self.assertGreater(report.pending, 0)
        self.assertEqual(report.pending + report.deadLetters, 60)
        self.assertIn(f"{report.pending} pending since ", line)
        self.assertIn(f"{report.deadLetters} dead letters", line)

    async def test_replayDeadLetters(self) -> None:
        """
        C{replay --dead-letter} sends the dead letters in order and sets
        the file aside, so a second replay sends nothing again.
        """
        (report,) = operator.report(self.config)
        self.receiver.status = 200
        out = io.StringIO()
        status = await operator.replay(self.config, reactor, "hook", out, deadLetter=True)
        self.assertEqual(status, 0, out.getvalue())
        sent = [e["target"]["digest"] for e in self.receiver.events]
        self.assertEqual(sent, self.digests[:report.deadLetters])
        self.assertFalse(os.path.exists(report.deadLetterPath))
        self.assertEqual(len([n for n in os.listdir(os.path.dirname(report.deadLetterPath))
                              if ".replayed-" in n]), 1)
        again = io.StringIO()
        self.assertEqual(await operator.replay(self.config, reactor, "hook", again, deadLetter=True), 0)
        self.assertIn("no dead letters", again.getvalue())

    async def test_replaySince(self) -> None:
        """
        C{replay --since} sends every event from then that the outbox still
        has: dead letters and the journal.
        """
        self.receiver.status = 200
        out = io.StringIO()
        since = operator.parseSince("1h", reactor.seconds())
        self.assertEqual(await operator.replay(self.config, reactor, "hook", out, since=since), 0)
        self.assertEqual([e["target"]["digest"] for e in self.receiver.events], self.digests)
        none = io.StringIO()
        later = operator.parseSince("2999-01-01T00:00:00Z", 0)
        self.assertEqual(await operator.replay(self.config, reactor, "hook", none, since=later), 0)
        self.assertIn("0 events sent", none.getvalue())

    async def test_replayFailureKeepsDeadLetters(self) -> None:
        """
        A replay the endpoint refuses says so and keeps the dead letters
        for C{replay --file}.
        """
        out = io.StringIO()
        self.assertEqual(await operator.replay(self.config, reactor, "hook", out, deadLetter=True), 1)
        self.assertIn("HTTP 500", out.getvalue())
        (kept,) = [n for n in os.listdir(os.path.join(self.outbox, "dead")) if ".replaying-" in n]
        self.receiver.status = 200
        again = io.StringIO()
        path = os.path.join(self.outbox, "dead", kept)
        self.assertEqual(await operator.replay(self.config, reactor, "hook", again, path=path), 0)
        self.assertGreater(len(self.receiver.events), 0)
