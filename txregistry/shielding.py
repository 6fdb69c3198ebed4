# -*- test-case-name: tests.web.test_channel -*-
"""
Work that must run to its end even when whoever waits for it gives up.
"""

from __future__ import annotations

from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

T = TypeVar("T")


def shielded(work: Deferred[T]) -> Deferred[T]:
    """
    A L{Deferred} with C{work}'s result whose cancellation does not reach
    C{work}.

    Callers cancel what they wait for (Klein cancels a route's Deferred
    when its client goes away, and that reaches whatever the route is
    waiting on).  A commit stopped half-way leaves a temporary file, an
    open descriptor or an orphaned upload; with this, the caller stops
    waiting and the work runs to its end.  Its outcome, once nobody waits,
    is dropped.
    """
    result: Deferred[T] = Deferred(lambda _: None)
    work.addBoth(_settle, result)
    return result


def _settle(outcome: Any, result: Deferred[Any]) -> None:
    if not result.called:
        if isinstance(outcome, Failure):
            result.errback(outcome)
        else:
            result.callback(outcome)
