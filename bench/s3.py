"""
The S3 benchmark: a 1 GiB blob pushed (monolithic and chunked) and pulled
through txregistry on the s3 driver against a local SeaweedFS, beside the
same through txregistry on the filesystem driver, and the ceiling: the same
bytes uploaded (a multipart upload of the same part size, parts sent one
after another) and downloaded (one streamed GET) by plain botocore to the
same SeaweedFS.  One figure per line on standard output, as C{bench/run}
prints; progress on standard error.  Run it with C{bench/run s3}.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Any

from bench import (
    MB,
    REPOSITORY,
    Figures,
    MiB,
    Registry,
    RSSSampler,
    curlGet,
    makeDataFile,
    note,
    pushChunked,
    pushMonolithic,
    settle,
)

sys.path.insert(0, REPOSITORY)

from tests.storage.servers import BUCKET, SeaweedFS  # noqa: E402


def botocoreCeiling(server: SeaweedFS, path: str, size: int, part: int) -> tuple[float, float]:
    """
    Upload C{path} as a multipart upload of C{part}-byte parts, then
    download it with one streamed GET, with a plain botocore client.

    @return: seconds for the upload and for the download.
    """
    client = server.client()
    key = "ceiling/blob"
    started = time.perf_counter()
    upload = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    parts = []
    with open(path, "rb", buffering=0) as f:
        number = 1
        while True:
            data = f.read(part)
            if not data:
                break
            answer = client.upload_part(
                Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=data
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            number += 1
    client.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    uploaded = time.perf_counter() - started
    started = time.perf_counter()
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
    received = 0
    for chunk in iter(lambda: body.read(MiB), b""):
        received += len(chunk)
    downloaded = time.perf_counter() - started
    if received != size:
        raise RuntimeError(f"botocore download: {received} of {size} bytes")
    client.delete_object(Bucket=BUCKET, Key=key)
    return uploaded, downloaded


def s3Environment(server: SeaweedFS, part: int) -> dict[str, str]:
    parameters: dict[str, Any] = server.parameters(chunksize=part)
    environ = {"REGISTRY_STORAGE": "s3", "REGISTRY_STORAGE_REDIRECT_DISABLE": "true"}
    for key, value in parameters.items():
        environ[f"REGISTRY_STORAGE_S3_{key.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    return environ


def measure(
    name: str, registry: Registry, fd: int, size: int, digest: str, chunk: int, repeat: int,
    figures: Figures,
) -> None:
    """
    Push (monolithic, chunked, into a new repository each time so every
    push stores the blob anew) and pull through C{registry}; add the best
    rates and the peak RSS.
    """
    rss = RSSSampler(registry.pid)
    best: dict[str, float] = {}
    peak = 0.0
    try:
        for round_ in range(repeat):
            for kind in ("monolithic", "chunked"):
                settle()
                repository = f"bench/{kind}{round_}"
                with rss.phase() as memory:
                    if kind == "monolithic":
                        seconds = pushMonolithic(
                            registry.port, f"/v2/{repository}/blobs/uploads/", fd, size, digest
                        )
                    else:
                        seconds = pushChunked(registry.port, repository, fd, size, digest, chunk)
                rate = size / seconds / MB
                note(f"  {name} push {kind}: {rate:.1f} MB/s, peak RSS {memory['peakMiB']:.1f} MiB")
                best[kind] = max(best.get(kind, 0.0), rate)
                peak = max(peak, memory["peakMiB"])
            with rss.phase() as memory:
                seconds = curlGet(
                    f"http://127.0.0.1:{registry.port}/v2/bench/monolithic0/blobs/{digest}", size
                )
            rate = size / seconds / MB
            note(f"  {name} pull: {rate:.1f} MB/s, peak RSS {memory['peakMiB']:.1f} MiB")
            best["pull"] = max(best.get("pull", 0.0), rate)
            peak = max(peak, memory["peakMiB"])
    finally:
        rss.stop()
    label = f"{size >> 20}MiB" if size % (1 << 30) else f"{size >> 30}GiB"
    figures.add(f"{name}_push_{label}_monolithic_MBps", best["monolithic"])
    figures.add(f"{name}_push_{label}_chunked_{chunk >> 20}MiB_MBps", best["chunked"])
    figures.add(f"{name}_pull_{label}_MBps", best["pull"])
    figures.add(f"{name}_rss_peak_MiB", peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2, help="rounds (best is reported)")
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the blob")
    parser.add_argument("--chunk-mib", type=int, default=16, help="PATCH chunk size")
    parser.add_argument("--part-mib", type=int, default=16, help="S3 part size (chunksize)")
    options = parser.parse_args()
    size = options.size_mib * MiB
    part = options.part_mib * MiB
    work = tempfile.mkdtemp(prefix="txregistry-bench-s3-")
    figures = Figures()
    server = SeaweedFS()
    try:
        note("starting SeaweedFS")
        server.start()
        path = os.path.join(work, "data.bin")
        note(f"writing {options.size_mib} MiB of random test data")
        digest = makeDataFile(path, size)
        fd = os.open(path, os.O_RDONLY)
        try:
            ceiling = [botocoreCeiling(server, path, size, part) for _ in range(options.repeat)]
            label = f"{size >> 20}MiB" if size % (1 << 30) else f"{size >> 30}GiB"
            figures.add(f"botocore_upload_{label}_MBps", size / min(u for u, _ in ceiling) / MB)
            figures.add(f"botocore_download_{label}_MBps", size / min(d for _, d in ceiling) / MB)
            for name, environ in (("s3", s3Environment(server, part)), ("filesystem", {})):
                directory = os.path.join(work, name)
                os.makedirs(directory)
                registry = Registry(directory, accessLog=False, extra=environ)
                note(f"txregistry on {name}, pid {registry.pid}")
                try:
                    measure(name, registry, fd, size, digest, options.chunk_mib * MiB,
                            options.repeat, figures)
                finally:
                    registry.stop()
            v = figures.values
            figures.add("s3_push_ratio_to_botocore",
                        v[f"s3_push_{label}_monolithic_MBps"] / v[f"botocore_upload_{label}_MBps"], 3)
            figures.add("s3_pull_ratio_to_botocore",
                        v[f"s3_pull_{label}_MBps"] / v[f"botocore_download_{label}_MBps"], 3)
        finally:
            os.close(fd)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
