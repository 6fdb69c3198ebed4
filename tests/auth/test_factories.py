"""
The htpasswd checker is found as a L{twisted.cred.strcred} plugin, and
finding it costs nothing until one is made.
"""

from __future__ import annotations

import os
import subprocess
import sys

import bcrypt
from twisted.cred import strcred
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.python import usage
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from txregistry.auth import factories
from txregistry.auth.errors import AuthConfigurationError
from txregistry.auth.htpasswd import HtpasswdChecker


class _Options(usage.Options, strcred.AuthOptionMixin):
    """
    The options of a program that takes C{--auth}, as twistd's do.
    """

    supportedInterfaces = [IUsernamePassword]


class HtpasswdFactoryTests(TestCase):
    def htpasswd(self) -> str:
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b"alice:" + bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)) + b"\n")
        return path

    def test_found(self) -> None:
        """
        L{strcred.findCheckerFactory} finds the factory through the plugin.
        """
        factory = strcred.findCheckerFactory("htpasswd")
        self.assertIs(factory, factories.htpasswd)
        self.assertTrue(verifyObject(strcred.ICheckerFactory, factory))
        self.assertEqual(list(factory.credentialInterfaces), [IUsernamePassword])

    async def test_makeChecker(self) -> None:
        """
        C{htpasswd:PATH} makes a checker over the file at PATH, checking
        on the reactor's thread pool.
        """
        checker = strcred.makeChecker("htpasswd:" + self.htpasswd())
        self.assertIsInstance(checker, HtpasswdChecker)
        avatarId = await checker.requestAvatarId(UsernamePassword(b"alice", b"secret"))
        self.assertEqual(avatarId, b"alice")

    def test_authOption(self) -> None:
        """
        A program with L{strcred.AuthOptionMixin} takes C{--auth htpasswd:PATH}.
        """
        options = _Options()
        options.parseOptions(["--auth", "htpasswd:" + self.htpasswd()])
        [checker] = options["credCheckers"]
        self.assertIsInstance(checker, HtpasswdChecker)

    def test_missing(self) -> None:
        """
        A missing file stops the start as it does from the configuration.
        """
        path = self.mktemp()
        error = self.assertRaises(AuthConfigurationError, strcred.makeChecker, "htpasswd:" + path)
        self.assertEqual(str(error), f"auth.htpasswd.path: {path}: No such file or directory")

    def test_noPath(self) -> None:
        self.assertRaises(strcred.InvalidAuthArgumentString, strcred.makeChecker, "htpasswd")
        self.assertRaises(strcred.InvalidAuthArgumentString, strcred.makeChecker, "htpasswd: ")

    def test_importIsCheap(self) -> None:
        """
        Every plugin lookup imports the plugin module: it imports neither
        the checker, bcrypt nor a reactor.
        """
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + sys.path))
        result = subprocess.run(
            [sys.executable, "-c",
             "import sys, twisted.plugins.txregistry_auth as p; "
             "print(p.htpasswd.authType, sorted(m for m in sys.modules if m in "
             "('txregistry.auth.htpasswd', 'bcrypt', 'twisted.internet.reactor')))"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual((result.returncode, result.stdout), (0, "htpasswd []\n"), result.stderr)
