"""
The txregistry benchmark: one run, one figure per line on standard output
(progress and notes go to standard error).  Run it with C{bench/run}; see
C{bench/README.rst} for what each figure means.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from clientcopy import copyFigures
from rawhttp import Connection, expect, locationPath

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)

GiB = 1 << 30
MiB = 1 << 20
MB = 1e6

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def note(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Figures:
    """
    The figures of the run, printed as C{name value} lines as they come.
    """

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def add(self, name: str, value: float, digits: int = 1) -> None:
        self.values[name] = value
        print(f"{name} {value:.{digits}f}", flush=True)


# Processes


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def waitForPort(process: subprocess.Popen[bytes], port: int, logPath: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(logPath, "rb") as f:
                raise RuntimeError("server exited:\n" + f.read().decode("utf-8", "replace"))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port}")


class Registry:
    """
    C{twistd -n txregistry} from this checkout as a child process, with
    filesystem storage in C{directory}.
    """

    def __init__(
        self, directory: str, accessLog: bool, extra: dict[str, str] | None = None,
        storage: str | None = None,
    ) -> None:
        self.port = freePort()
        self.storage = storage or os.path.join(directory, "storage")
        self.logPath = os.path.join(directory, "registry.log")
        # Tracing only where a phase asks for it (OTEL_* of the caller's
        # environment would trace every phase).
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(extra or {})
        env.pop("REGISTRY_CONFIGURATION_PATH", None)
        env["REGISTRY_HTTP_ADDR"] = f"127.0.0.1:{self.port}"
        if "REGISTRY_STORAGE" not in env:
            env["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = self.storage
        if not accessLog:
            env["REGISTRY_LOG_ACCESSLOG_DISABLED"] = "true"
        env["PYTHONPATH"] = os.pathsep.join(
            [REPOSITORY] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        self._log = open(self.logPath, "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from twisted.scripts.twistd import run; run()",
                "--nodaemon",
                "--pidfile=",
                "txregistry",
            ],
            cwd=directory,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid
        waitForPort(self.process, self.port, self.logPath)

    def blobData(self, digest: str) -> str:
        algorithm, encoded = digest.split(":", 1)
        return os.path.join(
            self.storage, "docker/registry/v2/blobs", algorithm, encoded[:2], encoded, "data"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class Ceiling:
    """
    C{bench/ceiling.py}: the plain blocking socket server.
    """

    def __init__(self, directory: str) -> None:
        self.directory = os.path.join(directory, "ceiling")
        os.mkdir(self.directory)
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "ceiling.py"), self.directory],
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.pid = self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


# Memory


def processTree(pid: int) -> list[int]:
    """
    C{pid} and every process below it (its children, theirs, ...): a
    registry with C{http.workers} is a supervising parent and its worker
    processes.  Found by the parent pid in each C{/proc/<pid>/stat}
    (C{/proc/<pid>/task/<tid>/children} is not in every kernel).
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, ()))
    return tree


