# -*- test-case-name: tests.storage.test_gcs -*-
"""
L{GCSClient}: OAuth 2 authorized requests to GCS's JSON API, over
L{txregistry.storage.remote.RemoteStore}'s non-blocking, streaming
transport.

Credentials are google-auth's (Google's own library: service account keys
from C{keyfile} or C{credentials}, else Application Default Credentials:
C{GOOGLE_APPLICATION_CREDENTIALS}, gcloud's, the metadata server), so they
behave as every other Google tool does; fetching and refreshing a token
blocks (google-auth's urllib3 transport), so it runs on the driver's
L{BlockingPool}, once per token, never in the reactor.  The requests
themselves are treq's.  With C{STORAGE_EMULATOR_HOST} set (an emulator,
as for Google's client libraries) requests go unsigned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import Deferred, DeferredLock

from txregistry.storage.blocking import BlockingPool
from txregistry.storage.errors import StorageError
from txregistry.storage.gcs.parameters import GCSParameters
from txregistry.storage.remote import RemoteError, RemoteStore

__all__ = ["GCSClient", "GCSError", "SCOPE"]

SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"

_RETRY_CODES = frozenset({"rateLimitExceeded", "backendError", "internalError"})


class GCSError(RemoteError):
    """
    GCS refused a request.
    """

    store = "GCS"


class GCSClient:
    """
    Requests to one bucket.
    """

    def __init__(self, parameters: GCSParameters, reactor: Any, pool: BlockingPool) -> None:
        self.parameters = parameters
        self._pool = pool
        self._store = RemoteStore(reactor, "GCS")
        self._credentials: Any = None
        self._refreshing = DeferredLock()
        bucket = quote(parameters.bucket, safe="")
        self.objectsURL = f"{parameters.endpoint}/storage/v1/b/{bucket}/o"
        self.uploadURL = f"{parameters.endpoint}/upload/storage/v1/b/{bucket}/o"

    # Credentials

    def loadCredentials(self) -> Any:
        """
        The configured credentials, blocking (it may read files or ask the
        metadata server).

        @raise StorageError: when there are none.
        """
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
        from google.oauth2 import service_account

        p = self.parameters
        try:
            if p.keyfile:
                return service_account.Credentials.from_service_account_file(
                    p.keyfile, scopes=[SCOPE]
                )
            if p.credentials is not None:
                return service_account.Credentials.from_service_account_info(
                    dict(p.credentials), scopes=[SCOPE]
                )
            credentials, _ = google.auth.default(scopes=[SCOPE])
            return credentials
        except (DefaultCredentialsError, ValueError, OSError) as e:
            raise StorageError(
                f"storage.gcs: no usable credentials ({str(e).splitlines()[0]})"
            ) from None

    def refreshed(self) -> Any:
        """
        Credentials with a valid token, blocking.
        """
        import urllib3
        from google.auth.transport.urllib3 import Request

        if self._credentials is None:
            self._credentials = self.loadCredentials()
        if not self._credentials.valid:
            self._credentials.refresh(Request(urllib3.PoolManager()))
        return self._credentials

    async def _authorize(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> dict[str, str]:
        if self.parameters.anonymous:
            return headers
        if self._credentials is None or not self._credentials.valid:
            await self._refreshing.run(lambda: self._pool.run(self.refreshed))
        self._credentials.apply(headers)
        return headers

    async def _refusal(self, response: Any, what: str) -> GCSError:
        try:
            body = await response.content()
        except Exception:
            body = b""
        code = message = ""
        try:
            error = json.loads(body)["error"]
            message = str(error.get("message", ""))
            reasons = error.get("errors") or [{}]
            code = str(reasons[0].get("reason", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            message = body[:200].decode("utf-8", "replace")
        return GCSError(response.code, code, message, what)

    # Requests

    def objectURL(self, name: str, suffix: str = "") -> str:
        return f"{self.objectsURL}/{quote(name, safe='')}{suffix}"

    async def request(
        self,
        method: str,
        url: str,
        query: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        expect: Sequence[int] = (200,),
        what: str = "",
    ) -> Any:
        """
        L{RemoteStore.request}, authorized; see there.
        """
        if query:
            url += ("&" if "?" in url else "?") + "&".join(
                f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query
            )
        return await self._store.request(
            method, url, self._authorize, self._refusal, headers=headers, body=body,
            expect=expect, what=what or method, retryCodes=_RETRY_CODES,
        )

    async def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """
        L{request}, returning the answer's JSON (L{None} for none).
        """
        response = await self.request(method, url, **kwargs)
        body = await response.content()
        return json.loads(body) if body else None

    def close(self) -> Deferred[None]:
        return self._store.close()
