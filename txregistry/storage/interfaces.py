"""
What a storage driver is.

A driver stores opaque byte strings at slash-separated paths (see
L{txregistry.storage.paths}).  Every operation returns a L{Deferred}; none
blocks the reactor.  Content moves in two ways: small values whole
(L{IStorageDriver.getContent}/L{IStorageDriver.putContent}) and large values
as streams with backpressure (L{IStorageDriver.reader} produces into any
L{IConsumer}; L{IStorageDriver.writer} is an L{IConsumer} that pauses its
producer when it lags).
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.interfaces import IConsumer
from twisted.web.iweb import IBodyProducer
from zope.interface import Attribute, Interface


@dataclass(frozen=True)
class FileInfo:
    """
    What L{IStorageDriver.stat} and L{IStorageDriver.walk} tell of a path.
    """

    path: str
    size: int
    modified: float
    isDirectory: bool


class IStorageReader(IBodyProducer):
    """
    A stream of the bytes of one stored value, from an offset.

    It is an L{IBodyProducer}: C{length} is the number of bytes it will
    produce; C{startProducing(consumer)} writes them to C{consumer} and
    returns a L{Deferred} that fires when the last byte is written; it
    honours C{pauseProducing}/C{resumeProducing} from the consumer, and
    C{stopProducing} releases what it holds.
    """


class IStorageWriter(IConsumer):
    """
    A value being written.

    Nothing written is visible at the path until L{commit} succeeds, and
    then all of it is, at once; L{cancel} leaves the path as it was before
    the writer was opened.  A writer pauses its registered producer while
    its queue of unwritten data is over the driver's high-water mark.

    An appending writer adds its bytes at the end the value has when it is
    committed (so two appenders both land, one after the other); its
    C{commit} fires with that final size.
    """

    path = Attribute("The storage path being written.")

    size = Attribute(
        "The size the value will have when committed: for an appending "
        "writer, the bytes already there plus those written since."
    )

    def commit():
        """
        Make everything written durable and visible at C{path}.

        @return: a L{Deferred} that fires with the final size once the data
            is on stable storage, or fails with the error that stopped any
            write.
        """

    def cancel():
        """
        Discard everything written through this writer.

        @return: a L{Deferred} that fires when the discarded data is gone.
        """


class IStorageDriver(Interface):
    """
    A place to keep registry content.
    """

    name = Attribute("The driver's name, as used under C{storage:}.")

    def getContent(path: str):
        """
        @return: a L{Deferred} firing with all the bytes at C{path}, or
            failing with L{PathNotFoundError}.
        """

    def putContent(path: str, content: bytes):
        """
        Store C{content} at C{path}, replacing what was there, atomically
        and durably.

        @return: a L{Deferred} that fires when the content is durable.
        """

    def reader(path: str, offset: int = 0, length: int | None = None):
        """
        Open a stream of C{length} bytes (default: to the end) at C{path}
        starting at C{offset}.

        @return: a L{Deferred} firing with an L{IStorageReader}, or failing
            with L{PathNotFoundError} or L{InvalidOffsetError}.
        """

    def writer(path: str, append: bool = False):
        """
        Open a writer for C{path}.  With C{append}, new bytes are added after
        the existing ones (which must exist); otherwise the committed value
        replaces whatever is at C{path}.

        @return: a L{Deferred} firing with an L{IStorageWriter}.
        """

    def stat(path: str):
        """
        @return: a L{Deferred} firing with a L{FileInfo}, or failing with
            L{PathNotFoundError}.
        """

    def list(path: str):
        """
        @return: a L{Deferred} firing with the sorted full paths of the
            direct children of directory C{path}, or failing with
            L{PathNotFoundError}.
        """

    def walk(path: str):
        """
        @return: a L{Deferred} firing with a list of L{FileInfo} for every
            file and directory below C{path}, in lexical order of path, or
            failing with L{PathNotFoundError}.
        """

    def move(source: str, destination: str):
        """
        Move the file at C{source} to C{destination}, replacing any file
        there, atomically and durably.

        @return: a L{Deferred}; fails with L{PathNotFoundError} if
            C{source} does not exist.
        """

    def delete(path: str):
        """
        Delete the file or the whole directory tree at C{path}.

        @return: a L{Deferred}; fails with L{PathNotFoundError} if nothing
            is there.
        """

    def urlFor(path: str, method: str = "GET", expiry: float = 1200.0):
        """
        A URL from which a client may fetch C{path} directly (an object
        store's signed URL), for registries that redirect blob downloads.

        @return: a L{Deferred} firing with the URL, or with L{None} when the
            driver serves content only through L{reader}.
        """

    def close():
        """
        Release the driver's threads and connections.

        @return: a L{Deferred} that fires when they are released.
        """


class IStorageDriverFactory(Interface):
    """
    A plugin that builds one kind of driver from its configuration.

    Publish one as a module attribute in a C{twisted/plugins/} module, also
    providing L{twisted.plugin.IPlugin}, and C{storage: {<name>: {...}}}
    selects it.  Importing the plugin module must be cheap: import the
    driver in L{create}.
    """

    name = Attribute("The key under C{storage:} that selects this driver.")

    def create(parameters, reactor):
        """
        @param parameters: the mapping under C{storage.<name>}.
        @return: an L{IStorageDriver}.
        @raise DriverConfigurationError: for a bad parameter.
        """
