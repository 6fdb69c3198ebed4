# -*- test-case-name: tests.storage.test_azure -*-
"""
L{AzureDriver}: registry content as block blobs in an Azure Blob Storage
container.

A path C{/a/b} is the blob C{<rootdirectory>/a/b}; directories are name
prefixes.  As in the S3 driver, the L{IStorageDriver} promises a blob
store cannot keep by itself are kept here: a value is never stored below
another value or at a directory's path (L{checkPlace}); a move is a
server-side C{Copy Blob} (waited for, conditional on the source's ETag)
and only then a delete; writers are L{txregistry.storage.azure.writer}'s.
"""

from __future__ import annotations

import builtins
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from xml.sax.saxutils import escape

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall, deferLater
from zope.interface import implementer

from txregistry.storage.azure.client import AzureClient, AzureError, blobSAS, elementText
from txregistry.storage.azure.parameters import AzureParameters
from txregistry.storage.azure.writer import AzureWriter, blockID
from txregistry.storage.errors import (
    InvalidOffsetError,
    PathNotFoundError,
    StorageError,
    StorageUnavailableError,
    asynchronousErrors,
)
from txregistry.storage.interfaces import (
    FileInfo,
    IStartChecked,
    IStorageDriver,
    IStorageReader,
    IStorageWriter,
)
from txregistry.storage.remote import KeyedListing, checkPlace, gather, isPrivate
from txregistry.storage.streamed import StreamedReader

__all__ = ["AzureDriver", "LEASE_SECONDS", "Lease"]

#: How long an appending writer's lease lasts unless renewed (Azure allows
#: 15 to 60): how long a dead writer holds up the next append.
LEASE_SECONDS = 15
#: Seconds an appender waits for another's lease before it gives up.
LEASE_WAIT = 4 * LEASE_SECONDS


def _when(text: str | None) -> float:
    try:
        return parsedate_to_datetime(text).timestamp() if text else time.time()
    except (TypeError, ValueError):
        return time.time()


def _header(response: Any, name: str, default: str = "") -> str:
    return str(response.headers.getRawHeaders(name, [default])[0])


class Lease:
    """
    An exclusive lease on a blob, renewed until released.
    """

    def __init__(self, driver: AzureDriver, blob: str, leaseID: str) -> None:
        self._driver = driver
        self._blob = blob
        self.id = leaseID
        self._renewal = LoopingCall(self._renew)
        self._renewal.clock = driver.reactor
        self._renewal.start(LEASE_SECONDS / 3, now=False).addErrback(lambda _: None)

    def _renew(self) -> Deferred[Any]:
        d = Deferred.fromCoroutine(self._driver.leaseAction(self._blob, "renew", self.id))
        return d.addErrback(lambda _: None)  # a lost lease fails the commit instead

    async def release(self) -> None:
        if self._renewal.running:
            self._renewal.stop()
        await self._driver.leaseAction(self._blob, "release", self.id)


