# -*- test-case-name: tests.auth.test_htpasswd -*-
"""
A credentials checker over an Apache htpasswd file of bcrypt entries, the
C{auth.htpasswd} section of the configuration.

Each line is C{user:hash}, made by C{htpasswd -B}.  Like the reference
registry, only bcrypt is accepted (C{$2y$}, C{$2a$} and C{$2b$}); unlike
it, a line of another kind (C{{SHA}}, C{$apr1$}, crypt, plain text) stops
the start instead of locking its user out in silence, and a missing file
stops the start instead of being created with a generated user.

The file is read again when it changes, so users can be added, removed or
given a new password without a restart.  An edit that breaks it is logged
once, and the users last read stay in use until it is fixed.

Reading the file and checking a password both block (bcrypt is slow on
purpose), so both run on a thread pool and never on the reactor thread.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import bcrypt
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from txregistry.auth.errors import AuthConfigurationError

__all__ = ["Htpasswd", "HtpasswdChecker", "loadHtpasswd", "parseHtpasswd"]

T = TypeVar("T")

#: The configuration key the file comes from, at the start of every error.
_KEY = "auth.htpasswd.path"

#: A bcrypt hash in the modular crypt format: version, two-digit cost,
#: then 22 characters of salt and 31 of checksum in bcrypt's base64.
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}\Z")

#: The cost of the dummy hash when the file has no entry to copy it from
#: (bcrypt's usual default).
_DEFAULT_COST = 10

#: bcrypt reads only this many bytes of a password.  The C{bcrypt} module
#: refuses longer ones; htpasswd and the reference registry use the first
#: 72 bytes, so this checker does too.
_BCRYPT_MAX = 72

#: A file modified less than this many seconds before it was read may be
#: modified again within the file system's timestamp granularity without
#: its size or mtime changing (a password changed in place keeps the
#: size).  Such a read does not count as seen: the next check reads again.
_RACY = 2.0

#: Why a login is refused, the same whether the user is unknown or the
#: password wrong, so the refusal cannot tell which.
_REFUSED = "bad username or password"

_Signature = tuple[int, int, int, int]


def _signature(st: os.stat_result) -> _Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Htpasswd:
    """
    One good read of an htpasswd file.

    @ivar path: the file's path, as configured.
    @ivar entries: each user's bcrypt hash, by user name.
    @ivar signature: device, inode, size and mtime of the file as read, or
        L{None} when the read was too soon after a change to trust them
        (the next check reads the file again).
    @ivar dummyHash: a hash of nothing, at the cost most of C{entries}
        use, checked for an unknown user so that refusing one costs as
        long as refusing a wrong password.
    """

    path: str
    entries: Mapping[str, bytes]
    signature: _Signature | None
    dummyHash: bytes


def _dummyHash(entries: Mapping[str, bytes]) -> bytes:
    costs = Counter(int(h[4:6]) for h in entries.values())
    cost = costs.most_common(1)[0][0] if costs else _DEFAULT_COST
    # checkpw takes the cost and salt from the first 29 bytes and compares
    # the rest: a random salt and a checksum no password yields.
    return bcrypt.gensalt(rounds=cost) + b"." * 31


def _lineError(path: str, number: int, why: str) -> AuthConfigurationError:
    return AuthConfigurationError(f"{_KEY}: {path} line {number}: {why}")


def _osError(path: str, error: OSError) -> AuthConfigurationError:
    return AuthConfigurationError(f"{_KEY}: {path}: {error.strerror or error}")


def parseHtpasswd(path: str, content: bytes) -> dict[str, bytes]:
    """
    Parse the content of an htpasswd file.

    Blank lines and lines that start with C{#} are skipped, and space around
    a line is ignored, as the reference does.

    @param path: the file's path, for the errors.
    @return: each user's bcrypt hash, by user name.
    @raise AuthConfigurationError: naming the first bad line by number (a
        line that is not UTF-8, has no C{:}, no user name, a user already
        given, or a hash that is not bcrypt), never quoting its hash.
    """
    entries: dict[str, bytes] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(content.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith(b"#"):
            continue
        try:
            line = stripped.decode("utf-8")
        except UnicodeDecodeError:
            raise _lineError(path, number, "not UTF-8") from None
        user, colon, hashed = line.partition(":")
        if not colon:
            raise _lineError(path, number, "not a user:hash entry")
        if not user:
            raise _lineError(path, number, "no user name before the ':'")
        if not _BCRYPT.match(hashed):
            raise _lineError(path, number, "not a bcrypt entry (htpasswd -B makes one)")
        if user in lines:
            raise _lineError(path, number, f"user {user!r} is already on line {lines[user]}")
        lines[user] = number
        entries[user] = hashed.encode("ascii")
    return entries


def _readHtpasswd(path: str) -> Htpasswd:
    """
    Read and parse the file at C{path}; this blocks.

    @raise AuthConfigurationError: when it cannot be read or is malformed.
    """
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            content = f.read()
    except OSError as e:
        raise _osError(path, e) from None
    entries = parseHtpasswd(path, content)
    signature: _Signature | None = _signature(st)
    if time.time() - st.st_mtime < _RACY:
        signature = None
    return Htpasswd(path, entries, signature, _dummyHash(entries))


def loadHtpasswd(path: str) -> Htpasswd:
    """
    Read the htpasswd file for the start; this blocks, so call it before
    the reactor runs.

    @raise AuthConfigurationError: with one line naming C{auth.htpasswd.path}
        when the file is missing, unreadable or malformed (a line that is
        not a bcrypt entry, for one).  The file is never created.
    """
    return _readHtpasswd(path)


@dataclass(frozen=True)
class _Poll:
    """
    What a check of the file found: C{seen} is the signature to compare the
    next check with; C{htpasswd} a new good read, or C{error} why the file
    cannot be used now.  Neither means unchanged.
    """

    seen: _Signature | None
    htpasswd: Htpasswd | None = None
    error: AuthConfigurationError | None = None


def _poll(path: str, seen: _Signature | None) -> _Poll:
    """
    Read the file again if its signature is not C{seen}; this blocks.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        return _Poll(None, error=_osError(path, e))
    if _signature(st) == seen:
        return _Poll(seen)
    try:
        htpasswd = _readHtpasswd(path)
    except AuthConfigurationError as e:
        racy = time.time() - st.st_mtime < _RACY
        return _Poll(None if racy else _signature(st), error=e)
    return _Poll(htpasswd.signature, htpasswd=htpasswd)


def _checkBlocking(htpasswd: Htpasswd, user: str, password: bytes) -> bool:
    """
    Whether C{password} is C{user}'s; this blocks for as long as bcrypt
    takes, and as long for an unknown user.
    """
    hashed = htpasswd.entries.get(user)
    if hashed is None:
        bcrypt.checkpw(password, htpasswd.dummyHash)
        return False
    return bcrypt.checkpw(password, hashed)


def _credentials(credentials: IUsernamePassword) -> tuple[str, bytes]:
    """
    The user name as text and the password as bytes.

    @raise UnauthorizedLogin: for a user name that is not UTF-8 (no entry
        can have it) or an empty password (the door must not let one in,
        whatever the file says).
    """
    username: Any = credentials.username
    password: Any = credentials.password
    if isinstance(username, bytes):
        try:
            username = username.decode("utf-8")
        except UnicodeDecodeError:
            raise UnauthorizedLogin(_REFUSED) from None
    if isinstance(password, str):
        password = password.encode("utf-8")
    if not isinstance(username, str) or not isinstance(password, bytes) or not password:
        raise UnauthorizedLogin(_REFUSED)
    return username, password[:_BCRYPT_MAX]


@implementer(ICredentialsChecker)
class HtpasswdChecker:
    """
    Checks a user name and password against an htpasswd file of bcrypt
    entries, read again when it changes.

    The avatar id is the user name as L{bytes}, in UTF-8: the type
    L{ICredentialsChecker} and L{twisted.cred.portal.IRealm} give avatar ids,
    so this checker and a site's own are interchangeable behind one realm.
    The file is text, so a user name that is not UTF-8 is refused, and one
    given as L{str} is encoded: the realm can decode every id it is given.

    At most once per C{interval} seconds of C{clock}, a login first checks
    the file's device, inode, size and mtime (on the thread pool) and, if
    they changed, reads it again before checking the password, so an edit
    takes effect for the first login after the interval.  Logins during a
    check wait for it and share it.

    @cvar credentialInterfaces: only L{IUsernamePassword}: the password is
        needed in the clear to check it against a bcrypt hash.
    """

    credentialInterfaces = (IUsernamePassword,)

    _log = Logger()

    def __init__(
        self,
        htpasswd: Htpasswd,
        *,
        reactor: IReactorFromThreads,
        clock: IReactorTime,
        threadpool: ThreadPool,
        interval: float = 1.0,
    ) -> None:
        """
        @param htpasswd: the file as read at the start (L{loadHtpasswd}).
        @param reactor: where results come back from the thread pool.
        @param clock: what the interval between checks of the file is
            measured with.
        @param threadpool: where the file is read and passwords checked;
            bcrypt keeps a thread busy for the whole check, so a pool of
            its own keeps a flood of logins from starving other users of
            the reactor's pool (name resolution).
        @param interval: the least time between two checks of the file.
        """
        self._htpasswd = htpasswd
        self._seen = htpasswd.signature
        self._reactor = reactor
        self._clock = clock
        self._threadpool = threadpool
        self._interval = interval
        self._nextCheck = clock.seconds() + interval
        self._waiting: list[Deferred[Htpasswd]] | None = None
        self._lastError: str | None = None

    @classmethod
    def fromPath(cls, path: str, reactor: Any, interval: float = 1.0) -> HtpasswdChecker:
        """
        Load C{path} (L{loadHtpasswd}, so this blocks) and check with the
        reactor's clock and thread pool.

        @param reactor: provides L{IReactorTime}, L{IReactorFromThreads} and
            L{twisted.internet.interfaces.IReactorThreads}.
        @raise AuthConfigurationError: see L{loadHtpasswd}.
        """
        return cls(
            loadHtpasswd(path),
            reactor=reactor,
            clock=reactor,
            threadpool=reactor.getThreadPool(),
            interval=interval,
        )

    def _run(self, f: Callable[..., T], *args: Any) -> Deferred[T]:
        return deferToThreadPool(self._reactor, self._threadpool, f, *args)

    def requestAvatarId(self, credentials: IUsernamePassword) -> Deferred[bytes | tuple[()]]:
        """
        @return: a L{Deferred} firing with the user name in UTF-8 when the password
            is that user's, or failing with L{UnauthorizedLogin} (the same
            message whether the user is unknown or the password wrong).
        """
        try:
            username, password = _credentials(credentials)
        except UnauthorizedLogin:
            return fail()

        def check(htpasswd: Htpasswd) -> Deferred[bool]:
            return self._run(_checkBlocking, htpasswd, username, password)

        def checked(matches: bool) -> bytes | tuple[()]:
            if not matches:
                raise UnauthorizedLogin(_REFUSED)
            return username.encode("utf-8")

        return self._current().addCallback(check).addCallback(checked)

    def hasUser(self, name: str) -> Deferred[bool]:
        """
        Whether the file (as of now, read again if it changed) has an
        entry for C{name}: a refresh token of a removed user is refused.
        """
        return self._current().addCallback(lambda htpasswd: name in htpasswd.entries)

    def _current(self) -> Deferred[Htpasswd]:
        """
        The users to check against: those last read, after checking the
        file again if the interval has passed.
        """
        if self._waiting is not None:
            d: Deferred[Htpasswd] = Deferred()
            self._waiting.append(d)
            return d
        now = self._clock.seconds()
        if now < self._nextCheck:
            return succeed(self._htpasswd)
        self._nextCheck = now + self._interval
        waiting: list[Deferred[Htpasswd]] = []
        self._waiting = waiting
        first: Deferred[Htpasswd] = Deferred()
        waiting.append(first)

        def done(result: _Poll | Failure) -> None:
            self._waiting = None
            if isinstance(result, Failure):
                self._log.failure("checking {path}", result, path=self._htpasswd.path)
            else:
                self._polled(result)
            for d in waiting:
                d.callback(self._htpasswd)

        self._run(_poll, self._htpasswd.path, self._seen).addBoth(done)
        return first

    def _polled(self, poll: _Poll) -> None:
        self._seen = poll.seen
        if poll.error is not None:
            message = str(poll.error)
            if message != self._lastError:
                self._lastError = message
                self._log.error("{error}; the users last read stay in use", error=message)
        elif poll.htpasswd is not None:
            recovered, self._lastError = self._lastError is not None, None
            if recovered or poll.htpasswd.entries != self._htpasswd.entries:
                self._log.info(
                    "{key}: {path}: read again, {count} user(s)",
                    key=_KEY,
                    path=poll.htpasswd.path,
                    count=len(poll.htpasswd.entries),
                )
            self._htpasswd = poll.htpasswd
