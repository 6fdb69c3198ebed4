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
from urllib.parse import urlencode, urljoin

import treq
from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.web.iweb import IBodyProducer, IResponse
from zope.interface import implementer

from txregistry import errors as model
from txregistry.client.auth import Authenticator, Credentials
from txregistry.client.blobs import RemoteBlobs
from txregistry.client.http import Session, TLSOptions
from txregistry.client.wire import check, header, scopes
from txregistry.interfaces import (
    BlobDescriptor,
    Caller,
    CollectionReport,
    IManifestService,
    INamespace,
    IRepository,
    ITagService,
    Manifest,
    Page,
    PutManifest,
    Usage,
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
        response = await check(
            await self.request("GET", path, ["registry:catalog:*"]), f"{self.host} catalog")
        document = json.loads(await treq.content(response))
        return Page(list(document.get("repositories") or []), header(response, "link") is not None)

    def purgeUploads(self, olderThan: float, dryRun: bool = False) -> Deferred[list[str]]:
        return fail(model.Unsupported("a registry's uploads are purged by the registry"))

    def collectGarbage(self, deleteUntagged: bool = False, dryRun: bool = False,
                       online: bool = False, progress: Any = None) -> Deferred[CollectionReport]:
        return fail(model.Unsupported("a registry's garbage is collected by the registry "
                                      "(the distribution API has no request for it)"))

    async def ping(self) -> None:
        """
        C{GET /v2/}: the registry answers, and takes the credentials.
        """
        await check(await self.request("GET", "/v2/", []), f"{self.host}")


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
        response = await check(await self.request("GET", path, "pull"),
                                f"{self.registry.host}/{self.name}@{subject} referrers")
        document = json.loads(await treq.content(response))
        return sorted(document.get("manifests") or [], key=lambda d: d.get("digest", ""))

    def usage(self) -> Deferred[Usage]:
        return fail(model.Unsupported("the distribution API does not tell a repository's usage"))

    def request(self, method: str, path: str, *actions: str, **kwargs: Any) -> Deferred[IResponse]:
        return self.registry.request(method, path, scopes(self.name, *actions), **kwargs)


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
        await check(response, self._what(reference))
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
        await check(response, self._what(reference))
        digest = header(response, "docker-content-digest")
        if digest is None:
            return BlobDescriptor((await self._fetch(reference)).digest,
                                  int(header(response, "content-length") or 0))
        return BlobDescriptor(Digest.parse(digest), int(header(response, "content-length") or 0))

    def get(self, digest: Digest) -> Deferred[Manifest]:
        return ensureDeferred(self._fetch(str(digest)))

    def fetch(self, reference: str) -> Deferred[Manifest]:
        """
        The manifest C{reference} (a tag or a digest) names.
        """
        return ensureDeferred(self._fetch(reference))

    async def _fetch(self, reference: str) -> Manifest:
        what = self._what(reference)
        response = await check(
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
        mediaType = (header(response, "content-type") or "").split(";")[0].strip()
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
        response = await check(
            await self.repository.request(
                "PUT", f"{self.repository.path}/manifests/{reference}", "pull", "push",
                headers={"Content-Type": [mediaType]}, data=content),
            self._what(reference), expected=(201, 200, 202))
        await treq.content(response)
        digest = header(response, "docker-content-digest")
        subject = header(response, "oci-subject")
        return PutManifest(Digest.parse(digest) if digest else Digest.of(content),
                           Digest.parse(subject) if subject else None)

    def delete(self, digest: Digest) -> Deferred[None]:
        return ensureDeferred(self._delete(str(digest)))

    async def _delete(self, reference: str) -> None:
        response = await check(
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
        response = await check(await self.repository.request("GET", path, "pull"),
                                f"{self.repository.registry.host}/{self.repository.name} tags",
                                model.NameUnknown)
        document = json.loads(await treq.content(response))
        return Page(sorted(document.get("tags") or []), header(response, "link") is not None)

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

    def pushTimes(self, tags: "builtins.list[str] | None" = None) -> "Deferred[dict[str, float]]":
        return fail(model.Unsupported("the distribution API does not tell when a tag was pushed"))

    def indexed(self, tag: str, digest: Digest) -> Deferred[bool]:
        return fail(model.Unsupported("the distribution API does not tell what a tag named before"))

    async def _lookup(self, digest: Digest) -> "builtins.list[str]":
        named = []
        for tag in await self.listAll():
            found = await self.manifests.head(tag)
            if found is not None and found.digest == digest:
                named.append(tag)
        return named
