"""
Where the notifications layer sends its events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import Interface

__all__ = ["IEventSink"]


class IEventSink(Interface):
    def publish(line: bytes, action: str, target: Mapping[str, Any], durable: bool) -> Deferred[None]:
        """
        Take one event for every endpoint that wants it.

        @param line: the event, as its journal line
            (L{txregistry.notifications.events.eventLine}).
        @param action: its C{action}, and C{target} its target: what the
            endpoints' filters look at.
        @param durable: whether the L{Deferred} waits until the event is
            on disk (synced): a push's, mount's or delete's does.
        @return: a L{Deferred} that fires once taken, or fails when the
            event could not be kept (the operation is then not
            acknowledged).
        """
