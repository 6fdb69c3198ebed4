"""
SIGTERM with requests in flight, against a real C{twistd txregistry}: the
registry stops listening, lets them finish up to C{http.draintimeout},
then stops.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import time

from twisted.trial.unittest import TestCase

from tests.support import RegistryProcess


def _startPatch(registry: RegistryProcess, length: int) -> socket.socket:
    """
    Begin an upload and a PATCH of C{length} bytes, of which only the
    headers and one byte are sent.
    """
    connection = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=10)
    connection.request("POST", "/v2/drain/test/blobs/uploads/")
    response = connection.getresponse()
    response.read()
    assert response.status == 202, response.status
    location = response.getheader("Location")
    connection.close()
    path = location[location.index("/v2/"):]
    client = socket.create_connection(("127.0.0.1", registry.port), timeout=10)
    client.sendall(
        f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode() + b"x"
    )
    return client


def _readAll(client: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = client.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


class DrainTests(TestCase):
    #: C{http.workers}: L{None} for the test run's (C{TXREGISTRY_TEST_WORKERS}).
    workers: int | None = None

    def start(self, drain: str) -> RegistryProcess:
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        registry = RegistryProcess(directory, env={"REGISTRY_HTTP_DRAINTIMEOUT": drain},
                                   workers=self.workers)
        self.addCleanup(registry.kill)
        return registry

    def test_inFlightFinishes(self) -> None:
        """
        A PATCH whose body is still arriving when SIGTERM comes gets its
        202; meanwhile the port takes no new connection; then the process
        exits 0.
        """
        registry = self.start("30s")
        client = _startPatch(registry, 1001)
        time.sleep(0.3)
        registry.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertIsNone(registry.process.poll(), registry.log())
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", registry.port), timeout=2).close()
        client.sendall(b"y" * 1000)
        answer = _readAll(client)
        self.assertTrue(answer.startswith(b"HTTP/1.1 202 "), answer)
        # twistd ends by re-raising the signal it stopped on (systemd counts
        # that as a clean stop).
        self.assertIn(registry.process.wait(20), (0, -signal.SIGTERM), registry.log())
        self.assertIn("Waiting up to 30s for 1 request(s) in flight", registry.log())

    def test_drainTimeout(self) -> None:
        """
        A request that does not finish within the drain timeout is cut
        off, and the process exits.
        """
        registry = self.start("1s")
        client = _startPatch(registry, 1001)
        time.sleep(0.3)
        started = time.monotonic()
        registry.process.send_signal(signal.SIGTERM)
        # twistd ends by re-raising the signal it stopped on (systemd counts
        # that as a clean stop).
        self.assertIn(registry.process.wait(20), (0, -signal.SIGTERM), registry.log())
        self.assertGreaterEqual(time.monotonic() - started, 0.9)
        self.assertEqual(_readAll(client), b"")
        self.assertIn("still in flight after the drain timeout", registry.log())


class WorkersDrainTests(DrainTests):
    """
    The same with two workers: the supervisor sends each C{SIGTERM} and
    waits while they drain.
    """

    workers = 2
