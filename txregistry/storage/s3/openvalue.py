# -*- test-case-name: tests.storage.test_s3 -*-
"""
An I{open value}: a value being appended to, kept as ONE multipart upload
across appends, its state in the bucket.

A chunked registry upload is many appends to one value.  Completing a
multipart upload after each (and copying the whole value into the next)
costs the value's size per chunk; instead, an appended value stays open:

  - its full parts (equal within each L{TIER}, as L{partSize} says) are
    parts of one multipart upload at the value's key, uploaded once and
    never copied;

  - the bytes after the last full part (less than one part: the I{tail})
    are the object at the value's key itself, followed by L{NONCE} random
    bytes, and that object's metadata is the upload's state
    (L{OpenValue}): the upload id, how many parts, the value's size, the
    part size, and a hash chained over the parts' ETags.

So one conditional C{PUT} of the tail (C{If-Match} the ETag the appender
opened) commits an append, atomically: the parts it uploaded become part of
the value in the same write that makes the new tail visible.  (The nonce
makes every commit's ETag new: an ETag is the MD5 of the bytes, and an
append of whole parts leaves the tail as it was.)  A registry
restarted, or another instance, reads the state with one C{HEAD} and goes
on.  Reading or moving the value I{seals} it first: the tail becomes the
last part and the upload is completed (with C{If-Match} on the tail), so
that the object is the whole value; the next append then opens it again,
copying its full parts server-side once (see
L{txregistry.storage.s3.driver.S3Driver.openForAppend}).

The chained hash guards what S3 cannot: parts are addressed by number, so
a second appender racing the first (a misbehaving client, two instances)
could overwrite a part the first one committed.  At sealing, the parts S3
lists must chain to the committed hash and have the committed sizes, or
sealing fails: such an upload is refused, never completed with the wrong
bytes.  Parts numbered past the committed count (those of an appender that
died, or lost a race) are left out of the completion, which discards them.

C{list} and C{walk} report an open value's size as its tail's (a listing
carries no metadata); C{stat} reports the whole value's.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from txregistry.storage.errors import PathNotFoundError, StorageError
from txregistry.storage.s3.client import S3Error, elementText, parseXML
from txregistry.storage.s3.parameters import MAX_PART
from txregistry.storage.s3.reader import S3Reader

if TYPE_CHECKING:
    from txregistry.storage.s3.driver import ObjectInfo, S3Driver

__all__ = [
    "META_PREFIX",
    "NONCE",
    "STAGING",
    "metadataOf",
    "stagedReader",
    "stagingKey",
    "OpenValue",
    "Opened",
    "openForAppend",
    "seal",
    "TIER",
    "chainETags",
    "normalETag",
    "partSize",
    "partsBytes",
    "wholePartsIn",
]

#: Parts per size tier: the part size doubles after each.
TIER = 1000
#: The user metadata an open value's object carries (S3 lowercases it).
META_PREFIX = "x-amz-meta-txregistry-"
#: Random bytes after an open value's tail, so each commit has its ETag.
NONCE = 16
#: Below the root: writers' staging objects (L{stagingKey}), which no path
#: maps to (a path's names never begin with a dot), left out of listings.
STAGING = ".txregistry-staging/"


def partSize(chunkSize: int, index: int) -> int:
    """
    The size of the C{index}th (from 0) part of a value.
    """
    return min(MAX_PART, chunkSize << (index // TIER))


def partsBytes(chunkSize: int, count: int) -> int:
    """
    The bytes in a value's first C{count} parts.
    """
    total = 0
    for tier in range(0, count, TIER):
        total += min(TIER, count - tier) * partSize(chunkSize, tier)
    return total


def wholePartsIn(chunkSize: int, size: int) -> int:
    """
    How many full parts the first C{size} bytes of a value make.
    """
    count = done = 0
    while done + partSize(chunkSize, count) <= size:
        done += partSize(chunkSize, count)
        count += 1
    return count


def normalETag(etag: str) -> str:
    """
    An ETag without its quotes (S3 quotes them, and not always alike).
    """
    return etag.strip().strip('"')


def chainETags(chain: str, etags: Iterable[str]) -> str:
    """
    C{chain} extended by C{etags}, in order: what an open value's state
    records of its parts, so that an overwritten part shows.
    """
    for etag in etags:
        chain = hashlib.sha256(f"{chain}:{normalETag(etag)}".encode()).hexdigest()
    return chain


@dataclass(frozen=True)
class OpenValue:
    """
    The state of an open value, as its object's metadata carries it.

    @ivar uploadID: the multipart upload holding its full parts; C{""}
        while it has none.
    @ivar parts: how many full parts are committed (numbered from 1).
    @ivar size: the value's size: the parts and the tail.
    @ivar chunkSize: the first tier's part size, fixed when the value was
        opened (a later C{chunksize} applies to values opened later).
    @ivar chain: L{chainETags} over the committed parts' ETags.
    """

    uploadID: str
    parts: int
    size: int
    chunkSize: int
    chain: str

    @property
    def tailSize(self) -> int:
        return self.size - partsBytes(self.chunkSize, self.parts)

    def nextPartSize(self) -> int:
        return partSize(self.chunkSize, self.parts)

    def headers(self) -> dict[str, str]:
        """
        The metadata headers of a C{PUT} of the tail.
        """
        return {
            META_PREFIX + "upload": self.uploadID or "-",
            META_PREFIX + "parts": str(self.parts),
            META_PREFIX + "size": str(self.size),
            META_PREFIX + "chunk": str(self.chunkSize),
            META_PREFIX + "chain": self.chain or "-",
        }

    @classmethod
    def fromMetadata(cls, metadata: Mapping[str, str]) -> OpenValue | None:
        """
        The state in an object's (lowercased) headers, or L{None} for a
        plain object.

        @raise ValueError: for metadata that is ours but malformed.
        """
        if META_PREFIX + "size" not in metadata:
            return None
        upload = metadata.get(META_PREFIX + "upload", "-")
        chain = metadata.get(META_PREFIX + "chain", "-")
        state = cls(
            uploadID="" if upload == "-" else upload,
            parts=int(metadata.get(META_PREFIX + "parts", "0")),
            size=int(metadata[META_PREFIX + "size"]),
            chunkSize=int(metadata.get(META_PREFIX + "chunk", "0")),
            chain="" if chain == "-" else chain,
        )
        if state.parts < 0 or state.chunkSize <= 0 or state.tailSize < 0:
            raise ValueError(f"an open value's state that does not add up: {state}")
        if state.parts and not state.uploadID:
            raise ValueError("an open value with parts and no upload")
        return state


def stateOf(path: str, info: ObjectInfo) -> OpenValue | None:
    """
    The open value C{info} (a C{HEAD}) is, or L{None} for a plain object.

    @raise StorageError: for a state that does not add up.
    """
    try:
        state = OpenValue.fromMetadata(info.metadata)
    except ValueError as e:
        raise StorageError(f"{path}: {e}") from None
    if state is not None and state.tailSize + NONCE != info.size:
        raise StorageError(
            f"{path}: an open value of {info.size} bytes, not {state.tailSize + NONCE}"
        )
    return state


async def readTail(driver: S3Driver, key: str, info: ObjectInfo, state: OpenValue | None) -> bytes:
    """
    The tail of the value C{info} found: the whole object when it is plain,
    without its nonce when it is open.
    """
    size = info.size if state is None else state.tailSize
    if not size:
        return b""
    if state is None:
        return await driver.getBytes(key, info.etag)
    return await driver.getBytes(key, info.etag, (0, size - 1))


@dataclass(frozen=True)
class Opened:
    """
    What an appending writer goes on with.

    @ivar state: the value's state (a plain value below one part is an
        open value without parts).
    @ivar etag: the ETag of the value's object, for the conditional
        commit.
    @ivar tail: the bytes after the value's last full part.
    @ivar ownUpload: whether opening made C{state.uploadID} (copying a
        plain value's parts into it), so that a failed append aborts it.
    """

    state: OpenValue
    etag: str
    tail: bytes
    ownUpload: bool = False


async def openForAppend(driver: S3Driver, path: str, key: str) -> Opened:
    """
    Read the value at C{key} for an appending writer.  A plain value of at
    least one part is opened: its full parts copied server-side
    (C{UploadPartCopy}, conditional on its ETag) into a new multipart
    upload, its remainder read as the tail.

    @raise PathNotFoundError: when nothing is there.
    """
    info = await driver.head(key)
    if info is None:
        raise PathNotFoundError(path)
    state = stateOf(path, info)
    if state is not None:
        return Opened(state, info.etag, await readTail(driver, key, info, state))
    chunkSize = driver.parameters.chunkSize
    count = wholePartsIn(chunkSize, info.size)
    if count == 0:
        tail = await readTail(driver, key, info, None)
        return Opened(OpenValue("", 0, info.size, chunkSize, ""), info.etag, tail)
    uploadID = await driver.createUpload(key)
    try:
        copies = []
        start = 0
        for index in range(count):
            end = start + partSize(chunkSize, index)
            copies.append(driver.copyPart(key, uploadID, index + 1, key, start, end - 1, info.etag))
            start = end
        etags = await driver.gather(copies)
        tail = b""
        if start < info.size:
            tail = await driver.getBytes(key, info.etag, (start, info.size - 1))
    except BaseException:
        await driver.abortUpload(key, uploadID)
        raise
    state = OpenValue(uploadID, count, info.size, chunkSize, chainETags("", etags))
    return Opened(state, info.etag, tail, ownUpload=True)


async def listParts(driver: S3Driver, key: str, uploadID: str) -> dict[int, tuple[str, int]]:
    """
    The parts of an upload (number: ETag and size), page by page.
    """
    parts: dict[int, tuple[str, int]] = {}
    marker = ""
    while True:
        query = [("uploadId", uploadID)]
        if marker:
            query.append(("part-number-marker", marker))
        root = parseXML(await driver.client.call("GET", key, query=query, what=f"ListParts {key}"))
        for part in root.findall("Part"):
            parts[int(elementText(part, "PartNumber"))] = (
                normalETag(elementText(part, "ETag")), int(elementText(part, "Size", "0"))
            )
        marker = elementText(root, "NextPartNumberMarker")
        if elementText(root, "IsTruncated") != "true" or not marker:
            return parts


class _Sealed(Exception):
    """
    The value is plain now (a way out of the C{try} in L{seal}).
    """


#: Seals tried while the value keeps changing under them.
SEAL_ATTEMPTS = 10


async def seal(driver: S3Driver, path: str, key: str, info: ObjectInfo) -> ObjectInfo:
    """
    Make the value at C{key} (as C{info}, a C{HEAD}, found it) a plain
    object of all its bytes, if it is open: without parts, the tail put
    again without its nonce (C{If-Match}); with parts, the tail uploaded as
    the last part, the committed parts checked against the state (their
    number, sizes and ETag chain), the upload completed with C{If-Match}
    on the tail.

    @return: the sealed object's L{ObjectInfo}.
    @raise StorageError: when the committed parts were overwritten (an
        appender raced another): the value cannot be completed right.
    """
    for _ in range(SEAL_ATTEMPTS):
        state = stateOf(path, info)
        if state is None:
            return info
        try:
            tail = await readTail(driver, key, info, state)
            if state.parts == 0:
                await driver.putObject(key, tail, ifMatch=info.etag)
                raise _Sealed()
            listed = await listParts(driver, key, state.uploadID)
            etags = []
            for number in range(1, state.parts + 1):
                etag, size = listed.get(number, ("", -1))
                if size != partSize(state.chunkSize, number - 1):
                    raise StorageError(f"{path}: part {number} of its upload is missing or changed")
                etags.append(etag)
            if chainETags("", etags) != state.chain:
                raise StorageError(
                    f"{path}: the parts of its upload were overwritten (two appenders raced)"
                )
            parts = dict(enumerate(etags, 1))
            if tail:
                parts[state.parts + 1] = await driver.uploadPart(
                    key, state.uploadID, state.parts + 1, tail
                )
            await driver.completeUpload(key, state.uploadID, parts, ifMatch=info.etag)
        except _Sealed:
            pass
        except S3Error as e:
            if e.status not in (404, 409, 412):
                raise
        found = await driver.head(key)
        if found is None:
            raise PathNotFoundError(path)
        info = found
    raise StorageError(f"{path}: changed under {SEAL_ATTEMPTS} attempts to complete it")


def metadataOf(headers: Any) -> dict[str, str]:
    """
    The C{x-amz-meta-txregistry-*} headers of a response, lowercased.
    """
    return {
        name.decode("latin-1").lower(): values[0].decode("latin-1")
        for name, values in headers.getAllRawHeaders()
        if name.decode("latin-1").lower().startswith(META_PREFIX)
    }


def stagingKey(driver: S3Driver) -> str:
    """
    A fresh key for a writer's staging object, below L{STAGING}.
    """
    return driver.parameters.prefix + STAGING + uuid.uuid4().hex


async def stagedReader(driver: S3Driver, path: str, key: str, offset: int) -> S3Reader:
    """
    A stream of the staging object at C{key} from C{offset}.
    """
    info = await driver.head(key)
    if info is None:
        raise PathNotFoundError(path)
    return S3Reader(driver.client, path, key, info.etag, offset, info.size - offset)
