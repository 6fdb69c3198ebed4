# -*- test-case-name: tests.storage.test_azure -*-
"""
The Azure driver's check at start: is the container there, does the key
open it?

It blocks (the standard library's HTTP client), so it runs only where
blocking is right: while the registry starts, before the reactor runs.
What it finds wrong is said in one line.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from email.utils import formatdate

from txregistry.storage.azure.client import API_VERSION, AzureClient, sharedKey
from txregistry.storage.errors import StorageError

__all__ = ["checkContainer"]

#: Seconds to wait for the service at start.
TIMEOUT = 30


def checkContainer(client: AzureClient) -> None:
    """
    List one blob of the container with the configured key.

    @raise StorageError: when the service cannot be reached, the container
        does not exist or the key does not open it.
    """
    p = client.parameters
    url = client.url(None, [("restype", "container"), ("comp", "list"), ("maxresults", "1")])
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": API_VERSION}
    headers["Authorization"] = sharedKey(p.accountName, p.key, "GET", url, headers)
    where = f"storage.azure: container {p.container!r} at {p.serviceURL}"
    context = ssl._create_unverified_context() if p.skipVerify else None
    try:
        urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=TIMEOUT, context=context
        ).close()
    except urllib.error.HTTPError as e:
        code = e.headers.get("x-ms-error-code", "")
        if e.code == 404 or code == "ContainerNotFound":
            raise StorageError(f"{where}: no such container (create it first)") from None
        if e.code == 403:
            raise StorageError(
                f"{where}: the key is refused ({code or 'HTTP 403'}: check accountname "
                "and accountkey)"
            ) from None
        raise StorageError(f"{where}: HTTP {e.code} {code}".rstrip()) from None
    except OSError as e:
        raise StorageError(f"{where}: cannot be reached ({type(e).__name__}: {e})") from None
