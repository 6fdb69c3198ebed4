# -*- test-case-name: tests.storage.test_filesystem -*-
"""
The one definition of a valid storage path.

Every driver checks paths here before touching anything, so no path coming
from a request can name something outside the driver's root.
"""

import re

from txregistry.storage.errors import InvalidPathError

__all__ = ["checkPath", "isHidden", "parent"]

# Components are plain names: letters, digits, '.', '_', '-', never starting
# with '.', which keeps '.' and '..' out and leaves dot-names free for a
# driver's own temporary files.
_PATH = re.compile(r"(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+")


def checkPath(path: str, allowRoot: bool = False) -> str:
    """
    Return C{path} unchanged if it is a valid storage path.

    Every driver calls this on every path it is given, before any I/O: the
    driver suite checks that each method refuses the same bad paths.

    @param allowRoot: accept C{"/"} (for listing and walking).
    @raise InvalidPathError: otherwise.
    """
    if allowRoot and path == "/":
        return path
    # fullmatch, not match with "$": "$" also matches before a final
    # newline, which would let "/a\n" through.
    if not isinstance(path, str) or _PATH.fullmatch(path) is None:
        raise InvalidPathError(path)
    return path


def parent(path: str) -> str:
    """
    The directory part of a valid path (C{"/"} for a top-level name).
    """
    head = path.rsplit("/", 1)[0]
    return head or "/"


def isHidden(name: str) -> bool:
    """
    Whether a name is a driver's private entry (never listed or walked).

    No valid path has a component starting with C{"."}, so a driver may
    keep its staging files and uploads under such names.
    """
    return name.startswith(".")
