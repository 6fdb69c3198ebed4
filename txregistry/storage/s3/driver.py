# -*- test-case-name: tests.storage.test_s3 -*-
"""
L{S3Driver}: registry content as objects in an S3 bucket.

A path C{/a/b} is the key C{<rootdirectory>/a/b}; directories are key
prefixes, as S3 has no others.  The L{IStorageDriver} promises an object
store cannot keep by itself are kept here: a value is never stored below
another value or at a directory's path (the ancestors and the prefix are
checked, concurrently, before the value appears); a move is a server-side
copy (a multipart copy above C{multipartcopythresholdsize}) and only then
a delete; an appended value stays open across appends, one multipart
upload whose state is in the bucket, as L{txregistry.storage.s3.openvalue}
says, and is sealed (completed) when it is read or moved.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from xml.sax.saxutils import escape

from twisted.internet.defer import (
    Deferred,
    DeferredLock,
    DeferredSemaphore,
    FirstError,
    gatherResults,
)
from zope.interface import implementer

from txregistry.storage.blocking import BlockingPool
from txregistry.storage.errors import (
    InvalidOffsetError,
    PathNotFoundError,
    StorageError,
    asynchronousErrors,
)
from txregistry.storage.interfaces import (
    FileInfo,
    IBucketKeyed,
    IStartChecked,
    IStorageDriver,
    IStorageReader,
    IStorageWriter,
)
from txregistry.storage.remote import KeyedListing
from txregistry.storage.s3.claims import StreamingClaims
from txregistry.storage.s3.client import S3Client, S3Error, elementText, parseXML
from txregistry.storage.s3.openvalue import (
    STAGING,
    Opened,
    OpenValue,
    metadataOf,
    openForAppend,
    seal,
    stateOf,
)
from txregistry.storage.s3.parameters import S3Parameters
from txregistry.storage.s3.reader import S3Reader
from txregistry.storage.s3.writer import S3Writer, splitRanges

__all__ = ["ObjectInfo", "Opened", "S3Driver"]

T = TypeVar("T")

#: Keys per C{DeleteObjects} request (S3's limit).
DELETE_BATCH = 1000
#: S3's limit on the parts of one upload.
MAX_PARTS = 10_000


@dataclass(frozen=True)
class ObjectInfo:
    """
    What a C{HEAD} tells of an object.
    """

    size: int
    etag: str
    modified: float
    #: The object's C{x-amz-meta-txregistry-*} headers (an open value's
    #: state), lowercased.
    metadata: Mapping[str, str] = field(default_factory=dict)


def _timestamp(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


@implementer(IStorageDriver, IStartChecked, IBucketKeyed)
class S3Driver(KeyedListing):
    """
    Stores each path as an object in C{parameters.bucket}.
    """

    name = "s3"

    def __init__(self, parameters: S3Parameters, reactor: Any) -> None:
        self.parameters = parameters
        self._pool = BlockingPool(reactor, "txregistry-s3", 4)
        self.client = S3Client(parameters, reactor, self._pool)
        self._appendLocks: dict[str, DeferredLock] = {}
        self.claims = StreamingClaims()
        self._copySlots = DeferredSemaphore(parameters.copyConcurrency)

    # Keys

    def bucketKey(self, path: str) -> str:
        """
        The object key C{path} is stored at (what a CDN in front of the
        bucket serves it as: the C{cloudfront} storage middleware).
        """
        return self._objectName(path)

    def _path(self, key: str) -> str:
        return "/" + key[len(self.parameters.prefix):]

    # S3 operations the writer and the driver share

    def _objectHeaders(self) -> dict[str, str]:
        p = self.parameters
        headers = {"Content-Type": "application/octet-stream", "x-amz-acl": p.objectACL}
        if p.storageClass != "NONE":
            headers["x-amz-storage-class"] = p.storageClass
        if p.encrypt:
            if p.keyID:
                headers["x-amz-server-side-encryption"] = "aws:kms"
                headers["x-amz-server-side-encryption-aws-kms-key-id"] = p.keyID
            else:
                headers["x-amz-server-side-encryption"] = "AES256"
        return headers

    async def head(self, key: str) -> ObjectInfo | None:
        """
        The object at C{key}, or L{None}.
        """
        response = await self.client.request("HEAD", key, expect=(200, 404))
        await response.content()
        if response.code == 404:
            return None
        headers = response.headers
        size = int(headers.getRawHeaders("content-length", ["0"])[0])
        etag = headers.getRawHeaders("etag", [""])[0]
        modified = headers.getRawHeaders("last-modified", [None])[0]
        try:
            when = parsedate_to_datetime(modified).timestamp() if modified else time.time()
        except (TypeError, ValueError):
            when = time.time()
        return ObjectInfo(size, etag, when, metadataOf(headers))

    async def getBytes(
        self, key: str, ifMatch: str | None = None, span: tuple[int, int] | None = None
    ) -> bytes:
        """
        The whole (small) object at C{key}, or the inclusive byte range
        C{span} of it.

        @raise S3Error: 404 when absent, 412 when its ETag is not C{ifMatch}.
        """
        headers = {"If-Match": ifMatch} if ifMatch else {}
        expect: tuple[int, ...] = (200,)
        if span is not None:
            headers["Range"] = f"bytes={span[0]}-{span[1]}"
            expect = (206, 200)
        return await self.client.call("GET", key, headers=headers, expect=expect)

    async def putObject(
        self, key: str, body: bytes, ifMatch: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        headers = self._objectHeaders()
        headers.update(metadata or {})
        if ifMatch:
            headers["If-Match"] = ifMatch
        headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
        await self.client.call("PUT", key, headers=headers, body=body)

    def createUpload(self, key: str) -> Deferred[str]:
        async def create() -> str:
            body = await self.client.call(
                "POST", key, query=[("uploads", "")], headers=self._objectHeaders()
            )
            return elementText(parseXML(body), "UploadId")

        return Deferred.fromCoroutine(create())

    def uploadPart(self, key: str, uploadID: str, number: int, data: bytes) -> Deferred[str]:
        async def upload() -> str:
            response = await self.client.request(
                "PUT",
                key,
                query=[("partNumber", str(number)), ("uploadId", uploadID)],
                body=data,
                what=f"UploadPart {key} #{number}",
            )
            await response.content()
            return str(response.headers.getRawHeaders("etag", [""])[0])

        return Deferred.fromCoroutine(upload())

    async def copyPart(
        self, key: str, uploadID: str, number: int, source: str, start: int, end: int,
        ifMatch: str | None = None,
    ) -> str:
        headers = {
            "x-amz-copy-source": f"/{self.parameters.bucket}/{source}",
            "x-amz-copy-source-range": f"bytes={start}-{end}",
        }
        if ifMatch:
            headers["x-amz-copy-source-if-match"] = ifMatch

        async def copy() -> str:
            body = await self.client.call(
                "PUT", key, query=[("partNumber", str(number)), ("uploadId", uploadID)],
                headers=headers, what=f"UploadPartCopy {source} to {key} #{number}",
            )
            return elementText(parseXML(body), "ETag")

        return await self._copySlots.run(lambda: Deferred.fromCoroutine(copy()))

    async def completeUpload(
        self, key: str, uploadID: str, parts: dict[int, str], ifMatch: str | None = None
    ) -> None:
        body = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{escape(parts[n])}</ETag></Part>"
            for n in sorted(parts)
        )
        document = f"<CompleteMultipartUpload>{body}</CompleteMultipartUpload>".encode()
        headers = {"Content-Type": "application/xml"}
        if ifMatch:
            headers["If-Match"] = ifMatch
        await self.client.call(
            "POST", key, query=[("uploadId", uploadID)], headers=headers, body=document,
            what=f"CompleteMultipartUpload {key}",
        )

    async def abortUpload(self, key: str, uploadID: str) -> None:
        response = await self.client.request(
            "DELETE", key, query=[("uploadId", uploadID)], expect=(204, 200, 404)
        )
        await response.content()

    def openForAppend(self, path: str, key: str) -> Deferred[Opened]:
        return Deferred.fromCoroutine(openForAppend(self, path, key))

    async def _sealed(self, path: str, key: str) -> ObjectInfo | None:
        """
        The object at C{key} after sealing it if it is an open value (see
        L{seal}); L{None} when absent.
        """
        info = await self.head(key)
        if info is None or not info.metadata:
            return info
        return await seal(self, path, key, info)

    async def deleteKey(self, key: str) -> None:
        await self._deleteKeys([key])

    async def appendLock(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """
        Run C{work} while no other append to C{key} in this process commits.
        """
        lock = self._appendLocks.setdefault(key, DeferredLock())
        await lock.acquire()
        try:
            return await work()
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._appendLocks.pop(key, None)

    async def gather(self, work: Sequence[Coroutine[Any, Any, T] | Deferred[T]]) -> list[T]:
        """
        Run C{work} at once; the results in order, or the first failure.
        """
        ds = [w if isinstance(w, Deferred) else Deferred.fromCoroutine(w) for w in work]
        try:
            return await gatherResults(ds, consumeErrors=True)
        except FirstError as e:
            e.subFailure.raiseException()
            raise

    async def _isDirectory(self, path: str) -> bool:
        body = await self.client.call(
            "GET", None,
            query=[("list-type", "2"), ("max-keys", "1"), ("prefix", self._directoryPrefix(path))],
        )
        root = parseXML(body)
        return root.find("Contents") is not None or root.find("CommonPrefixes") is not None

    async def checkPlace(self, path: str) -> None:
        """
        Refuse to store a value at C{path} when it is a directory, or below
        a value.

        @raise StorageError: naming what is in the way.
        """
        parts = path[1:].split("/")
        ancestors = ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
        found = await self.gather(
            [self._isDirectory(path)] + [self.head(self._objectName(a)) for a in ancestors]
        )
        if found[0]:
            raise StorageError(f"cannot store a value at {path}: it is a directory")
        for ancestor, info in zip(ancestors, found[1:], strict=True):
            if info is not None:
                raise StorageError(f"cannot store a value at {path}: {ancestor} is a value")

    async def _listing(
        self, prefix: str, delimiter: str | None
    ) -> tuple[list[tuple[str, int, float]], list[str]]:
        """
        Every object (key, size, time) and common prefix below C{prefix},
        page by page.
        """
        objects: list[tuple[str, int, float]] = []
        prefixes: list[str] = []
        token: str | None = None
        staging = self.parameters.prefix + STAGING
        while True:
            query = [("list-type", "2"), ("prefix", prefix)]
            if delimiter:
                query.append(("delimiter", delimiter))
            if token:
                query.append(("continuation-token", token))
            root = parseXML(await self.client.call("GET", None, query=query))
            for item in root.findall("Contents"):
                key = elementText(item, "Key")
                if key.endswith("/") or key.startswith(staging):
                    continue  # a "directory" marker some stores keep
                objects.append(
                    (key, int(elementText(item, "Size", "0")),
                     _timestamp(elementText(item, "LastModified")))
                )
            for item in root.findall("CommonPrefixes"):
                if not elementText(item, "Prefix").startswith(staging):
                    prefixes.append(elementText(item, "Prefix"))
            token = elementText(root, "NextContinuationToken") or None
            if elementText(root, "IsTruncated") != "true" or not token:
                return objects, prefixes

    # Whole values

    @asynchronousErrors
    def getContent(self, path: str) -> Deferred[bytes]:
        key = self._objectName(path)

        async def get() -> bytes:
            response = await self.client.request("GET", key, expect=(200, 404))
            body: bytes = await response.content()
            if response.code == 404:
                raise PathNotFoundError(path)
            metadata = metadataOf(response.headers)
            if not metadata:
                return body
            state = OpenValue.fromMetadata(metadata) if metadata else None
            if state is not None and state.parts == 0:
                return body[: state.tailSize]  # an open value's nonce after
            # An open value with parts: they are not in the object yet.
            if await self._sealed(path, key) is None:
                raise PathNotFoundError(path)
            return await self.getBytes(key)

        return Deferred.fromCoroutine(get())

    @asynchronousErrors
    def putContent(self, path: str, content: bytes) -> Deferred[None]:
        key = self._objectName(path)
        body = bytes(content)

        async def put() -> None:
            await self.checkPlace(path)
            await self.putObject(key, body)

        return Deferred.fromCoroutine(put())

    # Streams

    @asynchronousErrors
    def reader(
        self, path: str, offset: int = 0, length: int | None = None
    ) -> Deferred[IStorageReader]:
        key = self._objectName(path)

        async def open_() -> IStorageReader:
            info = await self._sealed(path, key)
            if info is None:
                raise PathNotFoundError(path)
            count = info.size - offset if length is None else length
            if offset < 0 or count < 0 or offset + count > info.size:
                raise InvalidOffsetError(path, offset)
            return S3Reader(self.client, path, key, info.etag, offset, count)

        return Deferred.fromCoroutine(open_())

    @asynchronousErrors
    def writer(self, path: str, append: bool = False) -> Deferred[IStorageWriter]:
        key = self._objectName(path)

        async def open_() -> IStorageWriter:
            if append:
                return S3Writer(self, path, key, await self.openForAppend(path, key))
            return S3Writer(self, path, key)

        return Deferred.fromCoroutine(open_())

    # Metadata

    @asynchronousErrors
    def stat(self, path: str) -> Deferred[FileInfo]:
        key = self._objectName(path, allowRoot=True)

        async def stat_() -> FileInfo:
            if path == "/":
                return FileInfo(path, 0, time.time(), True)
            info = await self.head(key)
            if info is not None:
                state = stateOf(path, info)
                size = info.size if state is None else state.size
                return FileInfo(path, size, info.modified, False)
            if await self._isDirectory(path):
                return FileInfo(path, 0, time.time(), True)
            raise PathNotFoundError(path)

        return Deferred.fromCoroutine(stat_())

    @asynchronousErrors
    def move(self, source: str, destination: str) -> Deferred[None]:
        sourceKey = self._objectName(source)
        destinationKey = self._objectName(destination)

        async def move_() -> None:
            info = await self._sealed(source, sourceKey)
            if info is None:
                raise PathNotFoundError(source)
            if source == destination:
                return
            await self.checkPlace(destination)
            if info.size <= self.parameters.copyThreshold:
                headers = self._objectHeaders()
                headers["x-amz-copy-source"] = f"/{self.parameters.bucket}/{sourceKey}"
                headers["x-amz-copy-source-if-match"] = info.etag
                headers["x-amz-metadata-directive"] = "REPLACE"
                await self.client.call(
                    "PUT", destinationKey, headers=headers,
                    what=f"CopyObject {source} to {destination}",
                )
            else:
                await self._multipartCopy(sourceKey, destinationKey, info)
            await self._deleteKeys([sourceKey])

        return Deferred.fromCoroutine(move_())

    async def _multipartCopy(self, source: str, destination: str, info: ObjectInfo) -> None:
        uploadID = await self.createUpload(destination)
        try:
            ranges = splitRanges(info.size, self.parameters.copyChunkSize, MAX_PARTS)
            etags = await self.gather(
                [
                    self.copyPart(destination, uploadID, n, source, start, end, info.etag)
                    for n, (start, end) in enumerate(ranges, 1)
                ]
            )
            await self.completeUpload(destination, uploadID, dict(enumerate(etags, 1)))
        except BaseException:
            await self.abortUpload(destination, uploadID)
            raise

    async def _deleteKeys(self, keys: builtins.list[str]) -> None:
        """
        Delete C{keys}, a thousand per C{DeleteObjects} request.
        """
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            objects = "".join(f"<Object><Key>{escape(k)}</Key></Object>" for k in batch)
            document = f"<Delete><Quiet>true</Quiet>{objects}</Delete>".encode()
            body = await self.client.call(
                "POST", None, query=[("delete", "")], body=document,
                headers={
                    "Content-Type": "application/xml",
                    "Content-MD5": base64.b64encode(hashlib.md5(document).digest()).decode(),
                },
                what=f"DeleteObjects ({len(batch)} keys)",
            )
            errors = parseXML(body).findall("Error")
            if errors:
                first = errors[0]
                raise StorageError(
                    f"S3 DeleteObjects: {len(errors)} keys not deleted, first "
                    f"{elementText(first, 'Key')}: {elementText(first, 'Code')}"
                )

    async def _abortUploadsBelow(self, prefix: str) -> None:
        """
        Abort the multipart uploads below C{prefix}: the staged parts of
        writers that were never committed nor cancelled (their process
        died), listed page by page.
        """
        keyMarker = uploadMarker = ""
        while True:
            query = [("uploads", ""), ("prefix", prefix)]
            if keyMarker:
                query += [("key-marker", keyMarker), ("upload-id-marker", uploadMarker)]
            try:
                root = parseXML(await self.client.call("GET", None, query=query))
            except S3Error:
                return  # a store that cannot list uploads cleans them up itself
            uploads = [
                (elementText(u, "Key"), elementText(u, "UploadId"))
                for u in root.findall("Upload")
            ]
            await self.gather([self.abortUpload(k, u) for k, u in uploads])
            if elementText(root, "IsTruncated") != "true":
                return
            keyMarker = elementText(root, "NextKeyMarker")
            uploadMarker = elementText(root, "NextUploadIdMarker")
            if not keyMarker:
                return

    @asynchronousErrors
    def delete(self, path: str) -> Deferred[None]:
        key = self._objectName(path)

        async def delete_() -> None:
            info = await self.head(key)
            if info is not None:
                await self._deleteKeys([key])
                state = stateOf(path, info) if info.metadata else None
                if state is not None and state.uploadID:
                    await self.abortUpload(key, state.uploadID)
                return
            prefix = key + "/"
            objects, _ = await self._listing(prefix, None)
            if not objects:
                raise PathNotFoundError(path)
            # With the directory entries too, deepest first: stores built on
            # a filer (SeaweedFS) keep emptied directories for a while and
            # list them; deleting a key that is not there is harmless.
            directories = {prefix}
            for k, _, _ in objects:
                parts = k[len(prefix):].split("/")[:-1]
                directories.update(prefix + "/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1))
            keys = [k for k, _, _ in objects] + sorted(directories, key=len, reverse=True)
            await self._deleteKeys(keys)
            await self._abortUploadsBelow(prefix)

        return Deferred.fromCoroutine(delete_())

    @asynchronousErrors
    def urlFor(
        self, path: str, method: str = "GET", expiry: float = 1200.0
    ) -> Deferred[str | None]:
        key = self._objectName(path)
        return self.client.presign(key, method, expiry)  # type: ignore[return-value]

    # Life

    def checkStart(self) -> None:
        """
        Resolve the credentials and check that the bucket is there and
        they open it, blocking: meant for the start, before the reactor
        runs, so that a mistake stops it with one line.

        @raise StorageError: saying what is wrong, in one line.
        """
        from txregistry.storage.s3.startcheck import checkBucket

        self.client.useCredentials(checkBucket(self.client))

    def close(self) -> Deferred[None]:
        d = self.client.close()
        d.addBoth(lambda _: self._pool.close())
        return d
