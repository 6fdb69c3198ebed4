"""
Where the notifications layer sends its events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

__all__ = ["IEventSink", "IIntent"]


class IIntent(Interface):
    """
    An event journaled before (or beside) the write it announces
    (L{txregistry.notifications.intents}).
    """

    journaled = Attribute("A Deferred that fires once the intent is synced.")

    def resolve() -> None:
        """
        The write succeeded: the event may be delivered.
        """

    def cancel() -> None:
        """
        The write failed: the event is never delivered.
        """


class IEventSink(Interface):
    def publish(
        line: bytes, action: str, target: Mapping[str, Any], durable: bool
    ) -> Deferred[None] | None:
        """
        Take one event for every endpoint that wants it.

        @param line: the event, as its journal line
            (L{txregistry.notifications.events.eventLine}).
        @param action: its C{action}, and C{target} its target: what the
            endpoints' filters look at.
        @param durable: whether the L{Deferred} waits until the event is
            on disk (synced): a push's, mount's or delete's does.
        @return: a L{Deferred} that fires once taken (synced, when
            C{durable}), or fails when the event could not be kept (the
            operation is then not acknowledged); L{None} for an event not
            C{durable} that was taken (nothing to wait for: a pull's).
        """

    def intend(
        line: bytes, action: str, target: Mapping[str, Any], check: Mapping[str, Any]
    ) -> IIntent:
        """
        Journal one event as an intent: durable (synced, group-committed)
        before C{journaled} fires, delivered only once resolved (or, after
        a crash, once storage shows C{check}).
        """
