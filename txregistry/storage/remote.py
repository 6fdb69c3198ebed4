# -*- test-case-name: tests.storage.test_azure,tests.storage.test_gcs -*-
"""
What the drivers for remote object stores (Azure Blob Storage, GCS) share:
a non-blocking, streaming HTTP transport that retries what a store asks to
be retried, and the small concurrency helpers their drivers and writers
use.

The transport is treq over Twisted's agent (persistent connections,
response bodies delivered as a stream with backpressure), so nothing waits
on the network in the reactor thread.  Each driver signs its own requests
(a store's signing is its own business) through the C{sign} callable it
gives L{RemoteStore.request}, and turns a refusal into its own
L{RemoteError} through C{refusal}.

Throttling, server errors and lost connections are retried with
exponential backoff and jitter; when the retries run out the request fails
with L{StorageUnavailableError}, which the registry answers as 503.
"""

from __future__ import annotations

import builtins
import io
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from twisted.internet.defer import CancelledError, Deferred, DeferredLock, FirstError, gatherResults
from twisted.internet.error import ConnectError, ConnectionLost, DNSLookupError, TimeoutError
from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.web._newclient import RequestTransmissionFailed
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    FileBodyProducer,
    HTTPConnectionPool,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, IPolicyForHTTPS
from zope.interface import implementer

from txregistry.storage.errors import (
    PathNotFoundError,
    StorageError,
    StorageUnavailableError,
    asynchronousErrors,
)
from txregistry.storage.interfaces import FileInfo
from txregistry.storage.paths import checkPath

__all__ = [
    "InFlight", "KeyLocks", "KeyedListing", "RemoteError", "RemoteStore", "bodyProducer", "checkPlace", "gather",
    "isPrivate", "tree",
]

T = TypeVar("T")

_log = Logger()

#: Seconds before the first retry; each later one waits twice as long
#: (with jitter), up to L{MAX_DELAY}.
FIRST_DELAY = 0.1
MAX_DELAY = 5.0
#: Attempts per request, the first included.
ATTEMPTS = 6
#: Seconds to wait for a response's headers before giving up on the try.
RESPONSE_TIMEOUT = 120.0
#: Bytes of a request body handed to the connection at a time.
BODY_SLICE = 256 * 1024

#: Statuses that mean "try again": throttling and server trouble.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_RETRY_FAILURES = (
    ConnectError, ConnectionLost, DNSLookupError, TimeoutError, ResponseFailed,
    ResponseNeverReceived, RequestTransmissionFailed,
)


class RemoteError(StorageError):
    """
    A store refused a request.

    @ivar status: the HTTP status.
    @ivar code: the store's error code (C{BlobNotFound}, C{conditionNotMet},
        ...), or C{""} when the answer had no body.
    """

    store = "store"

    def __init__(self, status: int, code: str, message: str, what: str) -> None:
        super().__init__(status, code, message, what)
        self.status = status
        self.code = code
        self.message = message
        self.what = what

    def __str__(self) -> str:
        detail = f"{self.code}: {self.message}" if self.code else f"HTTP {self.status}"
        return f"{self.store} {self.what}: {detail}".rstrip(": ")


def bodyProducer(body: bytes) -> IBodyProducer:
    """
    A request body that is already in memory (a block, a small value): the
    stores want each body's length, and a retry sends it again.  It is
    written to the connection a slice at a time as the connection drains,
    so the transport never holds a second copy of a whole block.
    """
    return FileBodyProducer(io.BytesIO(body), readSize=BODY_SLICE)


@implementer(IPolicyForHTTPS)
class _NoVerification:
    """
    TLS without certificate checks (a test store's self-signed one).
    """

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return CertificateOptions(verify=False)


Signer = Callable[[str, str, dict[str, str], bytes], Awaitable[dict[str, str]]]
Refusal = Callable[[Any, str], Awaitable[RemoteError]]


class InFlight:
    """
    What a store's client has under way (requests, connection attempts,
    the waits between retries), cancelled when it closes: a registry that
    stops leaves no connection attempt or retry behind, and a request
    that comes after is refused rather than retried.
    """

    def __init__(self) -> None:
        self.closed = False
        self._pending: set[Deferred[Any]] = set()

    async def wait(self, pending: Deferred[T]) -> T:
        """
        The result of C{pending}, cancelled if the client closes first.

        @raise StorageUnavailableError: the client is closed.
        """
        if self.closed:
            pending.cancel()
            pending.addErrback(lambda _: None)
            raise StorageUnavailableError("the storage client is closed")
        self._pending.add(pending)
        try:
            return await pending
        except CancelledError:
            if self.closed:
                raise StorageUnavailableError("the storage client is closed") from None
            raise
        finally:
            self._pending.discard(pending)

    def checkOpen(self, what: str) -> None:
        """
        @raise StorageUnavailableError: the client closed (while C{what}
            was under way, which closing cancelled).
        """
        if self.closed:
            raise StorageUnavailableError(f"{what}: the storage client is closed")

    def close(self) -> None:
        self.closed = True
        for pending in list(self._pending):
            pending.cancel()


