"""
L{StoredSecret}: the upload-signing key every instance on one storage
shares, and the check that tells an instance given another secret.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from txregistry.registry import layout
from txregistry.registry.httpsecret import SecretMismatch, StoredSecret
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.inmemory import InMemoryDriver


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
