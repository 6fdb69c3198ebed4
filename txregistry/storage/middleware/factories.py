# -*- test-case-name: tests.storage.middleware.test_factories -*-
"""
Plugin factories for the storage middleware that ship with txregistry, the
lookup of a middleware by name among every installed plugin, and the
checking and wrapping of C{middleware.storage}'s entries (whose shape
L{txregistry.config} checked: as with a driver's parameters, their options
are the middleware's to check).

This module is imported by C{twisted/plugins/txregistry_storagemiddleware.py},
so it stays cheap: a middleware's module is imported only when it is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Protocol

from twisted.plugin import IPlugin, getPlugins
from zope.interface import implementer

from txregistry.storage.errors import DriverConfigurationError
from txregistry.storage.interfaces import IStorageDriver, IStorageMiddlewareFactory

__all__ = [
    "BuiltinMiddlewareFactory",
    "CheckedMiddleware",
    "MiddlewareEntry",
    "checkStorageMiddleware",
    "cloudfront",
    "middlewareFactories",
    "redirect",
    "rewrite",
    "wrapDriver",
]


@implementer(IPlugin, IStorageMiddlewareFactory)
class BuiltinMiddlewareFactory:
    """
    A factory naming the module whose C{parse} and C{wrap} functions are
    the middleware, so that module is imported only when used.
    """

    def __init__(self, name: str, module: str, description: str) -> None:
        self.name = name
        self.description = description
        self._module = module

    def parse(self, options: Any, where: str) -> Any:
        return import_module(self._module).parse(options, where)

    def wrap(self, driver: IStorageDriver, options: Any, reactor: Any, where: str) -> IStorageDriver:
        return import_module(self._module).wrap(driver, options, reactor, where)  # type: ignore[no-any-return]


redirect = BuiltinMiddlewareFactory(
    "redirect", "txregistry.storage.middleware.redirect",
    "Blob downloads redirected to a base URL followed by the storage path.",
)

rewrite = BuiltinMiddlewareFactory(
    "rewrite", "txregistry.storage.middleware.rewrite",
    "The driver's download URLs with their scheme, host or path prefix rewritten.",
)

cloudfront = BuiltinMiddlewareFactory(
    "cloudfront", "txregistry.storage.middleware.cloudfront",
    "Blob downloads from Amazon CloudFront in front of the S3 bucket, as signed URLs.",
)


def middlewareFactories() -> dict[str, IStorageMiddlewareFactory]:
    """
    Every installed storage middleware factory, by name (found through
    L{twisted.plugin}).
    """
    import twisted.plugins

    return {f.name: f for f in getPlugins(IStorageMiddlewareFactory, twisted.plugins)}


class MiddlewareEntry(Protocol):
    """
    One C{middleware.storage} entry as the configuration checked its shape
    (L{txregistry.config.StorageMiddlewareEntry}): its options are the
    middleware's own to check.

    @ivar where: its key, C{middleware.storage[<index>]}, for errors.
    """

    @property
    def name(self) -> str: ...

    @property
    def options(self) -> Mapping[str, Any] | None: ...

    @property
    def disabled(self) -> bool: ...

    @property
    def where(self) -> str: ...


@dataclass(frozen=True)
class CheckedMiddleware:
    """
    An entry whose middleware is installed and accepts its options.

    @ivar options: what its factory's C{parse} made of them.
    """

    entry: MiddlewareEntry
    factory: IStorageMiddlewareFactory
    options: Any


def checkStorageMiddleware(entries: Sequence[MiddlewareEntry]) -> list[CheckedMiddleware]:
    """
    Find each entry's middleware and have it check its options (those of
    a disabled entry too: turning it on must not then fail).

    @raise DriverConfigurationError: naming the first wrong key.
    """
    if not entries:
        return []
    factories = middlewareFactories()
    checked = []
    for entry in entries:
        factory = factories.get(entry.name)
        if factory is None:
            known = ", ".join(sorted(factories)) or "none"
            raise DriverConfigurationError(
                f"{entry.where}.name: no storage middleware named {entry.name!r} is installed"
                f" (installed: {known})")
        checked.append(CheckedMiddleware(entry, factory, factory.parse(entry.options, entry.where)))
    return checked


def wrapDriver(driver: IStorageDriver, entries: Sequence[MiddlewareEntry], reactor: Any) -> IStorageDriver:
    """
    C{driver} inside the middleware of each enabled entry, the first listed
    innermost (as in the reference: each middleware wraps what the ones
    before it made).

    @raise DriverConfigurationError: naming the key, when an entry's
        middleware is not installed, refuses its options, or cannot wrap
        what it is given.
    """
    for checked in checkStorageMiddleware(entries):
        if not checked.entry.disabled:
            driver = checked.factory.wrap(driver, checked.options, reactor, checked.entry.where)
    return driver