class RemoteStore:
    """
    Requests to one store over a pool of persistent connections.
    """

    def __init__(
        self, reactor: Any, name: str, skipVerify: bool = False, userAgent: str = "txregistry"
    ) -> None:
        self._reactor = reactor
        self.name = name
        self._userAgent = userAgent
        self._connections = HTTPConnectionPool(reactor, persistent=True)
        self._connections.maxPersistentPerHost = 32
        self._connections.cachedConnectionTimeout = 60
        policy: IPolicyForHTTPS = (
            _NoVerification() if skipVerify else BrowserLikePolicyForHTTPS()
        )
        from treq.client import HTTPClient

        self._http = HTTPClient(Agent(reactor, contextFactory=policy, pool=self._connections))
        # For a server that answers HTTP/1.0 (an emulator) and closes each
        # connection, which Twisted's pool would otherwise offer again.
        self._oneShot = HTTPClient(
            Agent(reactor, contextFactory=policy, pool=HTTPConnectionPool(reactor, False))
        )
        self._inFlight = InFlight()

    async def request(
        self,
        method: str,
        url: str,
        sign: Signer,
        refusal: Refusal,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        expect: Sequence[int] = (200,),
        what: str = "",
        retryCodes: frozenset[str] = frozenset(),
    ) -> Any:
        """
        Send a signed request, retrying throttling, server errors and lost
        connections with backoff.

        @param sign: called before every attempt with the method, the URL,
            the headers and the body; returns the headers to send (with
            the store's authorization).
        @param refusal: makes the L{RemoteError} of an unexpected answer.
        @param expect: the statuses that are answers; any other is a
            L{RemoteError} (after the retries for the retryable ones).
        @param retryCodes: the store's error codes that also mean "try
            again", whatever their status.
        @return: the treq response, its body not yet read (a streaming
            reader consumes it; others call C{content()}).
        @raise RemoteError: for a refusal.
        @raise StorageUnavailableError: when the retries run out.
        """
        what = what or f"{method} {url}"
        allHeaders = {"User-Agent": self._userAgent}
        allHeaders.update(headers or {})
        sendsBody = bool(body) or method in ("PUT", "POST")
        if sendsBody:
            allHeaders["Content-Length"] = str(len(body))
        last = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                delay = min(MAX_DELAY, FIRST_DELAY * 2 ** (attempt - 1))
                await self._inFlight.wait(
                    deferLater(self._reactor, delay * random.uniform(0.5, 1.0), lambda: None))
            self._inFlight.checkOpen(what)
            signed = await sign(method, url, dict(allHeaders), body)
            # The producer's length, or Twisted's own "0" for a PUT or
            # POST without one.
            signed.pop("Content-Length", None)
            try:
                response = await self._inFlight.wait(self._http.request(
                    method,
                    url,
                    headers=Headers({k: [v] for k, v in signed.items()}),
                    data=bodyProducer(body) if body else None,
                    unbuffered=True,
                    allow_redirects=False,
                    timeout=RESPONSE_TIMEOUT,
                ))
            except _RETRY_FAILURES as e:
                self._inFlight.checkOpen(what)
                last = f"{type(e).__name__}: {e}"
                continue
            except Exception as e:
                self._inFlight.checkOpen(what)
                if type(e).__name__ == "CancelledError":
                    last = "no answer in time"
                    continue
                raise
            if response.version[1:] == (1, 0) and self._http is not self._oneShot:
                self._http = self._oneShot
                await self._connections.closeCachedConnections()
            if response.code in expect:
                return response
            error = await refusal(response, what)
            if response.code in RETRY_STATUSES or error.code in retryCodes:
                last = str(error)
                continue
            raise error
        _log.warn("{store} unavailable for {what}: {last}", store=self.name, what=what, last=last)
        raise StorageUnavailableError(
            f"{self.name} {what}: no answer after {ATTEMPTS} attempts ({last})"
        )

    def close(self) -> Deferred[None]:
        """
        Cancel what is under way and close the kept-alive connections.
        """
        self._inFlight.close()
        return self._connections.closeCachedConnections()  # type: ignore[no-any-return]


async def gather(work: Sequence[Coroutine[Any, Any, T] | Deferred[T]]) -> list[T]:
    """
    Run C{work} at once; the results in order, or the first failure (its
    own exception, not a L{FirstError}).
    """
    ds = [w if isinstance(w, Deferred) else Deferred.fromCoroutine(w) for w in work]
    try:
        return await gatherResults(ds, consumeErrors=True)
    except FirstError as e:
        e.subFailure.raiseException()
        raise


