"""
A real C{redis-server} for the tests (Debian's, installed if missing), on a
free loopback port, no persistence, stopped at the test's cleanup.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from typing import Any

from tests.clients.daemons import require
from tests.support import freePort


class RedisServer:
    """
    One C{redis-server}; L{stop} and L{start} again keep its port, as a
    restarted Redis does.
    """

    def __init__(self, testCase: Any) -> None:
        self.binary = require("redis-server")["redis-server"]
        self.port = freePort()
        self.directory = os.path.abspath(testCase.mktemp())
        os.makedirs(self.directory)
        self.process: subprocess.Popen[bytes] | None = None
        testCase.addCleanup(self.stop)

    @property
    def section(self) -> dict[str, Any]:
        """
        The C{redis} configuration section for this server.
        """
        return {"addrs": [f"127.0.0.1:{self.port}"], "readtimeout": "500ms",
                "writetimeout": "500ms", "dialtimeout": "500ms"}

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def command(self, *words: str) -> bytes:
        """
        Run one command with a plain socket (to look behind the registry's
        back); the raw reply.
        """
        payload = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
        with socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(payload.encode())
            return s.recv(65536)
