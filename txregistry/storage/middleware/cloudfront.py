# -*- test-case-name: tests.storage.middleware.test_cloudfront -*-
"""
The C{cloudfront} storage middleware: blob downloads go to Amazon
CloudFront in front of the S3 bucket, as signed URLs with a canned policy
(the URL, valid until C{duration} from now), signed with the distribution's
key pair.

A canned-policy URL is C{<baseurl><object key>?Expires=<epoch
seconds>&Signature=<signature>&Key-Pair-Id=<keypairid>}, the signature
being RSA-SHA1 (PKCS #1 v1.5) over the policy
C{{"Statement":[{"Resource":"<url>","Condition":{"DateLessThan":
{"AWS:EpochTime":<epoch seconds>}}}]}}, in base64 with C{+=/} replaced
by C{-_~} (CloudFront's URL-safe alphabet).  That is AWS's documented
format ("Creating a signed URL using a canned policy"), the one the
reference's SDK signer makes; C{cryptography} does the RSA.

With C{ipfilteredby} C{aws} (or C{awsregion}), clients whose address is
in AWS's published ranges (of C{awsregion}'s regions) get the bucket's own
presigned URL instead (L{txregistry.storage.middleware.awsips}).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorCore
from zope.interface import alsoProvides

from txregistry.storage.errors import DriverConfigurationError, asynchronousErrors
from txregistry.storage.interfaces import IBucketKeyed, IClientRoutedURLs, IStorageDriver
from txregistry.storage.middleware.awsips import AWS_IP_RANGES_URL, AWSIPRanges, isLocal
from txregistry.storage.middleware.forwarding import ForwardingDriver, directURL
from txregistry.storage.middleware.options import Options

__all__ = ["CloudFrontMiddleware", "CloudFrontOptions", "cannedPolicy", "parse", "sign", "wrap"]

_OPTIONS = {"baseurl", "privatekey", "keypairid", "duration", "ipfilteredby", "awsregion",
            "updatefrequency", "updatefrenquency", "iprangesurl"}
_FILTERS = ("none", "aws", "awsregion")
#: The options that only matter when filtering by address.
_FILTER_OPTIONS = ("updatefrequency", "updatefrenquency", "iprangesurl")


@dataclass(frozen=True)
class CloudFrontOptions:
    """
    The checked options.

    @ivar baseURL: C{baseurl}, ending with C{/}.
    @ivar privateKey: the key read from the C{privatekey} file.
    @ivar duration: seconds a signed URL stays valid.
    @ivar ipFilteredBy: C{none}, C{aws} or C{awsregion}.
    @ivar regions: C{awsregion}'s regions, lower case.
    @ivar updateFrequency: seconds between reads of C{ipRangesURL}.
    """

    baseURL: str
    privateKey: rsa.RSAPrivateKey
    keyPairID: str
    duration: float = 1200.0
    ipFilteredBy: str = "none"
    regions: frozenset[str] = frozenset()
    updateFrequency: float = 12 * 3600.0
    ipRangesURL: str = AWS_IP_RANGES_URL


def _privateKey(checked: Options) -> rsa.RSAPrivateKey:
    path = checked.string("privatekey", required=True)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise checked.error("privatekey", f"cannot read {path}: {e.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise checked.error("privatekey", f"{path} is encrypted; CloudFront's key must not be") from None
    except ValueError:
        raise checked.error("privatekey", f"{path} is not a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise checked.error("privatekey", f"{path} is not an RSA key (CloudFront key pairs are RSA)")
    return key


def _regions(checked: Options) -> frozenset[str]:
    value = checked.options.get("awsregion")
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = value
    elif isinstance(value, str):
        names = value.split(",")
    else:
        raise checked.error("awsregion", f"expected AWS regions separated by commas, got {value!r}")
    regions = frozenset(n.strip().lower() for n in names if n.strip())
    if not regions:
        raise checked.error("awsregion", "names no region")
    return regions


def parse(options: Any, where: str) -> CloudFrontOptions:
    """
    Check the options and read the private key.

    @raise DriverConfigurationError: naming the option that is missing or
        wrong, or one given that would do nothing (C{awsregion} without
        C{ipfilteredby: awsregion}, C{iprangesurl} without a filter).
    """
    checked = Options(options, where, _OPTIONS)
    base = checked.string("baseurl", required=True)
    if "://" not in base:
        base = "https://" + base
    if not base.endswith("/"):
        base += "/"
    parts = urlsplit(base)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise checked.error("baseurl", f"expected SCHEME://HOST[/PATH], got {checked.options['baseurl']!r}")
    keyPairID = checked.string("keypairid", required=True)
    filtered = (checked.string("ipfilteredby").strip().lower() or "none")
    if filtered not in _FILTERS:
        raise checked.error("ipfilteredby", f"expected none, aws or awsregion, got {checked.options['ipfilteredby']!r}")
    if filtered == "awsregion":
        if "awsregion" not in checked:
            raise checked.error("awsregion", "required with ipfilteredby: awsregion")
        regions = _regions(checked)
    elif "awsregion" in checked:
        raise checked.error("awsregion", "used only with ipfilteredby: awsregion")
    else:
        regions = frozenset()
    if filtered == "none":
        for name in _FILTER_OPTIONS:
            if name in checked:
                raise checked.error(name, "used only with ipfilteredby: aws or awsregion")
    if "updatefrequency" in checked and "updatefrenquency" in checked:
        raise checked.error("updatefrenquency", "the old spelling of updatefrequency: give one of them")
    frequencyKey = "updatefrenquency" if "updatefrenquency" in checked else "updatefrequency"
    ranges = checked.string("iprangesurl") or AWS_IP_RANGES_URL
    if not isLocal(ranges):
        checked.url("iprangesurl")
    return CloudFrontOptions(
        baseURL=base,
        privateKey=_privateKey(checked),
        keyPairID=keyPairID,
        duration=checked.duration("duration", 1200.0),
        ipFilteredBy=filtered,
        regions=regions,
        updateFrequency=checked.duration(frequencyKey, 12 * 3600.0),
        ipRangesURL=ranges,
    )


def cannedPolicy(resource: str, expires: int) -> bytes:
    """
    The canned policy CloudFront checks a signed URL of C{resource} against.
    """
    policy = {"Statement": [{"Resource": resource,
                             "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]}
    return json.dumps(policy, separators=(",", ":")).encode("utf-8")


_URL_SAFE = bytes.maketrans(b"+=/", b"-_~")


def sign(resource: str, expires: int, key: rsa.RSAPrivateKey, keyPairID: str) -> str:
    """
    C{resource} as a CloudFront signed URL, valid until C{expires} (epoch
    seconds).
    """
    signature = key.sign(cannedPolicy(resource, expires), padding.PKCS1v15(), hashes.SHA1())
    encoded = base64.b64encode(signature).translate(_URL_SAFE).decode("ascii")
    separator = "&" if "?" in resource else "?"
    return f"{resource}{separator}Expires={expires}&Signature={encoded}&Key-Pair-Id={quote(keyPairID)}"


class CloudFrontMiddleware(ForwardingDriver):
    """
    CloudFront signed URLs for the inner driver's objects.

    @param ranges: the AWS networks whose clients get the bucket's own URL,
        or L{None} to send everyone to CloudFront.
    """

    def __init__(self, inner: IStorageDriver, options: CloudFrontOptions, reactor: Any,
                 ranges: AWSIPRanges | None = None) -> None:
        super().__init__(inner)
        self.options = options
        self.ranges = ranges
        self._clock = reactor
        if ranges is not None:
            alsoProvides(self, IClientRoutedURLs)

    @asynchronousErrors
    def urlForClient(
        self, path: str, method: str = "GET", expiry: float = 1200.0, client: str | None = None
    ) -> Deferred[str | None]:
        if self.ranges is not None and client and self.ranges.contains(client):
            return directURL(self.inner, path, method, expiry, client)
        o = self.options
        resource = o.baseURL + quote(IBucketKeyed(self.inner).bucketKey(path))
        expires = int(self._clock.seconds() + o.duration)
        return succeed(sign(resource, expires, o.privateKey, o.keyPairID))

    def close(self) -> Deferred[None]:
        d = self.ranges.stop() if self.ranges is not None else succeed(None)
        return d.addCallback(lambda _: self.inner.close())


def wrap(driver: IStorageDriver, options: CloudFrontOptions, reactor: Any, where: str) -> IStorageDriver:
    """
    @raise DriverConfigurationError: when C{driver} keeps no bucket
        (CloudFront serves a bucket's objects), or a local C{iprangesurl}
        cannot be read.
    """
    if not IBucketKeyed.providedBy(driver):
        raise DriverConfigurationError(
            f"{where}: cloudfront serves the objects of a bucket, and the {driver.name} driver"
            " keeps none (use it with the s3 driver)")
    ranges = None
    if options.ipFilteredBy != "none":
        regions = options.regions if options.ipFilteredBy == "awsregion" else None
        ranges = AWSIPRanges(options.ipRangesURL, regions, options.updateFrequency, reactor)
        if isLocal(options.ipRangesURL):
            try:
                ranges.loadNow()
            except (OSError, ValueError) as e:
                reason = getattr(e, "strerror", None) or str(e)
                raise DriverConfigurationError(
                    f"{where}.options.iprangesurl: cannot use {options.ipRangesURL}: {reason}") from None
        if IReactorCore.providedBy(reactor):
            # Not before: twistd forks (to daemonize) after the service is
            # made, and the reads' connections and thread must be the
            # daemon's.
            reactor.callWhenRunning(ranges.start)
        else:
            ranges.start()
    return CloudFrontMiddleware(driver, options, reactor, ranges)
