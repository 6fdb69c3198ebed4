"""
The 256 MiB streamed round trip with this process's RSS sampled: a
driver for a remote store must write and read a value of any size in a
few chunks of memory.
"""

from __future__ import annotations

from typing import Any

import psutil
from twisted.internet.task import LoopingCall
from twisted.python import log

from txregistry.storage.testing import ChunkProducer, HashingConsumer, MiB, chunks, digestOf

#: What the round trip may add to the RSS, in MiB: a few chunks, not the
#: value.
LIMIT = 64


async def roundTripGrowth(testCase: Any, driver: Any, name: str, size: int = 256) -> float:
    """
    Write C{size} MiB through C{driver}'s writer and read them back
    through its reader, checking the digest.

    @return: how much the process's RSS grew meanwhile, in MiB (also
        logged, with the time taken).
    """
    from twisted.internet import reactor

    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]

    def sample() -> None:
        peak[0] = max(peak[0], process.memory_info().rss)

    sampler = LoopingCall(sample)
    sampler.start(0.05)
    started = reactor.seconds()  # type: ignore[attr-defined]
    try:
        writer = await driver.writer("/big")
        await ChunkProducer(chunks(size, seed=5), writer).start()
        testCase.assertEqual(await writer.commit(), size * MiB)
        written = reactor.seconds()  # type: ignore[attr-defined]
        reader = await driver.reader("/big")
        consumer = HashingConsumer()
        await reader.startProducing(consumer)
    finally:
        if sampler.running:
            sampler.stop()
    done = reactor.seconds()  # type: ignore[attr-defined]
    testCase.assertEqual(consumer.hasher.hexdigest(), digestOf(chunks(size, seed=5)))
    growth = (peak[0] - before) / MiB
    log.msg(
        f"{name} {size} MiB round trip: write {written - started:.1f}s, "
        f"read {done - written:.1f}s, RSS grew by {growth:.1f} MiB"
    )
    return growth
