# -*- test-case-name: tests.auth.test_factories -*-
"""
Registers txregistry's credentials checkers with L{twisted.plugin}, for
L{twisted.cred.strcred} (C{htpasswd:/path/to/file}), and its built-in
access policy (C{auth.access.policy: rules}).
"""

from txregistry.auth.factories import htpasswd
from txregistry.auth.policy import rules

__all__ = ["htpasswd", "rules"]
