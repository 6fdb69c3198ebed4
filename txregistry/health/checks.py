# -*- test-case-name: tests.health.test_checks -*-
"""
The checks of the reference's C{health} section.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import deferToThreadPool
from twisted.web.client import Agent
from twisted.web.http_headers import Headers
from zope.interface import implementer

from txregistry.config import splitAddress
from txregistry.health.interfaces import CheckContext, IHealthCheck
from txregistry.opsconfig import CheckConfig
from txregistry.registry.layout import HEALTH_PROBE, ROOT
from txregistry.storage.errors import PathNotFoundError


class CheckFailed(Exception):
    """
    A check found something wrong; the message says what.
    """


@implementer(IHealthCheck)
class StorageDriverCheck:
    """
    Storage takes a write (the reference only stats the root, which a
    full or read-only disk still answers); a read-only registry's storage
    only has to answer a stat.
    """

    def __init__(self, config: CheckConfig, context: CheckContext) -> None:
        self.name = config.name
        self._driver = context.driver
        self._readOnly = context.readOnly
        self._clock = context.reactor

    def check(self) -> Deferred[None]:
        if self._readOnly:
            return self._driver.stat(ROOT).addCallbacks(
                lambda info: None, lambda f: f.trap(PathNotFoundError) and None
            )
        stamp = b"%.3f\n" % self._clock.seconds()
        return self._driver.putContent(HEALTH_PROBE, stamp)  # type: ignore[no-any-return]


@implementer(IHealthCheck)
class FileCheck:
    """
    Fails while a file exists: an operator takes the registry out of
    rotation by creating it.  The look runs in the reactor's thread pool
    (a hung network file system must not hang the reactor).
    """

    def __init__(self, config: CheckConfig, context: CheckContext) -> None:
        self.name = config.name
        self._path = config.target
        self._reactor = context.reactor

    def check(self) -> Deferred[None]:
        def look() -> None:
            if os.path.exists(self._path):
                raise CheckFailed(f"file exists: {self._path}")

        return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), look)


@implementer(IHealthCheck)
class HTTPCheck:
    """
    A C{HEAD} of C{uri} answers C{statuscode} within C{timeout}.
    """

    def __init__(self, config: CheckConfig, context: CheckContext) -> None:
        self.name = config.name
        self._config = config
        self._reactor = context.reactor
        self._agent = Agent(context.reactor, connectTimeout=config.timeout)
        self._headers = {name: list(values) for name, values in config.headers.items()}

    def check(self) -> Deferred[None]:
        config = self._config
        request = self._agent.request(b"HEAD", config.target.encode("utf-8"), Headers(self._headers))

        def answered(response: Any) -> None:
            if response.code != config.statusCode:
                raise CheckFailed(
                    f"HEAD {config.target} answered {response.code}, expected {config.statusCode}"
                )

        return request.addCallback(answered).addTimeout(config.timeout, self._reactor)


class _Connected(Protocol):
    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.loseConnection()


@implementer(IHealthCheck)
class TCPCheck:
    """
    A TCP connection to C{addr} is made within C{timeout}.
    """

    def __init__(self, config: CheckConfig, context: CheckContext) -> None:
        self.name = config.name
        host, port = splitAddress(config.target, "health.tcp.addr")
        self._endpoint = HostnameEndpoint(context.reactor, host or "localhost", port,
                                          timeout=config.timeout)
        self._config = config
        self._reactor = context.reactor

    def check(self) -> Deferred[None]:
        connecting = self._endpoint.connect(Factory.forProtocol(_Connected))
        return connecting.addCallback(lambda protocol: None).addTimeout(
            self._config.timeout, self._reactor
        )
