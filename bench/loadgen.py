"""
A small closed-loop HTTP/1.1 load generator, for the requests wrk cannot
make: wrk 4.1 (Debian's) waits for a HEAD response's Content-Length worth
of body that never comes, and ApacheBench speaks HTTP/1.0, which
Twisted does not keep alive.

C{python loadgen.py PORT METHOD PATH SECONDS CONNECTIONS [HEADER...]}
keeps CONNECTIONS keep-alive connections busy for SECONDS, one request
in flight on each, and prints one JSON line: requests/s, p99 latency in
ms, and the count of non-2xx responses.  It runs as its own process
(asyncio protocols, no per-request allocation beyond the response), so it
does not share a GIL with the benchmark.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time

_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)


class _Client(asyncio.Protocol):
    def __init__(self, request: bytes, method: str, deadline: float, latencies: list[float], bad: list[int]) -> None:
        self._request = request
        self._head = method == "HEAD"
        self._deadline = deadline
        self._latencies = latencies
        self._bad = bad
        self._buffer = b""
        self._need = -1
        self._sent = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._send()

    def _send(self) -> None:
        self._sent = time.perf_counter()
        self._transport.write(self._request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._need < 0:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self._buffer[:end]
                self._buffer = self._buffer[end + 4 :]
                if not head.startswith(b"HTTP/1.1 2"):
                    self._bad[0] += 1
                length = 0
                if not self._head:
                    match = _LENGTH.search(head)
                    if match is not None:
                        length = int(match.group(1))
                self._need = length
            if len(self._buffer) < self._need:
                return
            self._buffer = self._buffer[self._need :]
            self._need = -1
            now = time.perf_counter()
            self._latencies.append(now - self._sent)
            if now >= self._deadline:
                self._transport.close()
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _main(port: int, method: str, path: str, seconds: float, connections: int, headers: list[str]) -> dict[str, float]:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"] + headers
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    bad = [0]
    started = time.perf_counter()
    deadline = started + seconds
    clients = []
    for _ in range(connections):
        _, client = await loop.create_connection(
            lambda: _Client(request, method, deadline, latencies, bad), "127.0.0.1", port
        )
        clients.append(client)
    await asyncio.gather(*(c.done for c in clients))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return {"rps": len(latencies) / elapsed, "p99ms": p99 * 1000, "bad": bad[0], "requests": len(latencies)}


def main() -> None:
    port, method, path, seconds, connections = sys.argv[1:6]
    result = asyncio.run(_main(int(port), method, path, float(seconds), int(connections), sys.argv[6:]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
