# -*- test-case-name: tests.auth.test_factories -*-
"""
Registers txregistry's credentials checkers with L{twisted.plugin}, for
L{twisted.cred.strcred} (C{htpasswd:/path/to/file}).
"""

from txregistry.auth.factories import htpasswd

__all__ = ["htpasswd"]
