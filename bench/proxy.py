"""
The pull-through cache's figures: one blob (1 GiB by default) pulled
directly from an upstream txregistry, through a cache in front of it that
does not hold it yet (cold: the cache fetches, stores and streams it at
once), and from that cache once it holds it (warm), in one run, with the
cache's CPU and peak RSS while cold.  Called from C{bench.py}, which
passes its helpers in, so that this module stays one concern.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

MiB = 1 << 20
MB = 1000 * 1000


def measure(
    options: Any, work: str, fd: int, size: int, digest: str,
    makeRegistry: Callable[[str, dict[str, str]], Any],
    push: Callable[[int, str, int, int, str], float],
    curlGet: Callable[[str, int], float],
    RSSSampler: Any, cpuSeconds: Callable[[int], float],
    note: Callable[[str], None], settle: Callable[[], None],
) -> dict[str, float]:
    """
    @return: the figures, by name.
    """
    upstreamDirectory = os.path.join(work, "proxy-upstream")
    os.makedirs(upstreamDirectory)
    upstream = makeRegistry(upstreamDirectory, {})
    best: dict[str, float] = {}
    peaks: list[float] = []
    cpus: list[float] = []

    def record(name: str, seconds: float, extra: str = "") -> None:
        rate = size / seconds / MB
        note(f"  proxy {name}: {rate:.1f} MB/s ({seconds:.2f}s){extra}")
        best[name] = max(best.get(name, 0.0), rate)

    try:
        note(f"proxy: pushing {size >> 20} MiB to the upstream")
        push(upstream.port, "/v2/bench/big/blobs/uploads/", fd, size, digest)
        direct = f"http://127.0.0.1:{upstream.port}/v2/bench/big/blobs/{digest}"
        for repetition in range(options.repeat):
            note(f"proxy pulls, round {repetition + 1} of {options.repeat}")
            settle()
            record("direct", curlGet(direct, size))
            cacheDirectory = os.path.join(work, f"proxy-cache-{repetition}")
            os.makedirs(cacheDirectory)
            cache = makeRegistry(cacheDirectory, {
                "REGISTRY_PROXY_REMOTEURL": f"http://127.0.0.1:{upstream.port}"})
            try:
                url = f"http://127.0.0.1:{cache.port}/v2/bench/big/blobs/{digest}"
                rss = RSSSampler(cache.pid)
                try:
                    before = cpuSeconds(cache.pid)
                    with rss.phase() as memory:
                        seconds = curlGet(url, size)
                    # The cache commits after the last byte went out:
                    # wait for it outside the timed window.
                    deadline = time.monotonic() + 120
                    while not os.path.exists(cache.blobData(digest)):
                        if time.monotonic() > deadline:
                            raise RuntimeError("the cache did not store the blob")
                        time.sleep(0.05)
                    used = cpuSeconds(cache.pid) - before
                    peaks.append(memory["peakMiB"])
                    cpus.append(used)
                    record("cold", seconds,
                           f", cache CPU {used:.2f}s, peak RSS {memory['peakMiB']:.1f} MiB")
                    settle()
                    record("warm", curlGet(url, size))
                finally:
                    rss.stop()
            finally:
                cache.stop()
    finally:
        upstream.stop()
    label = f"{size >> 30}GiB" if size >= 1 << 30 else f"{size >> 20}MiB"
    return {
        f"proxy_pull_cold_{label}_MBps": best["cold"],
        f"proxy_pull_warm_{label}_MBps": best["warm"],
        f"proxy_pull_direct_{label}_MBps": best["direct"],
        "proxy_cold_ratio": best["cold"] / best["direct"],
        f"proxy_cpu_cold_{label}_s": min(cpus),
        "proxy_rss_peak_cold_MiB": max(peaks),
    }
