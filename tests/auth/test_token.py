"""
L{txregistry.auth.token}: a genuine, current token for this registry says
who and what; every other token is refused with a reason, and never by an
exception the door would not expect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from twisted.internet import reactor as globalReactor
from twisted.internet import ssl
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.auth.issuers import (
    ISSUER,
    NOW,
    SERVICE,
    CertificateIssuer,
    KeySetIssuer,
    claims,
    forge,
    makeCertificate,
    pem,
)
from txregistry.auth.errors import AuthConfigurationError
from txregistry.auth.scopes import Access
from txregistry.auth.token import (
    TokenInvalid,
    TokenVerifier,
    VerifiedToken,
    libtrustKeyID,
    thumbprint,
    tokenVerifierFromConfig,
)

PULL = Access("repository", "samalba/my-app", "pull")
PUSH = Access("repository", "samalba/my-app", "push")

# Made once: RSA key generation is the slow part of these tests.
CERTS = CertificateIssuer()
KEYS = KeySetIssuer()


class _Files:
    def writeFile(self, name: str, data: bytes) -> str:
        directory = self.mktemp()  # type: ignore[attr-defined]
        os.makedirs(directory)
        path = os.path.abspath(os.path.join(directory, name))
        with open(path, "wb") as f:
            f.write(data)
        return path

    def config(self, **overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "realm": "https://auth.example.com/token",
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": self.writeFile("bundle.pem", pem(CERTS.root)),
            "jwks": self.writeFile("jwks.json", KEYS.keySet()),
        }
        config.update(overrides)
        return {k: v for k, v in config.items() if v is not None}


class VerifyTests(_Files, SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.verifier = tokenVerifierFromConfig(self.config())

    def verified(self, token: str, verifier: TokenVerifier | None = None) -> VerifiedToken:
        return self.successResultOf((verifier or self.verifier).verify(token, self.clock))

    def assertRefused(self, token: Any, reason: str, verifier: TokenVerifier | None = None) -> None:
        failure = self.failureResultOf((verifier or self.verifier).verify(token, self.clock))
        self.assertIsInstance(failure.value, TokenInvalid)
        self.assertIn(reason, failure.value.reason)

    # Accepted.

    def test_x5c(self) -> None:
        """
        A token whose C{x5c} chain leads to a root of the bundle grants what
        its C{access} claim says, to its subject, until its C{exp}.
        """
        verified = self.verified(CERTS.token())
        self.assertEqual(verified.subject, "alice")
        self.assertEqual(verified.access, {PULL, PUSH})
        self.assertEqual(verified.expires, NOW + 300)
        self.assertTrue(verified.allows([PULL, PUSH]))
        self.assertFalse(verified.allows([Access("repository", "samalba/my-app", "delete")]))

    def test_keySet(self) -> None:
        """
        A token whose C{kid} is a key of the JWKS file is accepted.
        """
        verified = self.verified(KEYS.token())
        self.assertEqual(verified.access, {PULL, PUSH})

    def test_rootKeyByKid(self) -> None:
        """
        A root certificate's own key may sign tokens, named by its RFC 7638
        thumbprint (as the reference names it) or by its libtrust ID (as
        older token servers do).
        """
        for kid in (thumbprint(CERTS.root.public_key()), libtrustKeyID(CERTS.root.public_key())):  # type: ignore[arg-type]
            token = jwt.encode(claims(), CERTS.rootKey, algorithm="ES256", headers={"kid": kid})
            self.assertEqual(self.verified(token).access, {PULL, PUSH})

    def test_selfSignedInBundle(self) -> None:
        """
        A signing certificate that is itself in the bundle (a self-signed
        issuer certificate) is trusted as an C{x5c} of one.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = makeCertificate("token signer", key)
        verifier = tokenVerifierFromConfig(
            self.config(rootcertbundle=self.writeFile("b.pem", pem(certificate)), jwks=None)
        )
        der = base64.b64encode(certificate.public_bytes(Encoding.DER)).decode()
        token = jwt.encode(claims(), key, algorithm="ES256", headers={"x5c": [der]})
        self.assertEqual(self.verified(token, verifier).subject, "alice")

    def test_trustedJWK(self) -> None:
        """
        A C{jwk} header that is a trusted key is accepted.
        """
        public = jwt.algorithms.RSAAlgorithm.to_jwk(KEYS.keys[KEYS.kid].public_key(), as_dict=True)
        token = jwt.encode(
            claims(), KEYS.keys[KEYS.kid], algorithm="RS256", headers={"jwk": public}
        )
        self.assertEqual(self.verified(token).subject, "alice")

    def test_audienceList(self) -> None:
        token = CERTS.token(claims(audience=["other", SERVICE]))
        self.assertEqual(self.verified(token).subject, "alice")

    def test_leeway(self) -> None:
        """
        Clocks disagree: a token expired or not yet valid by less than a
        minute is accepted.
        """
        self.verified(CERTS.token(claims(issuedAt=NOW - 330)))
        self.verified(CERTS.token(claims(issuedAt=NOW + 30)))

    def test_anonymous(self) -> None:
        """
        A token without C{sub} or C{access} is an anonymous one granting
        nothing.
        """
        verified = self.verified(CERTS.token(claims(subject=None, access=[])))
        self.assertEqual((verified.subject, verified.access), ("", frozenset()))

    def test_hmacListed(self) -> None:
        """
        HS256 is accepted when listed, with a secret of the key set
        (C{kty: oct}).
        """
        secret = b"s" * 32
        entry = {"kty": "oct", "kid": "shared", "k": base64.urlsafe_b64encode(secret).decode()}
        config = self.config(
            jwks=self.writeFile("j.json", json.dumps({"keys": [entry]}).encode()),
            signingalgorithms=["HS256", "ES256"],
        )
        token = jwt.encode(claims(), secret, algorithm="HS256", headers={"kid": "shared"})
        self.assertEqual(self.verified(token, tokenVerifierFromConfig(config)).subject, "alice")
        # Not listed (the default): refused.
        config["signingalgorithms"] = []
        self.assertRefused(token, "not allowed", tokenVerifierFromConfig(config))

    # The access claim.

    def test_otherRepository(self) -> None:
        """
        Access to one repository grants nothing on another.
        """
        verified = self.verified(
            CERTS.token(
                claims(access=[{"type": "repository", "name": "other/app", "actions": ["*"]}])
            )
        )
        self.assertFalse(verified.allows([PULL]))
        self.assertTrue(verified.allows([Access("repository", "other/app", "delete")]))

    def test_malformedAccessEntries(self) -> None:
        """
        Malformed entries of C{access} are ignored (they could only grant
        less); the class of C{repository(plugin)} is dropped.
        """
        access = [
            "junk",
            {"type": "repository", "name": "a", "actions": "pull"},
            {"type": "namespace", "name": "a", "actions": ["pull"]},
            {"type": "repository", "name": 7, "actions": ["pull"]},
            {"type": "repository(plugin)", "name": "p", "actions": ["pull", "fly", 3]},
        ]
        verified = self.verified(CERTS.token(claims(access=access)))
        self.assertEqual(verified.access, {Access("repository", "p", "pull")})

    def test_accessNotAList(self) -> None:
        self.assertRefused(CERTS.token(claims(access={"type": "repository"})), "access claim")

    # Refused: algorithms and keys.

    def test_algNone(self) -> None:
        """
        An unsigned token (C{alg: none}, in any case) is refused.
        """
        for alg in ("none", "None", "NONE"):
            token = forge({"alg": alg, "typ": "JWT", "x5c": CERTS.chain()}, claims())
            self.assertRefused(token, "not allowed")
            self.assertRefused(token[: token.rindex(".") + 1] + "AAAA", "not allowed")

    def test_hmacWithPublicKey(self) -> None:
        """
        An HS256 token whose "secret" is the issuer's public key (which
        anyone has) is refused, even with HS256 allowed: a public key is
        never an HMAC secret.
        """
        verifier = tokenVerifierFromConfig(
            self.config(signingalgorithms=["HS256", "RS256", "ES256"])
        )
        for publicKey, kid in [
            (CERTS.root.public_key(), thumbprint(CERTS.root.public_key())),  # type: ignore[arg-type]
            (KEYS.keys[KEYS.kid].public_key(), KEYS.kid),
        ]:
            secret = publicKey.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            header = {"alg": "HS256", "typ": "JWT", "kid": kid}
            unsigned = forge(header, claims()).rsplit(".", 1)[0]
            signature = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
            token = unsigned + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
            self.assertRefused(token, "key does not fit", verifier)

    def test_selfSignedJWK(self) -> None:
        """
        A token carrying its own key in a C{jwk} header, a key the registry
        does not trust, is refused, even if it claims a trusted C{kid}.
        """
        attacker = ec.generate_private_key(ec.SECP256R1())
        public = jwt.algorithms.ECAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
        trustedKid = thumbprint(CERTS.root.public_key())  # type: ignore[arg-type]
        for headers in [
            {"jwk": public},
            {"jwk": dict(public, kid=trustedKid)},
            {"jwk": dict(public, kid=trustedKid), "kid": trustedKid},
            {"jwk": dict(public, kid=KEYS.kid), "kid": KEYS.kid},
        ]:
            token = jwt.encode(claims(), attacker, algorithm="ES256", headers=headers)
            self.assertRefused(token, "not a trusted key")

    def test_untrustedChain(self) -> None:
        """
        An C{x5c} chain from a CA the bundle does not hold is refused.
        """
        other = CertificateIssuer("Some Other CA")
        self.assertRefused(other.token(), "not trusted")
        # Nor may its root ride along in the chain.
        rootDER = base64.b64encode(other.root.public_bytes(Encoding.DER)).decode()
        self.assertRefused(other.token(x5c=other.chain() + [rootDER]), "not trusted")

    def test_selfSignedChain(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        der = base64.b64encode(makeCertificate("me", key).public_bytes(Encoding.DER)).decode()
        token = jwt.encode(claims(), key, algorithm="ES256", headers={"x5c": [der]})
        self.assertRefused(token, "not trusted")

    def test_leafAsCA(self) -> None:
        """
        A trusted signing certificate cannot vouch for another: it is not a
        CA.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = makeCertificate(
            "impostor", key, issuerName=CERTS.signing.subject, issuerKey=CERTS.signingKey
        )
        der = base64.b64encode(certificate.public_bytes(Encoding.DER)).decode()
        token = jwt.encode(claims(), key, algorithm="ES256", headers={"x5c": [der] + CERTS.chain()})
        self.assertRefused(token, "not trusted")

    def test_chainWithoutIntermediate(self) -> None:
        self.assertRefused(CERTS.token(x5c=CERTS.chain()[:1]), "not trusted")

    def test_chainOfWrongKey(self) -> None:
        """
        A trusted chain does not make a token signed by another key good.
        """
        other = ec.generate_private_key(ec.SECP256R1())
        token = jwt.encode(claims(), other, algorithm="ES256", headers={"x5c": CERTS.chain()})
        self.assertRefused(token, "bad signature")

    def test_expiredChain(self) -> None:
        """
        The chain is checked at the clock's time.
        """
        self.clock.advance(2 * 365 * 86400)
        self.assertRefused(CERTS.token(claims(issuedAt=self.clock.seconds())), "not trusted")

    def test_keyAlgorithm(self) -> None:
        """
        A key set entry with an C{alg} is used with that algorithm only.
        """
        entry = json.loads(KEYS.keySet())["keys"][0]
        entry["alg"] = "PS256"
        verifier = tokenVerifierFromConfig(
            self.config(jwks=self.writeFile("j.json", json.dumps({"keys": [entry]}).encode()))
        )
        self.assertRefused(KEYS.token(), "key is for PS256, not RS256", verifier)

    def test_unknownKid(self) -> None:
        self.assertRefused(KEYS.token(kid="key-0"), "unknown kid")

    def test_noKey(self) -> None:
        token = jwt.encode(claims(), CERTS.signingKey, algorithm="ES256")
        self.assertRefused(token, "no x5c, jwk or kid")

    def test_tampered(self) -> None:
        """
        Changing a claim breaks the signature.
        """
        header, _, signature = CERTS.token().split(".")
        forged = forge(
            {}, claims(access=[{"type": "registry", "name": "catalog", "actions": ["*"]}])
        )
        token = ".".join([header, forged.split(".")[1], signature])
        self.assertRefused(token, "bad signature")

    # Refused: claims.

    def test_expired(self) -> None:
        self.assertRefused(CERTS.token(claims(issuedAt=NOW - 400)), "expired")

    def test_noExpiry(self) -> None:
        self.assertRefused(CERTS.token(claims(exp=None)), "no exp")
        self.assertRefused(CERTS.token(claims(exp="tomorrow")), "exp claim is not a number")

    def test_notYetValid(self) -> None:
        payload = claims(nbf=NOW + 120, iat=NOW)
        self.assertRefused(CERTS.token(payload), "not yet valid")

    def test_issuedInTheFuture(self) -> None:
        payload = claims(issuedAt=NOW, iat=NOW + 3600, exp=NOW + 7200)
        self.assertRefused(CERTS.token(payload), "issued in the future")

    def test_wrongAudience(self) -> None:
        self.assertRefused(CERTS.token(claims(audience="other.example.com")), "wrong audience")
        self.assertRefused(CERTS.token(claims(audience=None)), "wrong audience")

    def test_wrongIssuer(self) -> None:
        self.assertRefused(CERTS.token(claims(issuer="evil.example.com")), "wrong issuer")

    # Refused: form.

    def test_huge(self) -> None:
        """
        A 1 MiB token is refused by its size, before any parsing.
        """
        huge = CERTS.token(claims(padding="x" * (1024 * 1024)))
        self.verifier._parse = None  # type: ignore[assignment,method-assign]
        self.assertRefused(huge, "over 16384 characters")

    def test_malformed(self) -> None:
        """
        Whatever the string, a malformed token is a L{TokenInvalid}.
        """

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        def h(header: Any) -> str:
            return b64(json.dumps(header).encode())

        good = h({"alg": "ES256"})
        duplicate = b64(b'{"alg":"ES256","alg":"none"}')
        for token in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "...",
            "!!!.abc.def",
            f"{good}.{b64(b'not json')}.AAAA",
            f"{b64(b'not json')}.{good}.AAAA",
            f"{b64(b'[1, 2]')}.{good}.AAAA",
            f"{good}.{b64(b'NaN')}.AAAA",
            f"{b64(bytes([255, 254]))}.{good}.AAAA",
            duplicate + f".{good}.AAAA",
            f"{h({'alg': 7})}.{good}.AAAA",
            f"{good}.{good}.",
            f"{good}.{good}.A",
            f"{h({'alg': 'ES256', 'x5c': 'notalist'})}.{good}.AAAA",
            f"{h({'alg': 'ES256', 'x5c': ['!!']})}.{good}.AAAA",
            f"{h({'alg': 'ES256', 'x5c': ['AAAA']})}.{good}.AAAA",
            f"{h({'alg': 'ES256', 'x5c': [7]})}.{good}.AAAA",
            f"{h({'alg': 'ES256', 'jwk': {'kty': 'EC'}})}.{good}.AAAA",
            f"{h({'alg': 'ES256', 'jwk': 'key'})}.{good}.AAAA",
            f"{h({'alg': 'ES256', 'kid': []})}.{good}.AAAA",
            f"{h({'alg': 'ES256', 'crit': ['b64']})}.{good}.AAAA",
            f"{h({'alg': 'ES256', 'kid': 'key-1'})}.{good}.AAAA",
            "\u00e9.\u00e9.\u00e9",
            "\ud800.a.b",
            None,
            b"bytes.are.not",
        ]:
            failure = self.failureResultOf(self.verifier.verify(token, self.clock))  # type: ignore[arg-type]
            self.assertIsInstance(failure.value, TokenInvalid, repr(token))

    # Once verified, remembered.

    def test_cache(self) -> None:
        """
        The same token is verified once, and remembered only until it
        expires.
        """
        token = CERTS.token()
        first = self.verified(token)
        calls = []
        original = self.verifier._finish
        self.verifier._finish = lambda *a: calls.append(a) or original(*a)  # type: ignore[method-assign]
        self.assertIs(self.verified(token), first)
        self.assertEqual(calls, [])
        self.clock.advance(300 + 61)
        self.assertRefused(token, "expired")

    def test_cacheBounded(self) -> None:
        verifier = tokenVerifierFromConfig(self.config())
        verifier._cache._maxEntries = 3
        for n in range(10):
            self.verified(CERTS.token(claims(subject=f"user{n}")), verifier)
        self.assertEqual(len(verifier._cache._entries), 3)

    # The door's side.

    def test_challenge(self) -> None:
        self.assertEqual(
            self.verifier.challenge([PUSH, PULL], error="insufficient_scope"),
            'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
            'scope="repository:samalba/my-app:pull,push",error="insufficient_scope"',
        )
        redirecting = tokenVerifierFromConfig(self.config(autoredirect=True))
        self.assertEqual(redirecting.autoRedirectPath, "/auth/token")
        self.assertEqual(
            redirecting.challenge(host="registry.local:5000"),
            'Bearer realm="https://registry.local:5000/auth/token",service="registry.example.com"',
        )


class ConfigurationTests(_Files, SynchronousTestCase):
    def assertConfigError(self, config: dict[str, Any], message: str) -> None:
        error = self.assertRaises(AuthConfigurationError, tokenVerifierFromConfig, config)
        self.assertEqual(str(error), message)

    def test_missingBundle(self) -> None:
        self.assertConfigError(
            self.config(rootcertbundle="/x"),
            "auth.token.rootcertbundle: /x: No such file or directory",
        )

    def test_notABundle(self) -> None:
        path = self.writeFile("b.pem", b"hello")
        error = self.assertRaises(
            AuthConfigurationError, tokenVerifierFromConfig, self.config(rootcertbundle=path)
        )
        self.assertTrue(str(error).startswith(f"auth.token.rootcertbundle: {path}: "))

    def test_required(self) -> None:
        for key in ("realm", "service", "issuer"):
            self.assertConfigError(self.config(**{key: None}), f"auth.token.{key}: required")
        self.assertConfigError(
            self.config(rootcertbundle=None, jwks=None),
            "auth.token.rootcertbundle: required (or auth.token.jwks): no key to trust",
        )

    def test_jwks(self) -> None:
        self.assertConfigError(
            self.config(jwks="http://auth.example.com/jwks"),
            "auth.token.jwks: http://auth.example.com/jwks: a key set URL must be https",
        )
        self.assertConfigError(
            self.config(jwks="jwks.json"), "auth.token.jwks: jwks.json: must be an absolute path"
        )
        path = self.writeFile("j.json", b"{")
        error = self.assertRaises(
            AuthConfigurationError, tokenVerifierFromConfig, self.config(jwks=path)
        )
        self.assertTrue(str(error).startswith(f"auth.token.jwks: {path}: "))
        path = self.writeFile("j.json", b'{"keys": [{"kty": "RSA"}]}')
        error = self.assertRaises(
            AuthConfigurationError, tokenVerifierFromConfig, self.config(jwks=path)
        )
        self.assertTrue(str(error).startswith(f"auth.token.jwks: {path}: key 0: "))

    def test_privateKeyInKeySet(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        private = jwt.algorithms.ECAlgorithm.to_jwk(key, as_dict=True)
        path = self.writeFile("j.json", json.dumps({"keys": [private]}).encode())
        error = self.assertRaises(
            AuthConfigurationError, tokenVerifierFromConfig, self.config(jwks=path)
        )
        self.assertIn("private key", str(error))

    def test_algorithms(self) -> None:
        for bad in (["none"], ["XS256"], "RS256", [256]):
            error = self.assertRaises(
                AuthConfigurationError,
                tokenVerifierFromConfig,
                self.config(signingalgorithms=bad),
            )
            self.assertTrue(str(error).startswith("auth.token.signingalgorithms: "), str(error))
        verifier = tokenVerifierFromConfig(self.config())
        self.assertNotIn("HS256", verifier.algorithms)
        self.assertIn("EdDSA", verifier.algorithms)

    def test_unknownKey(self) -> None:
        self.assertConfigError(
            self.config(rootcertbundel="/x"), "auth.token.rootcertbundel: unknown key"
        )

    def test_autoredirect(self) -> None:
        self.assertConfigError(
            self.config(autoredirect="yes"),
            "auth.token.autoredirect: must be true or false, not 'yes'",
        )
        self.assertConfigError(
            self.config(autoredirectpath="token"),
            "auth.token.autoredirectpath: token: must start with /",
        )


class _KeySetResource(Resource):
    isLeaf = True

    def __init__(self, issuer: KeySetIssuer) -> None:
        super().__init__()
        self.issuer = issuer
        self.requests = 0
        self.code = 200

    def render_GET(self, request: Any) -> bytes:
        self.requests += 1
        request.setResponseCode(self.code)
        request.setHeader(b"content-type", b"application/json")
        return self.issuer.keySet()


class KeySetURLTests(TestCase):
    """
    A key set at an https URL, served here by a twisted.web server.
    """

    def setUp(self) -> None:
        caKey = ec.generate_private_key(ec.SECP256R1())
        ca = makeCertificate("JWKS test CA", caKey, ca=True, notBefore=0, notAfter=4e9)
        serverKey = ec.generate_private_key(ec.SECP256R1())
        serverCert = makeCertificate(
            "localhost",
            serverKey,
            issuerName=ca.subject,
            issuerKey=caKey,
            dnsNames=["localhost"],
            notBefore=0,
            notAfter=4e9,
        )
        keyPEM = serverKey.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        serverTLS = ssl.PrivateCertificate.loadPEM(pem(serverCert) + keyPEM).options()
        self.issuer = KeySetIssuer()
        self.resource = _KeySetResource(self.issuer)
        port = globalReactor.listenSSL(  # type: ignore[attr-defined]
            0, Site(self.resource), serverTLS, interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        pool = HTTPConnectionPool(globalReactor)
        self.addCleanup(pool.closeCachedConnections)
        agent = Agent(
            globalReactor,
            contextFactory=BrowserLikePolicyForHTTPS(
                trustRoot=ssl.Certificate.loadPEM(pem(ca))  # type: ignore[arg-type]
            ),
            pool=pool,
        )
        self.clock = Clock()
        self.clock.advance(NOW)
        self.verifier = tokenVerifierFromConfig(
            {
                "realm": "https://auth.example.com/token",
                "service": SERVICE,
                "issuer": ISSUER,
                "jwks": f"https://localhost:{port.getHost().port}/jwks",
            },
            agent=agent,
            reactor=globalReactor,  # type: ignore[arg-type]
        )

    def verify(self, token: str) -> Deferred[VerifiedToken]:
        return self.verifier.verify(token, self.clock)

    async def assertRefused(self, token: str, reason: str) -> None:
        try:
            await self.verify(token)
        except TokenInvalid as e:
            self.assertIn(reason, e.reason)
        else:
            self.fail("token accepted")

    async def test_fetched(self) -> None:
        """
        The key set is fetched when first needed, and kept.
        """
        verified = await self.verify(self.issuer.token())
        self.assertEqual(verified.access, {PULL, PUSH})
        await self.verify(self.issuer.token(claims(subject="bob")))
        self.assertEqual(self.resource.requests, 1)

    async def test_rotation(self) -> None:
        """
        A token with a new C{kid} makes the verifier fetch the key set
        again: the issuer rotated its key, and the new one is accepted.
        """
        await self.verify(self.issuer.token())
        self.issuer.addKey("key-2")
        self.clock.advance(31)
        verified = await self.verify(self.issuer.token())
        self.assertEqual(verified.subject, "alice")
        self.assertEqual(self.resource.requests, 2)

    async def test_withdrawn(self) -> None:
        """
        Keys older than an hour are fetched again, behind the request that
        finds them stale; a key the issuer withdrew is refused from then on.
        """
        oldKid, oldKey = self.issuer.kid, self.issuer.keys[self.issuer.kid]
        await self.verify(self.issuer.token())
        self.issuer.addKey("key-2")
        del self.issuer.keys[oldKid]
        self.clock.advance(3600)

        def oldToken(subject: str) -> str:
            payload = claims(issuedAt=NOW + 3600, subject=subject)
            return jwt.encode(payload, oldKey, algorithm="RS256", headers={"kid": oldKid})

        await self.verify(oldToken("alice"))
        await self.verifier.refreshKeys(self.clock)
        self.assertEqual(self.resource.requests, 2)
        await self.assertRefused(oldToken("bob"), "unknown kid")

    async def test_unknownKidRateLimited(self) -> None:
        """
        An unknown C{kid} is refused after one fetch; made-up kids do not
        make the registry fetch again within the cool-down, however many
        arrive at once.
        """
        await self.verify(self.issuer.token())
        self.clock.advance(31)
        await gatherResults(
            [
                Deferred.fromCoroutine(
                    self.assertRefused(self.issuer.token(kid=f"made-up-{n}"), "unknown kid")
                )
                for n in range(5)
            ]
        )
        self.assertEqual(self.resource.requests, 2)
        await self.assertRefused(self.issuer.token(kid="made-up"), "unknown kid")
        self.assertEqual(self.resource.requests, 2)
        self.clock.advance(31)
        await self.assertRefused(self.issuer.token(kid="made-up"), "unknown kid")
        self.assertEqual(self.resource.requests, 3)

    async def test_oversized(self) -> None:
        """
        A key set over a megabyte is not read to its end, nor used.
        """
        self.resource.render_GET = lambda request: b"{" + b" " * (2 * 1024 * 1024) + b"}"  # type: ignore[method-assign]
        await self.assertRefused(self.issuer.token(), "unknown kid")

    async def test_serverError(self) -> None:
        """
        A key set the issuer cannot serve leaves tokens refused, not the
        door broken; the keys it had are kept.
        """
        self.resource.code = 500
        await self.assertRefused(self.issuer.token(), "unknown kid")
        self.resource.code = 200
        self.clock.advance(31)
        await self.verify(self.issuer.token())
        self.resource.code = 500
        self.clock.advance(3600)
        verified = await self.verify(self.issuer.token(claims(issuedAt=NOW + 3631)))
        self.assertEqual(verified.subject, "alice")
        # The stale keys were refreshed behind that request, and failed.
        await self.verifier.refreshKeys(self.clock)
        self.assertEqual(self.resource.requests, 3)
        await self.verify(self.issuer.token(claims(issuedAt=NOW + 3631, subject="bob")))
