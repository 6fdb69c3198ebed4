"""
The streaming request path of a real registry: C{twistd -n txregistry} as
a child process (L{tests.support.RegistryProcess}) with filesystem storage,
driven by a plain socket client.

These tests measure the child from outside: its peak resident memory
while a gigabyte streams through it, the files it opens, and what a
SIGKILL in the middle of a write leaves on disk.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import threading
import time
from typing import Any

from twisted.python import log
from twisted.trial.unittest import TestCase

from tests.support import RegistryProcess
from tests.web.rawclient import Connection, patterned, requestBytes, sha256Of

MiB = 1024 * 1024
GiB = 1024 * MiB

#: The most memory the registry may use while it streams a 1 GiB body.
RSS_LIMIT = 100 * MiB


def _statusKiB(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class ProcessSampler:
    """
    Samples a process every few milliseconds, in a thread: its resident
    memory, and the paths of the files it has open.

    @ivar openPaths: every distinct path seen among its open descriptors.
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.samples = 0
        self.maxRSS = 0
        self.openPaths: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fds = f"/proc/{self.pid}/fd"
        while not self._stop.is_set():
            try:
                self.maxRSS = max(self.maxRSS, _statusKiB(self.pid, "VmRSS") * 1024)
                for fd in os.listdir(fds):
                    try:
                        self.openPaths.add(os.readlink(os.path.join(fds, fd)))
                    except OSError:
                        pass
            except (OSError, KeyError):
                return
            self.samples += 1
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def peak(self) -> int:
        """
        The kernel's own high-water mark of resident memory (VmHWM), which
        catches peaks between samples.
        """
        return _statusKiB(self.pid, "VmHWM") * 1024


def blobPath(storage: str, digest: str) -> str:
    return os.path.join(
        storage, "docker/registry/v2/blobs/sha256", digest[:2], digest, "data"
    )


def fileDigest(path: str) -> tuple[int, str]:
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(4 * MiB):
            hasher.update(block)
            size += len(block)
    return size, hasher.hexdigest()


def visibleFiles(root: str) -> list[str]:
    """
    Files below C{root} whose names do not start with '.' (a driver's
    temporary files do).
    """
    found = []
    for directory, _, files in os.walk(root):
        found += [
            os.path.relpath(os.path.join(directory, f), root)
            for f in files
            if not f.startswith(".")
        ]
    return sorted(found)


