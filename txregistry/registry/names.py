# -*- test-case-name: tests.api.test_names -*-
"""
Repository names and tags, as the OCI Distribution Spec defines them.
"""

from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")

#: The longest repository name accepted (see the spec's implementers note:
#: 255 for host, port, slash and name together).
MAX_NAME_LENGTH = 255


def isValidName(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and _NAME.match(name) is not None


def isValidTag(tag: str) -> bool:
    return _TAG.match(tag) is not None
