# -*- test-case-name: tests.test_reload -*-
"""
L{Reloader}: what C{SIGHUP} reloads, each part saying in the log what it
did (L{txregistry.tls.ReloadOnSIGHUP} takes the signal and calls it).
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

_log = Logger()


class Reloader:
    """
    Runs each reload action in the order added; one that fails is logged
    and the others still run.
    """

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], object]]] = []

    def add(self, what: str, action: Callable[[], object]) -> None:
        """
        Reload C{what} with C{action} on each L{reload}.
        """
        self._actions.append((what, action))

    def reload(self) -> None:
        _log.info("SIGHUP: reloading {what}", what=", ".join(what for what, _ in self._actions))
        for what, action in self._actions:
            try:
                action()
            except Exception:
                _log.failure("SIGHUP: reloading {what} failed", what=what)
