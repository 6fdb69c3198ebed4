# -*- test-case-name: tests.client.test_copy -*-
"""
Copying an image (or an index and its images, with C{all}) from any
source to any destination (L{txregistry.client.transports}).

Manifests are copied byte for byte, never re-serialized, so digests are
always kept where the destination keeps manifests; C{preserveDigests}
refuses a destination that does not (an archive).  Each blob is skipped
when the destination has it, mounted when the source is another
repository of the same registry, and otherwise streamed from the source's
reader into the destination's writer, several at once (the
destination's C{concurrency}), each verified against its digest, and
streamed again from its start when a connection drops on the way.  The
manifests go last, the top one tagged; the destination's L{commit} makes
the copy visible, its L{abort} removes it on failure.
"""

from __future__ import annotations

import platform as host
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import (
    Deferred,
    DeferredList,
    DeferredSemaphore,
    ensureDeferred,
    gatherResults,
)
from twisted.internet.interfaces import IConsumer
from zope.interface import implementer

from txregistry import errors as model
from txregistry.client.errors import ClientError, NetworkError
from txregistry.client.transports import IImageDestination, IImageSource
from txregistry.interfaces import Manifest
from txregistry.registry.digest import Digest
from txregistry.registry.manifests import ParsedManifest

__all__ = ["CopyOptions", "CopyResult", "copyImage", "choosePlatform", "defaultPlatform"]

_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
                  "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def defaultPlatform() -> str:
    """
    This machine's platform, C{os/architecture} as images name them.
    """
    machine = host.machine().lower()
    return f"linux/{_ARCHITECTURES.get(machine, machine)}"


@dataclass(frozen=True)
class CopyOptions:
    """
    @ivar all: copy an index with every image it names (otherwise only
        the image for C{platform}).
    @ivar preserveDigests: fail rather than store a manifest under another
        digest (or not at all).
    @ivar platform: C{os/architecture[/variant]} picked from an index.
    @ivar concurrency: blobs at once; L{None} for the destination's own.
    """

    all: bool = False
    preserveDigests: bool = False
    platform: str | None = None
    concurrency: int | None = None


@dataclass
class CopyResult:
    """
    What a copy did.
    """

    digest: Digest | None = None
    mediaType: str = ""
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    bytes: int = 0


class Progress:
    """
    What a copy tells as it goes (the command draws bars of it); this one
    tells nobody.
    """

    def started(self, digest: str, size: int) -> None:
        pass

    def advanced(self, digest: str, count: int) -> None:
        pass

    def finished(self, digest: str, how: str) -> None:
        pass


@implementer(IConsumer)
class _Counting:
    def __init__(self, consumer: Any, counted: Callable[[int], None]) -> None:
        self.consumer = consumer
        self.counted = counted

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.consumer.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self.consumer.unregisterProducer()

    def write(self, data: bytes) -> None:
        self.counted(len(data))
        self.consumer.write(data)


def _matches(descriptor: dict[str, Any], wanted: str) -> bool:
    platform = descriptor.get("platform") or {}
    parts = wanted.split("/")
    have = [platform.get("os", ""), platform.get("architecture", "")]
    if len(parts) > 2:
        have.append(platform.get("variant", ""))
    return have == parts


def choosePlatform(index: ParsedManifest, wanted: str, reference: str) -> dict[str, Any]:
    """
    The descriptor of C{index} for platform C{wanted}.
    """
    for descriptor in index.document.get("manifests", []):
        if _matches(descriptor, wanted):
            return dict(descriptor)
    names = sorted({"/".join(filter(None, [(d.get("platform") or {}).get(k, "")
                                           for k in ("os", "architecture", "variant")]))
                    for d in index.document.get("manifests", [])})
    raise model.ManifestUnknown(
        f"{reference}: no image for {wanted} in the index (it has {', '.join(names) or 'none'})")


