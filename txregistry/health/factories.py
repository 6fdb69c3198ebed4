# -*- test-case-name: tests.health.test_checks -*-
"""
Plugin factories for the checks that ship with txregistry, and the lookup
of a check's factory by kind among every installed plugin (as
L{txregistry.storage.factories} finds drivers).

Imported by C{twisted/plugins/txregistry_health.py}, so it stays cheap:
the checks' module is imported only when one is created.
"""

from __future__ import annotations

from importlib import import_module

from twisted.plugin import IPlugin, getPlugins
from zope.interface import implementer

from txregistry.config import ConfigurationError
from txregistry.health.interfaces import CheckContext, IHealthCheck, IHealthCheckFactory
from txregistry.opsconfig import CheckConfig

__all__ = ["BuiltinCheckFactory", "checkFactories", "createCheck"]


@implementer(IPlugin, IHealthCheckFactory)
class BuiltinCheckFactory:
    """
    A factory naming a check class of L{txregistry.health.checks}.
    """

    def __init__(self, kind: str, className: str) -> None:
        self.kind = kind
        self._className = className

    def create(self, config: CheckConfig, context: CheckContext) -> IHealthCheck:
        check = getattr(import_module("txregistry.health.checks"), self._className)
        return check(config, context)  # type: ignore[no-any-return]


storagedriver = BuiltinCheckFactory("storagedriver", "StorageDriverCheck")
file = BuiltinCheckFactory("file", "FileCheck")
http = BuiltinCheckFactory("http", "HTTPCheck")
tcp = BuiltinCheckFactory("tcp", "TCPCheck")


def checkFactories() -> dict[str, IHealthCheckFactory]:
    """
    Every installed check factory, by kind.
    """
    import twisted.plugins

    return {f.kind: f for f in getPlugins(IHealthCheckFactory, twisted.plugins)}


def createCheck(config: CheckConfig, context: CheckContext) -> IHealthCheck:
    """
    Build the check C{config} describes.

    @raise ConfigurationError: when no plugin builds its kind.
    """
    try:
        factory = checkFactories()[config.kind]
    except KeyError:
        raise ConfigurationError(
            f"health.{config.kind}: no health check plugin of that kind is installed"
        ) from None
    return factory.create(config, context)
