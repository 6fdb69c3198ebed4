# -*- test-case-name: tests.test_collect,tests.test_usage -*-
"""
What the commands that work on a registry's storage directly share
(C{txregistry garbage-collect}, C{txregistry usage}): opening the
configured storage, and running on the reactor to an exit status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TextIO

from twisted.internet.defer import Deferred

from txregistry.config import Configuration, ConfigurationError, loadConfiguration
from txregistry.storage.factories import createDriver
from txregistry.storage.interfaces import IStorageDriver

__all__ = ["openStorage", "runToStatus"]


def openStorage(
    reactor: Any, configPath: str, environ: Mapping[str, str], command: str, err: TextIO
) -> tuple[Configuration, IStorageDriver] | None:
    """
    The configuration at C{configPath} and its storage driver; L{None}
    (after one line on C{err} naming C{command} and the cause) when either
    cannot be had.
    """
    try:
        config = loadConfiguration(configPath, environ)
        return config, createDriver(config.storage.driver, config.storage.parameters, reactor)
    except (ConfigurationError, OSError) as e:
        err.write(f"txregistry {command}: {e}\n")
        return None


def runToStatus(main: Callable[[Any], Awaitable[int]]) -> int:
    """
    Run C{main(reactor)} on the global reactor and return the exit status
    it gives (1 if it failed).
    """
    from twisted.internet.task import react

    status: list[int] = []

    async def run(reactor: Any) -> None:
        status.append(await main(reactor))

    try:
        react(lambda r: Deferred.fromCoroutine(run(r)))
    except SystemExit as e:
        if e.code not in (0, None):
            return int(e.code)
    return status[0] if status else 1
