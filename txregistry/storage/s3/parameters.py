# -*- test-case-name: tests.storage.test_s3 -*-
"""
C{storage.s3}: the reference registry's S3 parameters, checked and typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from txregistry.storage.errors import DriverConfigurationError, checkParameters

__all__ = ["KNOWN", "MIN_PART", "S3Parameters", "parseParameters"]

MiB = 1024 * 1024

#: S3's smallest part (all but the last of a multipart upload).
MIN_PART = 5 * MiB

#: S3's largest part, and largest single C{PUT} or C{CopyObject}.
MAX_PART = 5 * 1024 * MiB

#: The storage classes S3 names; C{NONE} sends no class (for stores that
#: know none).
STORAGE_CLASSES = frozenset(
    {
        "NONE", "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
        "INTELLIGENT_TIERING", "GLACIER_IR", "EXPRESS_ONEZONE",
    }
)

#: S3's canned ACLs.
OBJECT_ACLS = frozenset(
    {
        "private", "public-read", "public-read-write", "authenticated-read",
        "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control",
    }
)

KNOWN = (
    "accesskey", "secretkey", "region", "regionendpoint", "forcepathstyle", "bucket",
    "encrypt", "keyid", "secure", "skipverify", "v4auth", "chunksize",
    "multipartcopychunksize", "multipartcopymaxconcurrency", "multipartcopythresholdsize",
    "rootdirectory", "storageclass", "objectacl", "useragent",
)


@dataclass(frozen=True)
class S3Parameters:
    """
    The S3 driver's configuration.

    @ivar endpoint: C{scheme://host[:port]} of the S3 API, without the
        bucket (from C{regionendpoint}, or AWS's endpoint for C{region}).
    @ivar prefix: the key prefix every path is stored under (from
        C{rootdirectory}): empty, or ending in C{/}.
    """

    bucket: str
    region: str
    endpoint: str
    pathStyle: bool
    accessKey: str | None
    secretKey: str | None
    encrypt: bool
    keyID: str | None
    skipVerify: bool
    v4auth: bool
    chunkSize: int
    copyChunkSize: int
    copyConcurrency: int
    copyThreshold: int
    prefix: str
    storageClass: str
    objectACL: str
    userAgent: str


def _bool(parameters: Mapping[str, Any], key: str, default: bool) -> bool:
    value = parameters.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise DriverConfigurationError(f"storage.s3.{key}: must be true or false")
    return value


def _int(parameters: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = parameters.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DriverConfigurationError(
            f"storage.s3.{key}: must be an integer from {low} to {high}"
        )
    return value


def _string(parameters: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = parameters.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DriverConfigurationError(f"storage.s3.{key}: must be a string")
    return value


def parseParameters(parameters: Mapping[str, Any]) -> S3Parameters:
    """
    Check C{storage.s3} and give it types and defaults (the reference's:
    10 MiB parts, 32 MiB copy parts and threshold, 100 concurrent copies,
    C{STANDARD} class, C{private} ACL, HTTPS, SigV4).

    @raise DriverConfigurationError: naming the first bad key.
    """
    checkParameters("s3", parameters, KNOWN)
    bucket = _string(parameters, "bucket")
    if not bucket:
        raise DriverConfigurationError("storage.s3.bucket: required (the bucket must exist)")
    region = _string(parameters, "region")
    if not region:
        raise DriverConfigurationError("storage.s3.region: required (us-east-1, say)")
    secure = _bool(parameters, "secure", True)
    scheme = "https" if secure else "http"
    endpoint = _string(parameters, "regionendpoint") or ""
    if endpoint:
        if "://" not in endpoint:
            endpoint = f"{scheme}://{endpoint}"
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise DriverConfigurationError(
                "storage.s3.regionendpoint: must be a host[:port] or an http(s) URL with no path"
            )
        endpoint = f"{parts.scheme}://{parts.netloc}"
    else:
        endpoint = f"{scheme}://s3.{region}.amazonaws.com"
    accessKey = _string(parameters, "accesskey") or None
    secretKey = _string(parameters, "secretkey") or None
    if (accessKey is None) != (secretKey is None):
        raise DriverConfigurationError(
            "storage.s3.accesskey: accesskey and secretkey go together "
            "(give both, or neither to use the environment and the AWS files)"
        )
    chunkSize = _int(parameters, "chunksize", 10 * MiB, MIN_PART, MAX_PART)
    copyChunkSize = _int(parameters, "multipartcopychunksize", 32 * MiB, MIN_PART, MAX_PART)
    copyConcurrency = _int(parameters, "multipartcopymaxconcurrency", 100, 1, 1000)
    copyThreshold = _int(parameters, "multipartcopythresholdsize", 32 * MiB, 0, MAX_PART)
    root = _string(parameters, "rootdirectory", "") or ""
    root = root.strip("/")
    if any(not part or part.startswith(".") for part in root.split("/")) and root:
        raise DriverConfigurationError(
            "storage.s3.rootdirectory: must be a key prefix like /registry (no empty or dot parts)"
        )
    storageClass = _string(parameters, "storageclass", "STANDARD") or "STANDARD"
    if storageClass not in STORAGE_CLASSES:
        raise DriverConfigurationError(
            f"storage.s3.storageclass: must be one of {', '.join(sorted(STORAGE_CLASSES))}"
        )
    objectACL = _string(parameters, "objectacl", "private") or "private"
    if objectACL not in OBJECT_ACLS:
        raise DriverConfigurationError(
            f"storage.s3.objectacl: must be one of {', '.join(sorted(OBJECT_ACLS))}"
        )
    encrypt = _bool(parameters, "encrypt", False)
    keyID = _string(parameters, "keyid") or None
    if keyID and not encrypt:
        raise DriverConfigurationError("storage.s3.keyid: needs storage.s3.encrypt: true")
    return S3Parameters(
        bucket=bucket,
        region=region,
        endpoint=endpoint,
        pathStyle=_bool(parameters, "forcepathstyle", False),
        accessKey=accessKey,
        secretKey=secretKey,
        encrypt=encrypt,
        keyID=keyID,
        skipVerify=_bool(parameters, "skipverify", False),
        v4auth=_bool(parameters, "v4auth", True),
        chunkSize=chunkSize,
        copyChunkSize=copyChunkSize,
        copyConcurrency=copyConcurrency,
        copyThreshold=copyThreshold,
        prefix=f"{root}/" if root else "",
        storageClass=storageClass,
        objectACL=objectACL,
        userAgent=_string(parameters, "useragent", "txregistry") or "txregistry",
    )
