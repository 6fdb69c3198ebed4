# -*- test-case-name: tests.client.test_copy -*-
"""
Where images are copied from and to: a registry (C{docker://}), an OCI
image layout (C{oci:}) and the tar file C{docker save} writes
(C{docker-archive:}).  Each is an L{IImageSource} and an
L{IImageDestination}; L{txregistry.client.copy} moves images between any
two of them.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

from txregistry.interfaces import IBlobReader, IBlobWriter, Manifest
from txregistry.registry.digest import Digest

__all__ = ["IImageSource", "IImageDestination"]


class IImageSource(Interface):
    """
    Images to read: the manifest a reference names, and what it names.
    """

    reference = Attribute("What was opened, for messages (str).")
    tag = Attribute("The tag the reference names, or None.")

    def manifest(digest: Digest | None = None) -> Deferred[Manifest]:
        """
        The manifest C{digest}, or (L{None}) the one the reference names;
        its content checked against its digest.
        """

    def blob(descriptor: dict[str, Any]) -> Deferred[IBlobReader]:
        """
        A reader of the blob C{descriptor} describes, which checks the
        content against the descriptor's digest.
        """

    def close() -> Deferred[None]:
        """
        Let go of what was opened.
        """


class IImageDestination(Interface):
    """
    Where images are written.  Nothing written shows until L{commit}
    (a registry shows blobs at once, but no image names them until its
    manifest is put last).
    """

    reference = Attribute("What was opened, for messages (str).")
    concurrency = Attribute(
        "How many blobs it takes at once by default (int); 1 for one written "
        "in order (an archive), which never takes more.")
    holdsIndexes = Attribute("Whether it stores image indexes (bool).")
    keepsManifests = Attribute("Whether it stores manifests byte for byte (bool).")

    def hasBlob(digest: Digest, size: int) -> Deferred[bool]:
        """
        Whether it already has the blob (a copy skips it).
        """

    def mount(digest: Digest, source: IImageSource) -> Deferred[bool]:
        """
        Make the blob part of the destination without copying it, when
        C{source} is beside it (another repository of the same registry).

        @return: whether it did.
        """

    def blobWriter(descriptor: dict[str, Any]) -> Deferred[IBlobWriter]:
        """
        A writer of the blob C{descriptor} describes.
        """

    def putManifest(manifest: Manifest, top: bool) -> Deferred[None]:
        """
        Store a manifest after everything it names; C{top} for the one the
        destination's reference names (tagged).
        """

    def commit() -> Deferred[None]:
        """
        Make what was written visible (a layout's C{index.json}, an
        archive's rename).
        """

    def abort() -> Deferred[None]:
        """
        Remove what was written; what was there before stays.
        """
