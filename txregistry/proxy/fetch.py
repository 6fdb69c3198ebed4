# -*- test-case-name: tests.proxy.test_fetch -*-
"""
Fetching once: one upstream request however many clients ask at once.

L{Flights} shares the result of one call (a manifest fetch, a tag's
check) among the callers asking for the same thing meanwhile.

L{BlobFetch} is one upstream C{GET} of a blob that streams, as it
arrives, into the cache (an L{IBlobWriter}, which checks the digest
before the blob is visible) and to every client that asked before its
first byte; the slowest of them paces the upstream (each can pause it),
so nothing is buffered beyond what the sockets hold.  A client that asks
later gets a L{CachedReader}: it reads the cache once the fetch stored
the blob.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txregistry.errors import BlobUnknown, DigestInvalid
from txregistry.interfaces import IBlobReader, IBlobWriter

__all__ = ["Flights", "BlobFetch", "ClientReader", "CachedReader"]

_log = Logger()

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class Flights(Generic[K, T]):
    """
    Calls in flight by key: a second caller asking for a key in flight
    waits for the first call's result instead of making its own.
    """

    def __init__(self) -> None:
        self._flying: dict[K, list[Deferred[T]]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._flying

    def run(self, key: K, work: Callable[[], Awaitable[T]]) -> Deferred[T]:
        """
        C{work()}'s result, shared with every caller of the same C{key}
        until it is known.
        """
        waiting: Deferred[T] = Deferred()
        if key in self._flying:
            self._flying[key].append(waiting)
            return waiting
        self._flying[key] = [waiting]

        def done(result: Any) -> None:
            for d in self._flying.pop(key):
                d.callback(result) if not isinstance(result, Failure) else d.errback(result)

        ensureDeferred(work()).addBoth(done)  # type: ignore[arg-type]
        return waiting


@implementer(IPushProducer)
class _Side:
    """
    One consumer's view of the fetch as its producer: its pauses are its
    own, and the upstream runs only while nobody pauses.
    """

    def __init__(self, fetch: "BlobFetch") -> None:
        self.fetch = fetch

    def pauseProducing(self) -> None:
        self.fetch._pause(self)

    def resumeProducing(self) -> None:
        self.fetch._resume(self)

    def stopProducing(self) -> None:
        self.fetch._detach(self)


@implementer(IBlobReader)
class ClientReader(_Side):
    """
    A client's reader of a blob being fetched: what the upstream sends,
    from its first byte.
    """

    def __init__(self, fetch: "BlobFetch") -> None:
        super().__init__(fetch)
        self.length = fetch.size
        self.consumer: IConsumer | None = None
        self.done: Deferred[None] = Deferred()
        self._late: CachedReader | None = None

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        if self.fetch.received:
            # Bytes went by before this client was ready for them: it reads
            # the cache once the fetch stored the blob.
            self._late = self.fetch.cachedReader()
            return self._late.startProducing(consumer)
        self.consumer = consumer
        self.fetch._attach(self)
        return self.done

    def pauseProducing(self) -> None:
        self._late.pauseProducing() if self._late is not None else super().pauseProducing()

    def resumeProducing(self) -> None:
        self._late.resumeProducing() if self._late is not None else super().resumeProducing()

    def stopProducing(self) -> None:
        self._late.stopProducing() if self._late is not None else super().stopProducing()


class BlobFetch:
    """
    One upstream read of a whole blob, into C{writer} and to its clients.

    @ivar size: the blob's size.
    @ivar received: how many bytes arrived (a client asking after the
        first reads the cache instead).
    @ivar finished: fires when the upstream sent everything (L{None}), or
        with the failure of the read.
    @ivar cached: whether the blob is now in the cache; L{None} until
        the fetch ended (L{whenCached} waits for it).
    """

    def __init__(self, source: IBlobReader, writer: IBlobWriter | None,
                 openCached: Callable[[], Awaitable[IBlobReader]],
                 pulled: Callable[[int], None] = lambda size: None) -> None:
        """
        @param openCached: opens the cache's reader of the blob, for
            clients that come after its first byte.
        @param pulled: called with the length of each piece that arrives.
        """
        self.source = source
        self.writer = writer
        self._openCached = openCached
        self.size: int = source.length
        self.received = 0
        self._pulled = pulled
        self._readers: list[ClientReader] = []
        self._paused: set[_Side] = set()
        self._sourcePaused = False
        self._started = False
        self._writerSide = _Side(self)
        self.finished: Deferred[None] = Deferred()
        self.cached: bool | None = None
        self._waiting: list[Deferred[bool]] = []

    def whenCached(self) -> Deferred[bool]:
        """
        @return: a L{Deferred} of L{cached}, once it is known.
        """
        if self.cached is not None:
            return succeed(self.cached)
        d: Deferred[bool] = Deferred()
        self._waiting.append(d)
        return d

    def reader(self) -> IBlobReader:
        """
        A reader for one more client: of the upstream's bytes as they
        come, or, once bytes have flowed, of the cache when the blob is
        stored.
        """
        if self.received:
            return self.cachedReader()
        return ClientReader(self)

    def cachedReader(self) -> "CachedReader":
        return CachedReader(self.size, self.whenCached(), self._openCached)

    def start(self) -> None:
        """
        Begin the upstream read: after the clients that asked meanwhile
        (in the same reactor turn) started their readers.
        """
        if self.writer is not None:
            self.writer.registerProducer(self._writerSide, True)
        self._started = True
        self.source.startProducing(self).addBoth(self._ended)  # type: ignore[arg-type]
        if self._paused and not self._sourcePaused and not self.finished.called:
            self._sourcePaused = True
            self.source.pauseProducing()

    # IConsumer, for the upstream's reader

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.received += len(data)
        self._pulled(len(data))
        if self.writer is not None:
            self.writer.write(data)
        for reader in list(self._readers):
            if reader.consumer is not None:
                reader.consumer.write(data)

    # Pacing

    def _attach(self, reader: ClientReader) -> None:
        self._readers.append(reader)

    def _pause(self, side: _Side) -> None:
        self._paused.add(side)
        if self._started and not self._sourcePaused:
            self._sourcePaused = True
            self.source.pauseProducing()

    def _resume(self, side: _Side) -> None:
        self._paused.discard(side)
        if self._sourcePaused and not self._paused:
            self._sourcePaused = False
            self.source.resumeProducing()

    def _detach(self, side: _Side) -> None:
        """
        A client went away: the fetch goes on for the cache (and the
        others), no longer paced by it.
        """
        if isinstance(side, ClientReader) and side in self._readers:
            self._readers.remove(side)
        self._resume(side)
        if self._started and self.writer is None and not self._readers \
                and not self.finished.called:
            self.source.stopProducing()

    def _ended(self, result: Any) -> None:
        ensureDeferred(self._store(result))

    async def _store(self, result: Any) -> None:
        """
        Commit the cache's copy (its writer checks the digest), then end
        the clients' reads: with the upstream's failure, or the digest's
        (their connections are cut rather than ended as if all was well).
        """
        failed = isinstance(result, Failure)
        cached = False
        if self.writer is not None:
            self.writer.unregisterProducer()
            try:
                if failed:
                    await self.writer.abort()
                else:
                    await self.writer.close()
                    cached = True
            except DigestInvalid:
                result, failed = Failure(), True
                _log.failure("A fetched blob does not match its digest")
            except Exception:
                _log.failure("Storing a fetched blob in the cache failed")
        readers, self._readers = self._readers, []
        for reader in readers:
            if failed:
                reader.done.errback(result)
            else:
                reader.done.callback(None)
        self.finished.errback(result) if failed else self.finished.callback(None)
        self.finished.addErrback(lambda failure: None)
        self.cached = cached
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(cached)


@implementer(IBlobReader)
class CachedReader:
    """
    A blob's reader that waits for C{ready} (a fetch storing it) before
    it opens C{open()}'s reader (the cache's) and produces from it.
    """

    def __init__(self, length: int, ready: Deferred[Any],
                 open: Callable[[], Awaitable[IBlobReader]]) -> None:
        self.length = length
        self._ready = ready
        self._open = open
        self._inner: IBlobReader | None = None
        self._paused = False
        self._stopped = False

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        return ensureDeferred(self._produce(consumer))

    async def _produce(self, consumer: IConsumer) -> None:
        if not await self._ready:
            raise BlobUnknown("the blob could not be cached")
        if self._stopped:
            return
        self._inner = await self._open()
        if self._paused:
            self._inner.pauseProducing()
        await self._inner.startProducing(consumer)

    def pauseProducing(self) -> None:
        self._paused = True
        if self._inner is not None:
            self._inner.pauseProducing()

    def resumeProducing(self) -> None:
        self._paused = False
        if self._inner is not None:
            self._inner.resumeProducing()

    def stopProducing(self) -> None:
        self._stopped = True
        if self._inner is not None:
            self._inner.stopProducing()
