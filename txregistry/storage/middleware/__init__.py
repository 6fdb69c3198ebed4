# -*- test-case-name: tests.storage.middleware -*-
"""
Storage middleware: drivers around a driver (C{middleware.storage}).

A middleware is an L{IStorageDriver} that forwards to the driver it wraps
(L{ForwardingDriver}) and changes what it is for.  Those that ship with
txregistry change where blob downloads go, the URL the registry's 307
answer to a blob C{GET} names:

  - C{redirect}: a base URL followed by the storage path, for any driver;
  - C{rewrite}: the driver's own URL with another scheme, host or path;
  - C{cloudfront}: a CloudFront signed URL for the object of an S3 bucket,
    or, for clients inside AWS (C{ipfilteredby}), the bucket's own.

More come from plugins providing L{IStorageMiddlewareFactory}
(L{txregistry.storage.middleware.factories}).
"""

from txregistry.storage.interfaces import IStorageMiddlewareFactory
from txregistry.storage.middleware.factories import (
    CheckedMiddleware,
    MiddlewareEntry,
    checkStorageMiddleware,
    middlewareFactories,
    wrapDriver,
)
from txregistry.storage.middleware.forwarding import ForwardingDriver, directURL

__all__ = [
    "CheckedMiddleware",
    "ForwardingDriver",
    "MiddlewareEntry",
    "IStorageMiddlewareFactory",
    "checkStorageMiddleware",
    "directURL",
    "middlewareFactories",
    "wrapDriver",
]
