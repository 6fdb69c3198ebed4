# -*- test-case-name: tests.client.test_registry -*-
"""
A remote repository's blobs (L{RemoteBlobs}, an L{IBlobStore}) and their
uploads (L{RemoteUpload}): reads streamed and verified, writes streamed
into a C{PATCH} or the closing C{PUT}, mounts with the 202 fallback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urljoin

import treq
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse
from zope.interface import implementer

from txregistry import errors as model
from txregistry.client.errors import ClientError
from txregistry.client.streams import BodyWriter, ResponseReader
from txregistry.client.wire import check, header, scopes
from txregistry.interfaces import BlobDescriptor, IBlobReader, IBlobStore, IBlobUpload, IBlobWriter
from txregistry.registry.digest import Digest

if TYPE_CHECKING:
    from txregistry.client.registry import RemoteRepository

__all__ = ["RemoteBlobs", "RemoteUpload"]


@implementer(IBlobUpload)
class RemoteUpload:
    """
    An upload in progress at a registry: its URL (the last C{Location}).
    """

    def __init__(self, repository: RemoteRepository, location: str, size: int = 0,
                 uploadID: str | None = None) -> None:
        self.repository = repository
        self.location = location
        self.size = size
        self.id = uploadID or location.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        self.startedAt = None

    def _what(self) -> str:
        return f"{self.repository.registry.host}/{self.repository.name} upload {self.id}"

    def _moved(self, response: IResponse) -> None:
        location = header(response, "location")
        if location:
            self.location = urljoin(self.repository.registry.url + "/", location)
        ranged = header(response, "range")
        if ranged and "-" in ranged:
            self.size = int(ranged.rsplit("-", 1)[1]) + 1

    def append(self, start: int | None = None, length: int | None = None) -> Deferred[IBlobWriter]:
        """
        A writer of the next chunk (a streamed C{PATCH}).

        @param length: the chunk's length, when known (sent as
            C{Content-Range}; otherwise the chunk is streamed).
        """
        headers = {"Content-Type": ["application/octet-stream"]}
        if start is not None and length is not None and length > 0:
            headers["Content-Range"] = [f"{start}-{start + length - 1}"]

        def send(body: BodyWriter) -> Deferred[IResponse]:
            return self.repository.request("PATCH", self.location, "pull", "push",
                                           headers=headers, data=body)

        async def finish(response: IResponse) -> int:
            await check(response, self._what(), model.BlobUploadUnknown, expected=(202, 204))
            await treq.content(response)
            self._moved(response)
            return self.size

        return succeed(BodyWriter(send, finish, length))

    def commit(self, digest: Digest) -> Deferred[BlobDescriptor]:
        return ensureDeferred(self._commit(digest))

    def _withDigest(self, digest: Digest) -> str:
        separator = "&" if "?" in self.location else "?"
        return f"{self.location}{separator}digest={quote(str(digest))}"

    async def _commit(self, digest: Digest) -> BlobDescriptor:
        response = await check(
            await self.repository.request("PUT", self._withDigest(digest), "pull", "push",
                                          data=b""),
            self._what(), model.BlobUploadUnknown, expected=(201, 204))
        await treq.content(response)
        return BlobDescriptor(digest, self.size)

    def cancel(self) -> Deferred[None]:
        return ensureDeferred(self._cancel())

    async def _cancel(self) -> None:
        response = await check(
            await self.repository.request("DELETE", self.location, "pull", "push"),
            self._what(), model.BlobUploadUnknown, expected=(204, 200, 202))
        await treq.content(response)


@implementer(IBlobStore)
class RemoteBlobs:
    """
    The blobs of a L{RemoteRepository}, and their uploads.
    """

    def __init__(self, repository: RemoteRepository) -> None:
        self.repository = repository

    def _what(self, digest: Digest) -> str:
        return f"{self.repository.registry.host}/{self.repository.name}@{digest}"

    def _path(self, digest: Digest) -> str:
        return f"{self.repository.path}/blobs/{digest}"

    def stat(self, digest: Digest) -> Deferred[BlobDescriptor]:
        return ensureDeferred(self._stat(digest))

    async def _stat(self, digest: Digest) -> BlobDescriptor:
        response = await self.repository.request("HEAD", self._path(digest), "pull")
        await treq.content(response)
        await check(response, self._what(digest), model.BlobUnknown)
        return BlobDescriptor(digest, int(header(response, "content-length") or 0))

    def exists(self, digest: Digest) -> Deferred[bool]:
        """
        Whether the repository has the blob (a C{HEAD}).
        """
        return ensureDeferred(self._exists(digest))

    async def _exists(self, digest: Digest) -> bool:
        try:
            await self._stat(digest)
        except model.BlobUnknown:
            return False
        return True

    def reader(self, digest: Digest, offset: int = 0,
               length: int | None = None) -> Deferred[IBlobReader]:
        return ensureDeferred(self._reader(digest, offset, length))

    async def _reader(self, digest: Digest, offset: int, length: int | None) -> IBlobReader:
        headers: dict[str, list[str]] = {}
        ranged = offset > 0 or length is not None
        if ranged:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = [f"bytes={offset}-{end}"]
        response = await check(
            await self.repository.request("GET", self._path(digest), "pull", headers=headers),
            self._what(digest), model.BlobUnknown, expected=(200, 206))
        if ranged and response.code == 200:
            await treq.content(response)
            raise ClientError(f"{self._what(digest)}: the registry ignored the Range", 200)
        # Twisted keeps a GET's Content-Length out of its headers (it is a
        # connection header there): the parsed value is the response's length.
        if response.length is not UNKNOWN_LENGTH:
            size = int(response.length)
        elif ranged and length is not None:
            size = length
        else:
            # A chunked answer: the reader must still know what to expect.
            size = (await self._stat(digest)).size - offset
        return ResponseReader(response, size, None if ranged else digest, self._what(digest))

    def redirectURL(self, digest: Digest, method: str = "GET") -> Deferred[str | None]:
        return succeed(None)

    def create(self) -> Deferred[IBlobUpload]:
        return ensureDeferred(self._start(""))

    async def _start(self, query: str) -> RemoteUpload:
        response = await check(
            await self.repository.request(
                "POST", f"{self.repository.path}/blobs/uploads/{query}", "pull", "push",
                data=b""),
            f"{self.repository.registry.host}/{self.repository.name} upload", expected=(202,))
        await treq.content(response)
        location = header(response, "location")
        if not location:
            raise ClientError(f"{self.repository.registry.host}: an upload without a Location", 202)
        upload = RemoteUpload(self.repository, urljoin(self.repository.registry.url + "/", location),
                              uploadID=header(response, "docker-upload-uuid"))
        return upload

    def resume(self, uploadID: str) -> Deferred[IBlobUpload]:
        return ensureDeferred(self._resume(uploadID))

    async def _resume(self, uploadID: str) -> IBlobUpload:
        upload = RemoteUpload(self.repository,
                              f"{self.repository.registry.url}{self.repository.path}/blobs/uploads/{uploadID}",
                              uploadID=uploadID)
        response = await check(
            await self.repository.request("GET", upload.location, "pull", "push"),
            upload._what(), model.BlobUploadUnknown, expected=(204, 200))
        await treq.content(response)
        upload._moved(response)
        return upload

    def put(self, digest: Digest, length: int | None = None) -> Deferred[IBlobWriter]:
        """
        A writer of the whole blob C{digest}: an upload begun with a
        C{POST}, whose content goes in the closing C{PUT}.

        @param length: the blob's size when known (C{Content-Length});
            otherwise the body is chunked.
        """
        return ensureDeferred(self._put(digest, length))

    async def _put(self, digest: Digest, length: int | None) -> IBlobWriter:
        upload = await self._start("")
        headers = {"Content-Type": ["application/octet-stream"]}

        def send(body: BodyWriter) -> Deferred[IResponse]:
            return self.repository.request("PUT", upload._withDigest(digest), "pull", "push",
                                           headers=headers, data=body)

        async def finish(response: IResponse) -> int:
            await check(response, self._what(digest), model.BlobUploadUnknown,
                         expected=(201, 204))
            await treq.content(response)
            return (await self._stat(digest)).size if length is None else length

        async def abandon() -> None:
            try:
                await upload._cancel()
            except model.RegistryModelError:
                pass

        return BodyWriter(send, finish, length, abandon)

    def putBytes(self, digest: Digest, content: bytes) -> Deferred[BlobDescriptor]:
        """
        Store a small blob given whole (a config): retried like any
        body-less request.
        """
        return ensureDeferred(self._putBytes(digest, content))

    async def _putBytes(self, digest: Digest, content: bytes) -> BlobDescriptor:
        upload = await self._start("")
        response = await check(
            await self.repository.request(
                "PUT", upload._withDigest(digest), "pull", "push",
                headers={"Content-Type": ["application/octet-stream"]}, data=content),
            self._what(digest), model.BlobUploadUnknown, expected=(201, 204))
        await treq.content(response)
        return BlobDescriptor(digest, len(content))

    def mount(self, digest: Digest, source: str) -> Deferred[BlobDescriptor | None]:
        return ensureDeferred(self._mount(digest, source))

    async def _mount(self, digest: Digest, source: str) -> BlobDescriptor | None:
        query = "?" + urlencode({"mount": str(digest), "from": source})
        response = await self._mountRequest(query, source)
        if response.code == 201:
            await treq.content(response)
            return await self._stat(digest)
        await check(response, self._what(digest), expected=(202,))
        await treq.content(response)
        # 202: the registry would not mount (no such blob there, or no
        # pull on it) and began an upload instead, which is not wanted.
        location = header(response, "location")
        if location:
            upload = RemoteUpload(self.repository,
                                  urljoin(self.repository.registry.url + "/", location))
            try:
                await upload._cancel()
            except model.RegistryModelError:
                pass
        return None

    async def _mountRequest(self, query: str, source: str) -> IResponse:
        needed = scopes(self.repository.name, "pull", "push") + scopes(source, "pull")
        return await self.repository.registry.request(
            "POST", f"{self.repository.path}/blobs/uploads/{query}", needed,
            data=b"")

    def delete(self, digest: Digest) -> Deferred[None]:
        return ensureDeferred(self._delete(digest))

    async def _delete(self, digest: Digest) -> None:
        response = await check(
            await self.repository.request("DELETE", self._path(digest), "delete"),
            self._what(digest), model.BlobUnknown, expected=(202, 200, 204))
        await treq.content(response)
