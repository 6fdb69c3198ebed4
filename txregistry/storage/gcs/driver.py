# -*- test-case-name: tests.storage.test_gcs -*-
"""
L{GCSDriver}: registry content as objects in a Google Cloud Storage
bucket.

A path C{/a/b} is the object C{<rootdirectory>/a/b}; directories are name
prefixes.  As in the S3 driver, the L{IStorageDriver} promises an object
store cannot keep by itself are kept here: a value is never stored below
another value or at a directory's path (L{checkPlace}); a move is a
server-side C{rewrite} (conditional on the source's generation) and only
then a delete; writers are L{txregistry.storage.gcs.writer}'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import implementer

from txregistry.storage.blocking import BlockingPool
from txregistry.storage.errors import (
    InvalidOffsetError,
    PathNotFoundError,
    StorageError,
    asynchronousErrors,
)
from txregistry.storage.gcs.client import GCSClient, GCSError
from txregistry.storage.gcs.parameters import GCSParameters
from txregistry.storage.gcs.writer import GCSWriter
from txregistry.storage.interfaces import (
    FileInfo,
    IStartChecked,
    IStorageDriver,
    IStorageReader,
    IStorageWriter,
)
from txregistry.storage.remote import KeyedListing, KeyLocks, checkPlace, gather, isPrivate
from txregistry.storage.streamed import StreamedReader

__all__ = ["GCSDriver"]

_OCTETS = {"Content-Type": "application/octet-stream"}


def _when(text: str | None) -> float:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


@implementer(IStorageDriver, IStartChecked)
class GCSDriver(KeyedListing):
    """
    Stores each path as an object in C{parameters.bucket}.
    """

    name = "gcs"

    def __init__(self, parameters: GCSParameters, reactor: Any) -> None:
        self.parameters = parameters
        self.reactor = reactor
        self._pool = BlockingPool(reactor, "txregistry-gcs", 2)
        self.client = GCSClient(parameters, reactor, self._pool)
        self.locks = KeyLocks()

    # Names

    def stagingName(self, name: str, nonce: str) -> str:
        """
        An appending writer's private object, beside C{name}: no valid
        path's, and deleting the directory deletes it.
        """
        head, _, _ = name.rpartition("/")
        return f"{head}/.staging-{nonce}" if head else f".staging-{nonce}"

    # Object operations the writer and the driver share

    async def metadata(self, name: str) -> dict[str, Any] | None:
        """
        The object resource of C{name}, or L{None}.
        """
        response = await self.client.request(
            "GET", self.client.objectURL(name), expect=(200, 404)
        )
        body = await response.content()
        if response.code == 404:
            return None
        import json

        return dict(json.loads(body))

    async def simpleUpload(self, name: str, body: bytes) -> None:
        """
        Store C{body} at C{name} in one request (an empty value as a
        resumable upload of nothing, which every GCS emulator takes).
        """
        if not body:
            await self.uploadChunk(await self.startUpload(name), 0, b"", 0)
            return
        await self.client.json(
            "POST", self.client.uploadURL, query=[("uploadType", "media"), ("name", name)],
            body=body, headers=_OCTETS, what=f"upload {name}",
        )

    async def startUpload(self, name: str) -> str:
        """
        Begin a resumable upload to C{name}.

        @return: its session URL.
        """
        response = await self.client.request(
            "POST", self.client.uploadURL, query=[("uploadType", "resumable"), ("name", name)],
            headers={"X-Upload-Content-Type": "application/octet-stream",
                     "Content-Type": "application/json"},
            body=b"{}", what=f"start upload {name}",
        )
        await response.content()
        location = response.headers.getRawHeaders("location", [None])[0]
        if not location:
            raise StorageError(f"GCS start upload {name}: no session URL in the answer")
        return str(location)

    async def uploadChunk(
        self, session: str, start: int, data: bytes, total: int | None
    ) -> None:
        """
        Send bytes C{start}.. of a resumable upload; with C{total}, the last
        ones, which finalize it.
        """
        if data:
            span = f"bytes {start}-{start + len(data) - 1}/{total if total is not None else '*'}"
        else:
            span = f"bytes */{total}"
        await self.client.json(
            "PUT", session, headers={"Content-Range": span}, body=data,
            expect=(200, 201) if total is not None else (308,), what="upload chunk",
        )

    async def cancelUpload(self, session: str) -> None:
        try:
            response = await self.client.request(
                "DELETE", session, expect=(499, 204, 200, 404, 410, 400), what="cancel upload"
            )
            await response.content()
        except GCSError:
            pass  # an emulator that cannot: GCS drops sessions after a week

    async def compose(self, name: str, sources: Sequence[str], generation: str) -> Any:
        document = {
            "sourceObjects": [{"name": s} for s in sources],
            "destination": {"contentType": "application/octet-stream"},
        }
        import json

        return await self.client.json(
            "POST", self.client.objectURL(name, "/compose"),
            query=[("ifGenerationMatch", str(generation))],
            headers={"Content-Type": "application/json"}, body=json.dumps(document).encode(),
            what=f"compose {name}",
        )

    async def rewrite(self, source: str, destination: str, generation: str) -> None:
        """
        Copy C{source} onto C{destination} server-side, as many rewrite
        calls as GCS takes.
        """
        from urllib.parse import quote

        url = self.client.objectURL(
            source, f"/rewriteTo/b/{quote(self.parameters.bucket, safe='')}/o/"
            f"{quote(destination, safe='')}"
        )
        token = ""
        while True:
            query = [("ifSourceGenerationMatch", str(generation))]
            if token:
                query.append(("rewriteToken", token))
            answer = await self.client.json(
                "POST", url, query=query, what=f"rewrite {source} to {destination}"
            )
            if answer.get("done", True):
                return
            token = str(answer.get("rewriteToken", ""))

    async def deleteObject(self, name: str, missingOK: bool = False) -> bool:
        response = await self.client.request(
            "DELETE", self.client.objectURL(name), expect=(200, 204, 404),
            what=f"delete {name}",
        )
        await response.content()
        if response.code == 404 and not missingOK:
            raise PathNotFoundError("/" + name[len(self.parameters.prefix):])
        return bool(response.code != 404)

    async def _listing(
        self, prefix: str, delimiter: str | None, limit: int | None = None,
        private: bool = False,
    ) -> tuple[list[tuple[str, int, float]], list[str]]:
        """
        Every object (name, size, time) and name prefix below C{prefix},
        page by page; the driver's private objects left out unless asked
        for.
        """
        objects: list[tuple[str, int, float]] = []
        prefixes: list[str] = []
        token = ""
        while True:
            query = [("prefix", prefix)]
            if delimiter:
                query.append(("delimiter", delimiter))
            if token:
                query.append(("pageToken", token))
            if limit:
                query.append(("maxResults", str(limit)))
            answer = await self.client.json("GET", self.client.objectsURL, query=query)
            for item in answer.get("items") or []:
                name = str(item["name"])
                if not private and isPrivate(name[len(prefix):]):
                    continue
                objects.append((name, int(item.get("size", 0)), _when(item.get("updated"))))
            for name in answer.get("prefixes") or []:
                if private or not isPrivate(name[len(prefix):].rstrip("/")):
                    prefixes.append(name)
            token = str(answer.get("nextPageToken") or "")
            if not token or (limit and (objects or prefixes)):
                return objects, prefixes

    async def _isDirectory(self, path: str) -> bool:
        objects, prefixes = await self._listing(self._directoryPrefix(path), "/", limit=5)
        return bool(objects or prefixes)

    async def _isValue(self, path: str) -> bool:
        return await self.metadata(self._objectName(path)) is not None

    async def checkPlace(self, path: str) -> None:
        await checkPlace(path, self._isDirectory, self._isValue)

    # Whole values

    @asynchronousErrors
    def getContent(self, path: str) -> Deferred[bytes]:
        name = self._objectName(path)

        async def get() -> bytes:
            response = await self.client.request(
                "GET", self.client.objectURL(name), query=[("alt", "media")], expect=(200, 404)
            )
            body: bytes = await response.content()
            if response.code == 404:
                raise PathNotFoundError(path)
            return body

        return Deferred.fromCoroutine(get())

    @asynchronousErrors
    def putContent(self, path: str, content: bytes) -> Deferred[None]:
        name = self._objectName(path)
        body = bytes(content)

        async def put() -> None:
            await self.checkPlace(path)
            await self.simpleUpload(name, body)

        return Deferred.fromCoroutine(put())

    # Streams

    @asynchronousErrors
    def reader(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> Deferred[IStorageReader]:
        name = self._objectName(path)

        async def open_() -> IStorageReader:
            found = await self.metadata(name)
            if found is None:
                raise PathNotFoundError(path)
            size, generation = int(found["size"]), str(found["generation"])
            count = size - offset if length is None else length
            if offset < 0 or count < 0 or offset + count > size:
                raise InvalidOffsetError(path, offset)

            async def get(first: int, last: int) -> Any:
                return await self.client.request(
                    "GET", self.client.objectURL(name),
                    query=[("alt", "media"), ("ifGenerationMatch", generation)],
                    headers={"Range": f"bytes={first}-{last}"}, expect=(200, 206),
                    what=f"GET {path}",
                )

            return StreamedReader("GCS", get, path, offset, count)  # type: ignore[return-value]

        return Deferred.fromCoroutine(open_())

    @asynchronousErrors
    def writer(self, path: str, append: bool = False) -> Deferred[IStorageWriter]:
        name = self._objectName(path)

        async def open_() -> IStorageWriter:
            size = 0
            if append:
                found = await self.metadata(name)
                if found is None:
                    raise PathNotFoundError(path)
                size = int(found["size"])
            return GCSWriter(self, path, name, append, size)

        return Deferred.fromCoroutine(open_())

    # Metadata

    @asynchronousErrors
    def stat(self, path: str) -> Deferred[FileInfo]:
        name = self._objectName(path, allowRoot=True)

        async def stat_() -> FileInfo:
            if path == "/":
                return FileInfo(path, 0, time.time(), True)
            found = await self.metadata(name)
            if found is not None:
                return FileInfo(path, int(found["size"]), _when(found.get("updated")), False)
            if await self._isDirectory(path):
                return FileInfo(path, 0, time.time(), True)
            raise PathNotFoundError(path)

        return Deferred.fromCoroutine(stat_())

    @asynchronousErrors
    def move(self, source: str, destination: str) -> Deferred[None]:
        sourceName = self._objectName(source)
        destinationName = self._objectName(destination)

        async def move_() -> None:
            found = await self.metadata(sourceName)
            if found is None:
                raise PathNotFoundError(source)
            if source == destination:
                return
            await self.checkPlace(destination)
            try:
                await self.rewrite(sourceName, destinationName, str(found["generation"]))
            except GCSError as e:
                if e.status in (404, 412):
                    raise PathNotFoundError(source) from None
                raise
            await self.deleteObject(sourceName, missingOK=True)

        return Deferred.fromCoroutine(move_())

    @asynchronousErrors
    def delete(self, path: str) -> Deferred[None]:
        name = self._objectName(path)

        async def delete_() -> None:
            if await self.deleteObject(name, missingOK=True):
                return
            objects, _ = await self._listing(name + "/", None, private=True)
            if not [n for n, _, _ in objects if not isPrivate(n[len(name) + 1:])]:
                raise PathNotFoundError(path)
            names = [n for n, _, _ in objects]
            for start in range(0, len(names), 64):
                await gather(
                    [self.deleteObject(n, missingOK=True) for n in names[start:start + 64]]
                )

        return Deferred.fromCoroutine(delete_())

    @asynchronousErrors
    def urlFor(
        self, path: str, method: str = "GET", expiry: float = 1200.0
    ) -> Deferred[str | None]:
        self._objectName(path)
        return Deferred.fromCoroutine(self._noURL())

    async def _noURL(self) -> str | None:
        return None

    # Life

    def checkStart(self) -> None:
        """
        Check that the credentials work and the bucket is there, blocking:
        meant for the start, before the reactor runs.

        @raise StorageError: saying what is wrong, in one line.
        """
        from txregistry.storage.gcs.startcheck import checkBucket

        checkBucket(self.client)

    def close(self) -> Deferred[None]:
        d = self.client.close()
        d.addBoth(lambda _: self._pool.close())
        return d
