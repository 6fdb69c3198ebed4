# -*- test-case-name: tests.api.test_uploadstate -*-
"""
The C{_state} of upload URLs, signed with C{http.secret}.

Every C{Location} of an upload carries C{_state}, an HMAC-SHA256 under the
registry's secret of the repository and the upload id, as the reference
registry's does; every instance sharing the secret accepts it, so an upload
goes on through any of them.  A request bearing a C{_state} that does not
verify (forged, tampered, for another repository or upload, or signed with
another secret: instances behind one proxy that do not share
C{http.secret}) is refused with C{BLOB_UPLOAD_INVALID}, as the reference
refuses it.  A request without C{_state} is served on the upload id alone
(an unguessable capability, 80 random bits): clients that build the URL
from C{Docker-Upload-UUID} keep working.

The secret comes from an L{txregistry.interfaces.ISecretSource}: C{http.secret}, or the one
generated once and kept in storage when C{http.secret} is empty (see
L{txregistry.registry.httpsecret}).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from txregistry.api.checks import queryArgument
from txregistry.api.errors import BLOB_UPLOAD_INVALID, APIError
from txregistry.interfaces import ISecretSource
from txregistry.web.request import RegistryRequest

__all__ = ["FixedSecret", "UploadStates"]

_log = Logger()

#: The query argument, named as the reference names it.
STATE = "_state"


@implementer(ISecretSource)
class FixedSecret:
    """
    A key known at once.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def key(self) -> Deferred[bytes]:
        d: Deferred[bytes] = Deferred()
        d.callback(self._secret)
        return d


class UploadStates:
    """
    Signs and checks the C{_state} of upload URLs.
    """

    def __init__(self, source: ISecretSource) -> None:
        self._source = source

    async def _mac(self, name: str, uploadID: str) -> str:
        key = await self._source.key()
        mac = hmac.new(key, f"{name}\n{uploadID}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    async def sign(self, name: str, uploadID: str) -> str:
        """
        @return: the C{_state} for the upload C{uploadID} of C{name}.
        """
        return await self._mac(name, uploadID)

    async def check(self, request: RegistryRequest, name: str, uploadID: str) -> None:
        """
        Refuse C{request} if it bears a C{_state} that is not this upload's
        under this registry's secret.

        @raise APIError: C{BLOB_UPLOAD_INVALID}.
        """
        given = queryArgument(request, STATE.encode())
        if given is None:
            return
        if not hmac.compare_digest(given.encode("utf-8", "replace"),
                                   (await self._mac(name, uploadID)).encode()):
            _log.warn(
                "refused an upload URL whose _state does not verify for {name} upload"
                " {uploadID} (tampered, or signed by an instance with another http.secret)",
                name=name, uploadID=uploadID,
            )
            raise APIError(BLOB_UPLOAD_INVALID, "the upload's _state does not verify")
