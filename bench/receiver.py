"""
The benchmark's webhook receiver: answers every C{POST} with 204 and
counts the events it was sent.  C{GET} answers the count (so the
benchmark can wait for delivery to catch up); C{GET /envelopes}, how
many requests brought them.

It runs on the machine it measures, beside the registry under test and
C{wrk}, so it is made to cost little: just enough HTTP/1.1 on asyncio
(keep-alive, C{Content-Length} bodies, which is what the registry's
client sends), and events counted without parsing the envelope (each
event has one C{"action"} key, and no string in an event can hold that
key's quoted name unescaped).  A Twisted resource parsing each envelope
as JSON took about 18 CPU-microseconds per event from the registry's two
CPUs; the notifications tests parse what is delivered.

Run: C{python receiver.py}; it prints its port on the first line of
standard output and serves until killed.
"""

from __future__ import annotations

import asyncio

events = 0
envelopes = 0


class Hook(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""
        self.head: bytes | None = None
        self.length = 0

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.head is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
                self.length = 0
                for line in self.head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        self.length = int(value)
            if len(self.buffer) < self.length:
                return
            body, self.buffer = self.buffer[:self.length], self.buffer[self.length:]
            self.answer(self.head.split(b" ", 2), body)
            self.head = None

    def answer(self, requestLine: list[bytes], body: bytes) -> None:
        global events, envelopes
        if requestLine[0] == b"POST":
            events += body.count(b'"action":')
            envelopes += 1
            self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            return
        text = str(envelopes if requestLine[1] == b"/envelopes" else events).encode()
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text))


async def main() -> None:
    server = await asyncio.get_running_loop().create_server(Hook, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
