"""
The garbage-collection figure: mark and sweep of a filesystem registry
of N repositories x 10 tags (each tag its own image: a config, a layer of
its own and one shared by all), with one unreferenced blob per
repository to sweep, through txregistry's own collector.

The storage is written directly in the registry's layout (the bench
measures the collection, not the pushes that would fill it), in memory
(/dev/shm when there is one): the figure is the collector's own work (its
walks, reads and stats through the filesystem driver's thread pool), not
the disk's.

    python bench/collection.py 1000 10000
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, task  # noqa: E402

from txregistry.registry import layout  # noqa: E402
from txregistry.registry.digest import Digest  # noqa: E402
from txregistry.registry.namespace import StorageNamespace  # noqa: E402
from txregistry.storage.factories import createDriver  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _write(root: str, path: str, data: bytes) -> None:
    full = root + path
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data)


def _blob(root: str, data: bytes) -> Digest:
    digest = Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())
    if not os.path.exists(root + layout.blobData(digest)):
        _write(root, layout.blobData(digest), data)
    return digest


def populate(root: str, repositories: int, tags: int) -> None:
    shared = b"shared layer" * 100
    sharedDigest = _blob(root, shared)
    for r in range(repositories):
        name = f"org{r % 100}/repo{r}"
        _write(root, layout.layerLink(name, sharedDigest), str(sharedDigest).encode())
        for t in range(tags):
            config = json.dumps({"repository": name, "tag": t}).encode()
            layer = f"layer of {name}:{t}".encode()
            descriptors = []
            for content, mediaType in ((config, "application/vnd.oci.image.config.v1+json"),
                                       (layer, "application/vnd.oci.image.layer.v1.tar"),
                                       (shared, "application/vnd.oci.image.layer.v1.tar")):
                digest = _blob(root, content)
                _write(root, layout.layerLink(name, digest), str(digest).encode())
                descriptors.append({"mediaType": mediaType, "digest": str(digest),
                                    "size": len(content)})
            manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                   "config": descriptors[0], "layers": descriptors[1:]}).encode()
            digest = _blob(root, manifest)
            _write(root, layout.revisionLink(name, digest), str(digest).encode())
            _write(root, layout.tagCurrentLink(name, f"v{t}"), str(digest).encode())
        garbage = _blob(root, f"garbage of {name}".encode())
        _write(root, layout.layerLink(name, garbage), str(garbage).encode())


async def collect(reactor: Any, root: str) -> tuple[float, Any]:
    driver = createDriver("filesystem", {"rootdirectory": root}, reactor)
    try:
        namespace = StorageNamespace(driver, reactor)
        started = time.monotonic()
        report = await namespace.collector.collect()
        return time.monotonic() - started, report
    finally:
        await driver.close()


def measure(sizes: list[int], tags: int = 10) -> dict[int, float]:
    """
    Seconds one collection of a fresh registry of each size takes (all in
    one run of the reactor, which cannot be started twice).
    """
    import shutil

    memory = "/dev/shm" if os.path.isdir("/dev/shm") else None
    seconds: dict[int, float] = {}

    async def main(reactor: Any) -> None:
        for size in sizes:
            work = tempfile.mkdtemp(prefix="txregistry-gc-bench-", dir=memory)
            try:
                started = time.monotonic()
                populate(work, size, tags)
                print(f"bench: {size} x {tags} written in {time.monotonic() - started:.0f}s",
                      file=sys.stderr, flush=True)
                elapsed, report = await collect(reactor, work)
                assert len(report.blobs) == size, report.summary()
                seconds[size] = elapsed
            finally:
                shutil.rmtree(work, ignore_errors=True)

    try:
        task.react(lambda r: defer.Deferred.fromCoroutine(main(r)))
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    return seconds


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [1000]
    for size, elapsed in measure(sizes).items():
        print(f"gc_{size}x10_s {elapsed:.2f}", flush=True)
