# -*- test-case-name: tests.client.test_copy -*-
"""
C{docker-archive:FILE[:REFERENCE]}: the tar file C{docker save} writes and
C{docker load} reads.  Its C{manifest.json} lists images by their config
file, C{RepoTags} and layer files; there is no registry manifest in it.

Read: the image's manifest is made (Docker's image manifest, layer media
types from their first bytes) and its blobs are ranges of the tar file.
Written: blobs are stored as C{blobs/sha256/<hex>} members as they come
(the layers as they are, compressed: C{docker load} decompresses them),
one at a time, into a temporary file that becomes FILE when
C{manifest.json} is written at the end.
"""

from __future__ import annotations

import json
import os
import tarfile
from typing import IO, Any

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from txregistry import errors as model
from txregistry.client.errors import ClientError
from txregistry.client.files import FileReader, temporaryName
from txregistry.client.references import ArchiveReference, parseRegistry
from txregistry.client.transports import IImageDestination, IImageSource
from txregistry.interfaces import IBlobReader, IBlobWriter, Manifest
from txregistry.registry.digest import Digest
from txregistry.registry.manifests import DOCKER_MANIFEST, ParsedManifest

__all__ = ["ArchiveSource", "ArchiveDestination"]

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
_LAYER_TYPES = (
    (b"\x1f\x8b", "application/vnd.docker.image.rootfs.diff.tar.gzip"),
    (b"\x28\xb5\x2f\xfd", "application/vnd.docker.image.rootfs.diff.tar.zstd"),
)
_TAR_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
_BLOCK = 512


def _repoTag(reference: str) -> str:
    """
    C{name:tag} as docker writes it in C{RepoTags} (Docker Hub's names
    short).
    """
    parsed = parseRegistry(reference)
    name = str(parsed.host) + "/" + parsed.repository
    if parsed.host == "docker.io":
        name = parsed.repository.removeprefix("library/")
    return f"{name}:{parsed.tag or 'latest'}"


def _hashMember(path: str, offset: int, size: int) -> tuple[Digest, bytes]:
    import hashlib

    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        head = f.read(min(size, 4))
        hasher.update(head)
        remaining = size - len(head)
        while remaining:
            chunk = f.read(min(remaining, 1024 * 1024))
            if not chunk:
                raise ClientError(f"docker-archive:{path}: a member ends early")
            hasher.update(chunk)
            remaining -= len(chunk)
    return Digest("sha256", hasher.hexdigest()), head


@implementer(IImageSource)
class ArchiveSource:
    """
    One image of a docker archive.
    """

    def __init__(self, reference: ArchiveReference) -> None:
        self.ref = reference
        self.reference = str(reference)
        self.tag = parseRegistry(reference.reference).tag if reference.reference else None
        self.path = reference.path
        self._members: dict[str, tuple[int, int]] = {}
        self._blobs: dict[Digest, tuple[int, int]] = {}
        self._manifest: Manifest | None = None

    def _index(self) -> Manifest:
        try:
            with tarfile.open(self.path, "r:") as archive:
                for member in archive:
                    if member.isfile():
                        self._members[os.path.normpath(member.name)] = (member.offset_data, member.size)
                entries = json.loads(self._readMember(archive, "manifest.json"))
        except (OSError, tarfile.TarError, ValueError) as e:
            raise ClientError(f"{self.reference}: not a docker archive ({e})") from None
        entry = self._choose(entries)
        configName = os.path.normpath(entry["Config"])
        offset, size = self._member(configName)
        configDigest, _ = _hashMember(self.path, offset, size)
        self._blobs[configDigest] = (offset, size)
        layers = []
        for name in entry.get("Layers") or []:
            offset, size = self._member(os.path.normpath(name))
            digest, head = _hashMember(self.path, offset, size)
            self._blobs[digest] = (offset, size)
            mediaType = next((t for magic, t in _LAYER_TYPES if head.startswith(magic)), _TAR_LAYER)
            layers.append({"mediaType": mediaType, "size": size, "digest": str(digest)})
        content = json.dumps({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": self._blobs[configDigest][1],
                       "digest": str(configDigest)},
            "layers": layers,
        }, indent=3).encode()
        return Manifest(Digest.of(content), DOCKER_MANIFEST, content)

    def _member(self, name: str) -> tuple[int, int]:
        try:
            return self._members[name]
        except KeyError:
            raise ClientError(f"{self.reference}: no {name} in the archive") from None

    def _readMember(self, archive: tarfile.TarFile, name: str) -> bytes:
        f = archive.extractfile(name)
        if f is None:
            raise ClientError(f"{self.reference}: no {name} in the archive")
        return f.read()

    def _choose(self, entries: Any) -> dict[str, Any]:
        if not isinstance(entries, list) or not entries:
            raise ClientError(f"{self.reference}: manifest.json lists no image")
        if self.ref.reference:
            wanted = _repoTag(self.ref.reference)
            for entry in entries:
                if wanted in (entry.get("RepoTags") or []):
                    return dict(entry)
            raise model.ManifestUnknown(f"{self.reference}: no image {wanted} in the archive",
                                        {"tag": wanted})
        if len(entries) != 1:
            raise ClientError(f"{self.reference}: {len(entries)} images in the archive; name one")
        return dict(entries[0])

    def manifest(self, digest: Digest | None = None) -> Deferred[Manifest]:
        return ensureDeferred(self._manifestOf(digest))

    async def _manifestOf(self, digest: Digest | None) -> Manifest:
        if self._manifest is None:
            self._manifest = await deferToThread(self._index)
        if digest is not None and digest != self._manifest.digest:
            raise model.ManifestUnknown(f"{self.reference}: no manifest {digest}")
        return self._manifest

    def blob(self, descriptor: dict[str, Any]) -> Deferred[IBlobReader]:
        digest = Digest.parse(descriptor["digest"])
        if digest not in self._blobs:
            return fail(model.BlobUnknown(str(digest)))
        offset, size = self._blobs[digest]
        return succeed(FileReader(self.path, offset, size, digest, f"{self.reference}@{digest}"))

    def close(self) -> Deferred[None]:
        return succeed(None)


