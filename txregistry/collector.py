# -*- test-case-name: tests.test_collector -*-
"""
The garbage collector's settings for a serving process.

Requests make reference cycles (a L{Deferred} and its callbacks, a
failure's frames, a request and its channel) that only the cyclic
collector frees, and Python's defaults collect the youngest objects every
700 allocations and, now and then, every object there is: the hundreds of
thousands that importing Twisted, Klein and the registry made, which live
as long as the process.  Measured on manifest GETs with two workers, that
was about 90 CPU-microseconds a request, an eighth of its cost.

Once the server has started, L{settle} moves what start-up made out of
the collector's sight (C{gc.freeze}: it is never garbage) and collects the
youngest objects every L{YOUNG_THRESHOLD} allocations: each collection
looks at the objects of the requests in flight, so fewer of them cost
less in all, and cyclic garbage waits for at most that many allocations.
Measured the same way: about 30 CPU-microseconds a request.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle"]

#: Allocations between two collections of the youngest generation
#: (Python's default: 700).  Ten times as many measured best; fifty
#: times, worse again (each collection then looks at more).
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """
    Freeze what exists now and collect the youngest generation less
    often: call once the serving process has started (its imports done,
    its registry made), never in a process that is not a server's (a
    test's, whose objects would never be freed).
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
