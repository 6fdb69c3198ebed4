"""
The client over HTTPS: a C{twistd txregistry} child with C{http.tls} and a
CA made here (L{tests.test_tls.Authority}); the registry's certificate is
checked against the CA given, or not at all with C{insecure}, and a client
certificate is presented when the registry asks for one.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from tests.client.commands import txregistry
from tests.support import RegistryProcess
from tests.test_tls import Authority
from txregistry.client.errors import NetworkError
from txregistry.client.http import Session, TLSOptions
from txregistry.client.registry import Registry


class TLSTests(TestCase):
    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.ca = Authority(self.directory, "registry-ca")
        certificate, key = self.ca.issue("server")
        self.clients = Authority(self.directory, "client-ca")
        self.clientCertificate, self.clientKey = self.clients.issue("client", server=False)
        self.registry = RegistryProcess(self.directory, env={
            "REGISTRY_HTTP_TLS_CERTIFICATE": certificate,
            "REGISTRY_HTTP_TLS_KEY": key,
            "REGISTRY_HTTP_TLS_CLIENTCAS": f"[{self.clients.path}]",
            "REGISTRY_HTTP_TLS_CLIENTAUTH": "verify-client-cert-if-given",
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": os.path.join(self.directory, "storage"),
        })
        self.addCleanup(self.registry.stop)
        self.host = f"127.0.0.1:{self.registry.port}"
        self.patch(Session, "backoff", 0.01)

    def client(self, tls: TLSOptions) -> Registry:
        client = Registry(self.host, tls=tls, plainHTTP=False)
        self.addCleanup(client.close)
        return client

    async def test_trustedCA(self) -> None:
        client = self.client(TLSOptions(caFile=self.ca.path))
        self.assertTrue(client.url.startswith("https://"))
        self.assertEqual((await client.catalog(None, None)).items, [])

    async def test_untrusted(self) -> None:
        with self.assertRaises(NetworkError) as raised:
            await self.client(TLSOptions()).catalog(None, None)
        self.assertIn("certificate", str(raised.exception).lower())

    async def test_insecure(self) -> None:
        self.assertEqual((await self.client(TLSOptions(insecure=True)).catalog(None, None)).items, [])

    async def test_clientCertificate(self) -> None:
        client = self.client(TLSOptions(caFile=self.ca.path, certFile=self.clientCertificate,
                                        keyFile=self.clientKey))
        self.assertEqual((await client.catalog(None, None)).items, [])
        # One the registry's client CAs did not issue is refused: the
        # certificate is really presented.
        certificate, key = self.ca.issue("stranger", server=False)
        stranger = self.client(TLSOptions(caFile=self.ca.path, certFile=certificate, keyFile=key))
        with self.assertRaises(NetworkError):
            await stranger.catalog(None, None)

    async def test_command(self) -> None:
        status, out, err = await txregistry("catalog", "--ca-file", self.ca.path, self.host)
        self.assertEqual((status, out.getvalue(), err.getvalue()), (0, "", ""))
