# -*- test-case-name: tests.auth.test_token,tests.auth.test_htpasswd -*-
"""
The errors of L{txregistry.auth} that are not about one request.
"""

from __future__ import annotations

__all__ = ["AuthConfigurationError"]


class AuthConfigurationError(Exception):
    """
    The auth configuration is wrong; the message names the key.

    Raised while the registry starts (reading a root bundle, a key set, a
    list of algorithms), so that C{twistd} can print one line and exit
    rather than serve with an access control it cannot enforce.
    """