class _MemberWriter:
    """
    One blob as a tar member of the archive being written.
    """

    def __init__(self, destination: "ArchiveDestination", name: str, size: int) -> None:
        self.destination = destination
        self.size = size
        self.written = 0
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        self.destination._queue(info.tobuf(format=tarfile.PAX_FORMAT))

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.destination._producer = producer

    def unregisterProducer(self) -> None:
        self.destination._producer = None

    def write(self, data: bytes) -> None:
        self.written += len(data)
        self.destination._queue(data)

    def close(self) -> Deferred[int]:
        return ensureDeferred(self._close())

    async def _close(self) -> int:
        if self.written != self.size:
            raise ClientError(f"{self.destination.reference}: {self.written} bytes, not {self.size}")
        self.destination._queue(b"\0" * (-self.size % _BLOCK))
        await self.destination._flushed()
        return self.size

    def abort(self) -> Deferred[None]:
        self.destination._failed = True
        return succeed(None)


@implementer(IImageDestination)
class ArchiveDestination:
    """
    Writes one image into a new docker archive (see the module).
    """

    concurrency = 1
    holdsIndexes = False
    keepsManifests = False

    highWater = 8 * 1024 * 1024

    def __init__(self, reference: ArchiveReference, defaultName: str | None = None) -> None:
        self.ref = reference
        self.reference = str(reference)
        self.path = reference.path
        name = reference.reference or defaultName
        self.repoTags = [_repoTag(name)] if name else []
        self.temporary = temporaryName(self.path)
        self._file: IO[bytes] | None = None
        self._written: set[Digest] = set()
        self._pending: list[bytes] = []
        self._pendingSize = 0
        self._writing: Deferred[None] | None = None
        self._waiters: list[Deferred[None]] = []
        self._producer: Any = None
        self._held = False
        self._failed = False
        self._image: ParsedManifest | None = None

    # The archive as one file written in order, on a thread.

    def _queue(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(data)
        self._pendingSize += len(data)
        if self._pendingSize > self.highWater and self._producer is not None and not self._held:
            self._held = True
            self._producer.pauseProducing()
        self._drain()

    def _writeBatch(self, batch: list[bytes]) -> None:
        if self._file is None:
            self._file = open(self.temporary, "wb")
        for data in batch:
            self._file.write(data)

    def _drain(self) -> None:
        if self._writing is not None or not self._pending:
            return
        batch, self._pending = self._pending, []
        size = sum(len(b) for b in batch)
        self._writing = deferToThread(self._writeBatch, batch)

        def written(result: Any) -> Any:
            self._writing = None
            self._pendingSize -= size
            if self._held and self._pendingSize <= self.highWater // 4 and self._producer is not None:
                self._held = False
                self._producer.resumeProducing()
            if self._pending:
                self._drain()
            else:
                waiters, self._waiters = self._waiters, []
                for waiter in waiters:
                    waiter.callback(result) if not hasattr(result, "raiseException") \
                        else waiter.errback(result)
            return None

        self._writing.addBoth(written)

    async def _flushed(self) -> None:
        if self._writing is None and not self._pending:
            return
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        self._drain()
        await waiter

    # IImageDestination

    def hasBlob(self, digest: Digest, size: int) -> Deferred[bool]:
        return succeed(digest in self._written)

    def mount(self, digest: Digest, source: IImageSource) -> Deferred[bool]:
        return succeed(False)

    def blobWriter(self, descriptor: dict[str, Any]) -> Deferred[IBlobWriter]:
        digest = Digest.parse(descriptor["digest"])
        self._written.add(digest)
        return succeed(_MemberWriter(self, f"blobs/{digest.algorithm}/{digest.encoded}",
                                     descriptor["size"]))  # type: ignore[arg-type]

    def putManifest(self, manifest: Manifest, top: bool) -> Deferred[None]:
        if top:
            self._image = ParsedManifest(manifest.content, manifest.mediaType)
        return succeed(None)

    def commit(self) -> Deferred[None]:
        return ensureDeferred(self._commit())

    async def _commit(self) -> None:
        if self._image is None:
            raise ClientError(f"{self.reference}: nothing was copied")
        document = self._image.document

        def member(descriptor: dict[str, Any]) -> str:
            digest = Digest.parse(descriptor["digest"])
            return f"blobs/{digest.algorithm}/{digest.encoded}"

        entry = {
            "Config": member(document["config"]),
            "RepoTags": self.repoTags or None,
            "Layers": [member(layer) for layer in document.get("layers", [])],
        }
        content = json.dumps([entry]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(content)
        info.mode = 0o644
        self._queue(info.tobuf(format=tarfile.PAX_FORMAT) + content
                    + b"\0" * (-len(content) % _BLOCK) + b"\0" * (2 * _BLOCK))
        await self._flushed()
        await deferToThread(self._finish)

    def _finish(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self.temporary, self.path)

    def abort(self) -> Deferred[None]:
        return ensureDeferred(self._abort())

    async def _abort(self) -> None:
        try:
            await self._flushed()
        except Exception:
            pass

        def remove() -> None:
            if self._file is not None:
                self._file.close()
                self._file = None
            try:
                os.unlink(self.temporary)
            except FileNotFoundError:
                pass

        await deferToThread(remove)