class _Copy:
    #: How many times a blob is streamed before a dropped connection fails
    #: the copy.
    attempts = 3

    def __init__(self, source: IImageSource, destination: IImageDestination,
                 options: CopyOptions, progress: Progress) -> None:
        self.source = source
        self.destination = destination
        self.options = options
        self.progress = progress
        self.result = CopyResult()
        # A destination written in order (an archive) takes one at a time
        # whatever was asked.
        limit = 1 if destination.concurrency == 1 else (options.concurrency or destination.concurrency)
        self.semaphore = DeferredSemaphore(max(1, limit))
        self.blobs: dict[Digest, Deferred[None]] = {}

    def blob(self, descriptor: dict[str, Any]) -> Deferred[None]:
        digest = Digest.parse(descriptor["digest"])
        if digest not in self.blobs:
            self.blobs[digest] = self.semaphore.run(
                lambda: ensureDeferred(self._blob(digest, descriptor)))
        return self.blobs[digest]

    async def _blob(self, digest: Digest, descriptor: dict[str, Any]) -> None:
        size = descriptor["size"]
        name = str(digest)
        if await self.destination.hasBlob(digest, size):
            self.result.skipped.append(name)
            self.progress.finished(name, "skipped")
            return
        if await self.destination.mount(digest, self.source):
            self.result.mounted.append(name)
            self.progress.finished(name, "mounted")
            return
        self.progress.started(name, size)
        for attempt in range(1, self.attempts + 1):
            try:
                await self._stream(name, descriptor)
                break
            except NetworkError:
                # A dropped connection mid-blob: the destination kept
                # nothing of it; send it again from the start.
                if attempt == self.attempts:
                    raise
        self.result.copied.append(name)
        self.progress.finished(name, "copied")

    async def _stream(self, name: str, descriptor: dict[str, Any]) -> None:
        reader = await self.source.blob(descriptor)
        writer = await self.destination.blobWriter(descriptor)
        sent = 0

        def counted(count: int) -> None:
            nonlocal sent
            sent += count
            self.result.bytes += count
            self.progress.advanced(name, count)

        try:
            await reader.startProducing(_Counting(writer, counted))
        except BaseException:
            self.result.bytes -= sent
            early = getattr(writer, "failure", None)
            await writer.abort()
            if early is not None:
                early.raiseException()
            raise
        try:
            await writer.close()
        except BaseException:
            self.result.bytes -= sent
            raise

    async def manifest(self, manifest: Manifest, top: bool) -> Manifest:
        parsed = ParsedManifest(manifest.content, manifest.mediaType)
        if parsed.isIndex:
            if not self.options.all:
                wanted = self.options.platform or defaultPlatform()
                descriptor = choosePlatform(parsed, wanted, self.source.reference)
                child = await self.source.manifest(Digest.parse(descriptor["digest"]))
                return await self.manifest(child, top)
            if not self.destination.holdsIndexes:
                raise ClientError(f"{self.destination.reference}: holds one image, not an index "
                                  "(copy without --all, or with --platform)")
            for descriptor in parsed.document["manifests"]:
                child = await self.source.manifest(Digest.parse(descriptor["digest"]))
                await self.manifest(child, False)
        else:
            descriptors = [parsed.document["config"]] + [
                layer for layer in parsed.document.get("layers", [])
                if Digest.parse(layer["digest"]) in parsed.blobs
            ]
            await gatherResults([self.blob(d) for d in descriptors], consumeErrors=True)
        await self.destination.putManifest(manifest, top)
        return manifest


def _firstError(failure: Any) -> Any:
    from twisted.internet.defer import FirstError

    while failure.check(FirstError):
        failure = failure.value.subFailure
    return failure


async def copyImage(source: IImageSource, destination: IImageDestination,
                    options: CopyOptions = CopyOptions(),
                    progress: Progress | None = None) -> CopyResult:
    """
    Copy the image C{source} names to C{destination}.

    @return: what was done; its C{digest} is the manifest now at the
        destination's reference.
    @raise txregistry.errors.RegistryModelError: the first failure; the
        destination was aborted.
    """
    if options.preserveDigests and not destination.keepsManifests:
        raise ClientError(f"{destination.reference}: does not keep manifests, so cannot keep "
                          "their digests (drop --preserve-digests)")
    copy = _Copy(source, destination, options, progress or Progress())
    try:
        top = await source.manifest(None)
        stored = await copy.manifest(top, True)
        await destination.commit()
    except BaseException as e:
        # Let the blobs still on their way end (each cleans up after
        # itself) before the destination is taken back.
        await DeferredList(list(copy.blobs.values()), consumeErrors=True)
        await destination.abort()
        from twisted.python.failure import Failure

        failure = _firstError(Failure(e))
        failure.raiseException()
    copy.result.digest = stored.digest
    copy.result.mediaType = stored.mediaType
    return copy.result