class RSSSampler:
    """
    Samples the summed C{VmRSS} of a process and its descendants (all of a
    multi-process registry's workers) every C{interval} seconds on a
    thread; L{phase} reports the largest sample taken during it.  The tree
    is looked up again every second (a scan of C{/proc}), its members'
    C{status} read at every sample.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._pid = pid
        self._tree = processTree(pid)
        self._treeAt = time.monotonic()
        self._interval = interval
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def current(self) -> int:
        if time.monotonic() - self._treeAt > 1.0:
            self._tree = processTree(self._pid)
            self._treeAt = time.monotonic()
        total = 0
        for pid in self._tree:
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
                            break
            except OSError:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            rss = self.current()
            with self._lock:
                self._peak = max(self._peak, rss)

    @contextmanager
    def phase(self) -> Iterator[dict[str, float]]:
        result: dict[str, float] = {}
        with self._lock:
            self._peak = self.current()
        try:
            yield result
        finally:
            with self._lock:
                self._peak = max(self._peak, self.current())
                result["peakMiB"] = self._peak / MiB

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def cpuSeconds(pid: int) -> float:
    """
    The user plus system CPU time a process and its descendants (all
    their threads) have used: each live process's C{utime + stime}, plus
    C{cutime + cstime} (what its children that already exited and were
    reaped used), so a worker restarted during a phase is still counted
    once.
    """
    total = 0
    for member in processTree(pid):
        try:
            with open(f"/proc/{member}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def serverCPU(pid: int) -> Iterator[dict[str, float]]:
    """
    The server's CPU seconds (L{cpuSeconds}, its whole process tree) used
    inside the block, as C{result["seconds"]}.
    """
    result: dict[str, float] = {}
    before = cpuSeconds(pid)
    try:
        yield result
    finally:
        result["seconds"] = cpuSeconds(pid) - before


# Data


def makeDataFile(path: str, size: int) -> str:
    """
    Write C{size} random bytes to C{path}, fsync them (so no writeback of
    them competes with the timed phases) and return their sha256 digest.
    """
    hasher = hashlib.sha256()
    block = 64 * MiB
    with open(path, "wb", buffering=0) as f:
        written = 0
        while written < size:
            data = os.urandom(min(block, size - written))
            hasher.update(data)
            f.write(data)
            written += len(data)
        os.fsync(f.fileno())
    return "sha256:" + hasher.hexdigest()


def digestOf(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def settle() -> None:
    """
    Flush everything dirty (and any discards of freed blocks) to disk
    outside the timed window, so each timed push starts from the same
    clean state.
    """
    os.sync()
    time.sleep(0.2)


# Transfers


def pushMonolithic(port: int, path: str, fd: int, size: int, digest: str, split: list[float] | None = None) -> float:
    """
    One request with the whole body: C{POST <path>?digest=}.

    @param split: if given, gets the seconds until the last byte was
        handed to the kernel and the seconds from then to the C{201} (the
        server's tail: the end of its receive, then fsync and commit).
    @return: seconds from the first byte sent to the C{201}.
    """
    with Connection("127.0.0.1", port) as conn:
        started = time.perf_counter()
        response = conn.sendFile(
            "POST",
            f"{path}?digest={digest}",
            fd,
            0,
            size,
            {"Content-Type": "application/octet-stream"},
        )
        finished = time.perf_counter()
        elapsed = finished - started
        if split is not None:
            split[:] = [conn.sentAt - started, finished - conn.sentAt]
    expect(response, 201)
    if response.header("docker-content-digest") != digest:
        raise RuntimeError(f"digest mismatch: {response.header('docker-content-digest')}")
    return elapsed


def pushChunked(port: int, name: str, fd: int, size: int, digest: str, chunk: int) -> float:
    """
    C{POST}, one C{PATCH} with C{Content-Range} per C{chunk} bytes, then
    C{PUT ?digest=} with no body, on one connection.

    @return: seconds from the first byte of the C{POST} to the C{201}.
    """
    with Connection("127.0.0.1", port) as conn:
        started = time.perf_counter()
        location = locationPath(expect(conn.request("POST", f"/v2/{name}/blobs/uploads/"), 202))
        offset = 0
        while offset < size:
            count = min(chunk, size - offset)
            response = conn.sendFile(
                "PATCH",
                location,
                fd,
                offset,
                count,
                {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + count - 1}",
                },
            )
            location = locationPath(expect(response, 202))
            offset += count
        separator = "&" if "?" in location else "?"
        response = expect(conn.request("PUT", f"{location}{separator}digest={digest}"), 201)
        elapsed = time.perf_counter() - started
    if response.header("docker-content-digest") != digest:
        raise RuntimeError(f"digest mismatch: {response.header('docker-content-digest')}")
    return elapsed


def curlGet(url: str, expectedSize: int) -> float:
    """
    C{curl} the URL to C{/dev/null}.

    @return: curl's total time in seconds.
    """
    output = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    status, size, seconds = int(output[0]), int(output[1]), float(output[2])
    if status != 200 or size != expectedSize:
        raise RuntimeError(f"curl {url}: status {status}, {size} bytes")
    return seconds


def inParallel(count: int, concurrency: int, port: int, work: Callable[[Connection, int], None]) -> float:
    """
    Run C{work(connection, i)} for each C{i < count} on C{concurrency}
    threads, each with its own keep-alive connection.

    @return: the wall-clock seconds for all of them.
    """
    lock = threading.Lock()
    pending = iter(range(count))
    errors: list[BaseException] = []
    connections = [Connection("127.0.0.1", port) for _ in range(concurrency)]

    def worker(conn: Connection) -> None:
        try:
            while True:
                with lock:
                    i = next(pending, None)
                if i is None or errors:
                    return
                work(conn, i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(c,)) for c in connections]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for c in connections:
        c.close()
    if errors:
        raise errors[0]
    return elapsed


# wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def wrk(url: str, seconds: int, connections: int, headers: list[str], script: str | None = None) -> dict[str, float]:
    """
    Run C{wrk --latency} and read requests/s and the p99 latency (ms).
    """
    # wrk needs a connection per thread.
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "--timeout", "10s"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", script]
    command.append(url)
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    if rate is None or p99 is None:
        raise RuntimeError(f"cannot read wrk output:\n{output}")
    result = {"rps": float(rate.group(1)), "p99ms": float(p99.group(1)) * _UNITS[p99.group(2)]}
    count = re.search(r"^\s*(\d+) requests in", output, re.M)
    result["requests"] = float(count.group(1)) if count else result["rps"] * seconds
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    if bad or errors:
        note(f"wrk {url}: {bad.group(0) if bad else ''} {errors.group(0) if errors else ''}")
        result["bad"] = float(bad.group(1)) if bad else 0.0
    return result


def loadgen(port: int, method: str, path: str, seconds: int, connections: int, headers: list[str]) -> dict[str, float]:
    """
    Run C{loadgen.py} (a separate process) and read its figures.
    """
    output = subprocess.run(
        [sys.executable, os.path.join(HERE, "loadgen.py"), str(port), method, path, str(seconds), str(connections)]
        + headers,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(output)
    if result["bad"]:
        note(f"loadgen {method} {path}: {result['bad']} non-2xx responses")
    return result


# The run


def run(options: argparse.Namespace, work: str, figures: Figures) -> None:
    size = options.size_mib * MiB
    dataPath = os.path.join(work, "data.bin")
    started = time.monotonic()
    note(f"writing {size >> 20} MiB of random test data (fsync'd)")
    digest = makeDataFile(dataPath, size)
    note(f"test data ready in {time.monotonic() - started:.1f}s: {digest}")
    if options.copy != "skip":
        fd = os.open(dataPath, os.O_RDONLY)
        try:
            copyFigures(options, work, figures, fd, size,
                        lambda directory: Registry(directory, options.access_log),
                        RSSSampler, note, settle, REPOSITORY)
        finally:
            os.close(fd)
        if options.copy == "only":
            return

    registry = Registry(work, options.access_log)
    ceiling = Ceiling(work)
    note(f"txregistry pid {registry.pid} on port {registry.port}; ceiling pid {ceiling.pid} on port {ceiling.port}")
    rss = RSSSampler(registry.pid)
    try:
        figures.add("rss_idle_start_MiB", rss.current() / MiB)
        fd = os.open(dataPath, os.O_RDONLY)
        try:
            _transfers(options, registry, ceiling, rss, fd, size, digest, figures)
        finally:
            os.close(fd)
        _smallBlobs(options, registry, rss, figures)
        _manifests(options, registry, rss, figures)
    finally:
        rss.stop()
        registry.stop()
        ceiling.stop()
    _catalog(options, work, figures)
    _bearer(options, work, registry.storage, figures)
    _proxy(options, work, figures, dataPath, digest)
    _observed(options, work, figures)
    _collection(options, figures)
    _ui(options, work, figures)
    note(f"run took {time.monotonic() - started:.0f}s")


def _proxy(options: argparse.Namespace, work: str, figures: Figures,
           dataPath: str | None = None, digest: str | None = None) -> None:
    """
    The pull-through cache's pulls of the big blob: cold, warm, and direct
    from its upstream (L{proxy.measure}).
    """
    import proxy

    size = options.size_mib * MiB
    if dataPath is None or digest is None:
        dataPath = os.path.join(work, "data.bin")
        note(f"writing {size >> 20} MiB of random test data (fsync'd)")
        digest = makeDataFile(dataPath, size)
    fd = os.open(dataPath, os.O_RDONLY)
    try:
        found = proxy.measure(
            options, work, fd, size, digest,
            lambda directory, extra: Registry(directory, options.access_log, extra),
            pushMonolithic, curlGet, RSSSampler, cpuSeconds, note, settle)
    finally:
        os.close(fd)
    for name, value in found.items():
        figures.add(name, value, 3 if name.endswith("ratio") else 1)


def _operations(options: argparse.Namespace, work: str, figures: Figures) -> None:
    """
    Only the small operations (C{--only ops}): the 1 MiB pushes, the
    manifest and blob requests, the manifest PUTs, the tags list and the
    catalog walk, with the server's CPU per operation, without the 1 GiB
    transfers and the other registries' phases.
    """
    registry = Registry(work, options.access_log)
    rss = RSSSampler(registry.pid)
    try:
        _smallBlobs(options, registry, rss, figures)
        _manifests(options, registry, rss, figures)
    finally:
        rss.stop()
        registry.stop()
    _catalog(options, work, figures)


def _collection(options: argparse.Namespace, figures: Figures) -> None:
    """
    Garbage collection of registries of N repositories x 10 tags
    (L{collection.measure}), and how it grows from the first size to the last.
    """
    import collection

    sizes = [int(size) for size in options.gc_repositories.split(",") if size]
    if not sizes:
        return
    note(f"garbage collection of {', '.join(map(str, sizes))} repositories x 10 tags")
    seconds = collection.measure(sizes)
    for size in sizes:
        figures.add(f"gc_{size}x10_s", seconds[size], 2)
    if len(sizes) > 1 and seconds[sizes[0]]:
        figures.add(f"gc_growth_{sizes[-1]}_over_{sizes[0]}", seconds[sizes[-1]] / seconds[sizes[0]], 2)


def _transfers(
    options: argparse.Namespace,
    registry: Registry,
    ceiling: Ceiling,
    rss: RSSSampler,
    fd: int,
    size: int,
    digest: str,
    figures: Figures,
) -> None:
    label = f"{size >> 30}GiB" if size % GiB == 0 else f"{size >> 20}MiB"
    chunk = options.chunk_mib * MiB
    best: dict[str, float] = {}
    peaks: dict[str, float] = {}

    split: list[float] = []
    cpu: dict[str, float] = {}

    @contextmanager
    def cpuOf(name: str, pid: int) -> Iterator[None]:
        before = cpuSeconds(pid)
        yield
        used = cpuSeconds(pid) - before
        cpu[name] = min(cpu.get(name, used), used)
        note(f"  {name}: server CPU {used:.2f}s")

    def record(name: str, seconds: float, peak: float | None = None) -> None:
        rate = size / seconds / MB
        detail = f"{seconds:.2f}s"
        if split:
            detail += f": body sent in {split[0]:.2f}s, answer {split[1]:.2f}s after it"
            split.clear()
        note(f"  {name}: {rate:.1f} MB/s ({detail})" + (f", peak RSS {peak:.1f} MiB" if peak else ""))
        best[name] = max(best.get(name, 0.0), rate)
        if peak is not None:
            peaks[name] = max(peaks.get(name, 0.0), peak)

    def ceilingPush() -> None:
        for name in sorted(os.listdir(ceiling.directory)):
            os.unlink(os.path.join(ceiling.directory, name))
        settle()
        with cpuOf("ceiling_push", ceiling.pid):
            seconds = pushMonolithic(ceiling.port, "/upload", fd, size, digest, split)
        record("ceiling_push", seconds)

    def registryPush(kind: str) -> None:
        # Every timed push stores a new blob (not a duplicate of one
        # already there), the same work each repetition.
        try:
            os.unlink(registry.blobData(digest))
        except FileNotFoundError:
            pass
        settle()
        with rss.phase() as memory, cpuOf(kind, registry.pid):
            if kind == "monolithic":
                seconds = pushMonolithic(registry.port, "/v2/bench/blobs/uploads/", fd, size, digest, split)
            else:
                seconds = pushChunked(registry.port, "bench", fd, size, digest, chunk)
        record(kind, seconds, memory["peakMiB"])

    steps = [ceilingPush, lambda: registryPush("monolithic"), lambda: registryPush("chunked")]
    for repetition in range(options.repeat):
        note(f"{label} pushes, round {repetition + 1} of {options.repeat}")
        for step in steps if repetition % 2 == 0 else list(reversed(steps)):
            step()
    if not os.path.exists(registry.blobData(digest)):
        registryPush("monolithic")

    # Pulls: each server sends the file it wrote last (so both come from
    # the page cache, hot, in the same way).
    tx = f"http://127.0.0.1:{registry.port}/v2/bench/blobs/{digest}"
    plain = f"http://127.0.0.1:{ceiling.port}/"
    for repetition in range(options.repeat):
        note(f"{label} pulls, round {repetition + 1} of {options.repeat}")
        order = ["ceiling_pull", "pull"] if repetition % 2 == 0 else ["pull", "ceiling_pull"]
        for which in order:
            if which == "pull":
                with rss.phase() as memory, cpuOf("pull", registry.pid):
                    seconds = curlGet(tx, size)
                record("pull", seconds, memory["peakMiB"])
            else:
                with cpuOf("ceiling_pull", ceiling.pid):
                    seconds = curlGet(plain, size)
                record("ceiling_pull", seconds)

    figures.add(f"push_{label}_monolithic_MBps", best["monolithic"])
    figures.add(f"push_{label}_chunked_{options.chunk_mib}MiB_MBps", best["chunked"])
    figures.add(f"pull_{label}_MBps", best["pull"])
    figures.add(f"ceiling_push_{label}_MBps", best["ceiling_push"])
    figures.add(f"ceiling_pull_{label}_MBps", best["ceiling_pull"])
    figures.add("push_ratio", best["monolithic"] / best["ceiling_push"], 3)
    figures.add("pull_ratio", best["pull"] / best["ceiling_pull"], 3)
    figures.add(f"cpu_push_{label}_monolithic_s", cpu["monolithic"], 2)
    figures.add(f"cpu_push_{label}_chunked_{options.chunk_mib}MiB_s", cpu["chunked"], 2)
    figures.add(f"cpu_pull_{label}_s", cpu["pull"], 2)
    figures.add(f"cpu_ceiling_push_{label}_s", cpu["ceiling_push"], 2)
    figures.add(f"cpu_ceiling_pull_{label}_s", cpu["ceiling_pull"], 2)
    figures.add(f"rss_peak_push_{label}_monolithic_MiB", peaks["monolithic"])
    figures.add(f"rss_peak_push_{label}_chunked_MiB", peaks["chunked"])
    figures.add(f"rss_peak_pull_{label}_MiB", peaks["pull"])


def _smallBlobs(options: argparse.Namespace, registry: Registry, rss: RSSSampler, figures: Figures) -> None:
    count, concurrency = options.small_count, options.small_concurrency
    note(f"{count} x 1 MiB blobs, {concurrency} at a time")
    base = os.urandom(MiB)
    blobs = [i.to_bytes(8, "big") + base[8:] for i in range(count)]
    digests = [digestOf(b) for b in blobs]
    settle()

    def push(conn: Connection, i: int) -> None:
        response = conn.request(
            "POST",
            f"/v2/bench/small/blobs/uploads/?digest={digests[i]}",
            {"Content-Type": "application/octet-stream"},
            blobs[i],
        )
        expect(response, 201)

    with rss.phase() as memory, serverCPU(registry.pid) as cpu:
        seconds = inParallel(count, concurrency, registry.port, push)
    figures.add(f"push_{count}x1MiB_c{concurrency}_blobs_per_s", count / seconds)
    figures.add(f"cpu_push_{count}x1MiB_ms_per_blob", cpu["seconds"] / count * 1e3, 2)
    figures.add(f"rss_peak_push_{count}x1MiB_c{concurrency}_MiB", memory["peakMiB"])


def _pushImage(conn: Connection, name: str) -> bytes:
    """
    Push a small OCI image's config and layer into C{name}.

    @return: the manifest's bytes.
    """
    layer = os.urandom(4096)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [digestOf(layer)]},
            "config": {},
        }
    ).encode()
    for blob in (config, layer):
        expect(
            conn.request("POST", f"/v2/{name}/blobs/uploads/?digest={digestOf(blob)}", {}, blob),
            201,
        )
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digestOf(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digestOf(layer), "size": len(layer)}],
        },
        indent=3,
    ).encode()


def _manifests(
    options: argparse.Namespace, registry: Registry, rss: RSSSampler, figures: Figures
) -> None:
    base = f"http://127.0.0.1:{registry.port}"
    seconds, c = options.wrk_seconds, options.wrk_connections
    with Connection("127.0.0.1", registry.port) as conn:
        manifest = _pushImage(conn, "bench")
        expect(
            conn.request("PUT", "/v2/bench/manifests/latest", {"Content-Type": OCI_MANIFEST}, manifest),
            201,
        )
        got = expect(conn.request("GET", "/v2/bench/manifests/latest", {"Accept": OCI_MANIFEST}), 200)
        assert got.body == manifest
        tagged = _pushImage(conn, "bench/tags")
    accept = [f"Accept: {OCI_MANIFEST}"]

    note(f"manifest GET by tag, {c} connections, {seconds}s")
    with rss.phase() as memory, serverCPU(registry.pid) as cpu:
        result = wrk(f"{base}/v2/bench/manifests/latest", seconds, c, accept)
    figures.add(f"manifest_get_c{c}_rps", result["rps"])
    figures.add("cpu_manifest_get_us_per_op", cpu["seconds"] / result["requests"] * 1e6)
    figures.add(f"manifest_get_c{c}_p99_ms", result["p99ms"], 2)
    figures.add(f"rss_peak_manifest_get_c{c}_MiB", memory["peakMiB"])

    # wrk 4.1 cannot do HEAD (it waits for a body of Content-Length
    # bytes); loadgen.py can, and its GET figure shows what it costs.
    for method in ("HEAD", "GET"):
        note(f"manifest {method} by tag with loadgen.py, {c} connections, {seconds}s")
        with rss.phase() as memory, serverCPU(registry.pid) as cpu:
            result = loadgen(registry.port, method, "/v2/bench/manifests/latest", seconds, c, accept)
        kind = method.lower() if method == "HEAD" else "get_loadgen"
        figures.add(f"manifest_{kind}_c{c}_rps", result["rps"])
        figures.add(f"cpu_manifest_{kind}_us_per_op", cpu["seconds"] / result["requests"] * 1e6)
        figures.add(f"manifest_{kind}_c{c}_p99_ms", result["p99ms"], 2)
        if method == "HEAD":
            figures.add(f"rss_peak_manifest_head_c{c}_MiB", memory["peakMiB"])

    layer = json.loads(manifest)["layers"][0]["digest"]
    note(f"blob HEAD with loadgen.py, {c} connections, {seconds}s")
    with serverCPU(registry.pid) as cpu:
        result = loadgen(registry.port, "HEAD", f"/v2/bench/blobs/{layer}", seconds, c, [])
    figures.add(f"blob_head_c{c}_rps", result["rps"])
    figures.add(f"blob_head_c{c}_p99_ms", result["p99ms"], 2)
    figures.add("cpu_blob_head_us_per_op", cpu["seconds"] / result["requests"] * 1e6)

    tags = options.tags
    note(f"tagging one manifest {tags} times, 16 at a time")

    def tag(conn: Connection, i: int) -> None:
        expect(
            conn.request("PUT", f"/v2/bench/tags/manifests/t{i:05d}", {"Content-Type": OCI_MANIFEST}, tagged),
            201,
        )

    with serverCPU(registry.pid) as cpu:
        elapsed = inParallel(tags, 16, registry.port, tag)
    figures.add(f"manifest_put_{tags}tags_c16_per_s", tags / elapsed)
    figures.add("cpu_manifest_put_ms_per_tag", cpu["seconds"] / tags * 1e3, 2)
    with Connection("127.0.0.1", registry.port) as conn:
        listed = json.loads(expect(conn.request("GET", "/v2/bench/tags/tags/list"), 200).body)
    if len(listed["tags"]) != tags:
        raise RuntimeError(f"tags/list has {len(listed['tags'])} tags, expected {tags}")

    note(f"tags list of {tags} tags, {c} connections, {seconds}s")
    with rss.phase() as memory, serverCPU(registry.pid) as cpu:
        result = wrk(f"{base}/v2/bench/tags/tags/list", seconds, c, [])
    figures.add(f"tags_list_{tags}tags_c{c}_rps", result["rps"])
    figures.add(f"cpu_tags_list_{tags}tags_us_per_op", cpu["seconds"] / result["requests"] * 1e6)
    figures.add(f"tags_list_{tags}tags_c{c}_p99_ms", result["p99ms"], 2)
    figures.add(f"rss_peak_tags_list_{tags}tags_c{c}_MiB", memory["peakMiB"])


def _populateRepositories(root: str, count: int) -> None:
    """
    Write C{count} repositories (C{org<r % 100>/repo<r>}, each with one
    tag of one small manifest) directly in the registry's layout: the
    catalog figure measures the listing, not the pushes that fill it.
    """
    if REPOSITORY not in sys.path:
        sys.path.insert(0, REPOSITORY)
    from txregistry.registry import layout
    from txregistry.registry.digest import Digest

    def write(path: str, data: bytes) -> None:
        full = root + path
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)

    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
        "mediaType": OCI_CONFIG, "digest": digestOf(b"{}"), "size": 2}, "layers": []}).encode()
    digest = Digest.parse(digestOf(manifest))
    write(layout.blobData(digest), manifest)
    for r in range(count):
        name = f"org{r % 100}/repo{r}"
        write(layout.revisionLink(name, digest), str(digest).encode())
        write(layout.tagCurrentLink(name, "latest"), str(digest).encode())


def _catalogWalk(port: int, page: int) -> int:
    """
    Walk C{/v2/_catalog} in pages of C{page}, following each C{Link}.

    @return: how many repositories it listed.
    """
    listed = 0
    path: str | None = f"/v2/_catalog?n={page}"
    with Connection("127.0.0.1", port) as conn:
        while path is not None:
            response = expect(conn.request("GET", path), 200)
            listed += len(json.loads(response.body)["repositories"])
            link = response.header("link")
            path = link[1:link.index(">")] if link else None
    return listed


def _catalog(options: argparse.Namespace, work: str, figures: Figures) -> None:
    """
    The catalog walked in pages of C{--catalog-page} for registries of
    each of C{--catalog-repositories}: its wall time and the server's CPU
    for one whole walk (the least of C{--catalog-walks} walks), and how
    the larger walk grows over the smaller (linear is the ratio of the
    sizes).
    """
    sizes = [int(size) for size in options.catalog_repositories.split(",") if size]
    page = options.catalog_page
    walked: dict[int, float] = {}
    for size in sizes:
        directory = os.path.join(work, f"catalog{size}")
        os.makedirs(directory)
        started = time.monotonic()
        _populateRepositories(os.path.join(directory, "storage"), size)
        note(f"catalog: {size} repositories written in {time.monotonic() - started:.0f}s")
        registry = Registry(directory, options.access_log)
        try:
            best, cheapest = float("inf"), float("inf")
            for _walk in range(options.catalog_walks):
                with serverCPU(registry.pid) as cpu:
                    started = time.perf_counter()
                    listed = _catalogWalk(registry.port, page)
                    elapsed = time.perf_counter() - started
                if listed != size:
                    raise RuntimeError(f"the catalog listed {listed} repositories, expected {size}")
                note(f"  catalog walk of {size} in pages of {page}: {elapsed * 1e3:.0f} ms,"
                     f" server CPU {cpu['seconds'] * 1e3:.0f} ms")
                best, cheapest = min(best, elapsed), min(cheapest, cpu["seconds"])
        finally:
            registry.stop()
            shutil.rmtree(directory, ignore_errors=True)
        walked[size] = best
        figures.add(f"catalog_walk_{size}repos_pages{page}_ms", best * 1e3)
        figures.add(f"cpu_catalog_walk_{size}repos_ms", cheapest * 1e3)
    if len(sizes) > 1:
        figures.add(f"catalog_walk_growth_{sizes[-1]}_over_{sizes[0]}", walked[sizes[-1]] / walked[sizes[0]], 2)


def _tokenIssuer(directory: str) -> tuple[str, str]:
    """
    A self-signed token signer and a Bearer token it signed granting pull
    on C{bench}: the bundle's path and the token.
    """
    import datetime

    import jwt
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench token signer")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    bundle = os.path.join(directory, "token-roots.pem")
    with open(bundle, "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    import base64

    token = jwt.encode(
        {"iss": "bench-issuer", "sub": "bench", "aud": "bench-registry", "iat": int(time.time()),
         "nbf": int(time.time()) - 60, "exp": int(time.time()) + 3600,
         "access": [{"type": "repository", "name": "bench", "actions": ["pull"]}]},
        key, algorithm="ES256",
        headers={"x5c": [base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()]},
    )
    return bundle, token


def _accessControlOnly(options: argparse.Namespace, work: str, figures: Figures) -> None:
    """
    Only the manifest GET figure, plain then with a Bearer token, back to
    back over one storage (C{--only bearer}): the access-control ratio
    without the rest of the run.
    """
    seconds, c = options.wrk_seconds, options.wrk_connections
    directory = os.path.join(work, "plain")
    os.makedirs(directory)
    registry = Registry(directory, options.access_log)
    try:
        with Connection("127.0.0.1", registry.port) as conn:
            manifest = _pushImage(conn, "bench")
            expect(conn.request("PUT", "/v2/bench/manifests/latest",
                                {"Content-Type": OCI_MANIFEST}, manifest), 201)
        note(f"manifest GET by tag, {c} connections, {seconds}s")
        result = wrk(f"http://127.0.0.1:{registry.port}/v2/bench/manifests/latest", seconds, c,
                     [f"Accept: {OCI_MANIFEST}"])
        figures.add(f"manifest_get_c{c}_rps", result["rps"])
        figures.add(f"manifest_get_c{c}_p99_ms", result["p99ms"], 2)
    finally:
        registry.stop()
    _bearer(options, work, registry.storage, figures)


def _bearer(options: argparse.Namespace, work: str, storage: str, figures: Figures) -> None:
    """
    Manifest GET by tag again, through a registry with C{auth.token} and a
    valid Bearer token: what access control costs (a token is verified
    once, then reused until it expires).
    """
    seconds, c = options.wrk_seconds, options.wrk_connections
    directory = os.path.join(work, "bearer")
    os.makedirs(directory)
    bundle, token = _tokenIssuer(directory)
    registry = Registry(directory, options.access_log, {
        "REGISTRY_AUTH_TOKEN_REALM": "https://auth.invalid/token",
        "REGISTRY_AUTH_TOKEN_SERVICE": "bench-registry",
        "REGISTRY_AUTH_TOKEN_ISSUER": "bench-issuer",
        "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE": bundle,
    }, storage=storage)
    try:
        base = f"http://127.0.0.1:{registry.port}"
        headers = [f"Accept: {OCI_MANIFEST}", f"Authorization: Bearer {token}"]
        with Connection("127.0.0.1", registry.port) as conn:
            expect(conn.request("GET", "/v2/bench/manifests/latest", {"Accept": OCI_MANIFEST}), 401)
            expect(conn.request("GET", "/v2/bench/manifests/latest",
                                {"Accept": OCI_MANIFEST, "Authorization": f"Bearer {token}"}), 200)
        note(f"manifest GET by tag with a Bearer token (auth.token), {c} connections, {seconds}s")
        result = wrk(f"{base}/v2/bench/manifests/latest", seconds, c, headers)
        figures.add(f"manifest_get_bearer_c{c}_rps", result["rps"])
        figures.add(f"manifest_get_bearer_c{c}_p99_ms", result["p99ms"], 2)
        plain = figures.values.get(f"manifest_get_c{c}_rps")
        if plain:
            figures.add("bearer_ratio", result["rps"] / plain, 3)
    finally:
        registry.stop()


class WebhookReceiver:
    """
    C{bench/receiver.py}: a webhook endpoint that takes everything.
    """

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "receiver.py")], stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def received(self) -> int:
        with Connection("127.0.0.1", self.port) as conn:
            return int(expect(conn.request("GET", "/count"), 200).body)

    def envelopes(self) -> int:
        with Connection("127.0.0.1", self.port) as conn:
            return int(expect(conn.request("GET", "/envelopes"), 200).body)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


def _notifications(options: argparse.Namespace, work: str, figures: Figures) -> None:
    """
    Manifest GET, 256 x 1 MiB pushes and manifest PUTs against three
    registries, each on its own storage: no endpoint, one live endpoint
    (every event delivered), one dead endpoint (nothing listening: every
    event stays in the outbox, retried).  The three run side by side and
    each measurement is taken of each in turn, in an order rotated every
    round, C{--notify-rounds} times.  The ratios are to the no-endpoint
    figures: the median over the rounds of each round's ratio (the
    figures of a round are seconds apart, so a slow moment of a shared
    machine falls on all three); the rates reported are the best of each.
    """
    seconds, c = options.wrk_seconds, options.wrk_connections
    count, concurrency, tags = options.small_count, options.small_concurrency, options.tags
    receiver = WebhookReceiver()
    variants = {
        "none": None,
        "live": receiver.url,
        "dead": f"http://127.0.0.1:{freePort()}/hook",
    }
    registries: dict[str, Registry] = {}
    tagged: dict[str, bytes] = {}
    best: dict[str, dict[str, float]] = {label: {} for label in variants}
    base = os.urandom(MiB)
    try:
        for label, url in variants.items():
            directory = os.path.join(work, f"notify-{label}")
            os.makedirs(directory)
            extra = {}
            if url is not None:
                extra["REGISTRY_NOTIFICATIONS_ENDPOINTS"] = json.dumps([{"name": label, "url": url}])
            registries[label] = registry = Registry(directory, options.access_log, extra)
            with Connection("127.0.0.1", registry.port) as conn:
                manifest = _pushImage(conn, "bench")
                expect(conn.request("PUT", "/v2/bench/manifests/latest",
                                    {"Content-Type": OCI_MANIFEST}, manifest), 201)
                tagged[label] = _pushImage(conn, "bench/tags")

        cpu: dict[str, dict[str, float]] = {label: {} for label in variants}
        # Each round's rate and CPU per operation, by label and kind.
        rounds: list[dict[tuple[str, str], tuple[float, float]]] = []

        def keep(label: str, kind: str, value: float, ops: int = 0, seconds: float = 0.0) -> None:
            best[label][kind] = max(best[label].get(kind, 0.0), value)
            if ops:
                perOp = seconds / ops * 1e6
                cpu[label][kind] = min(cpu[label].get(kind, perOp), perOp)
                rounds[-1][label, kind] = (value, perOp)

        def measured(label: str, kind: str, work: Callable[[], tuple[float, int]]) -> None:
            """
            Run C{work} (returning its rate and how many operations it
            did) and keep the rate and the registry's CPU time per
            operation (all its threads).
            """
            before = cpuSeconds(registries[label].pid)
            rate, ops = work()
            keep(label, kind, rate, ops, cpuSeconds(registries[label].pid) - before)

        labels = list(variants)
        for round in range(options.notify_rounds):
            rounds.append({})
            order = labels[round % 3:] + labels[:round % 3]
            for label in order:
                registry = registries[label]
                settle()
                note(f"notifications round {round + 1} ({label} endpoint): manifest GET by tag,"
                     f" {c} connections, {seconds}s")
                def get(registry: Registry = registry) -> tuple[float, int]:
                    rps = wrk(f"http://127.0.0.1:{registry.port}/v2/bench/manifests/latest",
                              seconds, c, [f"Accept: {OCI_MANIFEST}"])["rps"]
                    return rps, int(rps * seconds)

                measured(label, "get", get)
            for label in order:
                registry = registries[label]
                blobs = [b"%s%d-%d" % (label.encode(), round, i) + base[16:] for i in range(count)]
                digests = [digestOf(b) for b in blobs]

                def push(conn: Connection, i: int, blobs: list[bytes] = blobs,
                         digests: list[str] = digests) -> None:
                    expect(conn.request("POST", f"/v2/bench/small/blobs/uploads/?digest={digests[i]}",
                                        {"Content-Type": "application/octet-stream"}, blobs[i]), 201)

                settle()
                note(f"notifications round {round + 1} ({label} endpoint): {count} x 1 MiB pushes,"
                     f" {concurrency} at a time")
                measured(label, "push", lambda registry=registry, push=push: (
                    count / inParallel(count, concurrency, registry.port, push), count))
            for label in order:
                registry = registries[label]

                def tag(conn: Connection, i: int, manifest: bytes = tagged[label],
                        round: int = round) -> None:
                    expect(conn.request("PUT", f"/v2/bench/tags/manifests/r{round}t{i:05d}",
                                        {"Content-Type": OCI_MANIFEST}, manifest), 201)

                settle()
                note(f"notifications round {round + 1} ({label} endpoint): {tags} manifest PUTs, 16 at a time")
                measured(label, "put", lambda registry=registry, tag=tag: (
                    tags / inParallel(tags, 16, registry.port, tag), tags))
            ratios = rounds[-1]
            note(f"notifications round {round + 1}: " + ", ".join(
                f"{label} {kind} {ratios[label, kind][0] / ratios['none', kind][0]:.3f}"
                for label in ("live", "dead") for kind in ("get", "push", "put")))
        note(f"notifications: the live receiver has {receiver.received()} events"
             f" in {receiver.envelopes()} envelopes")
    finally:
        for registry in registries.values():
            registry.stop()
        receiver.stop()
    names = {"get": f"manifest_get_c{c}_rps", "push": f"push_{count}x1MiB_c{concurrency}_blobs_per_s",
             "put": f"manifest_put_{tags}tags_c16_per_s"}
    for label, results in best.items():
        for kind, value in results.items():
            figures.add(f"notify_{label}_{names[kind]}", value)
    for label in variants:
        for kind, value in cpu[label].items():
            figures.add(f"notify_{label}_{kind}_cpu_us_per_op", value)
    for label in ("live", "dead"):
        for kind in ("get", "push", "put"):
            figures.add(f"notify_{label}_{kind}_ratio", statistics.median(
                r[label, kind][0] / r["none", kind][0] for r in rounds), 3)
            # What the registry itself spends, less sensitive than the
            # rate to what else the machine runs.
            figures.add(f"notify_{label}_{kind}_cpu_ratio", statistics.median(
                r["none", kind][1] / r[label, kind][1] for r in rounds), 3)


#: The environment of a registry with metrics and tracing on: a debug
#: listener with Prometheus metrics, and spans handed to an exporter that
#: drops them.
OBSERVED = {
    "REGISTRY_HTTP_DEBUG_ADDR": "127.0.0.1:0",
    "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED": "true",
    "OTEL_TRACES_EXPORTER": "txregistry_discard",
}


def _observed(options: argparse.Namespace, work: str, figures: Figures) -> None:
    """
    Manifest GET by tag with metrics and tracing off, on (L{OBSERVED}),
    and on with one request in ten traced: three registries over the same
    storage, side by side, each measured in turn for C{--observed-rounds}
    rounds, the order rotated every round.

    The ratios are the median, over the rounds, of each round's ratio:
    the two figures of a round are taken seconds apart, so a slow moment
    of the machine (it is shared: the CPU one burst gets varies by a
    third) falls on both, where the best of each kind over the whole run
    compares one kind's luckiest moment with the other's.  The best rate
    and the least CPU per request of each kind are reported too.
    """
    seconds, c = options.wrk_seconds, options.wrk_connections
    directory = os.path.join(work, "observed")
    storage = os.path.join(directory, "storage")
    kinds = ("plain", "observed", "sampled")
    registries: dict[str, Registry] = {}
    debug: dict[str, str] = {}
    rounds: list[dict[str, dict[str, float]]] = []
    try:
        for kind in kinds:
            extra: dict[str, str] = {}
            if kind != "plain":
                debug[kind] = f"127.0.0.1:{freePort()}"
                extra = {**OBSERVED, "REGISTRY_HTTP_DEBUG_ADDR": debug[kind]}
            if kind == "sampled":
                # The SDK's cost is per recorded span: production tracing
                # records a sample (the OTEL_TRACES_SAMPLER a collector's
                # operator would set), here one request in ten.
                extra.update(OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                             OTEL_TRACES_SAMPLER_ARG="0.1")
            here = os.path.join(directory, kind)
            os.makedirs(here)
            registries[kind] = registry = Registry(here, options.access_log, extra, storage=storage)
            with Connection("127.0.0.1", registry.port) as conn:
                if kind == "plain":
                    manifest = _pushImage(conn, "bench")
                    expect(conn.request("PUT", "/v2/bench/manifests/latest",
                                        {"Content-Type": OCI_MANIFEST}, manifest), 201)
                expect(conn.request("GET", "/v2/bench/manifests/latest",
                                    {"Accept": OCI_MANIFEST}), 200)
        what = {"plain": "off", "observed": "on", "sampled": "on, 1 in 10 traced"}
        for round in range(options.observed_rounds):
            results: dict[str, dict[str, float]] = {}
            for kind in kinds[round % 3:] + kinds[:round % 3]:
                registry = registries[kind]
                note(f"manifest GET by tag, metrics and tracing {what[kind]},"
                     f" {c} connections, {seconds}s (round {round + 1})")
                cpu = cpuSeconds(registry.pid)
                result = wrk(f"http://127.0.0.1:{registry.port}/v2/bench/manifests/latest",
                             seconds, c, [f"Accept: {OCI_MANIFEST}"])
                # The server's CPU per request: steadier than req/s on a
                # shared machine (another process's load lowers both
                # kinds' req/s, unevenly, but hardly their CPU per request).
                result["cpu_us"] = (cpuSeconds(registry.pid) - cpu) / (result["rps"] * seconds) * 1e6
                results[kind] = result
            rounds.append(results)
            note("round {}: observed/plain {:.3f}, sampled/plain {:.3f}".format(
                round + 1, results["observed"]["rps"] / results["plain"]["rps"],
                results["sampled"]["rps"] / results["plain"]["rps"]))
        for kind, address in debug.items():
            scrape = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read()
            assert b'handler="manifest.get"' in scrape, f"no manifest.get in the {kind} registry's metrics"
    finally:
        for registry in registries.values():
            registry.stop()
    for kind in kinds:
        best = max((r[kind] for r in rounds), key=lambda result: result["rps"])
        figures.add(f"manifest_get_{kind}_c{c}_rps", best["rps"])
        figures.add(f"manifest_get_{kind}_c{c}_p99_ms", best["p99ms"], 2)
        figures.add(f"manifest_get_{kind}_cpu_us_per_request", min(r[kind]["cpu_us"] for r in rounds))
    for kind in ("observed", "sampled"):
        figures.add(f"{kind}_ratio", statistics.median(r[kind]["rps"] / r["plain"]["rps"] for r in rounds), 3)
        figures.add(f"{kind}_cpu_ratio",
                    statistics.median(r["plain"]["cpu_us"] / r[kind]["cpu_us"] for r in rounds), 3)


def _ui(options: argparse.Namespace, work: str, figures: Figures) -> None:
    """
    The web UI's page of a repository with C{--ui-tags} tags (10 000 by
    default), by name and by push time: the page is sorted and paged on
    the server, so it must stay fast however many tags there are.
    """
    seconds = options.wrk_seconds
    tags = options.ui_tags
    directory = os.path.join(work, "ui")
    os.makedirs(directory)
    registry = Registry(directory, options.access_log, {"REGISTRY_UI_ENABLED": "true"})
    try:
        with Connection("127.0.0.1", registry.port) as conn:
            manifest = _pushImage(conn, "bench/ui")
        note(f"tagging one manifest {tags} times in bench/ui, 16 at a time")

        def tag(conn: Connection, i: int) -> None:
            expect(conn.request("PUT", f"/v2/bench/ui/manifests/t{i:05d}", {"Content-Type": OCI_MANIFEST},
                                manifest), 201)

        inParallel(tags, 16, registry.port, tag)
        base = f"http://127.0.0.1:{registry.port}/ui/r/bench/ui"
        for sort, query in (("name", ""), ("pushed", "?sort=pushed")):
            with Connection("127.0.0.1", registry.port) as conn:
                page = expect(conn.request("GET", f"/ui/r/bench/ui{query}", {}), 200)
                if f"{tags} tags".encode() not in page.body:
                    raise RuntimeError(f"the UI's page does not show {tags} tags")
            for c in (int(n) for n in options.ui_connections.split(",")):
                note(f"UI repository page of {tags} tags by {sort}, {c} connections, {seconds}s")
                result = wrk(base + query, seconds, c, [])
                figures.add(f"ui_repository_{tags}tags_by_{sort}_c{c}_rps", result["rps"])
                figures.add(f"ui_repository_{tags}tags_by_{sort}_c{c}_p99_ms", result["p99ms"], 2)
    finally:
        registry.stop()


#: The reference registry's (distribution v3.0.0) server CPU per
#: operation, measured side by side on this machine kind (issue 15): the
#: figure each C{cpu_*} figure is to be at or below.  C{(figure, reference,
#: unit, per)}: C{per} divides the figure first (the 1 GiB CPU seconds by
#: the GiB transferred).
def _cpuReferences(options: argparse.Namespace) -> list[tuple[str, float, str, float]]:
    label = f"{options.size_mib >> 10}GiB" if options.size_mib % 1024 == 0 else f"{options.size_mib}MiB"
    gib = options.size_mib / 1024
    sizes = [size for size in options.catalog_repositories.split(",") if size]
    return [
        (f"cpu_push_{label}_monolithic_s", 2.68, "cpu-s per GiB", gib),
        (f"cpu_push_{label}_chunked_{options.chunk_mib}MiB_s", 7.08, "cpu-s per GiB", gib),
        (f"cpu_pull_{label}_s", 0.81, "cpu-s per GiB", gib),
        (f"cpu_push_{options.small_count}x1MiB_ms_per_blob", 9.8, "cpu-ms per blob", 1),
        ("cpu_manifest_get_us_per_op", 391, "cpu-us per request", 1),
        ("cpu_manifest_head_us_per_op", 364, "cpu-us per request", 1),
        ("cpu_blob_head_us_per_op", 300, "cpu-us per request", 1),
        ("cpu_manifest_put_ms_per_tag", 2.6, "cpu-ms per tag", 1),
        (f"cpu_tags_list_{options.tags}tags_us_per_op", 1498, "cpu-us per request", 1),
    ] + [(f"cpu_catalog_walk_{size}repos_ms", 68, "cpu-ms per walk", 1) for size in sizes if size == "1000"]


def cpuTargets(figures: Figures, options: argparse.Namespace) -> list[tuple[str, bool, str]]:
    """
    The server-CPU-per-operation targets (L{_cpuReferences}) of the figures
    this run measured.
    """
    checks = []
    for name, reference, unit, per in _cpuReferences(options):
        if name in figures.values:
            value = figures.values[name] / per
            checks.append((f"{name} <= {reference:g} {unit} (the reference registry's)",
                           value <= reference, f"{value:.3g}"))
    sizes = [size for size in options.catalog_repositories.split(",") if size]
    growth = f"catalog_walk_growth_{sizes[-1]}_over_{sizes[0]}" if len(sizes) > 1 else ""
    if growth in figures.values:
        bound = 1.2 * int(sizes[-1]) / int(sizes[0])
        checks.append((f"{growth} <= {bound:g}", figures.values[growth] <= bound,
                       f"{figures.values[growth]:.2f}"))
    return checks


def targets(figures: Figures, options: argparse.Namespace) -> None:
    """
    Print the acceptance targets as comment lines.
    """
    v = figures.values
    if options.only == "ops":
        for name, met, value in cpuTargets(figures, options):
            print(f"# target {name}: {'MET' if met else 'NOT MET'} ({value})", flush=True)
        return
    if options.only == "observed":
        met = v["observed_ratio"] >= 0.9
        print(f"# target observed_ratio >= 0.90: {'MET' if met else 'NOT MET'}"
              f" ({v['observed_ratio']:.3f})", flush=True)
        return
    label = "1GiB" if options.size_mib == 1024 else f"{options.size_mib}MiB"
    c = options.wrk_connections
    notifying = [
        (f"notify_{variant}_{kind}_ratio >= {floor:.2f}", v[f"notify_{variant}_{kind}_ratio"] >= floor,
         f"{v[f'notify_{variant}_{kind}_ratio']:.3f}")
        for variant in ("live", "dead")
        for kind, floor in (("get", 0.9), ("push", 0.9), ("put", 0.8))
        if f"notify_{variant}_{kind}_ratio" in v
    ]
    if options.only_notifications:
        checks = notifying
        for name, met, value in checks:
            print(f"# target {name}: {'MET' if met else 'NOT MET'} ({value})", flush=True)
        return
    checks = list(notifying) + cpuTargets(figures, options)
    if "copy_ratio" in v:
        checks.append(("copy_ratio >= 1.0 (txregistry copy against skopeo copy)", v["copy_ratio"] >= 1.0,
                       f"{v['copy_ratio']:.3f}"))
    if options.copy != "only":
        checks += [
            ("push_ratio >= 0.80", v["push_ratio"] >= 0.8, f"{v['push_ratio']:.3f}"),
            ("pull_ratio >= 0.80", v["pull_ratio"] >= 0.8, f"{v['pull_ratio']:.3f}"),
            (
                "peak RSS (all server processes) < 100 MiB during 1 GiB push and pull",
                max(v[f"rss_peak_push_{label}_monolithic_MiB"], v[f"rss_peak_push_{label}_chunked_MiB"], v[f"rss_peak_pull_{label}_MiB"]) < 100,
                "{:.1f} / {:.1f} / {:.1f} MiB".format(
                    v[f"rss_peak_push_{label}_monolithic_MiB"],
                    v[f"rss_peak_push_{label}_chunked_MiB"],
                    v[f"rss_peak_pull_{label}_MiB"],
                ),
            ),
            ("manifest GET >= 2500 req/s", v[f"manifest_get_c{c}_rps"] >= 2500, f"{v[f'manifest_get_c{c}_rps']:.0f} req/s"),
            ("bearer_ratio >= 0.80", v.get("bearer_ratio", 0) >= 0.8, f"{v.get('bearer_ratio', 0):.3f}"),
            ("observed_ratio >= 0.90", v.get("observed_ratio", 0) >= 0.9, f"{v.get('observed_ratio', 0):.3f}"),
        ]
    for name, met, value in checks:
        print(f"# target {name}: {'MET' if met else 'NOT MET'} ({value})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the 1 GiB pushes and pulls (best is reported)")
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the big blob")
    parser.add_argument("--chunk-mib", type=int, default=16, help="PATCH chunk size")
    parser.add_argument("--small-count", type=int, default=256)
    parser.add_argument("--small-concurrency", type=int, default=16)
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--ui-tags", type=int, default=10000, help="tags of the web UI's repository page")
    parser.add_argument("--ui-connections", default="1,8",
                        help="wrk connections for the web UI's page, comma-separated: one person's "
                             "page time, and a few people at once")
    parser.add_argument("--only-ui", action="store_true", help="measure only the web UI's page")
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--wrk-connections", type=int, default=64)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false",
                        help="run txregistry with log.accesslog.disabled (default: the shipped default, on)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--no-notifications", dest="notifications", action="store_false",
                        help="skip the notifications phase (no endpoint, a live one, a dead one)")
    parser.add_argument("--only-notifications", action="store_true",
                        help="run only the notifications phase")
    parser.add_argument("--notify-rounds", type=int, default=5,
                        help="rounds of the notifications phase (the median of the rounds' ratios is reported)")
    parser.add_argument("--gc-repositories", default="1000,10000",
                        help="registry sizes (repositories x 10 tags) to garbage-collect; '' for none")
    parser.add_argument("--copy", choices=("yes", "skip", "only"), default="yes",
                        help="the registry-to-registry copy figure (txregistry copy against skopeo copy): "
                             "with the rest, not at all, or alone")
    parser.add_argument("--observed-rounds", type=int, default=5,
                        help="rounds of manifest GET with metrics and tracing off and on, side by side"
                             " (the median of the rounds' ratios is reported)")
    parser.add_argument("--catalog-repositories", default="1000,10000",
                        help="registry sizes whose catalog is walked, comma-separated; '' for none")
    parser.add_argument("--catalog-page", type=int, default=100, help="the catalog walk's page size (n)")
    parser.add_argument("--catalog-walks", type=int, default=3,
                        help="walks of each catalog (the least time and CPU is reported)")
    parser.add_argument("--only", choices=["all", "observed", "bearer", "proxy", "ops"], default="all",
                        help="observed: only the metrics-and-tracing cost (manifest GET off vs on); "
                             "proxy: only the pull-through cache's cold, warm and direct pulls; "
                             "ops: only the small operations and the catalog, with CPU per operation")
    options = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("curl") is None:
        sys.exit("bench: needs wrk and curl on PATH (bench/run installs them as root)")
    work = tempfile.mkdtemp(prefix="txregistry-bench-")
    figures = Figures()
    try:
        if options.only == "observed":
            _observed(options, work, figures)
        elif options.only == "bearer":
            _accessControlOnly(options, work, figures)
        elif options.only == "proxy":
            _proxy(options, work, figures)
        elif options.only == "ops":
            _operations(options, work, figures)
        elif options.only_ui:
            _ui(options, work, figures)
        else:
            if not options.only_notifications:
                run(options, work, figures)
            if (options.notifications and options.copy != "only") or options.only_notifications:
                _notifications(options, work, figures)
    finally:
        if options.keep:
            note(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if options.only in ("all", "ops") and not options.only_ui:
        targets(figures, options)


if __name__ == "__main__":
    main()
