# -*- test-case-name: tests.notifications.test_signing -*-
"""
Signed deliveries in the Standard Webhooks form
(U{https://www.standardwebhooks.com/}): three headers,

    webhook-id: <message id>
    webhook-timestamp: <POSIX seconds>
    webhook-signature: v1,<base64 of HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>

so that a receiver with the endpoint's C{secret} knows the body came from
the registry, and (with the timestamp) is not an old one replayed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

__all__ = ["sign", "signatureHeaders", "messageID", "verify"]


def sign(secret: bytes, msgID: str, timestamp: int, body: bytes) -> str:
    """
    The C{webhook-signature} value (one C{v1} signature).
    """
    signed = b"%s.%d.%s" % (msgID.encode("utf-8"), timestamp, body)
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def messageID(eventIDs: Iterable[str]) -> str:
    """
    The C{webhook-id} of an envelope: the same for the same events (a
    retry), different for any other set, so a receiver that drops
    repeated message ids never drops an event it has not seen.
    """
    digest = hashlib.sha256("\n".join(eventIDs).encode("utf-8")).hexdigest()
    return "msg_" + digest[:32]


def signatureHeaders(secret: bytes, msgID: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msgID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msgID, timestamp, body),
    }


def verify(
    secret: bytes, headers: Mapping[str, str], body: bytes, now: float, tolerance: float = 300
) -> bool:
    """
    Whether C{headers} (lower-case names) sign C{body} with C{secret}, at
    a time within C{tolerance} seconds of C{now}: what a receiver checks.
    """
    try:
        msgID = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, msgID, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)
