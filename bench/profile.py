"""
Where txregistry spends its time in one benchmark phase, with py-spy.

    .venv/bin/pip install py-spy
    .venv/bin/python bench/profile.py PHASE [--repo DIR] [--top N] [--observed] [--notify live|dead]
        [--functions] [--keep FILE]

PHASE is C{push}, C{pull} (1 GiB), C{get}, C{head} (manifest by tag),
C{blobhead}, C{put} (manifest PUTs of new tags), C{small} (1 MiB
pushes), C{tags} (tags list of 1000), C{catalog} (walks of 1000
repositories in pages of 100) or C{copy} (the client, C{txregistry copy}
of the copy figure's image).

Starts txregistry (from this checkout, or C{--repo}: another checkout to
compare), runs the phase a few times while C{py-spy record} samples the
server, and prints the hottest functions by self and inclusive samples,
for all threads and for the reactor thread alone.  C{put} is the
notifications phase's 1000 manifest PUTs by tag, 16 at a time;
C{--notify} gives the registry one webhook endpoint, C{live}
(C{bench/receiver.py}) or C{dead} (nothing listening), as the
notifications phase does.  C{copy} samples the client instead:
C{txregistry copy} of the copy figure's 1 GiB 3-layer image from one
registry to another (C{bench/clientcopy.py}), run under C{py-spy
record}, with its wall and CPU time.  A syscall line that
looks hot on the reactor thread (C{doRead}, C{untilConcludes},
C{_getsockname}) is often the GIL being taken back from a pool thread.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from clientcopy import installedCopy, pushThreeLayers
from rawhttp import Connection, expect

import bench as B

#: A py-spy frame's line number, C{Name (path:123)}.
_LINE = re.compile(r":\d+\)$")


def summarize(path: str, top: int, only: str | None, functions: bool = False) -> None:
    """
    Print the C{top} frames of the samples in C{path} (py-spy's raw
    format) by self and by inclusive samples; only the stacks containing
    C{only} when given.  With C{functions}, a function's lines are one
    frame: what a function costs in all, rather than which line.
    """
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack or (only and only not in stack):
                continue
            n = int(count)
            frames = stack.split(";")
            if functions:
                frames = [_LINE.sub(")", frame) for frame in frames]
            total += n
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
    print(f"== {'reactor thread' if only else 'all threads'}: {total} samples")
    if not total:
        return
    print("-- self")
    for frame, n in own.most_common(top):
        print(f"{100 * n / total:5.1f}% {frame}")
    print("-- inclusive")
    for frame, n in inclusive.most_common(top):
        print(f"{100 * n / total:5.1f}% {frame}")


def profileCopy(spy: str, work: str, top: int) -> None:
    """
    Sample C{txregistry copy} (the client) copying the copy figure's image
    between two registries of this checkout.
    """
    size = B.GiB
    data = os.path.join(work, "data.bin")
    B.makeDataFile(data, size)
    for name in ("source", "target"):
        os.makedirs(os.path.join(work, name))
    source = B.Registry(os.path.join(work, "source"), accessLog=True)
    target = None
    fd = os.open(data, os.O_RDONLY)
    try:
        pushThreeLayers(source.port, fd, size)
        target = B.Registry(os.path.join(work, "target"), accessLog=True)
        raw = os.path.join(work, "profile.txt")
        env = dict(os.environ)
        # From compiled bytecode, as the copy figure runs it.
        installed = installedCopy(B.REPOSITORY, work)
        env["PYTHONPATH"] = installed
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        B.settle()
        started = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [spy, "record", "--nonblocking", "-r", "200", "--format", "raw", "-o", raw, "--",
             sys.executable, "-m", "txregistry.cli", "copy",
             f"docker://127.0.0.1:{source.port}/bench/image:1",
             f"docker://127.0.0.1:{target.port}/profile/image:1"],
            env=env, cwd=installed, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        print(f"copy {time.perf_counter() - started:.2f}s wall (sampled), "
              f"client and py-spy {cpu:.2f}s CPU", flush=True)
    finally:
        os.close(fd)
        if target is not None:
            target.stop()
        source.stop()
    summarize(raw, top, None)
    summarize(raw, top, "ReactorBase.mainLoop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("phase", choices=["push", "pull", "get", "head", "blobhead", "put", "small",
                                          "tags", "catalog", "copy"])
    parser.add_argument("--repo", default=B.REPOSITORY, help="the checkout whose txregistry runs")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--seconds", type=int, default=10, help="wrk time for get and tags")
    parser.add_argument("--observed", action="store_true",
                        help="with metrics and tracing on, as bench.py's observed phase")
    parser.add_argument("--notify", choices=["live", "dead"],
                        help="with one webhook endpoint, as bench.py's notifications phase")
    parser.add_argument("--functions", action="store_true",
                        help="count each function's lines together (what a function costs in all)")
    parser.add_argument("--keep", metavar="FILE", help="keep py-spy's raw samples in FILE")
    options = parser.parse_args()
    spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(spy):
        sys.exit("profile: needs py-spy (pip install py-spy)")
    B.REPOSITORY = os.path.abspath(options.repo)
    work = tempfile.mkdtemp(prefix="txregistry-profile-")
    if options.phase == "copy":
        try:
            profileCopy(spy, work, options.top)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    try:
        size = B.GiB
        data = os.path.join(work, "data.bin")
        digest = B.makeDataFile(data, size) if options.phase in ("push", "pull") else ""
        extra = dict(B.OBSERVED) if options.observed else {}
        receiver = B.WebhookReceiver() if options.notify == "live" else None
        if options.notify:
            url = receiver.url if receiver else f"http://127.0.0.1:{B.freePort()}/hook"
            extra["REGISTRY_NOTIFICATIONS_ENDPOINTS"] = json.dumps([{"name": options.notify, "url": url}])
        if options.phase == "catalog":
            B._populateRepositories(os.path.join(work, "storage"), 1000)
        registry = B.Registry(work, accessLog=True, extra=extra)
        fd = os.open(data, os.O_RDONLY) if digest else -1
        url = f"http://127.0.0.1:{registry.port}"
        try:
            if options.phase == "pull":
                B.pushMonolithic(registry.port, "/v2/bench/blobs/uploads/", fd, size, digest)
            if options.phase in ("get", "head", "blobhead", "put", "tags"):
                with Connection("127.0.0.1", registry.port) as conn:
                    manifest = B._pushImage(conn, "bench")
                    expect(conn.request("PUT", "/v2/bench/manifests/latest",
                                        {"Content-Type": B.OCI_MANIFEST}, manifest), 201)
            if options.phase in ("tags", "put"):
                with Connection("127.0.0.1", registry.port) as conn:
                    tagged = B._pushImage(conn, "bench/tags")
            def tag(c: Connection, i: int, prefix: str = "t") -> None:
                expect(c.request("PUT", f"/v2/bench/tags/manifests/{prefix}{i:05d}",
                                 {"Content-Type": B.OCI_MANIFEST}, tagged), 201)

            if options.phase == "tags":
                B.inParallel(1000, 16, registry.port, tag)
            raw = os.path.join(work, "profile.txt")
            sampler = subprocess.Popen(
                [spy, "record", "--nonblocking", "-r", "200", "--format", "raw", "-o", raw,
                 "--pid", str(registry.pid), "--subprocesses", "-d", "600"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
            if options.phase == "push":
                for _ in range(3):
                    try:
                        os.unlink(registry.blobData(digest))
                    except FileNotFoundError:
                        pass
                    seconds = B.pushMonolithic(registry.port, "/v2/bench/blobs/uploads/", fd, size, digest)
                    print(f"push {size / seconds / B.MB:.0f} MB/s", flush=True)
            elif options.phase == "pull":
                for _ in range(8):
                    seconds = B.curlGet(f"{url}/v2/bench/blobs/{digest}", size)
                    print(f"pull {size / seconds / B.MB:.0f} MB/s", flush=True)
            elif options.phase == "get":
                print(B.wrk(f"{url}/v2/bench/manifests/latest", options.seconds, 64,
                            [f"Accept: {B.OCI_MANIFEST}"]), flush=True)
            elif options.phase == "head":
                print(B.loadgen(registry.port, "HEAD", "/v2/bench/manifests/latest", options.seconds, 64,
                                [f"Accept: {B.OCI_MANIFEST}"]), flush=True)
            elif options.phase == "blobhead":
                layer = json.loads(manifest)["layers"][0]["digest"]
                print(B.loadgen(registry.port, "HEAD", f"/v2/bench/blobs/{layer}", options.seconds, 64, []),
                      flush=True)
            elif options.phase == "put":
                for round in range(3):
                    seconds = B.inParallel(1000, 16, registry.port,
                                           lambda c, i, round=round: tag(c, i, f"r{round}t"))
                    print(f"put {1000 / seconds:.0f}/s", flush=True)
            elif options.phase == "small":
                base = os.urandom(B.MiB)
                for round in range(2):
                    blobs = [b"%d-%d" % (round, i) + base[16:] for i in range(256)]
                    seconds = B.inParallel(256, 16, registry.port, lambda c, i, blobs=blobs: expect(c.request(
                        "POST", f"/v2/bench/small/blobs/uploads/?digest={B.digestOf(blobs[i])}",
                        {"Content-Type": "application/octet-stream"}, blobs[i]), 201))
                    print(f"small {256 / seconds:.0f} blobs/s", flush=True)
            elif options.phase == "catalog":
                for _ in range(10):
                    started = time.perf_counter()
                    B._catalogWalk(registry.port, 100)
                    print(f"catalog walk {1e3 * (time.perf_counter() - started):.0f} ms", flush=True)
            else:
                print(B.wrk(f"{url}/v2/bench/tags/tags/list", options.seconds, 64, []), flush=True)
            time.sleep(0.5)
            sampler.send_signal(signal.SIGINT)
            sampler.wait(60)
        finally:
            if fd >= 0:
                os.close(fd)
            registry.stop()
            if receiver is not None:
                receiver.stop()
        if options.keep:
            shutil.copyfile(raw, options.keep)
        summarize(raw, options.top, None, options.functions)
        summarize(raw, options.top, "ReactorBase.mainLoop", options.functions)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
