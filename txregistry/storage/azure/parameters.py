# -*- test-case-name: tests.storage.test_azure -*-
"""
C{storage.azure}: the reference registry's Azure parameters, checked and
typed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from txregistry.storage.errors import DriverConfigurationError, checkParameters
from txregistry.storage.params import (
    parseBool,
    parseDurationParameter,
    parseInt,
    parseRoot,
    parseString,
)

__all__ = ["KNOWN", "AzureParameters", "parseParameters"]

MiB = 1024 * 1024

KNOWN = (
    "accountname", "accountkey", "container", "credentials", "realm", "serviceurl",
    "rootdirectory", "max_retries", "retry_delay", "chunksize", "skipverify",
)

#: Azure's largest block (service version 2019-12-12 and later).
MAX_BLOCK = 4000 * MiB


@dataclass(frozen=True)
class AzureParameters:
    """
    The Azure driver's configuration.

    @ivar serviceURL: C{scheme://host[:port][/account]} of the Blob
        service, without the container (from C{serviceurl}, or
        C{https://<accountname>.blob.<realm>}).
    @ivar key: the account key, decoded.
    @ivar prefix: the blob name prefix every path is stored under (from
        C{rootdirectory}): empty, or ending in C{/}.
    @ivar maxRetries: polls of a server-side copy's status before the move
        fails (C{max_retries}); -1 for none.
    @ivar retryDelay: seconds between those polls, times the poll number.
    """

    accountName: str
    key: bytes
    container: str
    serviceURL: str
    prefix: str
    maxRetries: int
    retryDelay: float
    chunkSize: int
    skipVerify: bool


def parseParameters(parameters: Mapping[str, Any]) -> AzureParameters:
    """
    Check C{storage.azure} and give it types and defaults (the reference's:
    the C{core.windows.net} realm, 5 copy-status retries 100ms apart).

    @raise DriverConfigurationError: naming the first bad key.
    """
    name = "azure"
    checkParameters(name, parameters, KNOWN)
    credentials = parameters.get("credentials")
    if credentials is not None:
        if not isinstance(credentials, Mapping):
            raise DriverConfigurationError("storage.azure.credentials: must be a mapping")
        kind = credentials.get("type")
        if kind != "shared_key":
            raise DriverConfigurationError(
                f"storage.azure.credentials.type: {kind!r} is not supported yet "
                "(shared_key is: accountname and accountkey)"
            )
        checkParameters("azure.credentials", credentials, ("type",))
    account = parseString(name, parameters, "accountname")
    if not account:
        raise DriverConfigurationError("storage.azure.accountname: required")
    encoded = parseString(name, parameters, "accountkey")
    if not encoded:
        raise DriverConfigurationError("storage.azure.accountkey: required (base64)")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise DriverConfigurationError("storage.azure.accountkey: must be base64") from None
    container = parseString(name, parameters, "container")
    if not container:
        raise DriverConfigurationError("storage.azure.container: required (it must exist)")
    realm = parseString(name, parameters, "realm", "core.windows.net") or "core.windows.net"
    serviceURL = parseString(name, parameters, "serviceurl")
    if serviceURL:
        parts = urlsplit(serviceURL)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise DriverConfigurationError(
                "storage.azure.serviceurl: must be an http(s) URL, "
                "https://account.blob.core.windows.net say"
            )
        serviceURL = serviceURL.rstrip("/")
    else:
        serviceURL = f"https://{account}.blob.{realm}"
    return AzureParameters(
        accountName=account,
        key=key,
        container=container,
        serviceURL=serviceURL,
        prefix=parseRoot(name, parameters),
        maxRetries=parseInt(name, parameters, "max_retries", 5, -1, 1000),
        retryDelay=parseDurationParameter(name, parameters, "retry_delay", 0.1),
        chunkSize=parseInt(name, parameters, "chunksize", 8 * MiB, 64 * 1024, MAX_BLOCK),
        skipVerify=parseBool(name, parameters, "skipverify", False),
    )
