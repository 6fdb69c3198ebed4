"""
What one hand-off to a thread pool costs: C{N} C{os.stat} calls, 64 in
flight at a time, through L{txregistry.storage.blocking.BlockingPool} and
through C{twisted.python.threadpool} (C{deferToThreadPool}, what the pool
was before and what C{deferToThread} uses), in one process, one after the
other; wall and CPU microseconds per call.

    .venv/bin/python bench/handoff.py [N]
"""

from __future__ import annotations

import os
import resource
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, task  # noqa: E402
from twisted.internet.threads import deferToThreadPool  # noqa: E402
from twisted.python.threadpool import ThreadPool  # noqa: E402

from txregistry.storage.blocking import BlockingPool  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(name: str, run: Any, count: int) -> None:
    path = os.path.abspath(__file__)

    async def one(calls: int) -> None:
        for _ in range(calls):
            await run(os.stat, path)

    await run(os.stat, path)
    cpu, wall = _cpu(), time.perf_counter()
    await defer.gatherResults([defer.Deferred.fromCoroutine(one(count // 64)) for _ in range(64)])
    calls = count // 64 * 64
    print(f"{name}: wall {1e6 * (time.perf_counter() - wall) / calls:.1f} us,"
          f" CPU {1e6 * (_cpu() - cpu) / calls:.1f} us per call", flush=True)


async def main(reactor: Any, count: int) -> None:
    pool = BlockingPool(reactor, "handoff", 16)
    await _measure("BlockingPool", pool.run, count)
    await pool.close()
    threads = ThreadPool(minthreads=0, maxthreads=16, name="handoff-twisted")
    threads.start()
    try:
        await _measure("twisted.python.threadpool",
                       lambda f, *a: deferToThreadPool(reactor, threads, f, *a), count)
    finally:
        threads.stop()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    task.react(lambda reactor: defer.Deferred.fromCoroutine(main(reactor, count)))
