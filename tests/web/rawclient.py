"""
A blocking HTTP/1.x client on a plain socket, for tests that need control
a library client does not give: streaming a body from a generator,
pipelining, HTTP/1.0, stopping mid-body, reading a response before the
body is sent.

It blocks, so tests whose server runs in the trial reactor call it through
L{twisted.internet.threads.deferToThread}.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field


@dataclass
class Response:
    version: bytes
    status: int
    reason: bytes
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


class Connection:
    """
    One TCP connection to C{127.0.0.1:port}.
    """

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._file = self.sock.makefile("rb")

    def close(self) -> None:
        self._file.close()
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Sending

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def sendRequest(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        version: str = "HTTP/1.1",
    ) -> None:
        self.send(requestBytes(method, path, headers, body, version))

    def sendStreaming(
        self,
        method: str,
        path: str,
        chunks: Iterable[bytes],
        length: int | None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """
        Send a request whose body comes from C{chunks}: with
        C{Content-Length: length}, or chunked when C{length} is L{None}.

        @return: the bytes sent and their sha256 (hex).
        """
        headers = dict(headers or {})
        if length is None:
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(length)
        self.send(requestBytes(method, path, headers))
        return self.sendBody(chunks, chunked=length is None)

    def sendBody(self, chunks: Iterable[bytes], chunked: bool) -> tuple[int, str]:
        hasher = hashlib.sha256()
        sent = 0
        for chunk in chunks:
            hasher.update(chunk)
            sent += len(chunk)
            if chunked:
                if chunk:
                    self.sock.sendall(b"%x\r\n" % len(chunk))
                    self.sock.sendall(chunk)
                    self.sock.sendall(b"\r\n")
            else:
                self.sock.sendall(chunk)
        if chunked:
            self.sock.sendall(b"0\r\n\r\n")
        return sent, hasher.hexdigest()

    # Receiving

    def readResponse(self, method: str = "GET", sink: Callable[[bytes], None] | None = None) -> Response:
        """
        Read one response (a C{100 Continue} counts as one).

        @param sink: if given, a body with a C{Content-Length} is passed to
            it block by block instead of being kept in C{Response.body}.
        """
        line = self._file.readline(65536)
        if not line:
            raise ConnectionError("connection closed before a response")
        version, status, reason = (line.rstrip(b"\r\n").split(b" ", 2) + [b""])[:3]
        response = Response(version, int(status), reason)
        while True:
            line = self._file.readline(65536)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            response.headers.setdefault(name.strip().lower(), []).append(value.strip())
        if response.status < 200 or response.status in (204, 304) or method == "HEAD":
            return response
        encoding = response.header("transfer-encoding")
        length = response.header("content-length")
        if encoding is not None and encoding.lower() == "chunked":
            response.body = self._readChunked()
        elif length is not None and sink is not None:
            remaining = int(length)
            while remaining:
                block = self._file.read(min(remaining, 1024 * 1024))
                if not block:
                    raise ConnectionError(f"short body: {remaining} bytes missing")
                sink(block)
                remaining -= len(block)
        elif length is not None:
            response.body = self._readExactly(int(length))
        else:
            response.body = self._file.read()
        return response

    def _readExactly(self, count: int) -> bytes:
        data = self._file.read(count)
        if len(data) != count:
            raise ConnectionError(f"short body: {len(data)} of {count}")
        return data

    def _readChunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self._file.readline(1024).split(b";")[0], 16)
            if size == 0:
                while self._file.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self._readExactly(size))
            self._file.readline(1024)

    def atEOF(self) -> bool:
        """
        Whether the server closed the connection (waits for it).
        """
        return self._file.read(1) == b""


def requestBytes(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    headers = dict(headers or {})
    headers.setdefault("Host", "127.0.0.1")
    if body and "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        headers["Content-Length"] = str(len(body))
    lines = [f"{method} {path} {version}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def patterned(total: int, chunkSize: int = 1024 * 1024, seed: int = 0) -> Iterator[bytes]:
    """
    C{total} deterministic bytes in chunks, each chunk distinct, without
    ever holding more than one chunk.
    """
    import random

    base = random.Random(seed).randbytes(chunkSize)
    index = 0
    sent = 0
    while sent < total:
        size = min(chunkSize, total - sent)
        yield (index.to_bytes(8, "big") + base[8:])[:size]
        index += 1
        sent += size


def sha256Of(chunks: Iterable[bytes]) -> str:
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigest()
