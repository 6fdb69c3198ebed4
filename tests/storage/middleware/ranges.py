"""
C{ip-ranges.json} documents in AWS's format, for the tests (the real one
is on the internet).
"""

from __future__ import annotations

import json
import os
from typing import Any


def document(*prefixes: tuple[str, str]) -> bytes:
    """
    An ip-ranges document of C{(prefix, region)} pairs, IPv4 and IPv6.
    """
    return json.dumps({
        "syncToken": "1700000000",
        "createDate": "2026-01-01-00-00-00",
        "prefixes": [{"ip_prefix": p, "region": r, "service": "AMAZON", "network_border_group": r}
                     for p, r in prefixes if ":" not in p],
        "ipv6_prefixes": [{"ipv6_prefix": p, "region": r, "service": "AMAZON",
                           "network_border_group": r} for p, r in prefixes if ":" in p],
    }).encode()


def writeRanges(testCase: Any, *prefixes: tuple[str, str]) -> str:
    path = os.path.abspath(testCase.mktemp()) + ".json"
    with open(path, "wb") as f:
        f.write(document(*prefixes))
    return path
