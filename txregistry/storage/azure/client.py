# -*- test-case-name: tests.storage.test_azure -*-
"""
L{AzureClient}: Shared Key signed requests to one Blob Storage container,
over L{txregistry.storage.remote.RemoteStore}'s non-blocking, streaming
transport.

Why a signer of our own: Microsoft's SDK (azure-storage-blob, on
azure-core) signs inside its own pipeline, which sends through blocking
(requests) or asyncio (aiohttp) transports, never Twisted's, and its Shared
Key policy lives in a private module.  Shared Key itself is a short,
documented HMAC-SHA256 over a canonical form of the request
(learn.microsoft.com, "Authorize with Shared Key"), which L{sharedKey}
builds; the tests check it against azurite, Microsoft's own emulator,
which verifies it as the service does.  The signing is cheap (no payload
hash: Shared Key does not cover the body), so it runs in the reactor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from twisted.internet.defer import Deferred

from txregistry.storage.azure.parameters import AzureParameters
from txregistry.storage.remote import RemoteError, RemoteStore

__all__ = ["API_VERSION", "AzureClient", "AzureError", "blobSAS", "elementText", "sharedKey"]

#: The Blob service version the driver speaks (one azurite knows).
API_VERSION = "2021-08-06"

#: Error codes Azure sends for "try again" with other statuses.
_RETRY_CODES = frozenset({"ServerBusy", "OperationTimedOut", "InternalError"})

#: The standard headers Shared Key signs, in order, after the verb.
_SIGNED = (
    "content-encoding", "content-language", "content-length", "content-md5", "content-type",
    "date", "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range",
)


class AzureError(RemoteError):
    """
    Azure refused a request.
    """

    store = "Azure"


def elementText(element: ElementTree.Element, path: str, default: str = "") -> str:
    """
    The text of C{element}'s first descendant at C{path}.
    """
    child = element.find(path)
    if child is None or child.text is None:
        return default
    return child.text


def sharedKey(
    account: str, key: bytes, method: str, url: str, headers: Mapping[str, str]
) -> str:
    """
    The C{Authorization} header of a request, by Shared Key.

    @param headers: every header to be sent (C{x-ms-date} and
        C{x-ms-version} among them).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("content-length") == "0":
        lower["content-length"] = ""  # 2015-02-21 and later: empty for zero
    lines = [method.upper()] + [lower.get(h, "") for h in _SIGNED]
    canonical = "".join(
        f"{k}:{' '.join(lower[k].split())}\n" for k in sorted(lower) if k.startswith("x-ms-")
    )
    parts = urlsplit(url)
    resource = f"/{account}{parts.path or '/'}"
    query: dict[str, list[str]] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(k.lower(), []).append(v)
    for k in sorted(query):
        resource += f"\n{k}:{','.join(sorted(query[k]))}"
    toSign = "\n".join(lines) + "\n" + canonical + resource
    digest = hmac.new(key, toSign.encode("utf-8"), hashlib.sha256).digest()
    return f"SharedKey {account}:{base64.b64encode(digest).decode()}"


def blobSAS(
    account: str, key: bytes, container: str, blob: str, permissions: str, expiry: str
) -> str:
    """
    The query of a service SAS for one blob (C{sr=b}): what lets its
    holder read it without the key until C{expiry} (ISO 8601, UTC), signed
    with the account key as Microsoft documents ("Create a service SAS").
    """
    resource = f"/blob/{account}/{container}/{blob}"
    fields = [
        permissions, "", expiry, resource, "", "", "https,http", API_VERSION, "b", "", "",
        "", "", "", "", "",
    ]
    digest = hmac.new(key, "\n".join(fields).encode("utf-8"), hashlib.sha256).digest()
    query = [("sv", API_VERSION), ("sr", "b"), ("sp", permissions), ("se", expiry),
             ("spr", "https,http"), ("sig", base64.b64encode(digest).decode())]
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in query)


def parseXML(body: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(body)


class AzureClient:
    """
    Signed requests to one container.
    """

    def __init__(self, parameters: AzureParameters, reactor: Any) -> None:
        self.parameters = parameters
        self._store = RemoteStore(reactor, "Azure", parameters.skipVerify)
        self.containerURL = f"{parameters.serviceURL}/{quote(parameters.container)}"

    def url(self, blob: str | None, query: Sequence[tuple[str, str]] = ()) -> str:
        """
        The URL of C{blob} (or of the container, for L{None}), with C{query}.
        """
        url = self.containerURL + ("/" + quote(blob, safe="/~") if blob else "")
        if query:
            url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
        return url

    async def _sign(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> dict[str, str]:
        headers["x-ms-date"] = formatdate(usegmt=True)
        headers["x-ms-version"] = API_VERSION
        p = self.parameters
        headers["Authorization"] = sharedKey(p.accountName, p.key, method, url, headers)
        return headers

    async def _refusal(self, response: Any, what: str) -> AzureError:
        try:
            body = await response.content()
        except Exception:
            body = b""
        code = response.headers.getRawHeaders("x-ms-error-code", [""])[0]
        message = ""
        if body:
            try:
                root = parseXML(body)
            except ElementTree.ParseError:
                message = body[:200].decode("utf-8", "replace")
            else:
                code = elementText(root, "Code") or code
                message = elementText(root, "Message").split("\n")[0]
        return AzureError(response.code, code, message, what)

    async def request(
        self,
        method: str,
        blob: str | None,
        query: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        expect: Sequence[int] = (200,),
        what: str = "",
    ) -> Any:
        """
        L{RemoteStore.request}, signed; see there.
        """
        return await self._store.request(
            method, self.url(blob, query), self._sign, self._refusal, headers=headers,
            body=body, expect=expect, what=what or f"{method} {blob or 'container'}",
            retryCodes=_RETRY_CODES,
        )

    async def call(self, method: str, blob: str | None, **kwargs: Any) -> bytes:
        """
        L{request}, returning the whole (small) body.
        """
        response = await self.request(method, blob, **kwargs)
        body: bytes = await response.content()
        return body

    def close(self) -> Deferred[None]:
        return self._store.close()
