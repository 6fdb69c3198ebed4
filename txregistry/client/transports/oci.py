# -*- test-case-name: tests.client.test_copy -*-
"""
C{oci:DIRECTORY[:TAG]}: the OCI image layout (image-spec's
C{image-layout.md}): blobs under C{blobs/<algorithm>/<encoded>},
C{index.json} naming the images by C{org.opencontainers.image.ref.name}.

Written atomically: into a new layout, everything goes to a directory
beside it that is renamed into place at the end; into an existing one,
each blob appears whole under its name (a temporary file renamed) and
C{index.json} is replaced last, so a failed copy leaves the layout's
images as they were.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from txregistry import errors as model
from txregistry.client.errors import ClientError
from txregistry.client.files import FileReader, FileWriter, temporaryName
from txregistry.client.references import LayoutReference
from txregistry.client.transports import IImageDestination, IImageSource
from txregistry.interfaces import IBlobReader, IBlobWriter, Manifest
from txregistry.registry.digest import Digest, InvalidDigest
from txregistry.registry.manifests import OCI_INDEX, declaredMediaType

__all__ = ["LayoutSource", "LayoutDestination", "REF_NAME"]

REF_NAME = "org.opencontainers.image.ref.name"
_LAYOUT = {"imageLayoutVersion": "1.0.0"}


def blobPath(root: str, digest: Digest) -> str:
    return os.path.join(root, "blobs", digest.algorithm, digest.encoded)


def _readIndex(root: str) -> dict[str, Any]:
    try:
        with open(os.path.join(root, "index.json"), "rb") as f:
            document = json.load(f)
    except FileNotFoundError:
        raise ClientError(f"oci:{root}: no index.json (not an OCI image layout)") from None
    except ValueError as e:
        raise ClientError(f"oci:{root}: index.json is not JSON ({e})") from None
    if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
        raise ClientError(f"oci:{root}: index.json has no manifests list")
    return document


@implementer(IImageSource)
class LayoutSource:
    """
    An image of an OCI layout.
    """

    def __init__(self, reference: LayoutReference) -> None:
        self.ref = reference
        self.reference = str(reference)
        self.tag = reference.tag
        self.root = reference.directory

    def _describe(self) -> dict[str, Any]:
        entries = _readIndex(self.root)["manifests"]
        if self.tag:
            for entry in entries:
                if (entry.get("annotations") or {}).get(REF_NAME) == self.tag:
                    return entry
            raise model.ManifestUnknown(f"{self.reference}: no image tagged {self.tag!r}",
                                        {"tag": self.tag})
        if len(entries) != 1:
            raise ClientError(f"{self.reference}: {len(entries)} images in the layout; name one by tag")
        return entries[0]

    def _read(self, digest: Digest) -> bytes:
        try:
            with open(blobPath(self.root, digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise model.ManifestUnknown(f"{self.reference}: no blob {digest}",
                                        {"digest": str(digest)}) from None

    def manifest(self, digest: Digest | None = None) -> Deferred[Manifest]:
        return ensureDeferred(self._manifest(digest))

    async def _manifest(self, digest: Digest | None) -> Manifest:
        mediaType = None
        if digest is None:
            entry = await deferToThread(self._describe)
            try:
                digest = Digest.parse(entry.get("digest"))  # type: ignore[arg-type]
            except InvalidDigest as e:
                raise ClientError(f"{self.reference}: index.json: {e}") from None
            mediaType = entry.get("mediaType")
        content = await deferToThread(self._read, digest)
        actual = Digest.of(content, digest.algorithm)
        if actual != digest:
            raise model.DigestInvalid(f"{self.reference}: blob {digest} has digest {actual}",
                                      str(digest), str(actual))
        return Manifest(digest, declaredMediaType(content) or mediaType or "", content)

    def blob(self, descriptor: dict[str, Any]) -> Deferred[IBlobReader]:
        digest = Digest.parse(descriptor["digest"])
        path = blobPath(self.root, digest)
        if not os.path.exists(path):
            return fail(model.BlobUnknown(str(digest)))
        return succeed(FileReader(path, 0, descriptor["size"], digest, f"{self.reference}@{digest}"))

    def close(self) -> Deferred[None]:
        return succeed(None)


@implementer(IImageDestination)
class LayoutDestination:
    """
    Writes into an OCI layout (see the module for how atomically).
    """

    concurrency = 4
    holdsIndexes = True
    keepsManifests = True

    def __init__(self, reference: LayoutReference, defaultTag: str | None = None) -> None:
        self.ref = reference
        self.reference = str(reference)
        self.tag = reference.tag or defaultTag
        self.final = reference.directory
        self.existing = os.path.exists(os.path.join(self.final, "oci-layout"))
        if not self.existing and os.path.exists(self.final) and (
                not os.path.isdir(self.final) or os.listdir(self.final)):
            raise ClientError(f"{self.reference}: exists and is not an OCI image layout")
        self.root = self.final if self.existing else temporaryName(self.final.rstrip("/"))
        self._top: Manifest | None = None

    def hasBlob(self, digest: Digest, size: int) -> Deferred[bool]:
        path = blobPath(self.root, digest)
        return deferToThread(lambda: os.path.exists(path) and os.path.getsize(path) == size)

    def mount(self, digest: Digest, source: IImageSource) -> Deferred[bool]:
        return succeed(False)

    def blobWriter(self, descriptor: dict[str, Any]) -> Deferred[IBlobWriter]:
        digest = Digest.parse(descriptor["digest"])
        return succeed(FileWriter(blobPath(self.root, digest), digest, descriptor["size"]))

    def putManifest(self, manifest: Manifest, top: bool) -> Deferred[None]:
        return ensureDeferred(self._putManifest(manifest, top))

    async def _putManifest(self, manifest: Manifest, top: bool) -> None:
        writer = FileWriter(blobPath(self.root, manifest.digest), manifest.digest,
                            len(manifest.content))
        writer.write(manifest.content)
        await writer.close()
        if top:
            self._top = manifest

    def _writeIndex(self) -> None:
        if self._top is None:
            raise ClientError(f"{self.reference}: nothing was copied")
        manifest = self._top
        entry: dict[str, Any] = {"mediaType": manifest.mediaType, "digest": str(manifest.digest),
                                 "size": len(manifest.content)}
        if self.tag:
            entry["annotations"] = {REF_NAME: self.tag}
        entries: list[dict[str, Any]] = []
        if self.existing:
            document = _readIndex(self.root)
            entries = [e for e in document["manifests"]
                       if not self.tag or (e.get("annotations") or {}).get(REF_NAME) != self.tag]
        else:
            document = {"schemaVersion": 2, "mediaType": OCI_INDEX}
            with open(os.path.join(self.root, "oci-layout"), "w") as f:
                json.dump(_LAYOUT, f)
        document["manifests"] = entries + [entry]
        path = os.path.join(self.root, "index.json")
        temporary = temporaryName(path)
        with open(temporary, "w") as f:
            json.dump(document, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
        if not self.existing:
            if os.path.isdir(self.final):
                os.rmdir(self.final)  # empty, checked when opened
            os.rename(self.root, self.final)

    def commit(self) -> Deferred[None]:
        return deferToThread(self._writeIndex)

    def abort(self) -> Deferred[None]:
        if self.existing:
            return succeed(None)
        return deferToThread(shutil.rmtree, self.root, True)
