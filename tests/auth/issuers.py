"""
Token issuers for the tests: what an authorization server would do, with
keys and certificates made on the spot.

L{CertificateIssuer} has a root CA, an intermediate and a signing
certificate, and puts the chain in each token's C{x5c}; L{KeySetIssuer}
signs with a key named by C{kid} and publishes a JWKS.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

#: The tests' "now": 2027-01-15, so that expiry is by the test's clock.
NOW = 1_800_000_000.0

ISSUER = "auth.example.com"
SERVICE = "registry.example.com"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def makeCertificate(
    common: str,
    key: Any,
    issuerName: x509.Name | None = None,
    issuerKey: Any = None,
    ca: bool = False,
    dnsNames: list[str] | None = None,
    notBefore: float = NOW - 86400,
    notAfter: float = NOW + 365 * 86400,
) -> x509.Certificate:
    """
    A certificate for C{key}, self-signed unless C{issuerName} and
    C{issuerKey} say who signs it.
    """
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(issuerName or _name(common))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.fromtimestamp(notBefore, UTC))
        .not_valid_after(datetime.fromtimestamp(notAfter, UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    signer = issuerKey or key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
    )
    if dnsNames:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dnsNames]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def claims(
    access: Any = None,
    subject: str = "alice",
    issuer: str = ISSUER,
    audience: Any = SERVICE,
    issuedAt: float = NOW,
    lifetime: float = 300,
    **extra: Any,
) -> dict[str, Any]:
    """
    A claim set as the token server writes it, granting C{access}
    (default: pull and push on C{samalba/my-app}).
    """
    if access is None:
        access = [{"type": "repository", "name": "samalba/my-app", "actions": ["pull", "push"]}]
    result = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": issuedAt,
        "nbf": issuedAt,
        "exp": issuedAt + lifetime,
        "jti": "a-token",
        "access": access,
    }
    result.update(extra)
    return {k: v for k, v in result.items() if v is not None}


class CertificateIssuer:
    """
    Signs tokens with an ES256 key whose certificate chains, through an
    intermediate, to C{root}: the bundle the registry is configured with.
    """

    def __init__(
        self,
        common: str = "Test Token CA",
        notBefore: float = NOW - 86400,
        notAfter: float = NOW + 365 * 86400,
    ) -> None:
        window = {"notBefore": notBefore, "notAfter": notAfter}
        self.rootKey = ec.generate_private_key(ec.SECP256R1())
        self.root = makeCertificate(common, self.rootKey, ca=True, **window)
        self.intermediateKey = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = makeCertificate(
            common + " intermediate",
            self.intermediateKey,
            issuerName=self.root.subject,
            issuerKey=self.rootKey,
            ca=True,
            **window,
        )
        self.signingKey = ec.generate_private_key(ec.SECP256R1())
        self.signing = makeCertificate(
            "token signer",
            self.signingKey,
            issuerName=self.intermediate.subject,
            issuerKey=self.intermediateKey,
            **window,
        )

    def chain(self) -> list[str]:
        return [
            base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii")
            for c in (self.signing, self.intermediate)
        ]

    def token(self, payload: dict[str, Any] | None = None, **headers: Any) -> str:
        header = {"typ": "JWT", "x5c": self.chain()}
        header.update(headers)
        return jwt.encode(
            payload if payload is not None else claims(),
            self.signingKey,
            algorithm="ES256",
            headers=header,
        )


class KeySetIssuer:
    """
    Signs tokens with an RS256 key named C{kid}; L{keySet} is the JWKS the
    registry trusts.
    """

    def __init__(self, kid: str = "key-1") -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.kid = kid
        self.addKey(kid)

    def addKey(self, kid: str) -> None:
        """
        A new key (a rotation): published in L{keySet}, used by L{token}.
        """
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid

    def keySet(self) -> bytes:
        entries = []
        for kid, key in self.keys.items():
            entry = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            entry.update({"kid": kid, "use": "sig"})
            entries.append(entry)
        return json.dumps({"keys": entries}).encode("ascii")

    def token(self, payload: dict[str, Any] | None = None, kid: str | None = None) -> str:
        kid = kid or self.kid
        return jwt.encode(
            payload if payload is not None else claims(),
            self.keys[self.kid],
            algorithm="RS256",
            headers={"typ": "JWT", "kid": kid},
        )


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """
    A token put together by hand, for what no library would sign.
    """

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    return ".".join(
        [
            part(json.dumps(header).encode()),
            part(json.dumps(payload).encode()),
            part(signature),
        ]
    )
