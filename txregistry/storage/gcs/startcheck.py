# -*- test-case-name: tests.storage.test_gcs -*-
"""
The GCS driver's check at start: are there credentials, is the bucket
there, do they open it?

It blocks (google-auth's token fetch, the standard library's HTTP
client), so it runs only where blocking is right: while the registry
starts, before the reactor runs.  What it finds wrong is said in one line.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import quote

from txregistry.storage.errors import StorageError
from txregistry.storage.gcs.client import GCSClient

__all__ = ["checkBucket"]

#: Seconds to wait for GCS at start.
TIMEOUT = 30


def checkBucket(client: GCSClient) -> None:
    """
    List one object of the bucket with the configured credentials.

    @raise StorageError: when there are none, GCS cannot be reached, the
        bucket does not exist or the credentials do not open it.
    """
    p = client.parameters
    headers: dict[str, str] = {}
    if not p.anonymous:
        try:
            client.refreshed().apply(headers)
        except StorageError:
            raise
        except Exception as e:
            raise StorageError(
                f"storage.gcs: the credentials are refused ({str(e).splitlines()[0]})"
            ) from None
    url = f"{client.objectsURL}?maxResults=1&prefix={quote(p.prefix, safe='')}"
    where = f"storage.gcs: bucket {p.bucket!r} at {p.endpoint}"
    try:
        urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT).close()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise StorageError(f"{where}: no such bucket (create it first)") from None
        if e.code in (401, 403):
            raise StorageError(f"{where}: the credentials are refused (HTTP {e.code})") from None
        raise StorageError(f"{where}: HTTP {e.code}") from None
    except OSError as e:
        raise StorageError(f"{where}: cannot be reached ({type(e).__name__}: {e})") from None