@implementer(IStorageDriver, IStartChecked)
class AzureDriver(KeyedListing):
    """
    Stores each path as a block blob in C{parameters.container}.
    """

    name = "azure"

    def __init__(self, parameters: AzureParameters, reactor: Any) -> None:
        self.parameters = parameters
        self.reactor = reactor
        self.client = AzureClient(parameters, reactor)

    # Names

    def stagingBlob(self, blob: str, nonce: str) -> str:
        """
        A replacing writer's private blob, beside C{blob}: its name is no
        valid path's, and deleting the directory deletes it.
        """
        head, _, _ = blob.rpartition("/")
        return f"{head}/.staging-{nonce}" if head else f".staging-{nonce}"

    # Blob operations the writer and the driver share

    async def head(self, blob: str) -> tuple[int, str, float] | None:
        """
        The size, ETag and time of C{blob}, or L{None}.
        """
        response = await self.client.request("HEAD", blob, expect=(200, 404))
        await response.content()
        if response.code == 404:
            return None
        return (
            int(_header(response, "content-length", "0")),
            _header(response, "etag"),
            _when(_header(response, "last-modified") or None),
        )

    async def putBlob(self, blob: str, body: bytes) -> None:
        await self.client.call(
            "PUT", blob, body=body, expect=(201,),
            headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"},
        )

    async def putBlock(
        self, blob: str, block: str, data: bytes, lease: str | None = None
    ) -> None:
        headers = {"x-ms-lease-id": lease} if lease else {}
        await self.client.call(
            "PUT", blob, query=[("comp", "block"), ("blockid", block)], body=data,
            headers=headers, expect=(201,), what=f"Put Block {blob}",
        )

    async def putBlockList(
        self, blob: str, blocks: Sequence[str], lease: str | None = None
    ) -> None:
        """
        Make C{blocks} (committed or staged) the content of C{blob}.
        """
        items = "".join(f"<Latest>{escape(b)}</Latest>" for b in blocks)
        document = f'<?xml version="1.0" encoding="utf-8"?><BlockList>{items}</BlockList>'
        headers = {"Content-Type": "application/xml",
                   "x-ms-blob-content-type": "application/octet-stream"}
        if lease:
            headers["x-ms-lease-id"] = lease
        await self.client.call(
            "PUT", blob, query=[("comp", "blocklist")], body=document.encode(),
            headers=headers, expect=(201,), what=f"Put Block List {blob}",
        )

    async def blockList(self, blob: str, lease: str) -> tuple[list[tuple[str, int]], int]:
        """
        The committed blocks of C{blob} (ID, size) and its size.
        """
        response = await self.client.request(
            "GET", blob, query=[("comp", "blocklist"), ("blocklisttype", "committed")],
            headers={"x-ms-lease-id": lease}, expect=(200, 404), what=f"Get Block List {blob}",
        )
        body = await response.content()
        if response.code == 404:
            raise PathNotFoundError("/" + blob[len(self.parameters.prefix):])
        root = ElementTree.fromstring(body)
        blocks = [
            (elementText(b, "Name"), int(elementText(b, "Size", "0")))
            for b in root.findall("CommittedBlocks/Block")
        ]
        size = _header(response, "x-ms-blob-content-length")
        if not size:
            found = await self.head(blob)
            size = str(found[0] if found else 0)
        return blocks, int(size)

    async def restage(self, blob: str, size: int, lease: str) -> list[tuple[str, int]]:
        """
        Stage the current bytes of C{blob} again as blocks of our own, a
        block at a time: for a value whose block list does not make it up.
        """
        nonce = uuid.uuid4().hex
        chunk = self.parameters.chunkSize
        blocks = []
        for number, start in enumerate(range(0, size, chunk)):
            end = min(size, start + chunk) - 1
            data = await self.client.call(
                "GET", blob, headers={"Range": f"bytes={start}-{end}", "x-ms-lease-id": lease},
                expect=(206, 200),
            )
            block = blockID(nonce, number)
            await self.putBlock(blob, block, data, lease)
            blocks.append((block, len(data)))
        return blocks

    async def leaseAction(self, blob: str, action: str, lease: str) -> None:
        response = await self.client.request(
            "PUT", blob, query=[("comp", "lease")],
            headers={"x-ms-lease-action": action, "x-ms-lease-id": lease},
            expect=(200, 404, 409), what=f"lease {action} {blob}",
        )
        await response.content()
        if response.code == 404:
            raise PathNotFoundError("/" + blob[len(self.parameters.prefix):])

    async def acquireLease(self, blob: str, path: str) -> Lease:
        """
        An exclusive lease on C{blob}, waiting up to L{LEASE_WAIT} seconds
        for another holder's to end.

        @raise PathNotFoundError: when the blob is not there.
        @raise StorageUnavailableError: when the lease stays taken.
        """
        proposed = str(uuid.uuid4())
        deadline = self.reactor.seconds() + LEASE_WAIT
        delay = 0.05
        while True:
            response = await self.client.request(
                "PUT", blob, query=[("comp", "lease")],
                headers={"x-ms-lease-action": "acquire",
                         "x-ms-lease-duration": str(LEASE_SECONDS),
                         "x-ms-proposed-lease-id": proposed},
                expect=(201, 404, 409), what=f"lease {blob}",
            )
            await response.content()
            if response.code == 201:
                return Lease(self, blob, _header(response, "x-ms-lease-id", proposed))
            if response.code == 404:
                raise PathNotFoundError(path)
            if self.reactor.seconds() > deadline:
                raise StorageUnavailableError(f"{path}: another writer holds it")
            await deferLater(self.reactor, delay, lambda: None)
            delay = min(1.0, delay * 2)

    async def copyBlob(self, source: str, destination: str, etag: str | None = None) -> None:
        """
        Copy C{source} onto C{destination} server-side, and wait for the
        copy to be done (C{max_retries} polls, C{retry_delay} apart times
        the poll's number).
        """
        headers = {"x-ms-copy-source": self.client.url(source)}
        if etag:
            headers["x-ms-source-if-match"] = etag
        response = await self.client.request(
            "PUT", destination, headers=headers, expect=(202, 201),
            what=f"Copy Blob {source} to {destination}",
        )
        await response.content()
        status = _header(response, "x-ms-copy-status", "success")
        polls = 0
        while status == "pending":
            polls += 1
            if self.parameters.maxRetries >= 0 and polls > self.parameters.maxRetries:
                raise StorageUnavailableError(f"Copy Blob {source} to {destination}: still pending")
            await deferLater(self.reactor, self.parameters.retryDelay * polls, lambda: None)
            response = await self.client.request("HEAD", destination)
            await response.content()
            status = _header(response, "x-ms-copy-status", "success")
        if status != "success":
            raise StorageError(f"Copy Blob {source} to {destination}: {status}")

    async def deleteBlob(self, blob: str, missingOK: bool = False) -> bool:
        """
        Delete C{blob}, breaking a lease a dead writer left on it.

        @return: whether it was there.
        """
        for _ in range(2):
            response = await self.client.request(
                "DELETE", blob, headers={"x-ms-delete-snapshots": "include"},
                expect=(202, 404, 412), what=f"Delete Blob {blob}",
            )
            await response.content()
            if response.code == 202:
                return True
            if response.code == 404:
                if missingOK:
                    return False
                raise PathNotFoundError("/" + blob[len(self.parameters.prefix):])
            response = await self.client.request(
                "PUT", blob, query=[("comp", "lease")],
                headers={"x-ms-lease-action": "break", "x-ms-lease-break-period": "0"},
                expect=(202, 404, 409),
            )
            await response.content()
        raise StorageError(f"Azure Delete Blob {blob}: leased")

    async def _isDirectory(self, path: str) -> bool:
        names, prefixes = await self._listing(self._directoryPrefix(path), "/", limit=5)
        return bool(names or prefixes)

    async def _isValue(self, path: str) -> bool:
        return await self.head(self._objectName(path)) is not None

    async def checkPlace(self, path: str) -> None:
        await checkPlace(path, self._isDirectory, self._isValue)

    async def _listing(
        self, prefix: str, delimiter: str | None, limit: int | None = None
    ) -> tuple[list[tuple[str, int, float]], list[str]]:
        """
        Every blob (name, size, time) and name prefix below C{prefix},
        page by page; the driver's private blobs left out.
        """
        blobs: list[tuple[str, int, float]] = []
        prefixes: list[str] = []
        marker = ""
        while True:
            query = [("restype", "container"), ("comp", "list"), ("prefix", prefix)]
            if delimiter:
                query.append(("delimiter", delimiter))
            if marker:
                query.append(("marker", marker))
            if limit:
                query.append(("maxresults", str(limit)))
            root = ElementTree.fromstring(await self.client.call("GET", None, query=query))
            for item in root.findall("Blobs/Blob"):
                name = elementText(item, "Name")
                if isPrivate(name[len(prefix):]):
                    continue
                blobs.append(
                    (name, int(elementText(item, "Properties/Content-Length", "0")),
                     _when(elementText(item, "Properties/Last-Modified") or None))
                )
            for item in root.findall("Blobs/BlobPrefix"):
                name = elementText(item, "Name")
                if not isPrivate(name[len(prefix):].rstrip("/")):
                    prefixes.append(name)
            marker = elementText(root, "NextMarker")
            if not marker or (limit and (blobs or prefixes)):
                return blobs, prefixes

    async def _allBlobs(self, prefix: str) -> builtins.list[str]:
        """
        Every blob below C{prefix}, the private ones included.
        """
        names: builtins.list[str] = []
        marker = ""
        while True:
            query = [("restype", "container"), ("comp", "list"), ("prefix", prefix)]
            if marker:
                query.append(("marker", marker))
            root = ElementTree.fromstring(await self.client.call("GET", None, query=query))
            names.extend(elementText(b, "Name") for b in root.findall("Blobs/Blob"))
            marker = elementText(root, "NextMarker")
            if not marker:
                return names

    # Whole values

    @asynchronousErrors
    def getContent(self, path: str) -> Deferred[bytes]:
        blob = self._objectName(path)

        async def get() -> bytes:
            response = await self.client.request("GET", blob, expect=(200, 404))
            body: bytes = await response.content()
            if response.code == 404:
                raise PathNotFoundError(path)
            return body

        return Deferred.fromCoroutine(get())

    @asynchronousErrors
    def putContent(self, path: str, content: bytes) -> Deferred[None]:
        blob = self._objectName(path)
        body = bytes(content)

        async def put() -> None:
            await self.checkPlace(path)
            await self.putBlob(blob, body)

        return Deferred.fromCoroutine(put())

    # Streams

    @asynchronousErrors
    def reader(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> Deferred[IStorageReader]:
        blob = self._objectName(path)

        async def open_() -> IStorageReader:
            info = await self.head(blob)
            if info is None:
                raise PathNotFoundError(path)
            size, etag, _ = info
            count = size - offset if length is None else length
            if offset < 0 or count < 0 or offset + count > size:
                raise InvalidOffsetError(path, offset)

            async def get(first: int, last: int) -> Any:
                return await self.client.request(
                    "GET", blob, headers={"Range": f"bytes={first}-{last}", "If-Match": etag},
                    expect=(200, 206), what=f"GET {path}",
                )

            return StreamedReader("Azure", get, path, offset, count)  # type: ignore[return-value]

        return Deferred.fromCoroutine(open_())

    @asynchronousErrors
    def writer(self, path: str, append: bool = False) -> Deferred[IStorageWriter]:
        blob = self._objectName(path)

        async def open_() -> IStorageWriter:
            size = 0
            if append:
                info = await self.head(blob)
                if info is None:
                    raise PathNotFoundError(path)
                size = info[0]
            return AzureWriter(self, path, blob, append, size)

        return Deferred.fromCoroutine(open_())

    # Metadata

    @asynchronousErrors
    def stat(self, path: str) -> Deferred[FileInfo]:
        blob = self._objectName(path, allowRoot=True)

        async def stat_() -> FileInfo:
            if path == "/":
                return FileInfo(path, 0, time.time(), True)
            info = await self.head(blob)
            if info is not None:
                return FileInfo(path, info[0], info[2], False)
            if await self._isDirectory(path):
                return FileInfo(path, 0, time.time(), True)
            raise PathNotFoundError(path)

        return Deferred.fromCoroutine(stat_())

    @asynchronousErrors
    def move(self, source: str, destination: str) -> Deferred[None]:
        sourceBlob = self._objectName(source)
        destinationBlob = self._objectName(destination)

        async def move_() -> None:
            info = await self.head(sourceBlob)
            if info is None:
                raise PathNotFoundError(source)
            if source == destination:
                return
            await self.checkPlace(destination)
            try:
                await self.copyBlob(sourceBlob, destinationBlob, info[1])
            except AzureError as e:
                if e.status in (404, 412):
                    raise PathNotFoundError(source) from None
                raise
            await self.deleteBlob(sourceBlob, missingOK=True)

        return Deferred.fromCoroutine(move_())

    @asynchronousErrors
    def delete(self, path: str) -> Deferred[None]:
        blob = self._objectName(path)

        async def delete_() -> None:
            if await self.deleteBlob(blob, missingOK=True):
                return
            names = await self._allBlobs(blob + "/")
            if not [n for n in names if not isPrivate(n[len(blob) + 1:])]:
                raise PathNotFoundError(path)
            for start in range(0, len(names), 64):
                await gather([self.deleteBlob(n, missingOK=True) for n in names[start:start + 64]])

        return Deferred.fromCoroutine(delete_())

    @asynchronousErrors
    def urlFor(
        self, path: str, method: str = "GET", expiry: float = 1200.0
    ) -> Deferred[str | None]:
        blob = self._objectName(path)
        if method not in ("GET", "HEAD"):
            return succeed(None)
        p = self.parameters
        until = datetime.fromtimestamp(time.time() + expiry, UTC)
        query = blobSAS(
            p.accountName, p.key, p.container, blob, "r", until.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        return succeed(f"{self.client.url(blob)}?{query}")

    # Life

    def checkStart(self) -> None:
        """
        Check that the container is there and the key opens it, blocking:
        meant for the start, before the reactor runs.

        @raise StorageError: saying what is wrong, in one line.
        """
        from txregistry.storage.azure.startcheck import checkContainer

        checkContainer(self.client)

    def close(self) -> Deferred[None]:
        return self.client.close()
