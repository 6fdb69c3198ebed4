"""
A minimal blocking HTTP/1.1 client on a raw socket, for the benchmark.

It does just enough HTTP to drive the registry API (keep-alive,
Content-Length bodies) and sends large bodies straight from a file with
C{os.sendfile} or from memory with one C{sendall}, so the client costs
next to nothing next to the server it measures.
"""

from __future__ import annotations

import os
import select
import socket
import time
from dataclasses import dataclass, field

_RECV = 1 << 20


class HTTPError(Exception):
    """
    An unexpected or malformed response.
    """


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


class Connection:
    """
    One keep-alive connection to C{host:port}.
    """

    def __init__(self, host: str, port: int, timeout: float = 300.0) -> None:
        self.host = host
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""
        #: when the last body byte of the last L{sendFile} was handed to
        #: the kernel (C{time.perf_counter}).
        self.sentAt = 0.0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _head(self, method: str, path: str, headers: dict[str, str] | None, length: int) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Response:
        """
        Send a request with an in-memory body (one C{sendall}) and read the
        response.
        """
        head = self._head(method, path, headers, len(body))
        if len(body) < 65536:
            self.sock.sendall(head + body)
        else:
            self.sock.sendall(head)
            self.sock.sendall(body)
        return self.response(method)

    def sendFile(
        self,
        method: str,
        path: str,
        fd: int,
        offset: int,
        count: int,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """
        Send a request whose body is C{count} bytes of C{fd} from C{offset},
        with C{sendfile} (no copy through this process), and read the
        response.
        """
        self.sock.sendall(self._head(method, path, headers, count))
        out = self.sock.fileno()
        end = offset + count
        while offset < end:
            try:
                sent = os.sendfile(out, fd, offset, end - offset)
            except BlockingIOError:
                # The socket has a timeout, so it is non-blocking underneath.
                if not select.select([], [out], [], self.sock.gettimeout())[1]:
                    raise TimeoutError("send timed out") from None
                continue
            if sent == 0:
                raise HTTPError("connection closed while sending the body")
            offset += sent
        self.sentAt = time.perf_counter()
        return self.response(method)

    def _fill(self) -> None:
        data = self.sock.recv(_RECV)
        if not data:
            raise HTTPError("connection closed before the response was complete")
        self._buffer += data

    def response(self, method: str = "GET") -> Response:
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HTTPError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 100:
            return self.response(method)
        length = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            self._fill()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return Response(status, headers, body)


def expect(response: Response, *statuses: int) -> Response:
    """
    @raise HTTPError: unless the response has one of C{statuses}.
    """
    if response.status not in statuses:
        raise HTTPError(f"expected {statuses}, got {response.status}: {response.body[:500]!r}")
    return response


def locationPath(response: Response) -> str:
    """
    The path (with query) of a C{Location} header, absolute or not.
    """
    location = response.header("location")
    if location.startswith("http://") or location.startswith("https://"):
        location = "/" + location.split("://", 1)[1].split("/", 1)[1]
    return location
