# -*- test-case-name: tests.client.test_registry -*-
"""
A registry over HTTP as the service model (L{txregistry.interfaces}): a
L{Registry} is an L{INamespace} whose repositories, manifests, tags and
blobs are requests to the distribution API.  Code written against the
interfaces (a copy, a pull-through cache) works the same on a registry
here and one across the network.

Answers are checked: a manifest or blob fetched by digest must have that
digest, and failures are the model's errors (L{txregistry.client.errors}).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode, urljoin

import treq
from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.web.iweb import IBodyProducer, IResponse
from zope.interface import implementer

from txregistry import errors as model
from txregistry.client.auth import Authenticator, Credentials
from txregistry.client.errors import ClientError, errorFor
from txregistry.client.http import Session, TLSOptions
from txregistry.client.streams import BodyWriter, ResponseReader
from txregistry.interfaces import (
    BlobDescriptor,
    Caller,
    IBlobReader,
    IBlobStore,
    IBlobUpload,
    IBlobWriter,
    IManifestService,
    INamespace,
    IRepository,
    ITagService,
    Manifest,
    Page,
    PutManifest,
)
from txregistry.registry.digest import Digest, InvalidDigest
from txregistry.registry.manifests import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MAX_MANIFEST_SIZE,
    OCI_INDEX,
    OCI_MANIFEST,
    declaredMediaType,
)
from txregistry.registry.names import isValidName

__all__ = ["Registry", "RemoteRepository", "MANIFEST_ACCEPT"]

#: What a manifest request accepts: every type a registry stores.
MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST]


def _isLoopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in ("localhost", "[::1]") or name.startswith("127.")


def _header(response: IResponse, name: str) -> str | None:
    values = response.headers.getRawHeaders(name.encode("ascii"))
    return values[0].decode("latin-1") if values else None


async def _check(response: IResponse, what: str,
                 notFound: type[model.RegistryModelError] | None = None,
                 expected: tuple[int, ...] = (200,)) -> IResponse:
    if response.code in expected:
        return response
    body = await treq.content(response)
    raise errorFor(response.code, body, what, notFound)


@implementer(INamespace)
class Registry:
    """
    A registry at C{host}.

    @param host: C{name[:port]}.
    @param credentials: the account to log in as; a callable giving one
        (docker's C{config.json} lookup); or L{None} for anonymous.
    @param plainHTTP: talk C{http://}; by default, only to a loopback
        host for which no CA bundle or client certificate is given (as
        docker treats 127.0.0.0/8 as an insecure registry).
    """

    def __init__(
        self,
        host: str,
        credentials: Credentials | Callable[[], Awaitable[Credentials | None]] | None = None,
        tls: TLSOptions = TLSOptions(),
        plainHTTP: bool | None = None,
        session: Session | None = None,
        reactor: Any = None,
    ) -> None:
        self.host = host
        if plainHTTP is None:
            plainHTTP = _isLoopback(host) and not (tls.caFile or tls.certFile)
        self.url = f"{'http' if plainHTTP else 'https'}://{host}"
        self.session = session or Session(reactor, tls)
        if credentials is None or isinstance(credentials, Credentials):
            fixed = credentials

            async def lookup() -> Credentials | None:
                return fixed

            credentials = lookup
        self.auth = Authenticator(self.session, credentials)

    def __repr__(self) -> str:
        return f"<Registry {self.url}>"

    def request(self, method: str, path: str, scopes: list[str],
                headers: dict[str, list[str]] | None = None,
                data: bytes | IBodyProducer | None = None) -> Deferred[IResponse]:
        """
        C{method} on C{path} (absolute, or a URL the registry gave),
        logged in for C{scopes}.
        """
        url = urljoin(self.url + "/", path)
        return ensureDeferred(self.auth.request(method, url, scopes, headers, data))

    def close(self) -> Deferred[None]:
        return self.session.close()

    # INamespace

    def actingFor(self, caller: Caller) -> "Registry":
        # The caller is who logged in: the credentials say it.
        return self

    def repository(self, name: str) -> "RemoteRepository":
        if not isValidName(name):
            raise model.NameInvalid(name)
        return RemoteRepository(self, name)

    def catalog(self, n: int | None, last: str | None) -> Deferred[Page]:
        return ensureDeferred(self._catalog(n, last))

    async def _catalog(self, n: int | None, last: str | None) -> Page:
        query = {k: v for k, v in (("n", n), ("last", last)) if v is not None}
        path = "/v2/_catalog" + (f"?{urlencode(query)}" if query else "")
        response = await _check(
            await self.request("GET", path, ["registry:catalog:*"]), f"{self.host} catalog")
        document = json.loads(await treq.content(response))
        return Page(list(document.get("repositories") or []), _header(response, "link") is not None)

    def purgeUploads(self, olderThan: float, dryRun: bool = False) -> Deferred[list[str]]:
        return fail(model.Unsupported("a registry's uploads are purged by the registry"))

    async def ping(self) -> None:
        """
        C{GET /v2/}: the registry answers, and takes the credentials.
        """
        await _check(await self.request("GET", "/v2/", []), f"{self.host}")


def _scopes(name: str, *actions: str) -> list[str]:
    return [f"repository:{name}:{','.join(actions)}"]


@implementer(IRepository)
class RemoteRepository:
    """
    One repository of a L{Registry}.
    """

    def __init__(self, registry: Registry, name: str) -> None:
        self.registry = registry
        self.name = name
        self.path = f"/v2/{name}"

    def __repr__(self) -> str:
        return f"<RemoteRepository {self.registry.host}/{self.name}>"

    def manifests(self) -> "RemoteManifests":
        return RemoteManifests(self)

    def tags(self) -> "RemoteTags":
        return RemoteTags(self)

    def blobs(self) -> "RemoteBlobs":
        return RemoteBlobs(self)

    def referrers(self, subject: Digest, artifactType: str | None = None) -> Deferred[list[dict[str, Any]]]:
        return ensureDeferred(self._referrers(subject, artifactType))

    async def _referrers(self, subject: Digest, artifactType: str | None) -> list[dict[str, Any]]:
        path = f"{self.path}/referrers/{subject}"
        if artifactType:
            path += "?" + urlencode({"artifactType": artifactType})
        response = await _check(await self.request("GET", path, "pull"),
                                f"{self.registry.host}/{self.name}@{subject} referrers")
        document = json.loads(await treq.content(response))
        return sorted(document.get("manifests") or [], key=lambda d: d.get("digest", ""))

    def request(self, method: str, path: str, *actions: str, **kwargs: Any) -> Deferred[IResponse]:
        return self.registry.request(method, path, _scopes(self.name, *actions), **kwargs)


@implementer(IManifestService)
class RemoteManifests:
    """
    The manifests of a L{RemoteRepository}, by digest, and (beyond the
    interface) by tag.
    """

    def __init__(self, repository: RemoteRepository) -> None:
        self.repository = repository

    def _what(self, reference: str) -> str:
        separator = "@" if ":" in reference else ":"
        return f"{self.repository.registry.host}/{self.repository.name}{separator}{reference}"

    def exists(self, digest: Digest) -> Deferred[bool]:
        return ensureDeferred(self._exists(str(digest)))

    async def _exists(self, reference: str) -> bool:
        response = await self.repository.request(
            "HEAD", f"{self.repository.path}/manifests/{reference}", "pull",
            headers={"Accept": MANIFEST_ACCEPT})
        await treq.content(response)
        if response.code == 404:
            return False
        await _check(response, self._what(reference))
        return True

    def head(self, reference: str) -> Deferred[BlobDescriptor | None]:
        """
        The digest and size of the manifest C{reference} (a tag or a
        digest) names, from a C{HEAD}; L{None} if there is none.
        """
        return ensureDeferred(self._head(reference))

    async def _head(self, reference: str) -> BlobDescriptor | None:
        response = await self.repository.request(
            "HEAD", f"{self.repository.path}/manifests/{reference}", "pull",
            headers={"Accept": MANIFEST_ACCEPT})
        await treq.content(response)
        if response.code == 404:
            return None
        await _check(response, self._what(reference))
        digest = _header(response, "docker-content-digest")
        if digest is None:
            return BlobDescriptor((await self._fetch(reference)).digest,
                                  int(_header(response, "content-length") or 0))
        return BlobDescriptor(Digest.parse(digest), int(_header(response, "content-length") or 0))

    def get(self, digest: Digest) -> Deferred[Manifest]:
        return ensureDeferred(self._fetch(str(digest)))

    def fetch(self, reference: str) -> Deferred[Manifest]:
        """
        The manifest C{reference} (a tag or a digest) names.
        """
        return ensureDeferred(self._fetch(reference))

    async def _fetch(self, reference: str) -> Manifest:
        what = self._what(reference)
        response = await _check(
            await self.repository.request(
                "GET", f"{self.repository.path}/manifests/{reference}", "pull",
                headers={"Accept": MANIFEST_ACCEPT}),
            what, model.ManifestUnknown)
        content = await treq.content(response)
        if len(content) > MAX_MANIFEST_SIZE:
            raise model.ManifestInvalid(f"{what}: manifest larger than {MAX_MANIFEST_SIZE} bytes")
        try:
            expected = Digest.parse(reference)
        except InvalidDigest:
            expected = None
        algorithm = expected.algorithm if expected else "sha256"
        digest = Digest.of(content, algorithm)
        if expected is not None and digest != expected:
            raise model.DigestInvalid(f"{what}: the registry sent a manifest of digest {digest}",
                                      str(expected), str(digest))
        mediaType = (_header(response, "content-type") or "").split(";")[0].strip()
        mediaType = declaredMediaType(content) or mediaType or OCI_MANIFEST
        return Manifest(digest, mediaType, content)

    def put(self, content: bytes, mediaType: str | None,
            digest: Digest | None = None) -> Deferred[PutManifest]:
        reference = str(digest or Digest.of(content))
        return ensureDeferred(self._put(reference, content, mediaType))

    def putTagged(self, content: bytes, mediaType: str | None, tag: str) -> Deferred[PutManifest]:
        """
        Store a manifest under C{tag}.
        """
        return ensureDeferred(self._put(tag, content, mediaType))

    async def _put(self, reference: str, content: bytes, mediaType: str | None) -> PutManifest:
        mediaType = mediaType or declaredMediaType(content) or OCI_MANIFEST
        response = await _check(
            await self.repository.request(
                "PUT", f"{self.repository.path}/manifests/{reference}", "pull", "push",
                headers={"Content-Type": [mediaType]}, data=content),
            self._what(reference), expected=(201, 200, 202))
        await treq.content(response)
        digest = _header(response, "docker-content-digest")
        subject = _header(response, "oci-subject")
        return PutManifest(Digest.parse(digest) if digest else Digest.of(content),
                           Digest.parse(subject) if subject else None)

    def delete(self, digest: Digest) -> Deferred[None]:
        return ensureDeferred(self._delete(str(digest)))

    async def _delete(self, reference: str) -> None:
        response = await _check(
            await self.repository.request(
                "DELETE", f"{self.repository.path}/manifests/{reference}", "delete"),
            self._what(reference), model.ManifestUnknown, expected=(202, 200, 204))
        await treq.content(response)


@implementer(ITagService)
class RemoteTags:
    """
    The tags of a L{RemoteRepository}.
    """

    def __init__(self, repository: RemoteRepository) -> None:
        self.repository = repository
        self.manifests = RemoteManifests(repository)

    def get(self, tag: str) -> Deferred[Digest]:
        return ensureDeferred(self._get(tag))

    async def _get(self, tag: str) -> Digest:
        found = await self.manifests.head(tag)
        if found is None:
            raise model.ManifestUnknown(
                f"{self.repository.registry.host}/{self.repository.name}:{tag}: no such tag",
                {"tag": tag})
        return found.digest

    def tag(self, tag: str, digest: Digest) -> Deferred[None]:
        return ensureDeferred(self._tag(tag, digest))

    async def _tag(self, tag: str, digest: Digest) -> None:
        manifest = await self.manifests.get(digest)
        await self.manifests.putTagged(manifest.content, manifest.mediaType, tag)

    def untag(self, tag: str) -> Deferred[None]:
        return ensureDeferred(self.manifests._delete(tag))

    def list(self, n: int | None, last: str | None) -> Deferred[Page]:
        return ensureDeferred(self._list(n, last))

    async def _list(self, n: int | None, last: str | None) -> Page:
        query = {k: v for k, v in (("n", n), ("last", last)) if v is not None}
        path = f"{self.repository.path}/tags/list" + (f"?{urlencode(query)}" if query else "")
        response = await _check(await self.repository.request("GET", path, "pull"),
                                f"{self.repository.registry.host}/{self.repository.name} tags",
                                model.NameUnknown)
        document = json.loads(await treq.content(response))
        return Page(sorted(document.get("tags") or []), _header(response, "link") is not None)

    async def listAll(self) -> "builtins.list[str]":
        """
        Every tag, page after page.
        """
        tags: list[str] = []
        last = None
        while True:
            page = await self._list(1000, last)
            tags += page.items
            if not page.more or not page.items:
                return tags
            last = page.items[-1]

    def lookup(self, digest: Digest) -> "Deferred[builtins.list[str]]":
        return ensureDeferred(self._lookup(digest))

    async def _lookup(self, digest: Digest) -> "builtins.list[str]":
        named = []
        for tag in await self.listAll():
            found = await self.manifests.head(tag)
            if found is not None and found.digest == digest:
                named.append(tag)
        return named


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
        location = _header(response, "location")
        if location:
            self.location = urljoin(self.repository.registry.url + "/", location)
        ranged = _header(response, "range")
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
            await _check(response, self._what(), model.BlobUploadUnknown, expected=(202, 204))
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
        response = await _check(
            await self.repository.request("PUT", self._withDigest(digest), "pull", "push",
                                          data=b""),
            self._what(), model.BlobUploadUnknown, expected=(201, 204))
        await treq.content(response)
        return BlobDescriptor(digest, self.size)

    def cancel(self) -> Deferred[None]:
        return ensureDeferred(self._cancel())

    async def _cancel(self) -> None:
        response = await _check(
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
        await _check(response, self._what(digest), model.BlobUnknown)
        return BlobDescriptor(digest, int(_header(response, "content-length") or 0))

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
        response = await _check(
            await self.repository.request("GET", self._path(digest), "pull", headers=headers),
            self._what(digest), model.BlobUnknown, expected=(200, 206))
        size = int(_header(response, "content-length") or response.length)
        if ranged and response.code == 200:
            raise ClientError(f"{self._what(digest)}: the registry ignored the Range", 200)
        return ResponseReader(response, size, None if ranged else digest, self._what(digest))

    def redirectURL(self, digest: Digest, method: str = "GET") -> Deferred[str | None]:
        return succeed(None)

    def create(self) -> Deferred[IBlobUpload]:
        return ensureDeferred(self._start(""))

    async def _start(self, query: str) -> RemoteUpload:
        response = await _check(
            await self.repository.request(
                "POST", f"{self.repository.path}/blobs/uploads/{query}", "pull", "push",
                data=b""),
            f"{self.repository.registry.host}/{self.repository.name} upload", expected=(202,))
        await treq.content(response)
        location = _header(response, "location")
        if not location:
            raise ClientError(f"{self.repository.registry.host}: an upload without a Location", 202)
        upload = RemoteUpload(self.repository, urljoin(self.repository.registry.url + "/", location),
                              uploadID=_header(response, "docker-upload-uuid"))
        return upload

    def resume(self, uploadID: str) -> Deferred[IBlobUpload]:
        return ensureDeferred(self._resume(uploadID))

    async def _resume(self, uploadID: str) -> IBlobUpload:
        upload = RemoteUpload(self.repository,
                              f"{self.repository.registry.url}{self.repository.path}/blobs/uploads/{uploadID}",
                              uploadID=uploadID)
        response = await _check(
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
            await _check(response, self._what(digest), model.BlobUploadUnknown,
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
        response = await _check(
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
        await _check(response, self._what(digest), expected=(202,))
        await treq.content(response)
        # 202: the registry would not mount (no such blob there, or no
        # pull on it) and began an upload instead, which is not wanted.
        location = _header(response, "location")
        if location:
            upload = RemoteUpload(self.repository,
                                  urljoin(self.repository.registry.url + "/", location))
            try:
                await upload._cancel()
            except model.RegistryModelError:
                pass
        return None

    async def _mountRequest(self, query: str, source: str) -> IResponse:
        scopes = _scopes(self.repository.name, "pull", "push") + _scopes(source, "pull")
        return await self.repository.registry.request(
            "POST", f"{self.repository.path}/blobs/uploads/{query}", scopes,
            data=b"")

    def delete(self, digest: Digest) -> Deferred[None]:
        return ensureDeferred(self._delete(digest))

    async def _delete(self, digest: Digest) -> None:
        response = await _check(
            await self.repository.request("DELETE", self._path(digest), "delete"),
            self._what(digest), model.BlobUnknown, expected=(202, 200, 204))
        await treq.content(response)
