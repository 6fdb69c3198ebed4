# -*- test-case-name: tests.registry.test_peers -*-
"""
The other processes that cache references over the same storage, and what
they are told when one changes.

A registry process keeps what tags (and digests in a repository) resolved
to, so that a manifest GET needs no storage read (L{ManifestIndex}).  With
several worker processes serving one registry, a tag moved through one
worker must be what the next request to any other reads: so the worker
that moved it tells every other, and answers its client only once each has
forgotten what it had (L{IReferencePeers.announce}).  A lone process has
no peers (L{NO_PEERS}).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, succeed
from zope.interface import Interface, implementer

from txregistry.registry.digest import Digest, InvalidDigest


@dataclass(frozen=True)
class ReferenceChange:
    """
    What changed in one repository: a tag (moved or deleted), every
    reference to a digest (the revision deleted or withdrawn), or its link
    to a blob (removed).  A blob's is its own field: a collection removes
    thousands of links, and each must not make every peer scan its
    references.
    """

    name: str
    tag: str | None = None
    digest: str | None = None
    blob: str | None = None

    def asDict(self) -> dict[str, Any]:
        return {"name": self.name, "tag": self.tag, "digest": self.digest, "blob": self.blob}

    @classmethod
    def fromDict(cls, value: Any) -> ReferenceChange:
        """
        @raise ValueError: when C{value} is not what L{asDict} makes.
        """
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise ValueError("not a reference change")
        fields = [value.get(key) for key in ("tag", "digest", "blob")]
        if not all(isinstance(field, (str, type(None))) for field in fields):
            raise ValueError("not a reference change")
        return cls(value["name"], *fields)


def announcedDigest(text: str) -> Digest | None:
    """
    The digest a change names (its C{digest} or C{blob}), or L{None} when
    the text is not one: its reader then forgets all it has of the
    repository, which is always safe.
    """
    try:
        return Digest.parse(text)
    except InvalidDigest:
        return None


class IReferencePeers(Interface):
    """
    The processes that cache references over the same storage as this
    one.
    """

    def announce(change: ReferenceChange) -> Deferred[None]:
        """
        Tell every peer that C{change} happened in storage.

        @return: fires once every peer has forgotten what it cached of it
            (or is gone); the change is not acknowledged to a client
            before.
        """

    def listen(forget: Callable[[ReferenceChange], None]) -> None:
        """
        Call C{forget} with each change a peer announces, before the peer
        is told it was forgotten.
        """


@implementer(IReferencePeers)
class _NoPeers:
    """
    A lone process: nobody else to tell.
    """

    def announce(self, change: ReferenceChange) -> Deferred[None]:
        return succeed(None)

    def listen(self, forget: Callable[[ReferenceChange], None]) -> None:
        pass


#: The peers of a process that serves its storage alone.
NO_PEERS: IReferencePeers = _NoPeers()
