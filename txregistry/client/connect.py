# -*- test-case-name: tests.client.test_copy -*-
"""
From references to open transports: one L{Registry} per host (sharing one
HTTP session and one source of credentials, usually docker's
C{config.json}), sources and destinations for each kind of reference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import gatherResults

from txregistry.client.auth import Credentials
from txregistry.client.http import Session, TLSOptions
from txregistry.client.references import (
    ArchiveReference,
    LayoutReference,
    Reference,
    RegistryReference,
    parse,
)
from txregistry.client.registry import Registry
from txregistry.client.transports import IImageDestination, IImageSource
from txregistry.client.transports.archive import ArchiveDestination, ArchiveSource
from txregistry.client.transports.docker import RegistryDestination, RegistrySource
from txregistry.client.transports.oci import LayoutDestination, LayoutSource

__all__ = ["Connector"]


class Connector:
    """
    Opens references.

    @param credentials: the account for a host (docker's C{config.json}
        lookup, L{DockerConfig.get}); L{None} for anonymous everywhere.
    @param plainHTTP: C{http://} to every registry (L{None}: as
        L{Registry} decides per host).
    """

    def __init__(self, reactor: Any = None, tls: TLSOptions = TLSOptions(),
                 credentials: Callable[[str], Awaitable[Credentials | None]] | None = None,
                 plainHTTP: bool | None = None) -> None:
        self.session = Session(reactor, tls)
        self.tls = tls
        self.credentials = credentials
        self.plainHTTP = plainHTTP
        self._registries: dict[str, Registry] = {}

    def registry(self, host: str) -> Registry:
        """
        The L{Registry} at C{host}, logged in with its C{credentials}.
        """
        if host not in self._registries:
            lookup = self.credentials

            async def credentials() -> Credentials | None:
                return await lookup(host) if lookup is not None else None

            self._registries[host] = Registry(host, credentials, self.tls, self.plainHTTP,
                                              self.session)
        return self._registries[host]

    def source(self, reference: str | Reference) -> IImageSource:
        ref = parse(reference) if isinstance(reference, str) else reference
        if isinstance(ref, RegistryReference):
            return RegistrySource(self.registry(ref.host), ref)
        if isinstance(ref, LayoutReference):
            return LayoutSource(ref)
        return ArchiveSource(ref)

    def destination(self, reference: str | Reference,
                    source: IImageSource | None = None) -> IImageDestination:
        """
        @param source: what is copied there, whose tag (or name) the
            destination takes when its reference names none.
        """
        ref = parse(reference) if isinstance(reference, str) else reference
        tag = getattr(source, "tag", None)
        if isinstance(ref, RegistryReference):
            return RegistryDestination(self.registry(ref.host), ref, tag)
        if isinstance(ref, LayoutReference):
            return LayoutDestination(ref, tag)
        assert isinstance(ref, ArchiveReference)
        name = None
        if isinstance(source, RegistrySource) and source.ref.tag:
            name = f"{source.ref.host}/{source.ref.repository}:{source.ref.tag}"
        return ArchiveDestination(ref, name)

    async def close(self) -> None:
        await gatherResults([r.close() for r in self._registries.values()] + [self.session.close()])