def waitUntil(predicate: Any, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def uploadLocation(connection: Connection, name: str) -> str:
    connection.sendRequest("POST", f"/v2/{name}/blobs/uploads/")
    response = connection.readResponse()
    assert response.status == 202, response
    location = response.header("location")
    assert location is not None
    return location[location.index("/v2/") :]


class RegistryProcessTests(TestCase):
    def startRegistry(self) -> tuple[RegistryProcess, str, str]:
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        tmp = os.path.join(directory, "tmp")
        os.makedirs(tmp)
        registry = RegistryProcess(
            directory,
            env={
                "TMPDIR": tmp,
                "REGISTRY_LOG_ACCESSLOG_DISABLED": "true",
            },
        )
        self.addCleanup(registry.kill)
        storage = os.path.join(directory, "storage")
        # Gigabytes of test data: do not leave them in _trial_temp.
        self.addCleanup(shutil.rmtree, storage, True)
        return registry, storage, tmp

    def test_gigabyteUploads(self) -> None:
        """
        1 GiB streams through the HTTP path into filesystem storage, once
        with Content-Length (monolithic POST) and once chunked (POST, PATCH,
        PUT), and back out through GET: each is stored with the right
        digest, the registry's peak resident memory stays under 100 MiB,
        and twisted.web opens no temporary file for either body.
        """
        registry, storage, tmp = self.startRegistry()
        pid = registry.process.pid
        baseline = _statusKiB(pid, "VmHWM") * 1024
        sampler = ProcessSampler(pid)
        self.addCleanup(sampler.stop)
        results = []

        # 1. Content-Length, monolithic: the digest must be known up front.
        expected = sha256Of(patterned(GiB, seed=11))
        started = time.monotonic()
        with Connection(registry.port, timeout=300) as c:
            sent, digest = c.sendStreaming(
                "POST",
                f"/v2/big/blobs/uploads/?digest=sha256:{expected}",
                patterned(GiB, seed=11),
                GiB,
            )
            response = c.readResponse()
        elapsed = time.monotonic() - started
        self.assertEqual((sent, digest), (GiB, expected))
        self.assertEqual(response.status, 201, response)
        self.assertEqual(response.header("docker-content-digest"), f"sha256:{expected}")
        results.append(("content-length", elapsed))
        self.assertEqual(fileDigest(blobPath(storage, expected)), (GiB, expected))
        os.remove(blobPath(storage, expected))

        # 2. Chunked PATCH; the client learns the digest as it sends.
        started = time.monotonic()
        with Connection(registry.port, timeout=300) as c:
            location = uploadLocation(c, "big")
            sent, digest = c.sendStreaming("PATCH", location, patterned(GiB, seed=12), None)
            patched = c.readResponse()
            c.sendRequest(
                "PUT", f"{location}&digest=sha256:{digest}", {"Content-Length": "0"}
            )
            response = c.readResponse()
        elapsed = time.monotonic() - started
        self.assertEqual(sent, GiB)
        self.assertEqual(patched.status, 202, patched)
        self.assertEqual(patched.header("range"), f"0-{GiB - 1}")
        self.assertEqual(response.status, 201, response)
        self.assertEqual(response.header("docker-content-digest"), f"sha256:{digest}")
        results.append(("chunked", elapsed))
        self.assertEqual(fileDigest(blobPath(storage, digest)), (GiB, digest))
        with Connection(registry.port) as c:
            c.sendRequest("HEAD", f"/v2/big/blobs/sha256:{digest}")
            head = c.readResponse("HEAD")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.header("content-length"), str(GiB))

        # 3. And back out through GET, streamed.
        hasher = hashlib.sha256()
        received = 0

        def sink(block: bytes) -> None:
            nonlocal received
            hasher.update(block)
            received += len(block)

        started = time.monotonic()
        with Connection(registry.port, timeout=300) as c:
            c.sendRequest("GET", f"/v2/big/blobs/sha256:{digest}")
            get = c.readResponse(sink=sink)
        results.append(("GET", time.monotonic() - started))
        self.assertEqual(get.status, 200)
        self.assertEqual((received, hasher.hexdigest()), (GiB, digest))

        sampler.stop()
        peak = sampler.peak()
        log.msg(
            f"1 GiB uploads: baseline VmHWM {baseline / MiB:.1f} MiB, peak VmHWM "
            f"{peak / MiB:.1f} MiB, sampled max VmRSS {sampler.maxRSS / MiB:.1f} MiB, "
            + ", ".join(f"{kind} {GiB / MiB / t:.0f} MiB/s" for kind, t in results)
        )
        self.assertTrue(peak < RSS_LIMIT, f"peak RSS {peak / MiB:.1f} MiB")
        # The sampler did see the files the registry had open: the
        # storage writers' temporary files, never one in TMPDIR.
        self.assertTrue(sampler.samples > 10)
        self.assertTrue(
            any(p.startswith(storage) for p in sampler.openPaths), sampler.openPaths
        )
        self.assertEqual([p for p in sampler.openPaths if p.startswith(tmp)], [])
        self.assertEqual(os.listdir(tmp), [])

    def test_killMidWrite(self) -> None:
        """
        SIGKILL in the middle of a monolithic upload leaves no file at the
        blob's path and no visible partial file anywhere in storage; in the
        middle of a PATCH, it leaves the upload exactly as it was before
        that PATCH.
        """
        registry, storage, _ = self.startRegistry()
        first = b"".join(patterned(MiB, seed=21))
        with Connection(registry.port) as c:
            location = uploadLocation(c, "chunks")
            c.sendRequest("PATCH", location, body=first)
            self.assertEqual(c.readResponse().status, 202)
        before = visibleFiles(storage)
        [uploadData] = [f for f in before if "_uploads" in f]

        total = 512 * MiB
        digest = "ab" * 32
        monolithic = Connection(registry.port)
        self.addCleanup(monolithic.close)
        monolithic.send(
            requestBytes(
                "POST",
                f"/v2/kill/blobs/uploads/?digest=sha256:{digest}",
                {"Content-Length": str(total)},
            )
        )
        monolithic.sendBody(patterned(64 * MiB, seed=22), False)
        patch = Connection(registry.port)
        self.addCleanup(patch.close)
        patch.send(requestBytes("PATCH", location, {"Content-Length": str(total)}))
        patch.sendBody(patterned(64 * MiB, seed=23), False)

        def hiddenBytes() -> int:
            size = 0
            for directory, _, files in os.walk(storage):
                for f in files:
                    if f.startswith("."):
                        size += os.path.getsize(os.path.join(directory, f))
            return size

        # Both writes are well under way on disk.
        waitUntil(lambda: hiddenBytes() > 64 * MiB, what="the writes to reach the disk")
        registry.kill(signal.SIGKILL)
        self.assertEqual(registry.process.returncode, -signal.SIGKILL)

        self.assertFalse(os.path.exists(blobPath(storage, digest)))
        self.assertEqual(visibleFiles(storage), before)
        with open(os.path.join(storage, uploadData), "rb") as f:
            self.assertEqual(f.read(), first)

    def test_slowDownload(self) -> None:
        """
        A client that reads a 256 MiB blob slowly holds the registry's
        reads back: its resident memory does not grow by anything like the
        blob's size.
        """
        registry, storage, _ = self.startRegistry()
        size = 256 * MiB
        digest = sha256Of(patterned(size, seed=31))
        with Connection(registry.port, timeout=120) as c:
            c.sendStreaming(
                "POST", f"/v2/slow/blobs/uploads/?digest=sha256:{digest}",
                patterned(size, seed=31), size,
            )
            self.assertEqual(c.readResponse().status, 201)
        before = _statusKiB(registry.process.pid, "VmRSS") * 1024

        hasher = hashlib.sha256()
        received = 0
        growth = 0
        with Connection(registry.port, timeout=120) as c:
            # A small receive buffer, so the kernel does not read for us.
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            c.sendRequest("GET", f"/v2/slow/blobs/sha256:{digest}")

            def sink(block: bytes) -> None:
                nonlocal received, growth
                hasher.update(block)
                received += len(block)
                if received % (16 * MiB) < len(block):
                    rss = _statusKiB(registry.process.pid, "VmRSS") * 1024
                    growth = max(growth, rss - before)
                    # Dawdle: the server gets far ahead if it does not wait.
                    time.sleep(0.1)

            response = c.readResponse(sink=sink)
        self.assertEqual(response.status, 200)
        self.assertEqual((received, hasher.hexdigest()), (size, digest))
        log.msg(f"slow 256 MiB download: registry RSS grew by at most {growth / MiB:.1f} MiB")
        self.assertTrue(growth < 32 * MiB, f"RSS grew by {growth / MiB:.1f} MiB")
