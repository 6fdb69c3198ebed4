# -*- test-case-name: tests.api.test_blobs -*-
"""
The byte ranges of the V2 API: C{Range: bytes=...} on blob reads and
C{Content-Range: <start>-<end>} on upload chunks.
"""

from __future__ import annotations

import re

from txregistry.api.errors import RANGE_INVALID, APIError

_BYTES_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")

#: Offsets beyond this are nonsense for any blob (and would be slow ints).
_MAX_DIGITS = 19


def parseByteRange(header: str, size: int) -> tuple[int, int] | None:
    """
    The (offset, length) a C{Range} header asks of a C{size}-byte blob, or
    L{None} to send the whole blob (several ranges are answered whole, as
    RFC 9110 allows).

    @raise APIError: C{RANGE_INVALID} (416) for a malformed or
        unsatisfiable range, with the C{Content-Range: bytes */size}
        header.
    """
    header = header.strip()
    if "," in header:
        return None
    match = _BYTES_RANGE.match(header)
    unsatisfiable = APIError(
        RANGE_INVALID,
        f"cannot satisfy Range {header!r} for {size} bytes",
        headers={"Content-Range": f"bytes */{size}"},
    )
    if match is None:
        raise unsatisfiable
    first, last = match.groups()
    if len(first) > _MAX_DIGITS or len(last) > _MAX_DIGITS or not (first or last):
        raise unsatisfiable
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise unsatisfiable
        start = max(0, size - suffix)
        return start, size - start
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise unsatisfiable
    end = min(end, size - 1)
    return start, end - start + 1


def parseChunkRange(header: str) -> tuple[int, int]:
    """
    The inclusive (start, end) of an upload chunk's C{Content-Range}.

    @raise APIError: C{RANGE_INVALID} (416) when malformed.
    """
    match = _CHUNK_RANGE.match(header.strip())
    if match is None or len(match.group(1)) > _MAX_DIGITS or len(match.group(2)) > _MAX_DIGITS:
        raise APIError(RANGE_INVALID, f"malformed Content-Range {header!r}")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise APIError(RANGE_INVALID, f"Content-Range {header!r} ends before it starts")
    return start, end
