# -*- test-case-name: tests.health.test_checks -*-
"""
What a health check is, and what makes one: the plugin interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

from txregistry.opsconfig import CheckConfig


class IHealthCheck(Interface):
    """
    One check, run again and again by L{txregistry.health.monitor.HealthMonitor}.
    """

    name = Attribute("C{str}: the check's name in C{/debug/health}")

    def check() -> Deferred[None]:
        """
        Check once, never blocking: a file system call goes through a
        thread pool, a network call through the reactor.

        @return: a L{Deferred} that fires with L{None} when healthy and
            fails with the reason (its message is what C{/debug/health}
            shows) when not.
        """


@dataclass(frozen=True)
class CheckContext:
    """
    What a check may need of the registry it checks.

    @ivar reactor: the reactor (time, TCP, threads).
    @ivar driver: the registry's L{IStorageDriver}.
    @ivar readOnly: whether the registry refuses writes (then the storage
        check only reads).
    """

    reactor: Any
    driver: Any
    readOnly: bool = False


class IHealthCheckFactory(Interface):
    """
    A L{twisted.plugin} plugin that builds the checks of one kind of the
    C{health} section.
    """

    kind = Attribute("C{str}: the kind: C{storagedriver}, C{file}, C{http} or C{tcp}")

    def create(config: CheckConfig, context: CheckContext) -> IHealthCheck:
        """
        The check C{config} describes.
        """