class KeyLocks:
    """
    One lock per key, dropped when nobody holds or waits for it: commits
    of appends to one key in this process take turns.
    """

    def __init__(self) -> None:
        self._locks: dict[str, DeferredLock] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """
        Run C{work} while no other work for C{key} runs.
        """
        lock = self._locks.setdefault(key, DeferredLock())
        await lock.acquire()
        try:
            return await work()
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(key, None)


async def checkPlace(
    path: str,
    isDirectory: Callable[[str], Coroutine[Any, Any, bool]],
    isValue: Callable[[str], Coroutine[Any, Any, bool]],
) -> None:
    """
    Refuse to store a value at C{path} when it is a directory, or below a
    value: what an object store allows and an L{IStorageDriver} must not.
    The directory and every ancestor are asked about at once.

    @param isDirectory: whether anything is stored below a path.
    @param isValue: whether a value is stored at a path.
    @raise StorageError: naming what is in the way.
    """
    parts = path[1:].split("/")
    ancestors = ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
    found: list[bool] = await gather([isDirectory(path)] + [isValue(a) for a in ancestors])
    if found[0]:
        raise StorageError(f"cannot store a value at {path}: it is a directory")
    for ancestor, there in zip(ancestors, found[1:], strict=True):
        if there:
            raise StorageError(f"cannot store a value at {path}: {ancestor} is a value")


def isPrivate(relative: str) -> bool:
    """
    Whether a key below the driver's root (C{relative}, without the root)
    is the driver's own (a staging object): no valid path has a component
    starting with C{"."}, so such keys are never listed or walked.
    """
    return any(part.startswith(".") for part in relative.split("/"))


def tree(base: str, objects: Sequence[tuple[str, int, float]]) -> list[FileInfo]:
    """
    Every value and directory below C{base} (a path, C{""} for the root),
    in lexical order, from the stored objects below it.

    @param objects: (key relative to C{base}'s prefix, size, time) of each
        stored object; private keys (L{isPrivate}) are left out.
    """
    found: dict[str, FileInfo] = {}
    for relative, size, modified in objects:
        if isPrivate(relative):
            continue
        parts = relative.split("/")
        for i in range(1, len(parts)):
            directory = base + "/" + "/".join(parts[:i])
            if directory not in found:
                found[directory] = FileInfo(directory, 0, modified, True)
        full = base + "/" + relative
        found[full] = FileInfo(full, size, modified, False)
    return [found[p] for p in sorted(found)]


class KeyedListing:
    """
    Paths as the keys of a store that has no directories, only objects
    named by keys (S3, Azure, GCS): a path's key is C{parameters.prefix}
    and the path without its first slash, a directory is the prefix its
    path names, and L{IStorageDriver.list} and C{walk} are each one
    listing by that prefix (with the C{/} delimiter for C{list}'s
    children, without for C{walk}'s whole tree).  Private keys (a staging
    object's, L{isPrivate}) are never listed.

    A driver gives C{parameters} (with its C{prefix}) and
    C{_listing(prefix, delimiter)}: every object (key, size, time) and
    every delimited prefix below C{prefix}.
    """

    parameters: Any

    async def _listing(
        self, prefix: str, delimiter: str | None
    ) -> tuple[builtins.list[tuple[str, int, float]], builtins.list[str]]:
        raise NotImplementedError

    def _objectName(self, path: str, allowRoot: bool = False) -> str:
        """
        The key of C{path}.

        @raise InvalidPathError: for a path that is no valid path.
        """
        checkPath(path, allowRoot)
        if path == "/":
            return str(self.parameters.prefix)
        return str(self.parameters.prefix) + path[1:]

    def _directoryPrefix(self, path: str) -> str:
        name = self._objectName(path, allowRoot=True)
        return name if path == "/" else name + "/"

    @asynchronousErrors
    def list(self, path: str) -> Deferred[builtins.list[str]]:
        prefix = self._directoryPrefix(path)
        base = "" if path == "/" else path

        async def list_() -> builtins.list[str]:
            objects, prefixes = await self._listing(prefix, "/")
            names = {name[len(prefix):] for name, _, _ in objects}
            names.update(p[len(prefix):].rstrip("/") for p in prefixes)
            listed = [name for name in names if name and not isPrivate(name)]
            if not listed and path != "/":
                raise PathNotFoundError(path)
            return sorted(f"{base}/{name}" for name in listed)

        return Deferred.fromCoroutine(list_())

    @asynchronousErrors
    def walk(self, path: str) -> Deferred[builtins.list[FileInfo]]:
        prefix = self._directoryPrefix(path)
        base = "" if path == "/" else path

        async def walk_() -> builtins.list[FileInfo]:
            objects, _ = await self._listing(prefix, None)
            if not objects and path != "/":
                raise PathNotFoundError(path)
            return tree(base, [(name[len(prefix):], size, when) for name, size, when in objects])

        return Deferred.fromCoroutine(walk_())
