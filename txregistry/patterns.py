# -*- test-case-name: tests.test_patterns -*-
"""
Repository name patterns, as every per-repository setting reads them
(the access policy, immutable tags, quotas, retention): matched against
whole path components.

C{*} matches within one component, C{**} one or more whole components,
C{?} one character, and C{${account}} (where a caller is known) the
caller's own user name.  Matching is case-sensitive, as names are.
"""

from __future__ import annotations

import re

__all__ = ["PatternError", "compileRepositoryPattern", "ACCOUNT"]

#: The placeholder for the caller's user name in a pattern.
ACCOUNT = "${account}"


class PatternError(ValueError):
    """
    A pattern that is not one; the message says why.
    """


def compileRepositoryPattern(pattern: str, allowAccount: bool = True) -> re.Pattern[str]:
    """
    The regular expression for a repository C{pattern}, to use with
    C{fullmatch}; L{ACCOUNT} becomes a group named C{account}.

    @raise PatternError: for a malformed pattern.
    """
    if not pattern or pattern.startswith("/") or pattern.endswith("/") or "//" in pattern:
        raise PatternError(f"{pattern!r} is not a repository pattern")
    parts: list[str] = []
    for component in pattern.split("/"):
        if component == "**":
            parts.append(r"[^/]+(?:/[^/]+)*")
            continue
        if "**" in component:
            raise PatternError(f"** must be a whole component in {pattern!r}")
        text: list[str] = []
        rest = component
        while rest:
            if rest.startswith(ACCOUNT):
                if not allowAccount:
                    raise PatternError(f"{ACCOUNT} has no meaning here ({pattern!r})")
                if "(?P<account>" in "".join(parts + text):
                    raise PatternError(f"{ACCOUNT} may appear once in {pattern!r}")
                text.append(r"(?P<account>[^/]+)")
                rest = rest[len(ACCOUNT):]
            elif rest[0] == "*":
                text.append(r"[^/]*")
                rest = rest[1:]
            elif rest[0] == "?":
                text.append(r"[^/]")
                rest = rest[1:]
            else:
                text.append(re.escape(rest[0]))
                rest = rest[1:]
        parts.append("".join(text))
    return re.compile("/".join(parts))
