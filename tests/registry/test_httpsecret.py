"""
L{StoredSecret}: the upload-signing key every instance on one storage
shares, and the check that tells an instance given another secret.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase

from txregistry.registry import layout
from txregistry.registry.httpsecret import SETTLE, SecretMismatch, StoredSecret
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.inmemory import InMemoryDriver
from txregistry.storage.middleware.forwarding import ForwardingDriver


class StoredSecretTests(TestCase):
    def setUp(self) -> None:
        self.driver = InMemoryDriver()

    async def test_configuredIsTheKey(self) -> None:
        """
        http.secret is the key, and the first instance records its HMAC.
        """
        self.assertEqual(await StoredSecret(self.driver, "abc").key(), b"abc")
        record = await self.driver.getContent(layout.HTTP_SECRET_CHECK)
        self.assertNotIn(b"abc", record)
        self.assertEqual(await StoredSecret(self.driver, "abc").key(), b"abc")

    async def test_otherSecretRefused(self) -> None:
        """
        An instance whose http.secret is not the one recorded fails, in one
        line naming the key and the record; deleting the record (after
        changing the secret everywhere) lets it start.
        """
        await StoredSecret(self.driver, "abc").key()
        failure = await self.assertFailure(StoredSecret(self.driver, "xyz").key(), SecretMismatch)
        self.assertTrue(str(failure).startswith("http.secret: "), str(failure))
        self.assertIn(layout.HTTP_SECRET_CHECK, str(failure))
        self.assertNotIn("\n", str(failure))
        await self.driver.delete(layout.HTTP_SECRET_CHECK)
        self.assertEqual(await StoredSecret(self.driver, "xyz").key(), b"xyz")

    async def test_generatedKept(self) -> None:
        """
        Without http.secret, one random secret is generated and kept: every
        later instance uses it.
        """
        first = await StoredSecret(self.driver, "").key()
        self.assertGreaterEqual(len(first), 32)
        self.assertEqual(await StoredSecret(self.driver, "").key(), first)
        self.assertEqual(await self.driver.getContent(layout.HTTP_SECRET), first)

    def test_startingTogetherAgree(self) -> None:
        """
        Two processes that both find no secret (the workers of one server
        starting at once) each write one, and both then sign with the one
        written last: an upload URL one hands out the other accepts.
        """
        clock = Clock()

        class Slow(ForwardingDriver):
            # Writes take time: the second process reads before the first
            # one's write has landed, and writes after the first has read
            # its own back.
            def putContent(self, path: str, content: bytes) -> Deferred[None]:
                return deferLater(clock, 0.05, lambda: None).addCallback(
                    lambda _: self.inner.putContent(path, content))

        slow = Slow(self.driver)
        first = StoredSecret(slow, "", clock=clock).key()
        clock.advance(0.01)
        keys = gatherResults([first, StoredSecret(slow, "", clock=clock).key()])
        for _ in range(int(SETTLE / 0.01) + 20):
            clock.advance(0.01)
        first, second = self.successResultOf(keys)
        self.assertEqual(first, second)

    async def test_readOnlyWritesNothing(self) -> None:
        """
        On read-only storage nothing is written: without a record, a key of
        the process's own.
        """
        key = await StoredSecret(self.driver, "", readOnly=True).key()
        self.assertTrue(key)
        await self.assertFailure(self.driver.getContent(layout.HTTP_SECRET), PathNotFoundError)
        self.assertEqual(await StoredSecret(self.driver, "abc", readOnly=True).key(), b"abc")
        await self.assertFailure(self.driver.getContent(layout.HTTP_SECRET_CHECK), PathNotFoundError)
