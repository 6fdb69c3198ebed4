# -*- test-case-name: tests.notifications.test_layer -*-
"""
The notifications layer: a L{ForwardingNamespace} that turns what the
model did into events, so that no route knows about notifications.

    manifests().put (by digest), tags().tag after a put  -> push (with tag)
    manifests().get (not for HEAD)                        -> pull (with the tag it was asked by)
    manifests().delete                                    -> delete (digest)
    tags().untag                                          -> delete (tag)
    blobs().put writer closed, upload commit              -> push
    blobs().reader (not for HEAD)                         -> pull
    blobs().mount                                         -> mount (fromRepository)
    blobs().delete                                        -> delete

A push, mount or delete event is journaled and synced before the model
call's L{Deferred} fires, so before the response that acknowledges it; a
pull event is journaled without waiting.  Only what succeeded makes an
event: a call that fails (or that a layer outside this one refuses)
makes none.

A manifest push (by tag, or by digest) is journaled as an I{intent}
(L{txregistry.notifications.intents}, which says why this loses no
acknowledged event): its event is made before the storage write, and
its durable append runs beside the write, the call's L{Deferred} firing
once both are done; a failed write cancels it.  A manifest or tag
delete is an intent journaled before its write (not beside it: a delete
can remove what a crashed push's verification looks for).  Blob pushes,
mounts and deletes are journaled after their write, as pulls are.

The layer depends on the caller (C{actor} and C{request} come from it),
so the namespace is bound per request; the per-request memory (the tag a
manifest was asked by, the manifest a tag is about to name) lives on the
repository wrapper, which the API makes once per request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import implementer

from txregistry.errors import RegistryModelError
from txregistry.interfaces import (
    BlobDescriptor,
    IBlobReader,
    IBlobStore,
    IBlobUpload,
    IBlobWriter,
    IManifestService,
    INamespace,
    IRepository,
    ITagService,
    Manifest,
    PutManifest,
)
from txregistry.notifications.events import (
    DELETE,
    MOUNT,
    PULL,
    PUSH,
    Source,
    encodeTarget,
    eventLine,
    references,
    target,
)
from txregistry.notifications.intents import DELETED, REVISION, TAGGED, UNTAGGED
from txregistry.notifications.interfaces import IEventSink, IIntent
from txregistry.registry.cache import BoundedCache
from txregistry.registry.digest import Digest
from txregistry.registry.forwarding import (
    ForwardingBlobStore,
    ForwardingBlobUpload,
    ForwardingManifestService,
    ForwardingNamespace,
    ForwardingRepository,
    ForwardingTagService,
)
from txregistry.registry.manifests import declaredMediaType

__all__ = ["NotifyingNamespace"]

T = TypeVar("T")

#: Manifest pulls whose target is kept made (L{NotifyingNamespace.pulledTarget}).
PULLED_TARGETS = 1024


class NotifyingNamespace(ForwardingNamespace):
    """
    C{inner}, with an event to C{sink} for each push, pull, mount and
    delete.

    @ivar host: the registry's external URL (C{http.host}); the caller's
        own origin when empty.
    @ivar prefix: the API's path prefix (C{http.prefix}).
    """

    dependsOnCaller = True

    def __init__(
        self,
        inner: INamespace,
        sink: IEventSink,
        source: Source,
        clock: Any,
        includeReferences: bool = False,
        host: str = "",
        prefix: str = "/",
    ) -> None:
        super().__init__(inner)
        self.sink = sink
        self.source = source
        self.clock = clock
        self.includeReferences = includeReferences
        self.host = host.rstrip("/")
        self.prefix = prefix.rstrip("/")
        # Shared by every request's bound copy (L{actingFor}).
        self._pulled: BoundedCache[tuple[Any, ...], tuple[dict[str, Any], str]] = \
            BoundedCache(maxEntries=PULLED_TARGETS)

    def wrapRepository(self, repository: IRepository) -> IRepository:
        return _Repository(repository, self)

    @property
    def pulling(self) -> bool:
        """
        Whether this request's reads are pulls (a C{HEAD} only asks).
        """
        return self.caller.method != "HEAD"

    def emit(self, action: str, found: dict[str, Any]) -> Deferred[None]:
        """
        Journal a push's, mount's or delete's event: synced before the
        L{Deferred} fires.
        """
        line = eventLine(action, found, self.caller, self.source, self.clock.seconds())
        written = self.sink.publish(line, action, found, durable=True)
        assert written is not None  # a durable event is waited for
        return written

    def pulled(self, found: dict[str, Any], encoded: str | None = None) -> Deferred[None] | None:
        """
        Journal a pull's event, which nothing waits for (every manifest
        GET makes one, so it makes no L{Deferred} of its own).

        @param encoded: C{found} as JSON, when known (L{pulledTarget}).
        @return: L{None} once it is taken, or a failed L{Deferred} when it
            could not be.
        """
        line = eventLine(PULL, found, self.caller, self.source, self.clock.seconds(), encoded)
        return self.sink.publish(line, PULL, found, durable=False)

    def pulledTarget(
        self, repository: str, digest: Digest, mediaType: str, size: int, tag: str | None,
    ) -> tuple[dict[str, Any], str]:
        """
        A manifest pull's target and its JSON: the same for every pull of
        one manifest by one name, so made once for them (a pull is an
        event on every manifest GET).  The target is shared: read only.
        """
        base = self.baseURL
        key = (base, repository, digest, mediaType, size, tag)
        made = self._pulled.get(key)
        if made is None:
            found = target(repository, base, "manifests", digest, mediaType=mediaType, size=size, tag=tag)
            made = (found, encodeTarget(found))
            self._pulled.put(key, made)
        return made

    def announce(
        self, action: str, found: dict[str, Any], check: Mapping[str, Any],
        write: Callable[[], Deferred[T]], before: bool = False,
    ) -> Deferred[T]:
        """
        Journal an event as an intent and make the write it announces:
        beside it, or (C{before}) first.

        @param check: what storage shows once C{write} happened.
        @return: C{write}'s result, once it is done and the intent
            synced; its failure (the intent then cancelled); or the
            journal's failure.
        """
        line = eventLine(action, found, self.caller, self.source, self.clock.seconds())
        intent = self.sink.intend(line, action, found, check)
        return Deferred.fromCoroutine(_announced(intent, write, before))

    @property
    def baseURL(self) -> str:
        """
        What a target's URL starts with: C{http.host}, or the origin this
        request was asked through, and the API's prefix.
        """
        return (self.host or self.caller.origin) + self.prefix

    def target(self, repository: str, kind: str, digest: Digest | None, **extra: Any) -> dict[str, Any]:
        return target(repository, self.baseURL, kind, digest, **extra)


def _after(waiting: Deferred[None] | None, value: T) -> T | Deferred[T]:
    """
    C{value}, once C{waiting} (if any) has fired.
    """
    if waiting is None:
        return value
    return waiting.addCallback(lambda _: value)


async def _announced(intent: IIntent, write: Callable[[], Deferred[T]], before: bool) -> T:
    if before:
        await intent.journaled
    try:
        result = await write()
    except BaseException:
        intent.cancel()
        if not before:
            # The request fails with the write's error, without waiting.
            intent.journaled.addErrback(lambda _: None)
        raise
    intent.resolve()
    if not before:
        await intent.journaled
    return result


class _Repository(ForwardingRepository):
    """
    One repository for one request.

    @ivar askedBy: manifest digest -> the tag it was looked up by.
    @ivar toTag: manifest digest -> (media type, size, references) of a
        manifest pushed by tag, until its tag is set.
    @ivar sizes: blob digest -> size, from C{stat} (a reader of a range
        does not know the whole size).
    """

    def __init__(self, inner: IRepository, notifier: NotifyingNamespace) -> None:
        super().__init__(inner)
        self.notifier = notifier
        self.askedBy: dict[Digest, str] = {}
        self.toTag: dict[Digest, tuple[str, int, list[dict[str, Any]] | None]] = {}
        self.sizes: dict[Digest, int] = {}

    def manifests(self) -> IManifestService:
        return _Manifests(self.inner.manifests(), self)

    def tags(self) -> ITagService:
        return _Tags(self.inner.tags(), self)

    def blobs(self) -> IBlobStore:
        return _Blobs(self.inner.blobs(), self)

    def manifestTarget(
        self, digest: Digest, mediaType: str, size: int, refs: list[dict[str, Any]] | None,
        tag: str | None,
    ) -> dict[str, Any]:
        found = self.notifier.target(
            self.name, "manifests", digest, mediaType=mediaType, size=size, tag=tag
        )
        if refs is not None:
            found["references"] = refs
        return found

    def blobEvent(self, action: str, digest: Digest, size: int, **extra: Any) -> Deferred[None]:
        found = self.notifier.target(self.name, "blobs", digest, size=size, **extra)
        return self.notifier.emit(action, found)

    def blobPulled(self, digest: Digest, size: int) -> Deferred[None] | None:
        return self.notifier.pulled(self.notifier.target(self.name, "blobs", digest, size=size))

    def describe(self, content: bytes, mediaType: str | None) -> tuple[str, int, list[dict[str, Any]] | None]:
        """
        The media type, size and (when configured) references of a
        manifest's C{content}.
        """
        declared = declaredMediaType(content)
        kind = declared or (mediaType or "").split(";", 1)[0].strip() or "application/octet-stream"
        refs = None
        if self.notifier.includeReferences:
            try:
                document = json.loads(content)
            except (ValueError, RecursionError):
                document = {}
            refs = references(document) if isinstance(document, dict) else []
        return kind, len(content), refs


class _Manifests(ForwardingManifestService):
    def __init__(self, inner: IManifestService, repository: _Repository) -> None:
        super().__init__(inner)
        self.repository = repository

    def get(self, digest: Digest) -> Deferred[Manifest]:
        def got(manifest: Manifest) -> Any:
            repository = self.repository
            if not repository.notifier.pulling:
                return manifest
            tag = repository.askedBy.get(digest)
            encoded = None
            if repository.notifier.includeReferences:
                refs = repository.describe(manifest.content, manifest.mediaType)[2]
                found = repository.manifestTarget(
                    manifest.digest, manifest.mediaType, len(manifest.content), refs, tag,
                )
            else:
                found, encoded = repository.notifier.pulledTarget(
                    repository.name, manifest.digest, manifest.mediaType, len(manifest.content), tag,
                )
            return _after(repository.notifier.pulled(found, encoded), manifest)

        return self.inner.get(digest).addCallback(got)

    def put(
        self, content: bytes, mediaType: str | None, digest: Digest | None = None
    ) -> Deferred[PutManifest]:
        repository = self.repository
        described = repository.describe(content, mediaType)
        if digest is None:
            def stored(result: PutManifest) -> PutManifest:
                # Pushed by tag: the event names the tag, which the
                # caller sets next (L{_Tags.tag}).
                repository.toTag[result.digest] = described
                return result

            return self.inner.put(content, mediaType, digest).addCallback(stored)
        # By digest: the digest is the caller's (a put of other content
        # fails, and cancels the intent).
        found = repository.manifestTarget(digest, *described, tag=None)
        check = {"kind": REVISION, "repository": repository.name, "digest": str(digest)}
        return repository.notifier.announce(
            PUSH, found, check, lambda: self.inner.put(content, mediaType, digest)
        )

    def delete(self, digest: Digest) -> Deferred[None]:
        repository = self.repository
        found = repository.notifier.target(repository.name, "manifests", digest)
        check = {"kind": DELETED, "repository": repository.name, "digest": str(digest)}
        return repository.notifier.announce(
            DELETE, found, check, lambda: self.inner.delete(digest), before=True
        )


class _Tags(ForwardingTagService):
    def __init__(self, inner: ITagService, repository: _Repository) -> None:
        super().__init__(inner)
        self.repository = repository

    def get(self, tag: str) -> Deferred[Digest]:
        def found(digest: Digest) -> Digest:
            self.repository.askedBy[digest] = tag
            return digest

        return self.inner.get(tag).addCallback(found)

    def tag(self, tag: str, digest: Digest) -> Deferred[None]:
        repository = self.repository
        described = repository.toTag.pop(digest, None)
        if described is not None:
            return self._pushed(tag, digest, described)

        async def pushed() -> None:
            # Tagged without a push through here: the event (journaled
            # after the write) describes the manifest the tag now names.
            manifest = await repository.inner.manifests().get(digest)
            described = repository.describe(manifest.content, manifest.mediaType)
            found = repository.manifestTarget(digest, *described, tag=tag)
            await repository.notifier.emit(PUSH, found)

        return self.inner.tag(tag, digest).addCallback(lambda _: Deferred.fromCoroutine(pushed()))

    def _pushed(
        self, tag: str, digest: Digest, described: tuple[str, int, list[dict[str, Any]] | None]
    ) -> Deferred[None]:
        """
        Tag a manifest just pushed by tag through here: the push's event,
        naming the tag, is an intent journaled beside the tag's write.
        """
        repository = self.repository
        found = repository.manifestTarget(digest, *described, tag=tag)
        check = {"kind": TAGGED, "repository": repository.name, "tag": tag, "digest": str(digest)}

        def failed(failure: Failure) -> Any:
            if not failure.check(RegistryModelError):
                return failure
            # The manifest is stored even though its tag is not: its push
            # is still an event.
            untagged = repository.manifestTarget(digest, *described, tag=None)
            return repository.notifier.emit(PUSH, untagged).addCallback(lambda _: failure)

        return repository.notifier.announce(
            PUSH, found, check, lambda: self.inner.tag(tag, digest)
        ).addErrback(failed)

    def untag(self, tag: str) -> Deferred[None]:
        repository = self.repository
        found = repository.notifier.target(repository.name, "manifests", None, tag=tag)
        check = {"kind": UNTAGGED, "repository": repository.name, "tag": tag}
        return repository.notifier.announce(
            DELETE, found, check, lambda: self.inner.untag(tag), before=True
        )


class _Blobs(ForwardingBlobStore):
    def __init__(self, inner: IBlobStore, repository: _Repository) -> None:
        super().__init__(inner)
        self.repository = repository

    def wrapUpload(self, upload: IBlobUpload) -> IBlobUpload:
        return _Upload(upload, self.repository)

    def pushed(self, digest: Digest, size: int, action: str = PUSH, **extra: Any) -> Deferred[None]:
        return self.repository.blobEvent(action, digest, size, **extra)

    def stat(self, digest: Digest) -> Deferred[BlobDescriptor]:
        def known(descriptor: BlobDescriptor) -> BlobDescriptor:
            self.repository.sizes[digest] = descriptor.size
            return descriptor

        return self.inner.stat(digest).addCallback(known)

    def reader(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> Deferred[IBlobReader]:
        def opened(reader: IBlobReader) -> Any:
            if not self.repository.notifier.pulling:
                return reader
            size = self.repository.sizes.get(digest)
            if size is None:
                size = offset + reader.length
            return _after(self.repository.blobPulled(digest, size), reader)

        return self.inner.reader(digest, offset, length).addCallback(opened)

    def put(self, digest: Digest, length: int | None = None) -> Deferred[IBlobWriter]:
        return self.inner.put(digest, length).addCallback(lambda writer: _Writer(writer, digest, self))

    def mount(self, digest: Digest, source: str) -> Deferred[BlobDescriptor | None]:
        def mounted(descriptor: BlobDescriptor | None) -> Any:
            if descriptor is None:
                return None
            return self.pushed(
                digest, descriptor.size, MOUNT, fromRepository=source
            ).addCallback(lambda _: descriptor)

        return self.inner.mount(digest, source).addCallback(mounted)

    def delete(self, digest: Digest) -> Deferred[None]:
        def deleted(_: None) -> Deferred[None]:
            found = self.repository.notifier.target(self.repository.name, "blobs", digest)
            return self.repository.notifier.emit(DELETE, found)

        return self.inner.delete(digest).addCallback(deleted)


class _Upload(ForwardingBlobUpload):
    def __init__(self, inner: IBlobUpload, repository: _Repository) -> None:
        super().__init__(inner)
        self.repository = repository

    def commit(self, digest: Digest) -> Deferred[BlobDescriptor]:
        def committed(descriptor: BlobDescriptor) -> Any:
            pushed = self.repository.blobEvent(PUSH, digest, descriptor.size)
            return pushed.addCallback(lambda _: descriptor)

        return self.inner.commit(digest).addCallback(committed)


@implementer(IBlobWriter)
class _Writer:
    """
    A whole blob's writer whose C{close} (the blob stored) is a push.
    """

    def __init__(self, inner: IBlobWriter, digest: Digest, blobs: _Blobs) -> None:
        self.inner = inner
        self.digest = digest
        self.blobs = blobs

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.inner.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self.inner.unregisterProducer()

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def close(self) -> Deferred[int]:
        def closed(size: int) -> Any:
            return self.blobs.pushed(self.digest, size).addCallback(lambda _: size)

        return self.inner.close().addCallback(closed)

    def abort(self) -> Deferred[None]:
        return self.inner.abort()
