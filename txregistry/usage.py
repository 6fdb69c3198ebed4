# -*- test-case-name: tests.test_usage -*-
"""
C{txregistry usage}: what each repository holds, and its quota.

    txregistry usage [--json] CONFIG [REPOSITORY ...]

Without repositories, every repository of the catalog.  The figures are
the model's (L{IRepository.usage}), through the same layers as the
running registry, so each quota shows.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from txregistry.errors import NameInvalid
from txregistry.interfaces import Usage
from txregistry.offline import openStorage, runToStatus

__all__ = ["reportUsage", "run"]


def _line(usage: Usage) -> str:
    quota = ""
    if usage.quota is not None:
        limits = [f"{usage.maxBytes} bytes" if usage.maxBytes is not None else None,
                  f"{usage.maxTags} tags" if usage.maxTags is not None else None]
        quota = f"  (quota {usage.quota}: {', '.join(x for x in limits if x)})"
    return f"{usage.repository}: {usage.bytes} bytes in {usage.blobs} blobs, {usage.tags} tags{quota}"


async def reportUsage(
    reactor: Any, configPath: str, environ: Mapping[str, str], names: list[str], asJSON: bool,
    out: TextIO, err: TextIO,
) -> int:
    """
    @return: the exit status.
    """
    from txregistry.service import closeLayers, makeNamespace

    opened = openStorage(reactor, configPath, environ, "usage", err)
    if opened is None:
        return 1
    config, driver = opened
    try:
        namespace = makeNamespace(config, driver, reactor)
        if not names:
            names = (await namespace.catalog(None, None)).items
        report = []
        for name in names:
            try:
                report.append(await namespace.repository(name).usage())
            except NameInvalid:
                err.write(f"txregistry usage: {name!r} is not a repository name\n")
                return 1
    finally:
        await closeLayers(namespace)
        await driver.close()
    if asJSON:
        json.dump([{"repository": u.repository, "bytes": u.bytes, "blobs": u.blobs, "tags": u.tags,
                    "quota": None if u.quota is None else
                    {"repository": u.quota, "maxbytes": u.maxBytes, "maxtags": u.maxTags}}
                   for u in report], out, indent=2)
        out.write("\n")
    else:
        for usage in report:
            out.write(_line(usage) + "\n")
    return 0


def run(options: Any, environ: Mapping[str, str], out: TextIO = sys.stdout,
        err: TextIO = sys.stderr) -> int:
    """
    Run L{reportUsage} on the global reactor, for the command line.
    """
    return runToStatus(lambda reactor: reportUsage(
        reactor, options.config, environ, options.repositories, options.json, out, err))
