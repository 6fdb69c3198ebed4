"""
The outbox's journal (L{txregistry.notifications.outbox.journal}):
durable appends synced together, a torn last line cut at open, segments
removed once read past, one process per outbox.
"""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

from twisted.internet import reactor
from twisted.internet.defer import gatherResults
from twisted.trial.unittest import TestCase

from txregistry.notifications.outbox.journal import (
    Journal,
    OutboxLocked,
    listSegments,
    readRecords,
    segmentName,
)
from txregistry.storage.blocking import BlockingPool


class JournalTests(TestCase):
    def makeJournal(self, directory: str | None = None, **options: Any) -> Journal:
        directory = directory or os.path.abspath(self.mktemp())
        pool = BlockingPool(reactor, "test-journal", size=4)
        self.addCleanup(pool.close)
        journal = Journal(directory, reactor, pool, **options)
        journal.open()
        return journal

    async def closing(self, journal: Journal) -> None:
        await journal.close()

    async def test_durableAppendsShareSyncs(self) -> None:
        """
        Fifty concurrent durable appends are all readable once their
        Deferreds fire, in order, with fewer syncs than appends (group
        commit).
        """
        journal = self.makeJournal()
        syncs = []
        real = os.fdatasync

        def counting(fd: int) -> None:
            syncs.append(fd)
            real(fd)

        with mock.patch("os.fdatasync", counting):
            await gatherResults([journal.append(b'{"n":%d}' % i, durable=True) for i in range(50)])
        records = await journal.read(0, maxRecords=100)
        self.assertEqual([r.event() for r in records], [{"n": i} for i in range(50)])
        self.assertLess(len(syncs), 50)
        self.assertGreaterEqual(len(syncs), 1)
        # What /debug/vars reports of it.
        self.assertEqual((journal.syncs, journal.durableAppends), (len(syncs), 50))
        await journal.close()

    async def test_pullAppendsWrittenWithoutWaiting(self) -> None:
        """
        A non-durable append fires at once and is written within the sync
        interval (or with the next durable one).
        """
        journal = self.makeJournal(syncInterval=0.05)
        d = journal.append(b'{"pull":1}', durable=False)
        self.assertTrue(d.called)
        self.assertEqual(journal.end, 0)
        await journal.append(b'{"push":1}', durable=True)
        self.assertEqual([r.event() for r in await journal.read(0)], [{"pull": 1}, {"push": 1}])
        journal.append(b'{"pull":2}', durable=False)
        await journal.close()
        reopened = self.makeJournal(journal.directory)
        self.assertEqual(len(await reopened.read(0)), 3)
        await reopened.close()

    async def test_tornLineCut(self) -> None:
        """
        A line without its newline (a crash mid-write) is cleared at open;
        what came before is kept and appends go on after it, and are read
        back after the next open too.
        """
        journal = self.makeJournal()
        await journal.append(b'{"a":1}', durable=True)
        await journal.close()
        with open(os.path.join(journal.directory, segmentName(0)), "r+b") as f:
            f.seek(journal.end)
            f.write(b'{"torn":')
        reopened = self.makeJournal(journal.directory)
        self.assertEqual(reopened.end, len(b'{"a":1}\n'))
        await reopened.append(b'{"b":2}', durable=True)
        self.assertEqual([r.event() for r in await reopened.read(0)], [{"a": 1}, {"b": 2}])
        await reopened.close()
        again = self.makeJournal(journal.directory)
        self.assertEqual([r.event() for r in await again.read(0)], [{"a": 1}, {"b": 2}])
        await again.close()

    async def test_segmentsAndCompaction(self) -> None:
        """
        Past its segment size the journal starts a new segment; reading
        crosses segments; compacting removes only the segments wholly
        before the offset given, never the last.
        """
        journal = self.makeJournal(segmentBytes=64)
        for i in range(20):
            await journal.append(b'{"n":%d,"pad":"x","q":"xxxxxxxxxx"}' % i, durable=True)
        segments = listSegments(journal.directory)
        self.assertGreater(len(segments), 3)
        records = await journal.read(0, maxRecords=100)
        self.assertEqual([r.event()["n"] for r in records], list(range(20)))  # type: ignore[index]
        middle = records[10].offset
        await journal.compact(middle)
        kept = listSegments(journal.directory)
        self.assertLessEqual(kept[0], middle)
        self.assertLess(len(kept), len(segments))
        self.assertEqual(journal.start, kept[0])
        fromMiddle = await journal.read(middle, maxRecords=100)
        self.assertEqual([r.event()["n"] for r in fromMiddle], list(range(10, 20)))  # type: ignore[index]
        await journal.compact(journal.end)
        self.assertEqual(len(listSegments(journal.directory)), 1)
        await journal.close()

    async def test_latestReadFromMemory(self) -> None:
        """
        The latest records written are read back without reading the
        segments, the same records, offsets and limits as from them; older
        ones (past C{tailBytes}) and a reopened journal's are read from
        the segments.
        """
        journal = self.makeJournal(tailBytes=200)
        lines = [b'{"n":%d,"pad":"xxxxxxxxxx"}' % i for i in range(40)]
        for line in lines[:20]:
            journal.append(line, durable=False)
        await journal.append(lines[20], durable=True)
        await gatherResults([journal.append(line, durable=True) for line in lines[21:]])
        fromDisk = readRecords(journal.directory, journal.segments, 0, journal.end, 100, 1 << 20)
        self.assertEqual([r.line for r in fromDisk], lines)
        recent = fromDisk[-6:]
        with mock.patch("txregistry.notifications.outbox.journal.readRecords") as reading:
            self.assertEqual(await journal.read(recent[0].offset), recent)
            self.assertEqual(await journal.read(recent[0].offset, maxRecords=2), recent[:2])
            self.assertEqual(await journal.read(recent[0].offset, maxBytes=1), recent[:1])
            self.assertEqual(await journal.read(journal.end), [])
        reading.assert_not_called()
        self.assertEqual(await journal.read(0, maxRecords=100), fromDisk)
        self.assertEqual(await journal.read(fromDisk[1].offset, maxRecords=3), fromDisk[1:4])
        await journal.close()
        reopened = self.makeJournal(journal.directory)
        self.assertEqual(await reopened.read(recent[0].offset), recent)
        await reopened.close()

    async def test_oneProcessPerOutbox(self) -> None:
        """
        A second journal on the same directory (another registry process)
        is refused while the first holds it.
        """
        journal = self.makeJournal()
        second = Journal(journal.directory, reactor, BlockingPool(reactor, "x"))
        error = self.assertRaises(OutboxLocked, second.open)
        self.assertIn(f"pid {os.getpid()}", str(error))
        await journal.close()
        third = self.makeJournal(journal.directory)
        await third.close()
