# -*- test-case-name: tests.registry.test_store -*-
"""
The registry's service model: what a registry is, free of HTTP and of
storage paths.

This is the reference implementation's library model.  A namespace
holds repositories; a repository has manifests, tags, blobs and
referrers.  L{txregistry.registry} implements it over a storage driver;
the HTTP API (L{txregistry.api}) uses nothing else; every cross-cutting
concern (read-only mode, access control, notifications, quotas, a
pull-through cache) is a wrapper providing the same interfaces around
another provider (see L{txregistry.registry.forwarding}); and a client
library can provide them over HTTP.

Failures are the exceptions of L{txregistry.errors}.  Every method that
does I/O returns a L{Deferred}.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer, IPushProducer
from zope.interface import Attribute, Interface

from txregistry.registry.digest import Digest

__all__ = [
    "ANONYMOUS",
    "Caller",
    "BlobDescriptor",
    "CollectionReport",
    "Usage",
    "Manifest",
    "PutManifest",
    "Page",
    "INamespace",
    "IRepository",
    "IManifestService",
    "ITagService",
    "IBlobStore",
    "IBlobReader",
    "IBlobWriter",
    "IBlobUpload",
]


@dataclass(frozen=True)
class BlobDescriptor:
    """
    A stored blob: its digest and size.
    """

    digest: Digest
    size: int


@dataclass(frozen=True)
class Manifest:
    """
    A stored manifest: its exact bytes and the media type to serve them as.
    """

    digest: Digest
    mediaType: str
    content: bytes


@dataclass(frozen=True)
class PutManifest:
    """
    What storing a manifest made: its digest, and the digest of its
    C{subject} when it has one (the API answers it as C{OCI-Subject}).
    """

    digest: Digest
    subject: Digest | None


@dataclass(frozen=True)
class Page:
    """
    One page of a sorted listing.

    @ivar items: the entries, sorted.
    @ivar more: whether entries follow the last one.
    """

    items: list[str]
    more: bool


@dataclass
class CollectionReport:
    """
    What a collection removed (or, in a dry run, would remove).

    @ivar tags: C{(repository, tag)} of each tag a retention policy deleted.
    @ivar manifests: C{(repository, digest)} of each manifest deleted.
    @ivar blobs: each blob removed, with its size.
    @ivar spared: blobs that were not marked but were in use (online).
    @ivar unlinked: C{(repository, digest)} of each link to a removed
        blob that was removed with it (for caches to forget).
    """

    dryRun: bool
    tags: list[tuple[str, str]] = field(default_factory=list)
    manifests: list[tuple[str, Digest]] = field(default_factory=list)
    blobs: list[tuple[Digest, int]] = field(default_factory=list)
    spared: list[Digest] = field(default_factory=list)
    unlinked: list[tuple[str, Digest]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.blobs)

    def summary(self) -> str:
        verb = "would remove" if self.dryRun else "removed"
        tags = f"{len(self.tags)} tags, " if self.tags else ""
        return (f"{verb} {tags}{len(self.manifests)} manifests and {len(self.blobs)} blobs "
                f"({self.bytes} bytes)")



@dataclass(frozen=True)
class Usage:
    """
    What one repository holds: the bytes and number of the blobs it links
    (each counted once), its tags, and the limits a quota sets (L{None}:
    none).
    """

    repository: str
    bytes: int
    blobs: int
    tags: int
    maxBytes: int | None = None
    maxTags: int | None = None
    quota: str | None = None


@dataclass(frozen=True)
class Caller:
    """
    Who a call is made for and how it reached the registry: what the
    layers that depend on the caller (the access policy, notifications,
    quotas) know of a request, with nothing of HTTP's machinery in it.

    @ivar name: the actor's account name; empty for an anonymous caller.
    @ivar requestID: unique per request (notifications name it).
    @ivar address: the client's address (the first C{X-Forwarded-For}
        entry behind a proxy).
    @ivar host: the host the client addressed (its C{Host} header).
    @ivar origin: C{scheme://host[:port]} the client addressed, from which
        the registry's own URLs are made.
    @ivar method: what the client asked (C{GET}, C{PUT}, ...).
    @ivar userAgent: the client's C{User-Agent}.
    @ivar ns: the registry the client names its repository in, when it
        asks a mirror (containerd's C{?ns=docker.io}); empty otherwise.
    @ivar warnings: what the layers tell the client of the answer (a
        pull-through cache serving stale content), one line each: the API
        sends each as a C{Warning} header.  The one mutable part: each
        request's caller is its own.
    """

    name: str = ""
    requestID: str = ""
    address: str = ""
    host: str = ""
    origin: str = ""
    method: str = ""
    userAgent: str = ""
    ns: str = ""
    warnings: list[str] = field(default_factory=list, compare=False, hash=False, repr=False)


#: The caller of work the registry does on its own (purging uploads, a
#: collection), and of a request nobody logged in for.
ANONYMOUS = Caller()


class INamespace(Interface):
    """
    Every repository of one registry.
    """

    def actingFor(caller: Caller) -> "INamespace":
        """
        This namespace as C{caller} uses it: what a layer that depends on
        the caller (a policy filtering the catalog, notifications naming
        the actor) binds to.  No I/O, and cheap: the API asks once per
        request.
        """

    def repository(name: str) -> "IRepository":
        """
        The repository called C{name}; it need not exist yet (pushing
        makes it).  No I/O.

        @raise txregistry.errors.NameInvalid: for a malformed name.
        """

    def catalog(n: int | None, last: str | None) -> Deferred[Page]:
        """
        One page of the names of the repositories that hold manifests.

        @param n: at most this many; L{None} for all.
        @param last: the page starts after this name.
        @return: L{Deferred} of L{Page}.
        """

    def collectGarbage(
        deleteUntagged: bool = False, dryRun: bool = False, online: bool = False,
        progress: Any = None,
    ) -> Deferred[CollectionReport]:
        """
        Remove every blob no manifest revision needs (and, with
        C{deleteUntagged}, every manifest no tag reaches).

        @param online: whether writes may run meanwhile: blobs in use
            within the grace window are spared (see
            L{txregistry.registry.collection}).
        @param progress: called with (repositories marked, of how many,
            the one being marked), or L{None}.
        @return: L{Deferred} of the L{CollectionReport}.
        """

    def purgeUploads(olderThan: float, dryRun: bool = False) -> Deferred[list[str]]:
        """
        Remove every upload whose data was last written before
        C{olderThan} (a POSIX time stamp).

        @return: L{Deferred} of the list of upload ids removed (or, with
            C{dryRun}, that would be), as C{"<repository>/<id>"}.
        """


class IRepository(Interface):
    """
    One repository.
    """

    name = Attribute("The repository's name (str).")

    def manifests() -> "IManifestService":
        """
        The repository's manifests.
        """

    def tags() -> "ITagService":
        """
        The repository's tags.
        """

    def blobs() -> "IBlobStore":
        """
        The repository's blobs and uploads.
        """

    def usage() -> Deferred[Usage]:
        """
        @return: L{Deferred} of the repository's L{Usage}.
        """

    def referrers(subject: Digest) -> Deferred[list[dict[str, Any]]]:
        """
        The descriptors (JSON objects) of the manifests whose C{subject} is
        C{subject}, sorted by digest.

        @return: L{Deferred} of a list of dicts; empty if there are none.
        """


class IManifestService(Interface):
    """
    The manifests of one repository, by digest.
    """

    def exists(digest: Digest) -> Deferred[bool]:
        """
        @return: L{Deferred} of whether the repository has the manifest.
        """

    def get(digest: Digest) -> Deferred[Manifest]:
        """
        @return: L{Deferred} of the L{Manifest}.
        @raise txregistry.errors.ManifestUnknown: (as the Deferred's failure).
        """

    def put(
        content: bytes, mediaType: str | None, digest: Digest | None = None
    ) -> Deferred[PutManifest]:
        """
        Validate and store a manifest.

        @param mediaType: the type the content was given as (the request's
            C{Content-Type}), or L{None}.
        @param digest: the digest the caller named it by, which the content
            must match; L{None} when pushed by tag.
        @return: L{Deferred} of L{PutManifest}.
        @raise txregistry.errors.ManifestInvalid: malformed or unsupported.
        @raise txregistry.errors.DigestInvalid: C{digest} does not match.
        @raise txregistry.errors.ManifestBlobUnknown: it names blobs or
            manifests the repository lacks.
        """

    def delete(digest: Digest) -> Deferred[None]:
        """
        Remove the manifest, every tag naming it and its entry among its
        subject's referrers.

        @return: L{Deferred} of L{None}.
        @raise txregistry.errors.ManifestUnknown:
        """


class ITagService(Interface):
    """
    The tags of one repository.
    """

    def get(tag: str) -> Deferred[Digest]:
        """
        @return: L{Deferred} of the L{Digest} the tag names.
        @raise txregistry.errors.ManifestUnknown:
        """

    def tag(tag: str, digest: Digest) -> Deferred[None]:
        """
        Make C{tag} name the manifest C{digest}.

        @return: L{Deferred} of L{None}.
        @raise txregistry.errors.TagInvalid:
        """

    def untag(tag: str) -> Deferred[None]:
        """
        Remove C{tag} (the manifest stays).

        @return: L{Deferred} of L{None}.
        @raise txregistry.errors.ManifestUnknown: no such tag.
        """

    def list(n: int | None, last: str | None) -> Deferred[Page]:
        """
        One page of the repository's tags, sorted.

        @return: L{Deferred} of L{Page}.
        @raise txregistry.errors.NameUnknown: the repository holds no
            manifests.
        """

    def lookup(digest: Digest) -> Deferred[builtins.list[str]]:
        """
        @return: L{Deferred} of the sorted tags that name C{digest}.
        """

    def pushTimes(tags: builtins.list[str] | None = None) -> Deferred[dict[str, float]]:
        """
        When each tag was last made to name a manifest: what a person
        browsing a repository sorts its tags by and calls its last push.

        @param tags: only these (a page of them), which costs only them;
            L{None} for every tag, as sorting by time needs (which costs
            every tag).
        @return: L{Deferred} of a mapping of tag to POSIX time (a tag of
            C{tags} that does not exist is left out).
        @raise txregistry.errors.NameUnknown: the repository holds no
            manifests.
        """


class IBlobReader(IPushProducer):
    """
    A blob's content (or a range of it) as a producer: it writes to its
    consumer and honours the consumer's C{pauseProducing}.
    """

    length = Attribute("How many bytes it produces (int).")

    def startProducing(consumer: IConsumer) -> Deferred[None]:
        """
        @return: L{Deferred} that fires when everything was written.
        """


class IBlobWriter(IConsumer):
    """
    Bytes going into a blob or an upload: register a producer, write,
    then L{close} or L{abort}.  Pauses its producer while it falls behind.
    """

    def close() -> Deferred[int]:
        """
        Everything is written: make it part of the blob or upload.

        @return: L{Deferred} of the size of the upload (or blob) now.
        @raise txregistry.errors.DigestInvalid: (a blob written whole) the
            content does not match its digest; nothing is stored.
        """

    def abort() -> Deferred[None]:
        """
        Drop what was written; the upload is as it was before.

        @return: L{Deferred} of L{None}.
        """


class IBlobUpload(Interface):
    """
    A resumable upload of one blob into one repository.
    """

    id = Attribute("The upload's id (str).")
    startedAt = Attribute("When it began (POSIX time), or L{None} if unknown.")
    size = Attribute("How many bytes it holds (int), as of when it was looked up.")

    def append(start: int | None = None, length: int | None = None) -> Deferred[IBlobWriter]:
        """
        A writer for the next chunk; until it is closed or aborted, the
        upload takes no other chunk.

        @param start: the offset the caller says the chunk starts at,
            which must be the upload's size; L{None} to append wherever
            it ends.
        @param length: how many bytes the chunk has, when the caller knows
            (a layer such as a quota may refuse before any is written).
        @return: L{Deferred} of an L{IBlobWriter}.
        @raise txregistry.errors.RangeMismatch:
        @raise txregistry.errors.BlobUploadUnknown:
        """

    def commit(digest: Digest) -> Deferred[BlobDescriptor]:
        """
        Check the upload's content against C{digest} and make it the blob
        C{digest} of the repository.  Either way the upload is gone after.

        @return: L{Deferred} of the L{BlobDescriptor}.
        @raise txregistry.errors.DigestInvalid:
        @raise txregistry.errors.BlobUploadUnknown:
        """

    def cancel() -> Deferred[None]:
        """
        Throw the upload away.

        @return: L{Deferred} of L{None}.
        @raise txregistry.errors.BlobUploadUnknown:
        """


class IBlobStore(Interface):
    """
    The blobs of one repository, and their uploads.
    """

    def stat(digest: Digest) -> Deferred[BlobDescriptor]:
        """
        @return: L{Deferred} of the L{BlobDescriptor}.
        @raise txregistry.errors.BlobUnknown:
        """

    def reader(
        digest: Digest, offset: int = 0, length: int | None = None
    ) -> Deferred[IBlobReader]:
        """
        @return: L{Deferred} of an L{IBlobReader} of C{length} bytes (all
            that follows when L{None}) from C{offset}.
        @raise txregistry.errors.BlobUnknown: the content went away.
        """

    def redirectURL(digest: Digest, method: str = "GET") -> Deferred[str | None]:
        """
        @return: L{Deferred} of a URL that serves the blob's content
            directly (an object store's signed URL), or L{None} to serve it
            through L{reader}.
        """

    def create() -> Deferred[IBlobUpload]:
        """
        Begin an upload.

        @return: L{Deferred} of the L{IBlobUpload}.
        """

    def resume(uploadID: str) -> Deferred[IBlobUpload]:
        """
        @return: L{Deferred} of the L{IBlobUpload} called C{uploadID}.
        @raise txregistry.errors.BlobUploadUnknown:
        """

    def put(digest: Digest, length: int | None = None) -> Deferred[IBlobWriter]:
        """
        A writer for a whole blob given in one go; its C{close} checks the
        content against C{digest} and stores it.

        @param length: the blob's size, when the caller knows it.

        @return: L{Deferred} of an L{IBlobWriter}.
        """

    def mount(digest: Digest, source: str) -> Deferred[BlobDescriptor | None]:
        """
        Make the blob C{digest} of repository C{source} part of this one,
        without copying it.

        @return: L{Deferred} of the L{BlobDescriptor}, or of L{None} when
            C{source} has no such blob (or no such valid name): the
            caller then uploads it.
        """

    def delete(digest: Digest) -> Deferred[None]:
        """
        Remove the blob from this repository (its content stays for others
        until garbage collection).

        @return: L{Deferred} of L{None}.
        @raise txregistry.errors.BlobUnknown:
        """
