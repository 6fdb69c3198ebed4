# -*- test-case-name: tests.test_collect -*-
"""
C{txregistry garbage-collect}: offline garbage collection, as the
reference's C{registry garbage-collect} (with nothing else writing to the
storage meanwhile; C{storage.gc} collects while the registry serves).

    txregistry garbage-collect [--dry-run] [--delete-untagged] [--quiet] CONFIG

It prints each manifest and blob it removes (or would remove) and a
summary; on a terminal, a progress line while it marks.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from txregistry.interfaces import CollectionReport, INamespace
from txregistry.offline import openStorage, runToStatus
from txregistry.registry.namespace import StorageNamespace
from txregistry.service import closeLayers, makeNamespace, retentionPolicies

__all__ = ["garbageCollect", "run"]


class _ProgressLine:
    """
    One line, rewritten, on a terminal; nothing elsewhere.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._on = out.isatty()

    def __call__(self, done: int, total: int, name: str) -> None:
        if self._on:
            width = 30
            filled = width * done // max(total, 1)
            self._out.write(f"\rmarking [{'#' * filled}{'.' * (width - filled)}] "
                            f"{done}/{total} {name[:40]:<40}")
            self._out.flush()

    def end(self) -> None:
        if self._on:
            self._out.write("\r" + " " * 100 + "\r")
            self._out.flush()


async def garbageCollect(
    reactor: Any, configPath: str, environ: Mapping[str, str], dryRun: bool,
    deleteUntagged: bool, quiet: bool, out: TextIO, err: TextIO,
) -> int:
    """
    Collect the storage C{configPath} configures.

    @return: the exit status.
    """
    opened = openStorage(reactor, configPath, environ, "garbage-collect", err)
    if opened is None:
        return 1
    config, driver = opened
    if config.storage.readOnly and not dryRun:
        err.write("txregistry garbage-collect: storage.maintenance.readonly is on; "
                  "nothing can be removed (use --dry-run)\n")
        return 1
    # Through the registry's own layers, so that its caches (Redis) forget
    # what goes; a dry run of a read-only registry asks storage directly,
    # since the read-only layer refuses collections.
    namespace: INamespace
    if config.storage.readOnly:
        namespace = StorageNamespace(driver, reactor, retention=retentionPolicies(config))
    else:
        namespace = makeNamespace(config, driver, reactor)
    progress = _ProgressLine(err)
    try:
        report: CollectionReport = await namespace.collectGarbage(
            deleteUntagged=deleteUntagged, dryRun=dryRun, progress=progress)
    finally:
        progress.end()
        await closeLayers(namespace)
        await driver.close()
    if not quiet:
        verb = "would delete" if dryRun else "deleted"
        for name, tag in report.tags:
            out.write(f"{name}: {verb} tag {tag}\n")
        for name, digest in report.manifests:
            out.write(f"{name}: {verb} manifest {digest}\n")
        for digest, size in report.blobs:
            out.write(f"{verb} blob {digest} ({size} bytes)\n")
    out.write(f"{report.summary()}\n")
    return 0


def run(options: Any, environ: Mapping[str, str], out: TextIO = sys.stdout,
        err: TextIO = sys.stderr) -> int:
    """
    Run L{garbageCollect} on the global reactor, for the command line.
    """
    return runToStatus(lambda reactor: garbageCollect(
        reactor, options.config, environ, options.dry_run, options.delete_untagged,
        options.quiet, out, err))
