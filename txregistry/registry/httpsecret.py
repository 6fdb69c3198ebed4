# -*- test-case-name: tests.registry.test_httpsecret -*-
"""
The key that signs upload URLs (C{http.secret}), shared by every instance
on one storage.

Instances behind one load balancer must sign alike, or an upload begun on
one is refused by the next.  So:

  - With C{http.secret} set, the first instance to start writes
    L{layout.HTTP_SECRET_CHECK}, an HMAC of a fixed string under the
    secret; an instance whose secret does not give the same HMAC refuses
    to start, in one line (L{SecretMismatch}).  Changing the secret on
    purpose: change it on every instance, then delete that file.

  - With C{http.secret} empty (the reference then draws a random secret
    per start, which breaks the uploads in flight at a restart and every
    upload across instances), a random secret is generated once and kept
    at L{layout.HTTP_SECRET} in the storage; every instance and every
    restart uses it.  Whoever can read the storage can read it: they can
    read every blob too.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from zope.interface import implementer

from txregistry.interfaces import ISecretSource
from txregistry.registry import layout
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageDriver

__all__ = ["SecretMismatch", "StoredSecret"]

_log = Logger()

#: Seconds between writing a generated secret and reading back the one
#: every process on the storage then uses.
SETTLE = 2.0

#: What the check file holds an HMAC of.
CHECKED = b"txregistry http.secret check v1"


class SecretMismatch(Exception):
    """
    This instance's C{http.secret} is not the one the others on its
    storage use.
    """


@implementer(ISecretSource)
class StoredSecret:
    """
    C{http.secret}, checked against the storage's record of it, or the
    secret generated and kept in the storage.

    @param readOnly: C{storage.maintenance.readonly}: nothing is written
        (a missing record is not made).
    """

    def __init__(self, driver: IStorageDriver, configured: str, readOnly: bool = False,
                 clock: IReactorTime | None = None, settle: float | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self._clock: IReactorTime = clock  # type: ignore[assignment]
        self._settle = SETTLE if settle is None else settle
        self._driver = driver
        self._configured = configured
        self._readOnly = readOnly
        self._lock = DeferredLock()
        self._resolved: bytes | None = None
        self._settling: Deferred[None] | None = None

    def stop(self) -> None:
        """
        Give up a generated secret's read-back under way (the registry is
        stopping): nothing is left waiting on the reactor.
        """
        if self._settling is not None:
            self._settling.cancel()

    def key(self) -> Deferred[bytes]:
        return Deferred.fromCoroutine(self._key())

    async def _key(self) -> bytes:
        # Resolved once; a failure (storage down) is tried again next time.
        async with self._lock:
            if self._resolved is None:
                self._resolved = await self._resolve()
            return self._resolved

    async def _read(self, path: str) -> bytes | None:
        try:
            return await self._driver.getContent(path)
        except PathNotFoundError:
            return None

    async def _resolve(self) -> bytes:
        if self._configured:
            key = self._configured.encode("utf-8")
            await self._check(key)
            return key
        return await self._generated()

    async def _check(self, key: bytes) -> None:
        expected = hmac.new(key, CHECKED, hashlib.sha256).hexdigest().encode()
        found = await self._read(layout.HTTP_SECRET_CHECK)
        if found is None and not self._readOnly:
            await self._driver.putContent(layout.HTTP_SECRET_CHECK, expected)
            found = await self._read(layout.HTTP_SECRET_CHECK)
        if found is not None and not hmac.compare_digest(found.strip(), expected):
            raise SecretMismatch(
                "http.secret: not the secret the other registries on this storage use (their"
                f" HMAC is at {layout.HTTP_SECRET_CHECK}): give every instance the same"
                " http.secret, or, having changed it on all of them, delete that file"
            )

    async def _generated(self) -> bytes:
        found = await self._read(layout.HTTP_SECRET)
        if found is None and not self._readOnly:
            await self._driver.putContent(layout.HTTP_SECRET, os.urandom(32).hex().encode())
            # Read back once the others starting at the same moment (the
            # worker processes of one server, instances started together)
            # have written theirs too: all then use what was written last.
            # Read at once, the first writer would keep its own secret
            # and sign URLs no other process accepts.
            if self._settle > 0:
                self._settling = deferLater(self._clock, self._settle, lambda: None)
                try:
                    await self._settling
                finally:
                    self._settling = None
            found = await self._read(layout.HTTP_SECRET)
            _log.info(
                "http.secret is empty: upload URLs are signed with a secret generated and kept"
                " at {path} in the storage, shared by every instance on it",
                path=layout.HTTP_SECRET,
            )
        if found is None:
            # Read-only storage without a record: this process's own.
            return os.urandom(32)
        return found.strip()
