# -*- test-case-name: tests.notifications.test_intents -*-
"""
Events journaled before the write they announce: why a push's journal
sync can run beside its storage writes and still lose no acknowledged
event, and what a restart does with an intent whose outcome the journal
does not hold.

A push (manifest by tag or by digest) builds its event before the
storage write (a manifest's digest comes from its bytes, its tag from
the request) and appends it as an I{intent}
(L{txregistry.notifications.outbox.intents}): a durable, group-committed
append that runs I{beside} the write.  The request is answered once
both are done, so the answer waits for the longer of the two, not their
sum.  Then:

  - the write succeeded: the intent is I{resolved} in memory at once
    (the dispatchers may deliver it) and a resolution record is queued,
    written and synced with the next batch; nobody waits for it;
  - the write failed: the intent is I{cancelled} in memory (never
    delivered) and a cancel record is queued the same way;
  - the journal failed: the request fails, as when an event could not
    be kept before.

A dispatcher delivers an intent only once it is resolved in memory or
verified (below); an intent still under way stops its endpoint's queue
(journal order is delivery order) until its write ends; a cancelled one
is skipped.

B{No acknowledged event is lost.}  The answer waits for the intent's
sync, so every acknowledged push has its intent on disk.  After a crash,
an intent with neither a resolution nor a cancel record is I{verified}
against storage before anything is delivered past it: its C{check} says
what storage holds once the write happened, asked through the model
(the layer's inner namespace):

  - by tag: the tag's index links the digest (L{ITagService.indexed}).
    L{txregistry.registry.index} writes that link before it moves the
    tag, and it stays when the tag moves on; only removing the tag
    removes it.  So it holds whenever the tag was set to the digest,
    whether or not the client saw the 201: the event is true.
  - by digest: the repository has the revision (C{manifests().exists}).

A verified intent is delivered; one that fails verification is not (and
a cancel record is written for it, so that a later write making the
check hold cannot make it true at the next restart).

B{Unresolved intents are only at the crash tail.}  The journal writes
its queue in order and a sync covers everything before it, and an
intent's resolution is queued the moment its write ends, before its
answer: so any durable append made after that (any request that arrived
after this push was answered) is written after the resolution and its
sync covers it.  An intent without a record is therefore one whose
resolution was queued within the last batch before the crash, or whose
write had not ended: exactly the requests whose answer the crash may
have cut.  (A journal write that fails fails the requests whose
intents it held; an outcome record it held is lost, and its intent, on
disk since an earlier sync, is verified at the next start like one of
the crash tail.)

B{What verification cannot tell.}  A destructive request (a tag or
manifest delete) can remove what a concurrent push's check looks for.
So those do not overlap: their event is journaled and synced I{before}
the storage delete (as an intent, resolved or cancelled by its outcome;
their cost is the same one sync as before).  A push intent that fails
its check is still delivered when the journal holds a delete intent for
the same repository and the same tag or digest: the delete may be what
removed the evidence, and at least once wins (the receiver then sees the
push followed by its delete).  A re-push of a digest the tag's index
already had, cut by a crash before the tag was moved, passes its check:
that delivers at most a duplicate-like event (the tag did name that
digest).  Deletes by another registry instance on the same storage are
not in this instance's journal: a resolution record is on disk within
the journal's C{syncInterval} (100 ms) at the latest, so only a delete
of the same tag (or manifest) through another instance within that
window, followed by this instance's crash within it too, can make an
acknowledged push's event fail its check (the delete's own event is
still delivered, by the other instance).  A delete that failed because
its target was absent, cut by a crash before its cancel record was
written, passes its check: a delete event for a request that was never
answered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from zope.interface import implementer

from txregistry.errors import ManifestUnknown
from txregistry.interfaces import INamespace
from txregistry.notifications.interfaces import IIntent
from txregistry.registry.digest import Digest, InvalidDigest

__all__ = ["Intent", "Outcomes", "verify", "conflicts", "DESTRUCTIVE"]

_log = Logger()

#: C{check} kinds: what storage shows once an intent's write happened.
TAGGED, REVISION, UNTAGGED, DELETED = "tagged", "revision", "untagged", "deleted"

#: The checks of deletes: journaled before their write, not beside it.
DESTRUCTIVE = (UNTAGGED, DELETED)


@implementer(IIntent)
class Intent:
    """
    One event journaled before its write.

    @ivar journaled: fires once the intent is synced (or fails with the
        journal's error).
    """

    def __init__(
        self, identifier: str, journaled: Deferred[None],
        settle: Callable[["Intent", bool], None],
    ) -> None:
        self.id = identifier
        self.journaled = journaled
        self._settle = settle
        self.settled = False
        self.action = ""
        self.target: Mapping[str, Any] = {}

    def resolve(self) -> None:
        """
        The write succeeded: the event may be delivered.
        """
        if not self.settled:
            self.settled = True
            self._settle(self, True)

    def cancel(self) -> None:
        """
        The write failed: the event is never delivered.
        """
        if not self.settled:
            self.settled = True
            self._settle(self, False)


class Outcomes:
    """
    What the dispatchers may do with an intent: the intents not known to
    be deliverable, by id.

    An intent absent from L{waiting} is deliverable (resolved in memory,
    or by a record found at the start), except while L{recovering}, when
    the journal from before the start is still being read and verified.

    @ivar waiting: id -> L{None} (its write is under way, or it is being
        verified) or C{False} (cancelled: skip it).
    @ivar recovering: whether the start's verification is still running.
    """

    def __init__(self) -> None:
        self.waiting: dict[str, bool | None] = {}
        self.recovering = False
        self._skips: dict[str, int] = {}
        #: How many dispatchers skip each cancelled intent.
        self.readers = 0

    def outcome(self, identifier: str) -> bool | None:
        """
        C{True}: deliver it; C{False}: skip it; L{None}: wait.
        """
        if identifier in self.waiting:
            return self.waiting[identifier]
        return None if self.recovering else True

    def skipped(self, identifier: str) -> None:
        """
        One dispatcher went past the cancelled intent C{identifier}; once
        every one has, it is forgotten.
        """
        count = self._skips.get(identifier, 0) + 1
        if count >= self.readers:
            self._skips.pop(identifier, None)
            self.waiting.pop(identifier, None)
        else:
            self._skips[identifier] = count


def conflicts(check: Mapping[str, Any], deletes: Sequence[Mapping[str, Any]]) -> bool:
    """
    Whether one of the journaled C{deletes} (their checks) could have
    removed what the push intent's C{check} looks for.
    """
    repository = check.get("repository")
    for other in deletes:
        if other.get("repository") != repository:
            continue
        if other.get("kind") == UNTAGGED and other.get("tag") == check.get("tag"):
            return True
        if other.get("kind") == DELETED and other.get("digest") == check.get("digest"):
            return True
    return False


def verify(namespace: INamespace, check: Mapping[str, Any]) -> Deferred[bool]:
    """
    Whether storage shows what an intent's write would have made.
    """
    try:
        repository = namespace.repository(str(check["repository"]))
        kind = check["kind"]
        if kind in (TAGGED, REVISION, DELETED):
            digest = Digest.parse(str(check["digest"]))
        if kind == TAGGED:
            return repository.tags().indexed(str(check["tag"]), digest)
        if kind == REVISION:
            return repository.manifests().exists(digest)
        if kind == DELETED:
            return repository.manifests().exists(digest).addCallback(lambda found: not found)
        if kind == UNTAGGED:
            def gone(failure: Any) -> bool:
                failure.trap(ManifestUnknown)
                return True

            return repository.tags().get(str(check["tag"])).addCallbacks(lambda _: False, gone)
    except (KeyError, InvalidDigest) as e:
        return fail(e)
    return fail(ValueError(f"unknown check {kind!r}"))
