# -*- test-case-name: tests.workers.test_combinations -*-
"""
What cannot run in several worker processes, found while the configuration
is checked.

Each worker is a whole registry over the same storage; what one process
keeps in memory between requests is not seen by the others.  A feature
that depends on that memory either runs with one process, or the start is
refused: an explicit C{http.workers} above 1 fails with one line naming
the key that cannot be combined, and the default (the number of CPUs)
becomes 1, with the reason in the start's log (see
L{txregistry.config.HTTPConfig.oneWorkerBecause}).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from txregistry.config import Configuration, ConfigurationError


def _explicit(document: Mapping[str, Any], *keys: str) -> Any:
    """
    The value at C{keys} in the document as given (before the defaults),
    or L{None}.
    """
    value: Any = document
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def conflicts(config: Configuration, document: Mapping[str, Any]) -> list[str]:
    """
    Why C{config} cannot run in several processes: one line each, naming
    the key.
    """
    found = []
    if config.storage.driver == "inmemory":
        found.append("storage.inmemory: each worker would hold its own registry in memory")
    if config.ui.enabled and config.auth.scheme is not None:
        found.append("ui.enabled: UI logins are kept in one process's memory")
    return found


def checkCombinations(config: Configuration, document: Mapping[str, Any]) -> Configuration:
    """
    C{config}, checked for several workers.  (Tags are cached in every
    worker as in a lone process: a worker that changes one has every other
    forget it before it answers, L{txregistry.workers.peers}.)

    @param document: the configuration as given, to tell an explicit
        C{http.workers} from the default.
    @raise ConfigurationError: when C{http.workers} is explicitly above 1
        and something configured needs one process.
    """
    found = conflicts(config, document)
    if found:
        if _explicit(document, "http", "workers") is not None:
            raise ConfigurationError(f"http.workers: {config.http.workers} cannot be combined with {found[0]}")
        return replace(config, http=replace(config.http, workers=1, oneWorkerBecause=found[0]))
    return config
