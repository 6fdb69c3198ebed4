"""
The ceiling servers: what plain blocking Python on this machine does with
the same bytes, for the benchmark's ratios.

One single-threaded process, blocking sockets, one connection at a time,
just enough HTTP/1.1 (keep-alive, Content-Length):

C{POST}/C{PUT} any path with a body
    receives the body in 1 MiB C{recv_into} calls, sha256-hashes each
    piece and writes it to a new file in the directory, fsyncs the file,
    then answers C{201} with C{Docker-Content-Digest} and a C{Location}
    naming the file.  (The benchmark deletes old files between pushes.)

C{GET /<name>}
    reads the file C{<name>} from the directory in 1 MiB blocks and sends
    each with C{sendall}.

Run: C{python ceiling.py DIRECTORY}; it prints its port on the first line
of standard output and serves until killed.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys

BLOCK = 1 << 20


def readHead(conn: socket.socket, buffer: bytes) -> tuple[bytes, bytes] | None:
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    head, rest = buffer.split(b"\r\n\r\n", 1)
    return head, rest


def receive(conn: socket.socket, directory: str, serial: int, length: int, first: bytes) -> tuple[str, str]:
    name = f"received-{serial}"
    path = os.path.join(directory, name)
    hasher = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        buffer = bytearray(BLOCK)
        view = memoryview(buffer)
        remaining = length
        if first:
            first = first[:remaining]
            hasher.update(first)
            os.write(fd, first)
            remaining -= len(first)
        while remaining > 0:
            n = conn.recv_into(view, min(BLOCK, remaining))
            if n == 0:
                raise ConnectionError("client went away mid-body")
            piece = view[:n]
            hasher.update(piece)
            written = 0
            while written < n:
                written += os.write(fd, piece[written:])
            remaining -= n
        os.fsync(fd)
    finally:
        os.close(fd)
    return name, "sha256:" + hasher.hexdigest()


def send(conn: socket.socket, path: str) -> None:
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % size
        )
        buffer = bytearray(BLOCK)
        view = memoryview(buffer)
        while True:
            n = f.readinto(buffer)
            if not n:
                break
            conn.sendall(view[:n])


def serve(conn: socket.socket, directory: str, state: dict[str, object]) -> None:
    buffer = b""
    while True:
        got = readHead(conn, buffer)
        if got is None:
            return
        head, buffer = got
        lines = head.decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ")[:2]
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if method in ("POST", "PUT", "PATCH"):
            state["serial"] = serial = int(state["serial"]) + 1  # type: ignore[call-overload]
            first, buffer = buffer[:length], buffer[length:]
            name, digest = receive(conn, directory, serial, length, first)
            conn.sendall(
                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n"
                b"Location: /%s\r\nDocker-Content-Digest: %s\r\n\r\n"
                % (name.encode(), digest.encode())
            )
            state["last"] = name
        elif method == "GET":
            name = os.path.basename(target.lstrip("/")) or str(state.get("last"))
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                send(conn, path)
            else:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")


def main() -> None:
    directory = sys.argv[1]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    state: dict[str, object] = {"serial": 0, "last": None}
    while True:
        conn, _ = listener.accept()
        try:
            serve(conn, directory, state)
        except (ConnectionError, OSError) as e:
            print(f"ceiling: {e}", file=sys.stderr, flush=True)
        finally:
            conn.close()


if __name__ == "__main__":
    main()
