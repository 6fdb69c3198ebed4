# -*- test-case-name: tests.test_tls -*-
"""
The registry's HTTPS: the server's TLS context built from C{http.tls}
(certificate and key, client CAs, minimum version, cipher suites), re-read
on C{SIGHUP}.

The context is built here, with L{CertificateOptions}, rather than by an
endpoint description string, because a description can say which files to
use but not whom to ask for a certificate or which versions and suites to
refuse.  pyOpenSSL is imported only when a context is built, so that
L{txregistry.config} can check names against the tables here without it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, IStreamServerEndpoint
from twisted.logger import Logger
from zope.interface import implementer

if TYPE_CHECKING:
    from OpenSSL import SSL

    from txregistry.config import HTTPConfig

_log = Logger()

#: C{http.tls.clientauth} when C{clientcas} is set and it is not.
DEFAULT_CLIENT_AUTH = "require-and-verify-client-cert"

#: The C{http.tls.clientauth} modes honoured: whether each refuses a client
#: without a certificate.  Either way a certificate given must be signed by
#: one of C{http.tls.clientcas}.
CLIENT_AUTH: dict[str, bool] = {
    "require-and-verify-client-cert": True,
    "verify-client-cert-if-given": False,
}

#: The reference's modes that do not verify the certificate, and why they
#: are refused: the registry uses no client identity, so a certificate
#: nobody checks would only pretend to protect it.
REFUSED_CLIENT_AUTH: dict[str, str] = {
    "request-client-cert": "it does not verify the certificate",
    "require-any-client-cert": "it does not verify the certificate, so any self-made one passes",
}

#: C{http.tls.minimumtls} values.  TLS 1.0 and 1.1 are never offered.
MINIMUM_VERSIONS = ("tls1.2", "tls1.3")

#: The reference's cipher suite names (Go's, which are IANA's) and
#: OpenSSL's names for them.  The TLS 1.3 suites map to C{""}: OpenSSL
#: always offers all three and C{http.tls.ciphersuites} does not choose
#: among them, as Go's does not.
CIPHER_SUITES: dict[str, str] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": "",
    "TLS_AES_256_GCM_SHA384": "",
    "TLS_CHACHA20_POLY1305_SHA256": "",
}

#: Reference names refused: RC4 is broken, 3DES has 64-bit blocks (Sweet32),
#: and OpenSSL 3 no longer offers them at its default security level.
INSECURE_CIPHER_SUITES = frozenset(
    {
        "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    }
)

#: The reference's default suites, in order of the server's preference.
DEFAULT_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
)


class TLSFileError(Exception):
    """
    A file named by C{http.tls} cannot be used; the message names the key
    and the file, and is all the user needs to see.
    """


def _read(key: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TLSFileError(f"{key}: cannot read {path}: {e.strerror}") from None


def _loadCertificates(key: str, path: str) -> list[Any]:
    """
    Every certificate in the PEM file C{path}, in order, as
    C{cryptography}'s (pyOpenSSL deprecates its own C{X509} objects).

    @raise TLSFileError: when the file cannot be read or holds none.
    """
    from cryptography import x509

    data = _read(key, path)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TLSFileError(f"{key}: {path} is not a PEM certificate") from None


def makeContext(http: HTTPConfig) -> SSL.Context:
    """
    Read C{http.tls}'s files and build the server's TLS context: the
    certificate (the file may hold its chain after it), the key, and, with
    C{clientcas}, the client certificate check.

    TLS 1.0 and 1.1 are refused always, TLS 1.2 unless C{minimumtls} is
    C{tls1.3}; TLS 1.2 uses C{ciphersuites}, or the reference's defaults.

    @raise TLSFileError: naming the first file that cannot be used.
    """
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from OpenSSL import SSL
    from OpenSSL.crypto import X509
    from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, TLSVersion

    chain = _loadCertificates("http.tls.certificate", http.tlsCertificate)
    keyPEM = _read("http.tls.key", http.tlsKey)
    try:
        key = load_pem_private_key(keyPEM, None)
    except (TypeError, ValueError):
        raise TLSFileError(f"http.tls.key: {http.tlsKey} is not a PEM private key") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey,
                            ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        raise TLSFileError(
            f"http.tls.key: {http.tlsKey} is a {type(key).__name__}, not an RSA, EC or EdDSA key"
        )
    clientCAs = [
        certificate
        for path in http.tlsClientCAs
        for certificate in _loadCertificates("http.tls.clientcas", path)
    ]
    # Twisted's verification takes pyOpenSSL's certificates.
    authorities = [X509.from_cryptography(ca) for ca in clientCAs]
    suites = http.tlsCipherSuites or DEFAULT_CIPHER_SUITES
    cipherString = ":".join(CIPHER_SUITES[name] for name in suites if CIPHER_SUITES[name])
    minimum = TLSVersion.TLSv1_3 if http.tlsMinimumVersion == "tls1.3" else TLSVersion.TLSv1_2
    verify: dict[str, Any] = {}
    if authorities:
        verify = {
            "verify": True,
            "caCerts": authorities,
            "requireCertificate": CLIENT_AUTH[http.tlsClientAuth],
        }
    # A list of TLS 1.3 suites only is allowed with minimumtls: tls1.3
    # alone, where the TLS 1.2 list is never used; it must still be valid.
    cipherString = cipherString or "ECDHE+AESGCM"
    # The certificate and key are not given to CertificateOptions, which
    # would hand pyOpenSSL its deprecated X509 and PKey objects; the context
    # takes cryptography's instead.
    context = CertificateOptions(
        raiseMinimumTo=minimum,
        acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(cipherString),
        **verify,
    ).getContext()
    context.use_certificate(chain[0])
    for intermediate in chain[1:]:
        context.add_extra_chain_cert(intermediate)
    try:
        context.use_privatekey(key)
        context.check_privatekey()
    except (SSL.Error, TypeError):
        raise TLSFileError(
            f"http.tls.key: {http.tlsKey} is not the key of {http.tlsCertificate}"
        ) from None
    if authorities:
        # Tell clients which CAs are wanted, as Go's server does: a client
        # holding several certificates picks by this list.
        for ca in clientCAs:
            context.add_client_ca(ca)
    return context


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """
    The registry's side of each TLS connection, from a context that
    L{reload} replaces: connections made after a reload use the new
    certificate, those already open keep theirs.

    @ivar http: the configuration whose files are read.
    """

    def __init__(self, http: HTTPConfig) -> None:
        """
        @raise TLSFileError: when a file cannot be used.
        """
        self.http = http
        self._context = makeContext(http)

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        from OpenSSL import SSL

        return SSL.Connection(self._context, None)

    def reload(self) -> bool:
        """
        Read the files again.  A file that cannot be used is logged, as one
        error line, and the context in use stays: a certificate renewed
        halfway through must not take the registry off the air.

        @return: whether the new files are in use.
        """
        try:
            context = makeContext(self.http)
        except TLSFileError as e:
            _log.error("TLS reload failed, still serving the previous certificate: {error}",
                       error=str(e))
            return False
        self._context = context
        _log.info("TLS certificate reloaded from {certificate}",
                  certificate=self.http.tlsCertificate)
        return True


def serverEndpoint(reactor: Any, http: HTTPConfig, tls: ServerTLS) -> IStreamServerEndpoint:
    """
    The endpoint serving HTTPS on C{http.addr} with C{tls}.
    """
    from twisted.internet.endpoints import SSL4ServerEndpoint

    from txregistry.config import splitAddress

    host, port = splitAddress(http.addr)
    return SSL4ServerEndpoint(reactor, port, tls, interface=host)


class ReloadOnSIGHUP(Service):
    """
    Re-read the TLS files on C{SIGHUP}, the signal operators (and
    certificate renewal hooks) send a daemon to reload, while the service
    runs.

    twistd does not use C{SIGHUP}.  A handler someone else installed is
    left alone, as L{txregistry.logs.rotateOnSIGUSR1} leaves one; the
    default action (exit) and C{nohup}'s "ignore" are replaced, and put
    back on stop.
    """

    def __init__(self, tls: ServerTLS, reactor: Any) -> None:
        self.tls = tls
        self.reactor = reactor
        self._previous: Any = None
        self._installed: Callable[[int, Any], None] | None = None

    def startService(self) -> None:
        super().startService()
        current = signal.getsignal(signal.SIGHUP)
        if current not in (signal.SIG_DFL, signal.SIG_IGN):
            return

        def reload(signum: int, frame: Any) -> None:
            # Not in the handler itself: it interrupts the reactor anywhere.
            self.reactor.callFromThread(self.tls.reload)

        self._previous = current
        self._installed = reload
        signal.signal(signal.SIGHUP, reload)

    def stopService(self) -> Any:
        if self._installed is not None:
            if signal.getsignal(signal.SIGHUP) is self._installed:
                signal.signal(signal.SIGHUP, self._previous)
            self._installed = None
        return super().stopService()
