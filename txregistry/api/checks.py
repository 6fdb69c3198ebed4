# -*- test-case-name: tests.api.test_names -*-
"""
Checks of what a request says: digests, query arguments, headers.  Each
raises the spec's error, so routes can call them first thing.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

from txregistry.api.errors import DIGEST_INVALID, UNSUPPORTED, APIError
from txregistry.registry.digest import Digest, InvalidDigest


def checkDigest(value: str) -> Digest:
    """
    @raise APIError: C{DIGEST_INVALID}.
    """
    try:
        return Digest.parse(value)
    except InvalidDigest as e:
        raise APIError(DIGEST_INVALID, str(e)[:300], detail={"digest": value[:300]}) from None


def queryArgument(request: IRequest, name: bytes) -> str | None:
    """
    The first value of query argument C{name}, decoded, or L{None}.
    """
    values = request.args.get(name)
    if not values:
        return None
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise APIError(UNSUPPORTED, f"query argument {name.decode()} is not UTF-8", status=400) from None


def headerValue(request: IRequest, name: bytes) -> str | None:
    value = request.getHeader(name)
    return None if value is None else value.decode("latin-1")
