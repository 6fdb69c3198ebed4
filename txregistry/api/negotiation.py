# -*- test-case-name: tests.api.test_manifests -*-
"""
Content negotiation for manifests.

Clients send their accepted media types over several C{Accept} lines
(docker sends one per type); every line counts.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest


def acceptedTypes(request: IRequest) -> list[str]:
    """
    The media types of every C{Accept} header line, in order, without
    parameters, lower-cased.
    """
    types: list[str] = []
    for line in request.requestHeaders.getRawHeaders(b"accept", []):
        for item in line.decode("latin-1").split(","):
            mediaType = item.split(";", 1)[0].strip().lower()
            if mediaType:
                types.append(mediaType)
    return types


def isAcceptable(mediaType: str, accepted: list[str]) -> bool:
    """
    Whether C{mediaType} is among C{accepted} (no C{Accept} at all accepts
    everything, as do C{*/*} and C{type/*}).
    """
    if not accepted:
        return True
    major = mediaType.split("/", 1)[0]
    return any(a in (mediaType, "*/*", f"{major}/*") for a in accepted)
