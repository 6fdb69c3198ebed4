"""
Tests for L{txregistry.tls}: C{twistd txregistry} serving HTTPS, and real
TLS handshakes against it from Python's C{ssl}, with a CA, server and
client certificates made here.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import ipaddress
import os
import signal
import ssl
import time
from typing import Any

from twisted.trial.unittest import TestCase

from tests import test_plugin
from tests.support import RegistryProcess
from tests.test_plugin import _waitFor


class Authority:
    """
    A CA made for a test, that issues server and client certificates.
    """

    def __init__(self, directory: str, name: str, issuer: Authority | None = None) -> None:
        """
        @param issuer: the CA that signs this one, which is then an
            intermediate; self-signed when L{None}.
        """
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(issuer.name if issuer else self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(issuer.key if issuer else self.key, hashes.SHA256())
        )
        self.path = self._write(f"{name}.crt", self._pem(self.certificate))

    def _pem(self, certificate: Any) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return certificate.public_bytes(serialization.Encoding.PEM)

    def _write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def issue(self, name: str, server: bool = True) -> tuple[str, str]:
        """
        A certificate for 127.0.0.1 (C{server}) or a client, and its key.

        @return: the paths of their PEM files, C{name}.crt and C{name}.key.
        """
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
                ]),
                critical=False,
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        keyPEM = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return self._write(f"{name}.crt", self._pem(certificate)), self._write(f"{name}.key", keyPEM)


class Refused(Exception):
    """
    The registry refused the connection (during or right after the
    handshake).
    """


def get(
    port: int,
    ca: str,
    client: tuple[str, str] | None = None,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ciphers: str | None = None,
) -> tuple[int, str, str, bytes]:
    """
    C{GET /v2/} over HTTPS, verifying the registry with C{ca}.

    @param client: the client's certificate and key files, if any.
    @return: the status, the TLS version and cipher negotiated, and the
        SHA-256 of the registry's certificate.
    @raise Refused: when the handshake or the request fails for TLS.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca)
    context.minimum_version = minimum
    context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if client is not None:
        context.load_cert_chain(*client)
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("GET", "/v2/")
        response = connection.getresponse()
        response.read()
        sock: Any = connection.sock
        version, cipher = sock.version(), sock.cipher()[0]
        fingerprint = hashlib.sha256(sock.getpeercert(binary_form=True)).digest()
        return response.status, version, cipher, fingerprint
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected) as e:
        raise Refused(str(e)) from None
    finally:
        connection.close()


def fingerprint(path: str) -> bytes:
    with open(path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).digest()


