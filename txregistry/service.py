"""
Assembles a running registry from a L{Configuration}: storage driver,
registry stores, API, site, listening endpoint and logging.
"""

from __future__ import annotations

from typing import IO, Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import ILogObserver, Logger

from txregistry.api.app import RegistryAPI, RegistryRoot
from txregistry.api.responses import URLBuilder
from txregistry.config import Configuration
from txregistry.logs import makeObserver
from txregistry.maintenance import UploadPurger
from txregistry.registry.store import Registry
from txregistry.storage.factories import createDriver
from txregistry.storage.interfaces import IStorageDriver
from txregistry.web.site import RegistrySite

_log = Logger()


def makeSite(config: Configuration, driver: IStorageDriver) -> RegistrySite:
    """
    The HTTP site serving the V2 API over C{driver}.
    """
    registry = Registry(
        driver,
        deleteEnabled=config.storage.deleteEnabled,
        readOnly=config.storage.readOnly,
        tagTTL=config.storage.tagTTL,
        redirect=config.storage.redirect,
    )
    urls = URLBuilder(config.http.prefix, config.http.host, config.http.relativeURLs)
    api = RegistryAPI(registry, urls)
    root = RegistryRoot(api, config.http.prefix, config.http.headers)
    return RegistrySite(root, accessLog=config.log.accessLog)


class RegistryService(MultiService):
    """
    The registry as a service: listens on C{http.addr}, closes the storage
    driver on stop, and installs the configured log observer, writing to
    C{logOutput}, on the twistd application it joins.
    """

    def __init__(
        self,
        config: Configuration,
        reactor: Any,
        logOutput: IO[str] | None = None,
        endpoint: IStreamServerEndpoint | None = None,
    ) -> None:
        """
        @param endpoint: where to listen, if not C{http.addr} (the twistd
            plugin passes one that has listened already).
        """
        super().__init__()
        self.config = config
        self.logOutput = logOutput
        self.driver = createDriver(config.storage.driver, config.storage.parameters, reactor)
        self.site = makeSite(config, self.driver)
        if endpoint is None:
            endpoint = serverFromString(reactor, config.http.endpointDescription())
        listener = StreamServerEndpointService(endpoint, self.site)
        listener._raiseSynchronously = True
        listener.setServiceParent(self)
        purging = config.storage.uploadPurging
        if purging.enabled and not config.storage.readOnly and purging.interval > 0:
            UploadPurger(self.driver, purging).setServiceParent(self)

    def setServiceParent(self, parent: Any) -> Any:
        # twistd asks the application for an ILogObserver before it starts
        # logging; offering ours there is how a plugin picks its format.
        setComponent = getattr(parent, "setComponent", None)
        if setComponent is not None and self.logOutput is not None:
            setComponent(ILogObserver, makeObserver(self.config.log, self.logOutput))
        return super().setServiceParent(parent)

    def startService(self) -> None:
        super().startService()
        _log.info(
            "txregistry serving on {addr} with {driver} storage",
            addr=self.config.http.addr,
            driver=self.config.storage.driver,
        )

    async def _stop(self) -> None:
        await super().stopService()
        await self.driver.close()

    def stopService(self) -> Any:
        from twisted.internet.defer import Deferred

        return Deferred.fromCoroutine(self._stop())
