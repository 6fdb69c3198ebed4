"""
The copy figure: a 1 GiB image of three layers copied registry to
registry by C{txregistry copy} and by C{skopeo copy}, in the same run,
with the client's peak RSS.  Called from C{bench.py} (it passes its own
helpers in, so that this module stays one concern).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from rawhttp import Connection, expect

MiB = 1 << 20

#: The three layers' shares of the image (1/2, 3/8, 1/8).
_SHARES = (4, 3, 1)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _sliceDigest(fd: int, offset: int, size: int) -> str:
    hasher = hashlib.sha256()
    done = 0
    while done < size:
        data = os.pread(fd, min(64 * MiB, size - done), offset + done)
        hasher.update(data)
        done += len(data)
    return "sha256:" + hasher.hexdigest()


def pushThreeLayers(port: int, fd: int, size: int) -> None:
    """
    Push C{bench/image:1} to the registry on C{port}: the data file cut
    into three layers, a config, an OCI manifest.
    """
    unit = size // sum(_SHARES)
    layers, offset = [], 0
    for i, share in enumerate(_SHARES):
        length = unit * share if i < len(_SHARES) - 1 else size - offset
        layers.append((offset, length, _sliceDigest(fd, offset, length)))
        offset += length
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [d for _, _, d in layers]}}).encode()
    configDigest = "sha256:" + hashlib.sha256(config).hexdigest()
    with Connection("127.0.0.1", port) as conn:
        for offset, length, digest in layers:
            expect(conn.sendFile("POST", f"/v2/bench/image/blobs/uploads/?digest={digest}", fd, offset,
                                 length, {"Content-Type": "application/octet-stream"}), 201)
        expect(conn.request("POST", f"/v2/bench/image/blobs/uploads/?digest={configDigest}", {}, config), 201)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": configDigest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": n} for _, n, d in layers],
        }).encode()
        expect(conn.request("PUT", "/v2/bench/image/manifests/1", {"Content-Type": OCI_MANIFEST}, manifest), 201)


def _timed(arguments: list[str], env: dict[str, str], sampler: Callable[[int], Any],
           cwd: str | None = None) -> tuple[float, float, float]:
    """
    Run a client to its end; its wall time, peak RSS (MiB) and CPU time
    (user + system seconds, all its threads, from C{wait4}).
    """
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(arguments, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        rss = sampler(process.pid)
        try:
            with rss.phase() as phase:
                _, status, usage = os.wait4(process.pid, 0)
        finally:
            rss.stop()
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(arguments[:4])} exited {process.returncode}: "
                               f"{errors.read().decode(errors='replace')[-2000:]}")
    return elapsed, phase["peakMiB"], usage.ru_utime + usage.ru_stime


def installedCopy(repository: str, work: str) -> str:
    """
    The checkout's C{txregistry} package copied under C{work} and compiled
    to bytecode, as C{pip install} leaves it: the client runs from it.
    With C{PYTHONDONTWRITEBYTECODE} (set where the checkouts live) it would
    compile every module of the checkout again on every timed run, about
    0.2 s of CPU an installed txregistry never spends; a
    C{PYTHONPYCACHEPREFIX} would instead ignore every installed package's
    bytecode.

    @return: the directory to put on C{PYTHONPATH} (and to run in: C{python
        -m} puts the working directory first on the path).
    """
    directory = os.path.join(work, "client")
    shutil.copytree(os.path.join(repository, "txregistry"), os.path.join(directory, "txregistry"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", directory], check=True, stdout=subprocess.DEVNULL)
    return directory


def copyFigures(options: Any, work: str, figures: Any, fd: int, size: int,
                makeRegistry: Callable[[str], Any], sampler: Callable[[int], Any],
                note: Callable[[str], None], settle: Callable[[], None], repository: str) -> None:
    """
    Add C{copy_*} figures: best of C{options.repeat} rounds for each
    client, the order alternating between rounds.
    """
    label = f"{size >> 30}GiB" if size % (1 << 30) == 0 else f"{size >> 20}MiB"
    skopeo = shutil.which("skopeo")
    sourceDir = os.path.join(work, "copy-source")
    os.makedirs(sourceDir)
    source = makeRegistry(sourceDir)
    try:
        note(f"copy: pushing a {label} 3-layer image to the source registry")
        pushThreeLayers(source.port, fd, size)
        src = f"127.0.0.1:{source.port}/bench/image:1"
        env = dict(os.environ)
        installed = installedCopy(repository, work)
        env["PYTHONPATH"] = os.pathsep.join([installed]
                                            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["REGISTRY_AUTH_FILE"] = os.path.join(work, "skopeo-auth.json")
        best: dict[str, float] = {}
        peaks: dict[str, float] = {}
        cpus: dict[str, float] = {}
        clients = ["txregistry"] + (["skopeo"] if skopeo else [])
        if not skopeo:
            note("copy: skopeo not installed: no skopeo figure")
        for round_ in range(options.repeat):
            order = clients if round_ % 2 == 0 else clients[::-1]
            for client in order:
                # A new destination registry each time: nothing there to
                # skip or mount (skopeo remembers where it put blobs, and
                # would mount them from its last round's repository).
                targetDir = os.path.join(work, f"copy-target-{client}-{round_}")
                os.makedirs(targetDir)
                target = makeRegistry(targetDir)
                destination = f"127.0.0.1:{target.port}/{client}/image:1"
                if client == "txregistry":
                    arguments = [sys.executable, "-m", "txregistry.cli", "copy",
                                 f"docker://{src}", f"docker://{destination}"]
                else:
                    arguments = [skopeo or "skopeo", "--insecure-policy", "copy", "--src-tls-verify=false",
                                 "--dest-tls-verify=false", "--preserve-digests", "--quiet",
                                 f"docker://{src}", f"docker://{destination}"]
                settle()
                try:
                    # From the installed copy's directory: python -m puts the
                    # working directory first on the path.
                    seconds, peak, cpu = _timed(arguments, env, sampler, installed)
                finally:
                    target.stop()
                    shutil.rmtree(targetDir, ignore_errors=True)
                note(f"copy round {round_ + 1} {client}: {seconds:.2f}s, {size / seconds / 1e6:.0f} MB/s, "
                     f"client CPU {cpu:.2f}s, client peak RSS {peak:.1f} MiB")
                best[client] = min(best.get(client, seconds), seconds)
                cpus[client] = min(cpus.get(client, cpu), cpu)
                peaks[client] = max(peaks.get(client, 0.0), peak)
        figures.add(f"copy_{label}_3layer_txregistry_s", best["txregistry"], 2)
        figures.add(f"copy_{label}_3layer_txregistry_MBps", size / best["txregistry"] / 1e6)
        figures.add(f"cpu_copy_{label}_txregistry_client_s", cpus["txregistry"], 2)
        figures.add(f"rss_peak_copy_{label}_txregistry_client_MiB", peaks["txregistry"])
        if "skopeo" in best:
            figures.add(f"copy_{label}_3layer_skopeo_s", best["skopeo"], 2)
            figures.add(f"cpu_copy_{label}_skopeo_s", cpus["skopeo"], 2)
            figures.add(f"rss_peak_copy_{label}_skopeo_MiB", peaks["skopeo"])
            figures.add("copy_ratio", best["skopeo"] / best["txregistry"], 3)
    finally:
        source.stop()
