# -*- test-case-name: tests.auth.test_factories -*-
"""
Checker factories for L{twisted.cred.strcred}, so a checker is named by a
string (C{htpasswd:/etc/registry/htpasswd}) and a site can ship its own as
a L{twisted.plugin} beside these.

This module is imported by C{twisted/plugins/txregistry_auth.py}, which
every plugin lookup imports, so it stays cheap: a checker's module (and
bcrypt, and the reactor) is imported only when a checker is made.
"""

from __future__ import annotations

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.strcred import ICheckerFactory, InvalidAuthArgumentString
from twisted.plugin import IPlugin
from zope.interface import implementer

__all__ = ["HtpasswdCheckerFactory", "htpasswd"]

_HTPASSWD_HELP = """
Checks user names and passwords against an Apache htpasswd file of bcrypt
entries (made with htpasswd -B), the auth.htpasswd section of the
configuration.  The file is read again when it changes; a missing file or
an entry of another kind stops the start.
"""


@implementer(ICheckerFactory, IPlugin)
class HtpasswdCheckerFactory:
    """
    Makes an L{txregistry.auth.htpasswd.HtpasswdChecker} from the path of
    its file, checking with the global reactor's clock and thread pool.
    """

    authType = "htpasswd"
    authHelp = _HTPASSWD_HELP
    argStringFormat = "The path of an htpasswd file of bcrypt entries."
    credentialInterfaces = (IUsernamePassword,)

    def generateChecker(self, argstring: str = "") -> ICredentialsChecker:
        """
        Load the file at C{argstring}; this blocks, so call it at the start.

        @raise InvalidAuthArgumentString: when no path is given.
        @raise txregistry.auth.errors.AuthConfigurationError: when the file
            is missing or malformed, naming C{auth.htpasswd.path}.
        """
        if not argstring.strip():
            raise InvalidAuthArgumentString(f"{self.authType!r} requires the path of a file")
        from twisted.internet import reactor

        from txregistry.auth.htpasswd import HtpasswdChecker

        return HtpasswdChecker.fromPath(argstring, reactor)


htpasswd = HtpasswdCheckerFactory()
