# -*- test-case-name: tests.storage -*-
"""
What a storage driver is.

A driver stores opaque byte strings at slash-separated paths (see
L{txregistry.storage.paths}).  Every operation returns a L{Deferred}; none
blocks the reactor, and none raises: a bad path or a missing value is a
failed L{Deferred} (L{txregistry.storage.errors.asynchronousErrors} does
that for a method that checks its arguments first).  Content moves in two
ways: small values whole (L{IStorageDriver.getContent}/
L{IStorageDriver.putContent}) and large values as streams with
backpressure (L{IStorageDriver.reader} produces into any L{IConsumer};
L{IStorageDriver.writer} is an L{IConsumer} that pauses its producer when
it lags).

The promises that matter most are those of appending writers and of
L{IStorageDriver.move}: the registry builds uploads and content-addressed
blobs on them.  They are written so that a store with neither atomic
rename nor append (an object store: S3, Azure Blob Storage, GCS) can keep
them; the docstrings of L{IStorageWriter} and L{IStorageDriver.move} say
how.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer
from twisted.web.iweb import IBodyProducer
from zope.interface import Attribute, Interface

__all__ = [
    "FileInfo",
    "IBucketKeyed",
    "IClientRoutedURLs",
    "IStorageDriver",
    "IStorageDriverFactory",
    "IStorageMiddlewareFactory",
    "IStartChecked",
    "IStorageReader",
    "IStorageWriter",
]


@dataclass(frozen=True)
class FileInfo:
    """
    What L{IStorageDriver.stat} and L{IStorageDriver.walk} tell of a path.

    @ivar path: the full storage path.
    @ivar size: the value's length in bytes; C{0} for a directory.
    @ivar modified: when the value was last stored, in seconds since the
        epoch (for a directory, any time the driver can tell).
    @ivar isDirectory: whether C{path} is a directory (a prefix of stored
        paths) rather than a value.
    """

    path: str
    size: int
    modified: float
    isDirectory: bool


class IStorageReader(IBodyProducer):
    """
    A stream of the bytes of one stored value, from an offset.

    It is an L{IBodyProducer}, so it can be handed to a response as is:
    C{length} is the number of bytes it will produce;
    C{startProducing(consumer)} writes them to C{consumer} and returns a
    L{Deferred} that fires when the last byte is written; it honours
    C{pauseProducing}/C{resumeProducing} from the consumer, and
    C{stopProducing} releases what it holds (a file, a connection) and
    writes nothing more.

    The bytes are those of the value when the reader was opened, or the
    stream fails: a reader never produces a mix of an old and a new value.
    """


class IStorageWriter(IConsumer):
    """
    A value being written.

    Nothing written is visible at the path until L{commit} succeeds, and
    then all of it is, at once; L{cancel} leaves the path as it was before
    the writer was opened.  A writer pauses its registered producer while
    its queue of unwritten data is over the driver's high-water mark, and
    resumes it when the queue drains.

    B{Appending writers} (C{IStorageDriver.writer(path, append=True)}) are
    how the registry stores a chunked upload: each chunk is one appending
    writer, committed when the whole chunk has arrived and cancelled when
    the client goes away.  Such a writer must guarantee:

      - A committed append is all or nothing.  Once L{commit} has fired,
        the value is the bytes it had at commit time followed by every byte
        written, and is durable; if L{commit} fails, or the process dies
        before it fires, the value is exactly what it was before.  No
        reader ever sees part of an append.

      - A cancelled (or abandoned) append leaves the previous content, byte
        for byte, and leaves nothing else visible behind: any staged data
        is the driver's to clean up, out of L{IStorageDriver.list} and
        L{IStorageDriver.walk}.

      - The new bytes land at the end the value has when the writer is
        committed, not when it was opened: two appenders to one value both
        land, one after the other, and C{commit} fires with the size the
        value then has.  (The registry does not append to one upload
        concurrently itself, but a driver must not lose an append that
        raced another.)

    A store that cannot append in place keeps these by staging and
    composing, for example:

      - a filesystem without atomic append stages the new bytes in a hidden
        file beside the target and copies them on at commit, cutting the
        target back to its old length if the copy fails;

      - S3 (multipart upload): upload the written bytes as parts while they
        arrive; at commit, read the current object's ETag, add the current
        object as the first part (C{UploadPartCopy}, or a re-upload of it
        when it is below the minimum part size) and complete the upload
        with C{If-Match} on that ETag, starting the commit again from the
        read if the precondition fails; on cancel, abort the upload;

      - GCS: upload the written bytes as temporary objects, then C{compose}
        the current object and them into the target with
        C{ifGenerationMatch} (retrying likewise), then delete the temporary
        objects;

      - Azure Blob Storage: stage the written bytes as uncommitted blocks of
        the target and commit the old block list followed by the new blocks
        (C{Put Block List} with C{If-Match}).

    A replacing writer (C{append=False}) is simpler: the value appears at
    commit, whole (one object C{PUT} or a completed multipart upload),
    replacing whatever was there; two replacing writers leave exactly one
    of their values, never a mix.
    """

    path: str = Attribute("The storage path being written.")

    size: int = Attribute(
        "The size the value will have when committed, as far as the writer "
        "knows: for an appending writer, the bytes there when it was opened "
        "plus those written since."
    )

    def commit() -> Deferred[int]:
        """
        Make everything written durable and visible at C{path}.

        The writer is closed after: a later L{write} raises, a later
        L{commit} fails, with L{WriterClosedError}.

        @return: a L{Deferred} that fires with the value's final size once
            the data is on stable storage, or fails with the error that
            stopped any write (the path then holds what it held before).
        """

    def cancel() -> Deferred[None]:
        """
        Discard everything written through this writer, leaving the path as
        it was.  Cancelling twice, or after a failed commit, is harmless.

        @return: a L{Deferred} that fires when the discarded data is gone.
        """


class IStorageDriver(Interface):
    """
    A place to keep registry content.

    A path is a value or a directory, never both: directories are the
    prefixes of stored paths (a driver may keep empty ones, as a
    filesystem does, or not, as an object store does).  Storing a value
    below a value, or at a directory's path, fails with a
    L{StorageError} and changes nothing.
    """

    name: str = Attribute("The driver's name, as used under C{storage:}.")

    def getContent(path: str) -> Deferred[bytes]:
        """
        @return: a L{Deferred} firing with all the bytes at C{path}, or
            failing with L{PathNotFoundError}.
        """

    def putContent(path: str, content: bytes) -> Deferred[None]:
        """
        Store C{content} at C{path}, replacing what was there, atomically
        and durably.  C{content} may be any bytes-like object; the driver
        copies it before returning, so the caller may reuse its buffer.

        @return: a L{Deferred} that fires when the content is durable.
        """

    def reader(path: str, offset: int = 0, length: int | None = None) -> Deferred[IStorageReader]:
        """
        Open a stream of C{length} bytes (default: to the end) at C{path}
        starting at C{offset}.

        @return: a L{Deferred} firing with an L{IStorageReader}, or failing
            with L{PathNotFoundError} or L{InvalidOffsetError} (a negative
            offset or length, or a range past the end).
        """

    def writer(path: str, append: bool = False) -> Deferred[IStorageWriter]:
        """
        Open a writer for C{path}.  With C{append}, new bytes are added after
        the existing ones (which must exist, or this fails with
        L{PathNotFoundError}); otherwise the committed value replaces
        whatever is at C{path}.  See L{IStorageWriter} for what committing
        and cancelling must guarantee.

        @return: a L{Deferred} firing with an L{IStorageWriter}.
        """

    def stat(path: str) -> Deferred[FileInfo]:
        """
        @return: a L{Deferred} firing with a L{FileInfo} for the value or
            directory at C{path} (C{"/"} is always a directory), or failing
            with L{PathNotFoundError}.
        """

    def list(path: str) -> Deferred[builtins.list[str]]:
        """
        @return: a L{Deferred} firing with the sorted full paths of the
            direct children of directory C{path}, or failing with
            L{PathNotFoundError}.
        """

    def walk(path: str) -> Deferred[builtins.list[FileInfo]]:
        """
        @return: a L{Deferred} firing with a list of L{FileInfo} for every
            file and directory below C{path}, in lexical order of path, or
            failing with L{PathNotFoundError}.
        """

    def move(source: str, destination: str) -> Deferred[None]:
        """
        Move the value at C{source} to C{destination}, replacing any value
        there.

        This is how a finished upload becomes a blob at its
        content-addressed path, so a driver must guarantee:

          - The destination appears whole or not at all: a reader of
            C{destination} sees the old value (or nothing) until it sees all
            of the new one, whatever fails and whenever the process dies.

          - Once the L{Deferred} fires, the destination is durable and the
            source is gone.  If the move fails, the source is still there
            (the destination may already hold the new value).

          - Concurrent moves of the same content to the same destination
            (two pushes of one blob) are safe: both may succeed, and the
            destination holds that content, whole.

          - Moving a path onto itself changes nothing.

        A store without atomic rename copies, then deletes: a server-side
        copy (S3 C{CopyObject}, or C{UploadPartCopy} parts for large
        objects; GCS C{rewrite}; Azure C{Copy Blob}, waiting for it to
        complete) makes the destination appear whole, and only after it
        has succeeded is the source deleted.  A crash between the two
        leaves both, which is safe: in the registry the source is an
        upload, and the upload purger removes it.  Never delete first, and
        never delete when C{source} is C{destination}.

        @return: a L{Deferred}; fails with L{PathNotFoundError} if
            C{source} does not exist.
        """

    def delete(path: str) -> Deferred[None]:
        """
        Delete the value or the whole directory tree at C{path}.

        @return: a L{Deferred}; fails with L{PathNotFoundError} if nothing
            is there.
        """

    def urlFor(path: str, method: str = "GET", expiry: float = 1200.0) -> Deferred[str | None]:
        """
        A URL from which a client may fetch C{path} directly (an object
        store's signed URL), for registries that redirect blob downloads.

        @param expiry: how many seconds the URL should stay valid.
        @return: a L{Deferred} firing with the URL, or with L{None} when the
            driver serves content only through L{reader}.
        """

    def close() -> Deferred[None]:
        """
        Release the driver's threads and connections.

        @return: a L{Deferred} that fires when they are released.
        """


class IStartChecked(Interface):
    """
    A driver that can tell, at start, whether its store is usable (a
    remote store: credentials, the bucket), so that a mistake stops the
    start with one line instead of failing every request later.
    """

    def checkStart() -> None:
        """
        Check the store, blocking: called once while the registry starts,
        before the reactor runs, and never from the reactor.

        @raise StorageError: saying in one line what is wrong.
        """


class IStorageDriverFactory(Interface):
    """
    A plugin that builds one kind of driver from its configuration.

    Publish one as a module attribute in a C{twisted/plugins/} module, also
    providing L{twisted.plugin.IPlugin}, and C{storage: {<name>: {...}}}
    selects it (L{txregistry.storage.factories.createDriver} finds it).
    Importing the plugin module must be cheap, and must not fail when the
    driver's own dependencies (an SDK) are missing: import the driver in
    L{create}.
    """

    name: str = Attribute("The key under C{storage:} that selects this driver.")

    def create(parameters: Mapping[str, Any], reactor: Any) -> IStorageDriver:
        """
        @param parameters: the mapping under C{storage.<name>} (empty when
            the configuration gives none).
        @param reactor: the reactor the driver must use for its timers,
            threads and connections.
        @return: an L{IStorageDriver}.
        @raise DriverConfigurationError: for a bad parameter, naming it.
        """


class IBucketKeyed(Interface):
    """
    A driver over an object store, which can name the object a path is
    kept in: what a CDN in front of the bucket (CloudFront) serves it as.
    """

    def bucketKey(path: str) -> str:
        """
        @return: the object key of C{path} in the driver's bucket, with the
            driver's root directory and without a leading slash.
        @raise InvalidPathError: when C{path} is not a storage path.
        """


class IClientRoutedURLs(Interface):
    """
    A driver (in practice a storage middleware) whose direct URLs depend
    on who asks: the CloudFront middleware sends clients inside AWS to the
    bucket itself, and everyone else to the CDN.

    Whatever wraps such a driver (the model's fault translation, the
    telemetry) provides this too and passes the client down; see
    L{txregistry.storage.middleware.directURL}.
    """

    def urlForClient(
        path: str, method: str = "GET", expiry: float = 1200.0, client: str | None = None
    ) -> Deferred[str | None]:
        """
        As L{IStorageDriver.urlFor}, for the client at address C{client}
        (an IP address; L{None} or C{""} when unknown).
        """


class IStorageMiddlewareFactory(Interface):
    """
    A plugin that wraps a driver in one kind of storage middleware: an
    L{IStorageDriver} that forwards to the driver it wraps and changes what
    it needs to (in the middleware that ship with txregistry, the URLs of
    direct downloads).

    Publish one as a module attribute in a C{twisted/plugins/} module, also
    providing L{twisted.plugin.IPlugin}; C{middleware: storage: [{name:
    <name>, options: {...}}]} selects it
    (L{txregistry.storage.middleware.factories.wrapDriver} applies it).
    As for drivers, importing the plugin module must be cheap.
    """

    name: str = Attribute("The C{name} of the C{middleware.storage} entries that select it.")

    def parse(options: Any, where: str) -> Any:
        """
        Check C{options} (the entry's C{options}: a mapping, or L{None}
        when absent) while the configuration is checked, before
        anything starts, so that a mistake stops the start (and
        C{txregistry config check}) with one line.

        @param where: the entry's dotted key, such as
            C{middleware.storage[0]}, to name in errors
            (C{<where>.options.<key>}).
        @return: the options, typed: what L{wrap} is given.
        @raise DriverConfigurationError: naming the wrong option.
        """

    def wrap(driver: IStorageDriver, options: Any, reactor: Any, where: str) -> IStorageDriver:
        """
        @param options: what L{parse} returned.
        @param where: as for L{parse}.
        @return: the middleware around C{driver}.
        @raise DriverConfigurationError: naming the option when C{driver}
            cannot be wrapped so (a middleware that needs an object store's
            keys, over a filesystem).
        """
