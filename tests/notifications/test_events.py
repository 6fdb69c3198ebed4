"""
Events as journaled: L{eventLine} writes what L{makeEvent} and L{encode}
make, from a template.
"""

from __future__ import annotations

import json
import os
import uuid

from twisted.trial.unittest import TestCase

from txregistry.interfaces import Caller
from txregistry.notifications.events import Source, encode, eventID, eventLine, makeEvent, target
from txregistry.registry.digest import Digest

DIGEST = Digest.parse("sha256:" + "ab" * 32)
CALLER = Caller(name="alice", requestID="r-1", address="127.0.0.1:5555", host="registry:5000",
                origin="http://registry:5000", method="GET", userAgent='curl "8" \u00e9\n')


class EventLineTests(TestCase):
    def check(self, action: str, found: dict[str, object], caller: Caller = CALLER) -> None:
        source = Source.forAddress("registry:5000")
        line = eventLine(action, found, caller, source, 1_700_000_000.25)
        event = json.loads(line)
        self.assertEqual(event, {
            **makeEvent(action, found, caller, source, 1_700_000_000.25), "id": event["id"],
        })
        self.assertEqual(line, encode(event))
        self.assertNotIn(b"\n", line)

    def test_pull(self) -> None:
        """
        A pull of a manifest by tag: the same JSON, byte for byte, with the
        user agent's quotes, newline and non-ASCII escaped.
        """
        self.check("pull", target("team/app", "http://registry:5000", "manifests", DIGEST,
                                  mediaType="application/vnd.oci.image.manifest.v1+json",
                                  size=1234, tag="latest"))

    def test_pushWithReferences(self) -> None:
        """
        A target's references (a list of descriptors) are encoded too.
        """
        found = target("team/app", "http://registry:5000", "manifests", DIGEST, size=10)
        found["references"] = [{"mediaType": "m", "digest": str(DIGEST), "size": 3}]
        self.check("push", found)

    def test_anonymousTagDelete(self) -> None:
        """
        No actor name: an empty actor; a tag delete's target has no size.
        """
        anonymous = Caller(name="", requestID="r-2", address="a", host="h", origin="http://h",
                           method="DELETE", userAgent="")
        self.check("delete", target("team/app", "http://h", "manifests", None, tag="v1"), anonymous)


class EventIDTests(TestCase):
    def test_randomVersion4(self) -> None:
        """
        Event ids, made ahead in batches, are distinct random (version 4,
        RFC 4122 variant) UUIDs across several batches.
        """
        ids = [eventID() for _ in range(1000)]
        self.assertEqual(len(set(ids)), 1000)
        for identifier in ids:
            parsed = uuid.UUID(identifier)
            self.assertEqual((str(parsed), parsed.version, parsed.variant),
                             (identifier, 4, uuid.RFC_4122))

    def test_forkedChildHasItsOwn(self) -> None:
        """
        A process forked after ids were made ahead does not hand out the
        ones its parent will.
        """
        eventID()
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                os.write(writer, eventID().encode("ascii"))
            finally:
                os._exit(0)
        os.close(writer)
        with os.fdopen(reader, "rb") as f:
            theirs = f.read().decode("ascii")
        os.waitpid(child, 0)
        ours = {eventID() for _ in range(300)}
        self.assertEqual(len(theirs), 36)
        self.assertNotIn(theirs, ours)