class TLSRegistryTests(TestCase):
    """
    C{twistd txregistry} with C{http.tls}, and clients that handshake with
    it.
    """

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.ca = Authority(self.directory, "registry-ca")
        self.certificate, self.key = self.ca.issue("server")

    def serve(self, **env: str) -> RegistryProcess:
        """
        Start the registry with TLS from C{self.certificate} and the
        C{REGISTRY_HTTP_TLS_*} options in C{env}; stopped at cleanup.
        """
        environ = {
            "REGISTRY_HTTP_TLS_CERTIFICATE": self.certificate,
            "REGISTRY_HTTP_TLS_KEY": self.key,
        }
        environ.update({f"REGISTRY_HTTP_TLS_{k.upper()}": v for k, v in env.items()})
        registry = RegistryProcess(self.directory, env=environ)
        self.addCleanup(registry.stop)
        return registry

    def test_serves(self) -> None:
        """
        With certificate and key only, any client that trusts the CA gets
        the API, over TLS 1.3 by default.
        """
        registry = self.serve()
        status, version, _, peer = get(registry.port, self.ca.path)
        self.assertEqual((status, version), (200, "TLSv1.3"))
        self.assertEqual(peer, fingerprint(self.certificate))

    def test_chain(self) -> None:
        """
        A certificate file holding the server's certificate and then its
        intermediate CA's is served whole: a client that trusts only the
        root verifies it.
        """
        intermediate = Authority(self.directory, "intermediate-ca", issuer=self.ca)
        certificate, self.key = intermediate.issue("chained")
        with open(certificate, "rb") as f:
            leaf = f.read()
        with open(intermediate.path, "rb") as f:
            middle = f.read()
        self.certificate = os.path.join(self.directory, "fullchain.pem")
        with open(self.certificate, "wb") as f:
            f.write(leaf + middle)
        registry = self.serve()
        status, _, _, peer = get(registry.port, self.ca.path)
        self.assertEqual(status, 200)
        self.assertEqual(peer, fingerprint(certificate))

    def test_clientCertificateRequired(self) -> None:
        """
        With C{clientcas}, a client without a certificate, or with one from
        another CA, is refused; one with a certificate from a client CA
        gets 200.  So over TLS 1.2, where the refusal is the handshake's.
        """
        clients = Authority(self.directory, "client-ca")
        other = Authority(self.directory, "other-ca")
        registry = self.serve(clientcas=f"[{clients.path}]")
        good = clients.issue("client", server=False)
        bad = other.issue("stranger", server=False)
        for maximum in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            self.assertRaises(Refused, get, registry.port, self.ca.path, maximum=maximum)
            self.assertRaises(Refused, get, registry.port, self.ca.path, bad, maximum=maximum)
            self.assertEqual(get(registry.port, self.ca.path, good, maximum=maximum)[0], 200)

    def test_clientCertificateIfGiven(self) -> None:
        """
        With C{clientauth: verify-client-cert-if-given}, a client without a
        certificate is served, one with a certificate from another CA is
        not.
        """
        clients = Authority(self.directory, "client-ca")
        other = Authority(self.directory, "other-ca")
        registry = self.serve(
            clientcas=f"[{clients.path}]", clientauth="verify-client-cert-if-given"
        )
        self.assertEqual(get(registry.port, self.ca.path)[0], 200)
        bad = other.issue("stranger", server=False)
        self.assertRaises(Refused, get, registry.port, self.ca.path, bad)
        good = clients.issue("client", server=False)
        self.assertEqual(get(registry.port, self.ca.path, good)[0], 200)

    def test_oldVersionsRefused(self) -> None:
        """
        A client that speaks at most TLS 1.1 is refused (also with its own
        security level lowered so that it really offers TLS 1.0 and 1.1);
        TLS 1.2 is served.
        """
        registry = self.serve()
        self.assertRaises(
            Refused, get, registry.port, self.ca.path,
            minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1,
            ciphers="DEFAULT:@SECLEVEL=0",
        )
        status, version, _, _ = get(registry.port, self.ca.path, maximum=ssl.TLSVersion.TLSv1_2)
        self.assertEqual((status, version), (200, "TLSv1.2"))

    def test_minimumTLS13(self) -> None:
        """
        With C{minimumtls: tls1.3}, a TLS 1.2 client is refused.
        """
        registry = self.serve(minimumtls="tls1.3")
        self.assertRaises(
            Refused, get, registry.port, self.ca.path, maximum=ssl.TLSVersion.TLSv1_2
        )
        self.assertEqual(get(registry.port, self.ca.path)[1], "TLSv1.3")

    def test_cipherSuites(self) -> None:
        """
        C{ciphersuites} decides the TLS 1.2 suite: the one listed is
        negotiated, and a client offering only others is refused.
        """
        registry = self.serve(ciphersuites="[TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]")
        tls12 = ssl.TLSVersion.TLSv1_2
        _, _, cipher, _ = get(registry.port, self.ca.path, maximum=tls12)
        self.assertEqual(cipher, "ECDHE-ECDSA-CHACHA20-POLY1305")
        self.assertRaises(
            Refused, get, registry.port, self.ca.path, maximum=tls12,
            ciphers="ECDHE-ECDSA-AES128-GCM-SHA256",
        )

    def test_defaultCipherSuites(self) -> None:
        """
        Without C{ciphersuites}, TLS 1.2 uses the reference's defaults,
        best first: AES-256-GCM with ECDHE; CBC suites are not offered.
        """
        registry = self.serve()
        tls12 = ssl.TLSVersion.TLSv1_2
        _, _, cipher, _ = get(registry.port, self.ca.path, maximum=tls12)
        self.assertEqual(cipher, "ECDHE-ECDSA-AES256-GCM-SHA384")
        self.assertRaises(
            Refused, get, registry.port, self.ca.path, maximum=tls12,
            ciphers="ECDHE-ECDSA-AES128-SHA",
        )

    def test_reloadOnSIGHUP(self) -> None:
        """
        After the files are replaced, C{SIGHUP} makes new connections see
        the new certificate.  A file that does not load then is one error
        line in the log, and the certificate in use stays.
        """
        registry = self.serve()
        first = get(registry.port, self.ca.path)[3]
        self.assertEqual(first, fingerprint(self.certificate))
        renewed, renewedKey = self.ca.issue("renewed")
        os.replace(renewedKey, self.key)
        os.replace(renewed, self.certificate)
        os.kill(registry.process.pid, signal.SIGHUP)
        self.assertTrue(_waitFor(lambda: "TLS certificate reloaded" in registry.log()))
        second = get(registry.port, self.ca.path)[3]
        self.assertEqual(second, fingerprint(self.certificate))
        self.assertNotEqual(second, first)

        with open(self.certificate, "w") as f:
            f.write("not a certificate\n")
        os.kill(registry.process.pid, signal.SIGHUP)
        self.assertTrue(_waitFor(lambda: "TLS reload failed" in registry.log()))
        failures = [line for line in registry.log().splitlines() if "TLS reload failed" in line]
        self.assertEqual(len(failures), 1, registry.log())
        self.assertIn(f"http.tls.certificate: {self.certificate} is not a PEM certificate",
                      failures[0])
        self.assertNotIn("Traceback", registry.log())
        self.assertEqual(get(registry.port, self.ca.path)[3], second)

    def test_reloadClientCAs(self) -> None:
        """
        C{SIGHUP} re-reads the client CAs too: a client whose CA replaced
        the configured one is let in.
        """
        clients = Authority(self.directory, "client-ca")
        registry = self.serve(clientcas=f"[{clients.path}]")
        newcomers = Authority(self.directory, "new-ca")
        client = newcomers.issue("client", server=False)
        self.assertRaises(Refused, get, registry.port, self.ca.path, client)
        os.replace(newcomers.path, clients.path)
        os.kill(registry.process.pid, signal.SIGHUP)
        self.assertTrue(_waitFor(lambda: "TLS certificate reloaded" in registry.log()))
        time.sleep(0.1)
        self.assertEqual(get(registry.port, self.ca.path, client)[0], 200)


