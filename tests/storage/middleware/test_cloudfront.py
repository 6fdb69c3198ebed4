"""
The C{cloudfront} middleware: canned-policy signed URLs that CloudFront
accepts (checked with the public key, and against botocore's own
CloudFront signer, not with the code under test), for the objects of the
bucket; clients inside AWS sent to the bucket when C{ipfilteredby} says
so; and every option checked at start.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface import alsoProvides

from tests.storage.middleware.keys import ecKey, rsaKey, writeKey
from tests.storage.middleware.ranges import writeRanges
from txregistry.storage.errors import DriverConfigurationError
from txregistry.storage.inmemory import InMemoryDriver
from txregistry.storage.interfaces import IBucketKeyed
from txregistry.storage.middleware import cloudfront
from txregistry.storage.middleware.forwarding import directURL

WHERE = "middleware.storage[0]"
BASE = "https://d111111abcdef8.cloudfront.net"


class _Bucket(InMemoryDriver):
    """
    An in-memory driver that names objects as an S3 bucket would, and
    presigns as one.
    """

    def __init__(self) -> None:
        super().__init__()
        alsoProvides(self, IBucketKeyed)

    def bucketKey(self, path: str) -> str:
        return "registry" + path

    def urlFor(self, path: str, method: str = "GET", expiry: float = 1200.0) -> Deferred[str | None]:
        return succeed(f"https://bucket.s3.example/registry{path}?X-Amz-Signature=s3")


def verifyCannedURL(testCase: TestCase, url: str, keyPairID: str = "K2JCJMDEHXQW5F") -> tuple[str, int]:
    """
    Check C{url} as CloudFront does a canned-policy signed URL: the
    signature (CloudFront's base64 alphabet) verifies with the public key
    over the canned policy of the URL without its signing parameters and
    its C{Expires}, and it names the key pair.

    @return: the resource and the expiry.
    """
    resource, _, query = url.partition("?")
    parameters = dict(parse_qsl(query))
    testCase.assertEqual(sorted(parameters), ["Expires", "Key-Pair-Id", "Signature"])
    testCase.assertEqual(parameters["Key-Pair-Id"], keyPairID)
    expires = int(parameters["Expires"])
    # AWS: "Creating a signed URL using a canned policy", the policy
    # statement with no white space.
    policy = ('{"Statement":[{"Resource":"' + resource + '","Condition":{"DateLessThan":'
              '{"AWS:EpochTime":' + str(expires) + '}}}]}').encode()
    signature = base64.b64decode(parameters["Signature"].translate(str.maketrans("-_~", "+=/")))
    rsaKey().public_key().verify(signature, policy, padding.PKCS1v15(), hashes.SHA1())
    return resource, expires


def botocoreURL(resource: str, expires: int, keyPairID: str = "K2JCJMDEHXQW5F") -> str:
    """
    The same URL from botocore's CloudFront signer (AWS's SDK).
    """
    from botocore.signers import CloudFrontSigner

    def rsaSigner(message: bytes) -> bytes:
        return rsaKey().sign(message, padding.PKCS1v15(), hashes.SHA1())

    return CloudFrontSigner(keyPairID, rsaSigner).generate_presigned_url(
        resource, date_less_than=datetime.fromtimestamp(expires, UTC))


class CloudFrontTests(TestCase):
    def options(self, **options: Any) -> dict[str, Any]:
        base = {"baseurl": BASE, "privatekey": writeKey(self), "keypairid": "K2JCJMDEHXQW5F"}
        base.update(options)
        return {k: v for k, v in base.items() if v is not None}

    def middleware(self, inner: Any = None, clock: Any = None, **options: Any) -> Any:
        clock = Clock() if clock is None else clock
        driver = cloudfront.wrap(_Bucket() if inner is None else inner,
                                 cloudfront.parse(self.options(**options), WHERE), clock, WHERE)
        self.addCleanup(driver.close)
        return driver

    async def test_signedURL(self) -> None:
        """
        The URL is the base URL followed by the object's key in the bucket,
        valid for C{duration} from now, signed so that the public key
        verifies it; botocore's signer makes the very same URL.
        """
        clock = Clock()
        clock.advance(1_800_000_000)
        driver = self.middleware(clock=clock, duration="60s")
        path = "/docker/registry/v2/blobs/sha256/ab/abcd/data"
        url = await driver.urlFor(path)
        resource, expires = verifyCannedURL(self, url)
        self.assertEqual(resource, f"{BASE}/registry{path}")
        self.assertEqual(expires, 1_800_000_060)
        self.assertEqual(url, botocoreURL(resource, expires))

    async def test_defaults(self) -> None:
        """
        Without C{duration}, a URL lasts 20 minutes; a base URL without a
        scheme is HTTPS; a PKCS #8 key is as good as AWS's PKCS #1 one.
        """
        clock = Clock()
        driver = self.middleware(clock=clock, baseurl="d111111abcdef8.cloudfront.net/layers",
                                 privatekey=writeKey(self, traditional=False))
        resource, expires = verifyCannedURL(self, await driver.urlFor("/a"))
        self.assertEqual((resource, expires), (f"{BASE}/layers/registry/a", 1200))

    async def test_notFilteredByDefault(self) -> None:
        """
        With C{ipfilteredby: none} every client, inside AWS or not, gets
        CloudFront's URL.
        """
        driver = self.middleware()
        verifyCannedURL(self, await directURL(driver, "/a", client="3.5.140.1"))

    async def test_filteredByAWS(self) -> None:
        """
        With C{ipfilteredby: aws}, a client in AWS's ranges gets the
        bucket's own URL; one outside, or unknown, gets CloudFront's.
        """
        ranges = writeRanges(self, ("3.5.140.0/22", "us-east-1"), ("2600:1f00::/24", "eu-west-1"))
        driver = self.middleware(ipfilteredby="aws", iprangesurl=ranges)
        for inside in ("3.5.140.1", "2600:1f00::5"):
            self.assertEqual(await directURL(driver, "/a", client=inside),
                             "https://bucket.s3.example/registry/a?X-Amz-Signature=s3")
        for outside in ("198.51.100.7", "", None):
            verifyCannedURL(self, await directURL(driver, "/a", client=outside))

    async def test_filteredByRegion(self) -> None:
        """
        With C{ipfilteredby: awsregion}, only clients in C{awsregion}'s
        regions (comma separated, any case) go to the bucket.
        """
        ranges = writeRanges(self, ("3.5.140.0/22", "us-east-1"), ("15.230.0.0/24", "eu-west-1"),
                             ("52.94.76.0/22", "us-west-2"))
        driver = self.middleware(ipfilteredby="awsregion", awsregion="us-east-1, US-WEST-2",
                                 iprangesurl="file://" + ranges, updatefrequency="1h")
        for inside in ("3.5.140.1", "52.94.76.1"):
            self.assertIn("X-Amz-Signature", await directURL(driver, "/a", client=inside))
        verifyCannedURL(self, await directURL(driver, "/a", client="15.230.0.1"))

    def test_needsABucket(self) -> None:
        """
        Over a driver with no bucket (filesystem, inmemory) CloudFront has
        nothing to serve: the start stops, saying so.
        """
        e = self.assertRaises(DriverConfigurationError, cloudfront.wrap, InMemoryDriver(),
                              cloudfront.parse(self.options(), WHERE), Clock(), WHERE)
        self.assertIn("the inmemory driver keeps none", str(e))

    def test_unreadableRanges(self) -> None:
        missing = self.mktemp()
        e = self.assertRaises(DriverConfigurationError, cloudfront.wrap, _Bucket(),
                              cloudfront.parse(self.options(ipfilteredby="aws", iprangesurl=missing), WHERE),
                              Clock(), WHERE)
        self.assertTrue(str(e).startswith(f"{WHERE}.options.iprangesurl: cannot use {missing}:"), str(e))

    def test_refused(self) -> None:
        """
        Each missing or wrong option, and each that would do nothing, is
        one error naming it.
        """
        notAKey = self.mktemp()
        with open(notAKey, "w") as f:
            f.write("-----BEGIN NOTHING-----\n")
        cases: dict[str, dict[str, Any]] = {
            "baseurl: required": {"baseurl": None},
            "baseurl: expected SCHEME://HOST[/PATH]": {"baseurl": "ftp://cdn.example"},
            "privatekey: required": {"privatekey": None},
            "privatekey: cannot read /nonexistent.pem: No such file or directory":
                {"privatekey": "/nonexistent.pem"},
            f"privatekey: {notAKey} is not a PEM private key": {"privatekey": notAKey},
            "keypairid: required": {"keypairid": None},
            "duration: expected a duration with its unit": {"duration": 3000},
            "duration: expected a duration": {"duration": "3000 s"},
            "ipfilteredby: expected none, aws or awsregion": {"ipfilteredby": "gcp"},
            "awsregion: required with ipfilteredby: awsregion": {"ipfilteredby": "awsregion"},
            "awsregion: used only with ipfilteredby: awsregion": {"ipfilteredby": "aws", "awsregion": "us-east-1"},
            "awsregion: names no region": {"ipfilteredby": "awsregion", "awsregion": " , "},
            "iprangesurl: used only with ipfilteredby: aws or awsregion": {"iprangesurl": "/x.json"},
            "updatefrequency: used only with ipfilteredby": {"updatefrequency": "1h"},
            "updatefrequency: must be more than 0": {"ipfilteredby": "aws", "updatefrequency": "0s"},
            "updatefrenquency: the old spelling of updatefrequency": {
                "ipfilteredby": "aws", "updatefrequency": "1h", "updatefrenquency": "2h"},
            "iprangesurl: expected a URL": {"ipfilteredby": "aws", "iprangesurl": "https://"},
            "bogus: unknown option": {"bogus": 1},
        }
        for message, options in cases.items():
            e = self.assertRaises(DriverConfigurationError, cloudfront.parse, self.options(**options), WHERE)
            self.assertTrue(str(e).startswith(f"{WHERE}.options.{message}"), f"{message!r}: {e}")
        e = self.assertRaises(DriverConfigurationError, cloudfront.parse,
                              self.options(privatekey=writeKey(self, ecKey())), WHERE)
        self.assertIn("is not an RSA key", str(e))
        e = self.assertRaises(DriverConfigurationError, cloudfront.parse,
                              self.options(privatekey=writeKey(self, password=b"pw")), WHERE)
        self.assertIn("is encrypted", str(e))

    def test_oldSpelling(self) -> None:
        """
        The reference's misspelt C{updatefrenquency} still works.
        """
        options = cloudfront.parse(self.options(ipfilteredby="aws", updatefrenquency="30m"), WHERE)
        self.assertEqual(options.updateFrequency, 1800.0)
        self.assertEqual(options.ipRangesURL, "https://ip-ranges.amazonaws.com/ip-ranges.json")

    def test_policyIsCanned(self) -> None:
        """
        The policy is AWS's canned one, byte for byte.
        """
        self.assertEqual(json.loads(cloudfront.cannedPolicy("https://x/a", 7)),
                         {"Statement": [{"Resource": "https://x/a",
                                         "Condition": {"DateLessThan": {"AWS:EpochTime": 7}}}]})
        self.assertNotIn(b" ", cloudfront.cannedPolicy("https://x/a", 7))

    async def test_badPathFails(self) -> None:
        """
        A path that is not a storage path is a failed L{Deferred}, as a
        driver's errors are, not an exception at the caller.
        """
        from txregistry.storage.errors import InvalidPathError

        class _CheckingBucket(_Bucket):
            def bucketKey(self, path: str) -> str:
                raise InvalidPathError(path)

        d = self.middleware(_CheckingBucket()).urlFor("no/slash")
        with self.assertRaises(InvalidPathError):
            await d
