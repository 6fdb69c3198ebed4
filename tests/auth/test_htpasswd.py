"""
The htpasswd checker: who gets in, what an edit of the file changes while
the registry runs, and why a bad file stops the start.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import bcrypt
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from txregistry.auth import htpasswd
from txregistry.auth.errors import AuthConfigurationError
from txregistry.auth.htpasswd import HtpasswdChecker, loadHtpasswd, parseHtpasswd


def _hash(password: bytes, prefix: bytes = b"$2b$") -> bytes:
    """
    A cheap bcrypt hash of C{password} (cost 4), with the version C{prefix}.
    """
    return prefix + bcrypt.hashpw(password, bcrypt.gensalt(rounds=4))[4:]


def _entry(user: str, password: bytes, prefix: bytes = b"$2y$") -> bytes:
    return user.encode("utf-8") + b":" + _hash(password, prefix) + b"\n"


class _FileMixin:
    """
    An htpasswd file in the test's temporary directory.
    """

    mktemp: Callable[[], str]

    def write(self, content: bytes, age: float | None = None) -> str:
        """
        Write C{content} to the file in place, as an editor would.

        @param age: if given, set the file's mtime this many seconds in the
            past, so its read is trusted (not racy) and only a change of
            its signature causes another.
        """
        if not hasattr(self, "path"):
            self.path = self.mktemp()
        with open(self.path, "wb") as f:
            f.write(content)
        if age is not None:
            then = time.time() - age
            os.utime(self.path, (then, then))
        return self.path


class LoadTests(_FileMixin, TestCase):
    """
    L{loadHtpasswd} reads the file for the start, or stops it with one line
    naming the key and, for a bad line, its number, never its hash.
    """

    def assertRefused(self, content: bytes, why: str) -> AuthConfigurationError:
        path = self.write(content)
        error = self.assertRaises(AuthConfigurationError, loadHtpasswd, path)
        self.assertEqual(str(error), f"auth.htpasswd.path: {path} {why}")
        self.assertNotIn("\n", str(error))
        return error

    def test_entries(self) -> None:
        """
        Each user's hash is read by user name, from any of the three bcrypt
        versions; blank lines, comments, space around a line and CRLF line
        ends are skipped.
        """
        alice, bob, carol = _hash(b"a", b"$2y$"), _hash(b"b", b"$2a$"), _hash(b"c")
        path = self.write(
            b"# the registry's users\n\n  alice:" + alice + b"  \r\n"
            b"bob:" + bob + b"\r\n\t\n#x:y\ncarol:" + carol
        )
        self.assertEqual(
            dict(loadHtpasswd(path).entries), {"alice": alice, "bob": bob, "carol": carol}
        )

    def test_empty(self) -> None:
        """
        An empty file is a registry nobody can log in to yet: users can be
        added while it runs.
        """
        self.assertEqual(dict(loadHtpasswd(self.write(b"")).entries), {})

    def test_missing(self) -> None:
        """
        A missing file stops the start, and is not created.
        """
        path = self.mktemp()
        error = self.assertRaises(AuthConfigurationError, loadHtpasswd, path)
        self.assertEqual(str(error), f"auth.htpasswd.path: {path}: No such file or directory")
        self.assertFalse(os.path.exists(path))

    def test_directory(self) -> None:
        path = self.mktemp()
        os.mkdir(path)
        error = self.assertRaises(AuthConfigurationError, loadHtpasswd, path)
        self.assertEqual(str(error), f"auth.htpasswd.path: {path}: Is a directory")

    def test_notBcrypt(self) -> None:
        """
        Every other kind of hash htpasswd makes is refused by line number,
        without the hash in the message.
        """
        good = _entry("alice", b"a") + b"\n"
        for bad in [
            b"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
            b"$apr1$7Y6gsLtR$bb0FqbuvkeuVXlozxYY4x/",
            b"rOPqfFRvN0Ozk",
            b"plaintext",
            b"",
            b"$2y$03$" + _hash(b"a")[7:],
            b"$2x$04$" + _hash(b"a")[7:],
            _hash(b"a")[:-1],
        ]:
            error = self.assertRefused(
                good + b"bob:" + bad + b"\n", "line 3: not a bcrypt entry (htpasswd -B makes one)"
            )
            if bad:
                self.assertNotIn(bad.decode("ascii"), str(error))

    def test_noColon(self) -> None:
        self.assertRefused(_entry("alice", b"a") + b"bob\n", "line 2: not a user:hash entry")

    def test_noUser(self) -> None:
        self.assertRefused(b":" + _hash(b"a") + b"\n", "line 1: no user name before the ':'")

    def test_duplicate(self) -> None:
        """
        A user given twice is refused rather than one line silently winning.
        """
        self.assertRefused(
            _entry("alice", b"a") + _entry("bob", b"b") + _entry("alice", b"c"),
            "line 3: user 'alice' is already on line 1",
        )

    def test_notUTF8(self) -> None:
        self.assertRefused(b"\xe9lodie:" + _hash(b"a") + b"\n", "line 1: not UTF-8")

    def test_parse(self) -> None:
        """
        L{parseHtpasswd} names the path it is given.
        """
        error = self.assertRaises(AuthConfigurationError, parseHtpasswd, "/x", b"bob\n")
        self.assertEqual(str(error), "auth.htpasswd.path: /x line 1: not a user:hash entry")


class _CheckerMixin(_FileMixin):
    """
    A checker over the file, with a fake clock for the interval and a real
    thread pool.
    """

    assertFailure: Callable[..., Any]
    assertEqual: Callable[..., None]
    addCleanup: Callable[..., None]

    def setUp(self) -> None:
        self.clock = Clock()
        self.pool = ThreadPool(minthreads=0, maxthreads=2, name="test-htpasswd")
        self.pool.start()
        self.addCleanup(self.pool.stop)

    def checker(self, content: bytes, age: float | None = None) -> HtpasswdChecker:
        return HtpasswdChecker(
            loadHtpasswd(self.write(content, age)),
            reactor=reactor,
            clock=self.clock,
            threadpool=self.pool,
        )

    def login(self, checker: HtpasswdChecker, user: Any, password: Any) -> Deferred[bytes | tuple[()]]:
        return checker.requestAvatarId(UsernamePassword(user, password))

    async def assertRefused(self, checker: HtpasswdChecker, user: Any, password: Any) -> None:
        error = await self.assertFailure(self.login(checker, user, password), UnauthorizedLogin)
        self.assertEqual(str(error), "bad username or password")


class CheckerTests(_CheckerMixin, TestCase):
    """
    L{HtpasswdChecker} lets a user in with the password of the file, and
    nobody else; bcrypt and the file run on a thread pool.
    """

    def test_interface(self) -> None:
        checker = self.checker(b"")
        self.assertTrue(verifyObject(ICredentialsChecker, checker))
        self.assertEqual(
            [i.__name__ for i in checker.credentialInterfaces], ["IUsernamePassword"]
        )

    async def test_rightPassword(self) -> None:
        """
        The right password gets the user name, in UTF-8 bytes whether it
        was given as bytes or text.
        """
        checker = self.checker(_entry("alice", b"secret") + _entry("bob", b"other"))
        self.assertEqual(await self.login(checker, b"alice", b"secret"), b"alice")
        self.assertEqual(await self.login(checker, "bob", "other"), b"bob")

    async def test_utf8(self) -> None:
        """
        A user name and password in UTF-8 match the file's text.
        """
        checker = self.checker(_entry("élodie", "mot de passe é".encode()))
        name = await self.login(checker, "élodie".encode(), "mot de passe é".encode())
        self.assertEqual(name, "élodie".encode())

    async def test_wrongPassword(self) -> None:
        checker = self.checker(_entry("alice", b"secret") + _entry("bob", b"other"))
        await self.assertRefused(checker, b"alice", b"other")
        await self.assertRefused(checker, b"alice", b"Secret")

    async def test_unknownUser(self) -> None:
        checker = self.checker(_entry("alice", b"secret"))
        await self.assertRefused(checker, b"mallory", b"secret")
        await self.assertRefused(checker, b"Alice", b"secret")

    async def test_unknownUserCostsAsMuch(self) -> None:
        """
        An unknown user costs one bcrypt check at the file's cost, as a
        wrong password does, so the time taken does not tell whether the
        user exists.
        """
        checked: list[bytes] = []
        real = bcrypt.checkpw

        def checkpw(password: bytes, hashed: bytes) -> bool:
            checked.append(hashed)
            return real(password, hashed)

        self.patch(bcrypt, "checkpw", checkpw)
        alice = _hash(b"secret")
        checker = self.checker(b"alice:" + alice + b"\n")
        await self.assertRefused(checker, b"alice", b"wrong")
        await self.assertRefused(checker, b"mallory", b"wrong")
        self.assertEqual(len(checked), 2)
        self.assertEqual(checked[0], alice)
        self.assertEqual(checked[1][:7], b"$2b$04$")
        self.assertNotEqual(checked[1], alice)

    async def test_emptyPassword(self) -> None:
        """
        An empty password is refused even for a user whose hash is of the
        empty password.
        """
        checker = self.checker(_entry("alice", b""))
        await self.assertRefused(checker, b"alice", b"")
        await self.assertRefused(checker, b"mallory", b"")

    async def test_notUTF8(self) -> None:
        """
        A user name that is not UTF-8 is refused: no entry can have it.
        """
        checker = self.checker(_entry("élodie", b"secret"))
        await self.assertRefused(checker, "élodie".encode("latin-1"), b"secret")
        await self.assertRefused(checker, b"\xff", b"secret")

    async def test_longPassword(self) -> None:
        """
        bcrypt reads the first 72 bytes of a password, as htpasswd and the
        reference do: a longer one is checked, not an error.
        """
        long = b"x" * 72
        checker = self.checker(_entry("alice", long))
        self.assertEqual(await self.login(checker, b"alice", long + b"ignored"), b"alice")
        await self.assertRefused(checker, b"alice", b"y" * 100)

    async def test_offTheReactorThread(self) -> None:
        """
        bcrypt and the reads of the file run on the thread pool.
        """
        here = threading.current_thread()
        where: list[tuple[str, bool]] = []
        checkpw, poll = bcrypt.checkpw, htpasswd._poll

        def spyCheckpw(*args: Any) -> bool:
            where.append(("checkpw", threading.current_thread() is here))
            return checkpw(*args)

        def spyPoll(*args: Any) -> Any:
            where.append(("poll", threading.current_thread() is here))
            return poll(*args)

        self.patch(bcrypt, "checkpw", spyCheckpw)
        self.patch(htpasswd, "_poll", spyPoll)
        checker = self.checker(_entry("alice", b"secret"))
        self.clock.advance(1)
        self.assertEqual(await self.login(checker, b"alice", b"secret"), b"alice")
        await self.assertRefused(checker, b"mallory", b"secret")
        self.assertEqual(where, [("poll", False), ("checkpw", False), ("checkpw", False)])
        self.assertIs(threading.current_thread(), here)


class ReloadTests(_CheckerMixin, TestCase):
    """
    An edit of the file takes effect after the interval, without a
    restart; an edit that breaks it is logged once and changes nothing.
    """

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        """
        Count the checks (stats) and reads of the file.
        """
        calls: list[str] = []
        poll, read = htpasswd._poll, htpasswd._readHtpasswd

        def spyPoll(*args: Any) -> Any:
            calls.append("stat")
            return poll(*args)

        def spyRead(*args: Any) -> Any:
            calls.append("read")
            return read(*args)

        self.patch(htpasswd, "_poll", spyPoll)
        self.patch(htpasswd, "_readHtpasswd", spyRead)
        yield calls

    async def test_userAdded(self) -> None:
        checker = self.checker(_entry("alice", b"a"))
        self.write(_entry("alice", b"a") + _entry("bob", b"b"))
        self.clock.advance(0.9)
        await self.assertRefused(checker, b"bob", b"b")
        self.clock.advance(0.1)
        self.assertEqual(await self.login(checker, b"bob", b"b"), b"bob")
        self.assertEqual(await self.login(checker, b"alice", b"a"), b"alice")

    async def test_userRemoved(self) -> None:
        checker = self.checker(_entry("alice", b"a") + _entry("bob", b"b"))
        self.assertEqual(await self.login(checker, b"bob", b"b"), b"bob")
        self.write(_entry("alice", b"a"))
        self.clock.advance(1)
        await self.assertRefused(checker, b"bob", b"b")
        self.assertEqual(await self.login(checker, b"alice", b"a"), b"alice")

    async def test_passwordChanged(self) -> None:
        """
        A new password in place (same size, same inode) replaces the old,
        even when written within the file system's timestamp granularity.
        """
        checker = self.checker(_entry("alice", b"old"))
        before = os.stat(self.path)
        self.write(_entry("alice", b"new"))
        os.utime(self.path, ns=(before.st_atime_ns, before.st_mtime_ns))
        self.assertEqual(os.stat(self.path).st_size, before.st_size)
        self.clock.advance(1)
        await self.assertRefused(checker, b"alice", b"old")
        self.assertEqual(await self.login(checker, b"alice", b"new"), b"alice")

    async def test_passwordChangedLater(self) -> None:
        """
        A file read well after its last change is read again only when its
        signature changes: same size, new mtime is enough.
        """
        checker = self.checker(_entry("alice", b"old"), age=60)
        with self.counting() as calls:
            self.clock.advance(1)
            self.assertEqual(await self.login(checker, b"alice", b"old"), b"alice")
            self.assertEqual(calls, ["stat"])
            self.write(_entry("alice", b"new"), age=30)
            self.clock.advance(1)
            await self.assertRefused(checker, b"alice", b"old")
            self.assertEqual(calls, ["stat", "stat", "read"])

    async def test_atMostOncePerInterval(self) -> None:
        """
        Logins within the interval use what was read without a look at the
        file; logins during a check wait for it and share it.
        """
        checker = self.checker(_entry("alice", b"a"), age=60)
        with self.counting() as calls:
            for _ in range(3):
                self.assertEqual(await self.login(checker, b"alice", b"a"), b"alice")
            self.assertEqual(calls, [])
            self.clock.advance(1)
            both = [self.login(checker, b"alice", b"a"), self.login(checker, b"alice", b"a")]
            self.assertEqual([await d for d in both], [b"alice", b"alice"])
            self.assertEqual(await self.login(checker, b"alice", b"a"), b"alice")
            self.assertEqual(calls, ["stat"])

    async def test_brokenEdit(self) -> None:
        """
        An edit that breaks the file is logged once as an error, naming the
        line, and the users read before stay in use until it is fixed.
        """
        secret = _hash(b"a")
        checker = self.checker(b"alice:" + secret + b"\n")
        self.write(b"alice:" + secret + b"\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
        with capturedLogs() as events:
            for _ in range(3):
                self.clock.advance(1)
                self.assertEqual(await self.login(checker, b"alice", b"a"), b"alice")
        errors = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 1, [formatEvent(e) for e in events])
        self.assertEqual(
            formatEvent(errors[0]),
            f"auth.htpasswd.path: {self.path} line 2: not a bcrypt entry"
            " (htpasswd -B makes one); the users last read stay in use",
        )
        self.write(_entry("alice", b"a") + _entry("bob", b"b"))
        self.clock.advance(1)
        self.assertEqual(await self.login(checker, b"bob", b"b"), b"bob")

    async def test_removed(self) -> None:
        """
        A file removed or unreadable is logged once; the users read before
        stay in use, and a file put back is read.
        """
        checker = self.checker(_entry("alice", b"a"))
        os.remove(self.path)
        with capturedLogs() as events:
            for _ in range(3):
                self.clock.advance(1)
                self.assertEqual(await self.login(checker, b"alice", b"a"), b"alice")
        self.assertEqual(
            [formatEvent(e) for e in events if e["log_level"] == LogLevel.error],
            [
                f"auth.htpasswd.path: {self.path}: No such file or directory;"
                " the users last read stay in use"
            ],
        )
        self.write(_entry("bob", b"b"))
        with capturedLogs() as events:
            self.clock.advance(1)
            self.assertEqual(await self.login(checker, b"bob", b"b"), b"bob")
        await self.assertRefused(checker, b"alice", b"a")
        self.assertEqual(
            [formatEvent(e) for e in events],
            [f"auth.htpasswd.path: {self.path}: read again, 1 user(s)"],
        )