class TLSStartFailureTests(TestCase):
    """
    A client CA file that cannot be used, or a TLS value txregistry cannot
    honour, stops the start in one line naming the key (and the file), in
    the foreground and as a daemon.
    """

    assertOneLine = test_plugin.StartFailureTests.assertOneLine
    assertFailsInOneLine = test_plugin.StartFailureTests.assertFailsInOneLine

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.pidfile = os.path.join(self.directory, "twistd.pid")
        ca = Authority(self.directory, "registry-ca")
        certificate, key = ca.issue("server")
        self.tls = {"REGISTRY_HTTP_TLS_CERTIFICATE": certificate, "REGISTRY_HTTP_TLS_KEY": key}

    def test_missingClientCA(self) -> None:
        missing = os.path.join(self.directory, "missing-ca.pem")
        self.assertFailsInOneLine(
            ("http.tls.clientcas", missing, "No such file or directory"),
            REGISTRY_HTTP_TLS_CLIENTCAS=f"[{missing}]", **self.tls,
        )

    def test_clientCANotPEM(self) -> None:
        notPEM = os.path.join(self.directory, "ca.pem")
        with open(notPEM, "w") as f:
            f.write("this is not a certificate\n")
        self.assertFailsInOneLine(
            ("http.tls.clientcas", notPEM, "not a PEM certificate"),
            REGISTRY_HTTP_TLS_CLIENTCAS=f"[{notPEM}]", **self.tls,
        )

    def test_badMinimumTLS(self) -> None:
        self.assertFailsInOneLine(
            ("configuration error: http.tls.minimumtls", "tls1.1"),
            REGISTRY_HTTP_TLS_MINIMUMTLS="tls1.1", **self.tls,
        )

    def test_keyNotTheCertificates(self) -> None:
        other = Authority(self.directory, "other-ca")
        _, otherKey = other.issue("other")
        self.assertFailsInOneLine(
            ("http.tls.key", otherKey, "is not the key of"),
            REGISTRY_HTTP_TLS_CERTIFICATE=self.tls["REGISTRY_HTTP_TLS_CERTIFICATE"],
            REGISTRY_HTTP_TLS_KEY=otherKey,
        )


class ReloadOnSIGHUPTests(TestCase):
    """
    L{ReloadOnSIGHUP} takes C{SIGHUP} while it runs, and only when nobody
    else has.
    """

    def setUp(self) -> None:
        self.original = signal.getsignal(signal.SIGHUP)
        self.addCleanup(signal.signal, signal.SIGHUP, self.original)

    def test_installedAndRemoved(self) -> None:
        """
        Started, it handles C{SIGHUP}; stopped, the default is back.
        """
        from txregistry.tls import ReloadOnSIGHUP

        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        service = ReloadOnSIGHUP(None, None)  # type: ignore[arg-type]
        service.startService()
        self.assertTrue(callable(signal.getsignal(signal.SIGHUP)))
        service.stopService()
        self.assertEqual(signal.getsignal(signal.SIGHUP), signal.SIG_DFL)

    def test_othersHandlerKept(self) -> None:
        """
        A handler someone else installed is neither replaced nor removed.
        """
        from txregistry.tls import ReloadOnSIGHUP

        def theirs(signum: int, frame: Any) -> None:
            pass

        signal.signal(signal.SIGHUP, theirs)
        service = ReloadOnSIGHUP(None, None)  # type: ignore[arg-type]
        service.startService()
        self.assertIs(signal.getsignal(signal.SIGHUP), theirs)
        service.stopService()
        self.assertIs(signal.getsignal(signal.SIGHUP), theirs)
