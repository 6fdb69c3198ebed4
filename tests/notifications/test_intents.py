"""
Manifest pushes journaled as intents beside their storage write
(L{txregistry.notifications.intents}): a write that fails makes no
event, and after a crash an intent without an outcome record is
delivered exactly when storage shows what its write would have made.
"""

from __future__ import annotations

import glob
import os
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    LAYER,
    config,
    imageManifest,
    pushBlob,
    pushImage,
    pushManifest,
    sha256,
)
from tests.notifications.helpers import (
    NotifyingRegistry,
    endpoint,
    startReceiver,
    summary,
    waitUntil,
)
from txregistry.interfaces import Caller
from txregistry.notifications.events import DELETE, PUSH, Source, eventLine, target
from txregistry.notifications.outbox.intents import cancelledLine, intentLine
from txregistry.notifications.outbox.journal import Journal
from txregistry.registry.digest import Digest
from txregistry.storage.blocking import BlockingPool


def journalText(outbox: str) -> bytes:
    return b"".join(
        open(path, "rb").read() for path in sorted(glob.glob(os.path.join(outbox, "journal-*.log")))
    )


class FailedWriteTests(TestCase):
    async def test_failedWriteMakesNoEvent(self) -> None:
        """
        A manifest pushed by digest whose write fails (it names a blob the
        repository lacks; its content does not match its digest) is
        refused, its intent is cancelled, and no event for it is ever
        delivered: the next event the endpoint has is the blob pushed
        after.
        """
        receiver = await startReceiver(self)
        registry = NotifyingRegistry(self, [endpoint(receiver)])
        await registry.start()
        self.addCleanup(lambda: Deferred.fromCoroutine(registry.stop()))
        manifest = imageManifest(config())
        await pushManifest(self, registry, "nope", sha256(manifest), manifest, expect=400)
        other = imageManifest(config("other"))
        await pushManifest(self, registry, "nope", sha256(other), manifest, expect=400)
        await pushBlob(self, registry, "nope", LAYER)
        await waitUntil(lambda: len(receiver.events) >= 1)
        self.assertEqual(summary(receiver.events), [("push", "nope", "blobs", sha256(LAYER), "")])
        # The refused pushes were journaled as intents, and cancelled.
        journal = journalText(registry.outbox)
        self.assertEqual(journal.count(b'{"intent":"'), 2)
        await waitUntil(lambda: journalText(registry.outbox).count(b'{"cancelled":"') == 2)


class CrashTailTests(TestCase):
    """
    Intents journaled without an outcome record, as a crash leaves the
    requests it cut, written into the outbox between two runs of a
    registry on filesystem storage.
    """

    async def setUp(self) -> None:  # type: ignore[override]
        self.receiver = await startReceiver(self)
        self.storage = {"filesystem": {"rootdirectory": os.path.abspath(self.mktemp())}}
        self.outbox = os.path.abspath(self.mktemp())
        first = self.registry()
        await first.start()
        try:
            self.manifest, self.digest = await pushImage(self, first, "app", "1")
            await waitUntil(lambda: len(self.receiver.events) >= 3)
        finally:
            await first.stop()
        del self.receiver.envelopes[:]

    def registry(self) -> NotifyingRegistry:
        return NotifyingRegistry(self, [endpoint(self.receiver)], outbox=self.outbox,
                                 storage=self.storage)

    async def journal(self, *lines: bytes) -> None:
        """
        Append C{lines} to the outbox's journal, as the stopped registry
        would have.
        """
        pool = BlockingPool(reactor, "test-journal", size=1)
        journal = Journal(self.outbox, reactor, pool)
        journal.open()
        for line in lines:
            await journal.append(line, durable=True)
        await journal.close()
        await pool.close()

    def intent(
        self, tag: str | None, digest: str, action: str = PUSH, /, **check: Any
    ) -> tuple[str, bytes]:
        """
        An intent for a push of C{digest} to C{app} (by C{tag}, or by
        digest), with its event id.
        """
        if action == DELETE:
            found = target("app", "http://localhost", "manifests", None, tag=tag)
        else:
            found = target("app", "http://localhost", "manifests", Digest.parse(digest),
                           mediaType="application/vnd.oci.image.manifest.v1+json", size=10, tag=tag)
        line = eventLine(action, found, Caller(method="PUT"), Source.forAddress("crashed:0"), time.time())
        return line[7:43].decode("ascii"), intentLine(line, check)

    async def test_deliveredIffStorageShowsIt(self) -> None:
        """
        After the restart: a push by tag whose tag index holds the digest
        is delivered, one whose tag was never set to it is not; a push by
        digest the repository has is delivered, one it lacks is not; a
        cancelled intent is not, even though storage shows its change; a
        push whose evidence a journaled delete of the same tag may have
        removed is delivered.  Then what follows is delivered, in order.
        """
        absent = "sha256:" + "0" * 64
        cases = [
            self.intent("1", self.digest, kind="tagged", repository="app", tag="1", digest=self.digest),
            self.intent("2", self.digest, kind="tagged", repository="app", tag="2", digest=self.digest),
            self.intent(None, self.digest, kind="revision", repository="app", digest=self.digest),
            self.intent(None, absent, kind="revision", repository="app", digest=absent),
            self.intent("1", self.digest, kind="tagged", repository="app", tag="1", digest=self.digest),
            self.intent("3", self.digest, kind="tagged", repository="app", tag="3", digest=self.digest),
            self.intent("3", self.digest, DELETE, kind="untagged", repository="app", tag="3"),
        ]
        ids = [identifier for identifier, _ in cases]
        await self.journal(*[line for _, line in cases], cancelledLine(ids[4]))
        registry = self.registry()
        await registry.start()
        self.addCleanup(lambda: Deferred.fromCoroutine(registry.stop()))
        await pushBlob(self, registry, "app", b"after the crash")
        await waitUntil(lambda: any(e["target"].get("digest") == sha256(b"after the crash")
                                    for e in self.receiver.events))
        self.assertEqual([e["id"] for e in self.receiver.events[:-1]], [ids[0], ids[2], ids[5], ids[6]])
        self.assertEqual(summary(self.receiver.events), [
            ("push", "app", "manifests", self.digest, "1"),
            ("push", "app", "manifests", self.digest, ""),
            ("push", "app", "manifests", self.digest, "3"),
            ("delete", "app", "", "", "3"),
            ("push", "app", "blobs", sha256(b"after the crash"), ""),
        ])
        # What was dropped is recorded as cancelled, so a later write that
        # makes its check hold cannot make it true at the next start.
        await waitUntil(lambda: all(cancelledLine(ids[i]) in journalText(self.outbox) for i in (1, 3)))
