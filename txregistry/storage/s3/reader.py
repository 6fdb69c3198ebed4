# -*- test-case-name: tests.storage.test_s3 -*-
"""
L{S3Reader}: one ranged C{GET}, streamed to a consumer with backpressure
(L{txregistry.storage.streamed.StreamedReader}, which the Azure and GCS
drivers share).
"""

from __future__ import annotations

from typing import Any

from txregistry.storage.s3.client import S3Client
from txregistry.storage.streamed import StreamedReader

__all__ = ["S3Reader"]


class S3Reader(StreamedReader):
    """
    Streams C{length} bytes of C{key} from C{offset}: the C{GET} has a
    C{Range} and is conditional on the ETag the driver saw when it opened
    the reader, so a value replaced meanwhile fails the stream instead of
    mixing two values.
    """

    def __init__(
        self, client: S3Client, path: str, key: str, etag: str, offset: int, length: int
    ) -> None:
        async def get(first: int, last: int) -> Any:
            return await client.request(
                "GET",
                key,
                headers={"Range": f"bytes={first}-{last}", "If-Match": etag},
                expect=(200, 206),
                what=f"GET {path}",
            )

        super().__init__("S3", get, path, offset, length)
