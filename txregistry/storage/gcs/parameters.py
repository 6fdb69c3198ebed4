# -*- test-case-name: tests.storage.test_gcs -*-
"""
C{storage.gcs}: the reference registry's GCS parameters, checked and
typed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from txregistry.storage.errors import DriverConfigurationError, checkParameters
from txregistry.storage.params import parseInt, parseRoot, parseString

__all__ = ["CHUNK_UNIT", "KNOWN", "GCSParameters", "parseParameters"]

KNOWN = ("bucket", "keyfile", "credentials", "rootdirectory", "chunksize")

#: Resumable upload chunks are multiples of this (GCS's rule).
CHUNK_UNIT = 256 * 1024

#: Where GCS's JSON API is, unless C{STORAGE_EMULATOR_HOST} names an
#: emulator (the variable Google's own libraries read).
ENDPOINT = "https://storage.googleapis.com"


@dataclass(frozen=True)
class GCSParameters:
    """
    The GCS driver's configuration.

    @ivar keyfile: a service account key file, or L{None}.
    @ivar credentials: a service account key given inline (the key file's
        fields), or L{None}.  With neither, Google's Application Default
        Credentials.
    @ivar endpoint: C{scheme://host[:port]} of the JSON API.
    @ivar anonymous: whether requests go unsigned (to an emulator).
    @ivar prefix: the object name prefix every path is stored under (from
        C{rootdirectory}): empty, or ending in C{/}.
    """

    bucket: str
    keyfile: str | None
    credentials: Mapping[str, Any] | None
    endpoint: str
    anonymous: bool
    prefix: str
    chunkSize: int


def parseParameters(
    parameters: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> GCSParameters:
    """
    Check C{storage.gcs} and give it types and defaults (the reference's:
    5 MiB chunks).

    @param environ: where C{STORAGE_EMULATOR_HOST} is looked up (the
        process's environment by default).
    @raise DriverConfigurationError: naming the first bad key.
    """
    checkParameters("gcs", parameters, KNOWN)
    bucket = parseString("gcs", parameters, "bucket")
    if not bucket:
        raise DriverConfigurationError("storage.gcs.bucket: required (the bucket must exist)")
    keyfile = parseString("gcs", parameters, "keyfile") or None
    credentials = parameters.get("credentials")
    if credentials is not None:
        if not isinstance(credentials, Mapping) or credentials.get("type") != "service_account":
            raise DriverConfigurationError(
                "storage.gcs.credentials: must be a service account key "
                "(type: service_account, client_email, private_key, ...)"
            )
        if keyfile:
            raise DriverConfigurationError(
                "storage.gcs.credentials: give keyfile or credentials, not both"
            )
    chunkSize = parseInt("gcs", parameters, "chunksize", 5 * 1024 * 1024, CHUNK_UNIT, 2**32)
    if chunkSize % CHUNK_UNIT:
        raise DriverConfigurationError(
            f"storage.gcs.chunksize: must be a multiple of {CHUNK_UNIT} (256 KiB)"
        )
    emulator = (os.environ if environ is None else environ).get("STORAGE_EMULATOR_HOST", "")
    endpoint = ENDPOINT
    if emulator:
        endpoint = emulator if "://" in emulator else f"http://{emulator}"
    return GCSParameters(
        bucket=bucket,
        keyfile=keyfile,
        credentials=dict(credentials) if credentials is not None else None,
        endpoint=endpoint.rstrip("/"),
        anonymous=bool(emulator),
        prefix=parseRoot("gcs", parameters),
        chunkSize=chunkSize,
    )
