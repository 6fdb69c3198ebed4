# -*- test-case-name: tests.storage -*-
"""
Storage drivers: where registry content lives.

L{txregistry.storage.interfaces} declares what a driver is; each driver is one
module here; drivers are found at run time through L{twisted.plugin}.

The names in C{__all__} are the API for the rest of txregistry and for
driver authors outside it: the interfaces a driver provides, the errors it
must raise, the helpers it may use (L{checkPath}, L{asynchronousErrors},
L{BlockingPool}) and the lookup of drivers by name.
L{txregistry.storage.testing} is the suite a driver must pass.  Everything
else here (the built-in drivers' modules) may change without notice.
"""

from txregistry.storage.blocking import BlockingPool
from txregistry.storage.errors import (
    DriverConfigurationError,
    InvalidOffsetError,
    InvalidPathError,
    PathNotFoundError,
    StorageError,
    StorageFullError,
    WriterClosedError,
    asynchronousErrors,
    checkParameters,
)
from txregistry.storage.factories import createDriver, driverFactories
from txregistry.storage.interfaces import (
    FileInfo,
    IStorageDriver,
    IStorageDriverFactory,
    IStorageReader,
    IStorageWriter,
)
from txregistry.storage.paths import checkPath, isHidden

__all__ = [
    "BlockingPool",
    "DriverConfigurationError",
    "FileInfo",
    "IStorageDriver",
    "IStorageDriverFactory",
    "IStorageReader",
    "IStorageWriter",
    "InvalidOffsetError",
    "InvalidPathError",
    "PathNotFoundError",
    "StorageError",
    "StorageFullError",
    "WriterClosedError",
    "asynchronousErrors",
    "checkParameters",
    "checkPath",
    "createDriver",
    "driverFactories",
    "isHidden",
]
