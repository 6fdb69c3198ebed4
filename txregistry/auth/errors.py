# -*- test-case-name: tests.auth.test_htpasswd -*-
"""
The errors of the C{auth} configuration.
"""

from __future__ import annotations

__all__ = ["AuthConfigurationError"]


class AuthConfigurationError(Exception):
    """
    The C{auth} section names something that cannot be used: a missing or
    malformed password file, for one.

    The message is one line that starts with the configuration key at
    fault (C{auth.htpasswd.path: /etc/registry/htpasswd line 3: not a
    bcrypt entry}), so the start can stop with it as it is.  It never
    repeats a secret: a password hash stays out of it.
    """
