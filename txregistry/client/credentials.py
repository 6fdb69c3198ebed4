# -*- test-case-name: tests.client.test_credentials -*-
"""
Docker's C{config.json}: the credentials C{docker login} saved, in the
file (C{auths}) or in a credential helper (C{credsStore},
C{credHelpers}), which is the program C{docker-credential-<name>} run
with C{get}, C{store} or C{erase} and JSON on its standard input.

The file is C{$DOCKER_CONFIG/config.json} (default C{~/.docker}); it is
rewritten atomically (a new file renamed over it), mode 0600.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from txregistry.client.auth import Credentials
from txregistry.client.errors import ClientError

__all__ = ["DockerConfig", "CredentialHelperError", "configDirectory"]

#: Docker Hub's key in C{auths}, whatever the host is called.
_HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io"}


class CredentialHelperError(ClientError):
    """
    A credential helper failed (not installed, or it exited non-zero).
    """


def configDirectory(environ: dict[str, str] | None = None) -> str:
    environ = dict(os.environ if environ is None else environ)
    return environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def _key(host: str) -> str:
    return _HUB_KEY if host in _HUB_HOSTS else host


class _HelperProtocol(ProcessProtocol):
    def __init__(self, stdin: bytes) -> None:
        self.stdin = stdin
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.ended: Deferred[tuple[int, bytes, bytes]] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.stdin)  # type: ignore[union-attr]
        self.transport.closeStdin()  # type: ignore[union-attr]

    def outReceived(self, data: bytes) -> None:
        self.out.append(data)

    def errReceived(self, data: bytes) -> None:
        self.err.append(data)

    def processEnded(self, reason: Failure) -> None:
        code = 0 if reason.check(ProcessDone) else getattr(reason.value, "exitCode", 1)
        self.ended.callback((code or 0, b"".join(self.out), b"".join(self.err)))


def _which(program: str, environ: dict[str, str]) -> str | None:
    for directory in environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class DockerConfig:
    """
    One C{config.json}.

    @ivar path: the file.
    """

    def __init__(self, directory: str | None = None, reactor: Any = None,
                 environ: dict[str, str] | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.path = os.path.join(directory or configDirectory(self.environ), "config.json")
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self.reactor = reactor

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as f:
                document = json.load(f)
        except FileNotFoundError:
            return {}
        except ValueError as e:
            raise ClientError(f"{self.path}: not JSON ({e})") from None
        return document if isinstance(document, dict) else {}

    def _write(self, document: dict[str, Any]) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        temporary = f"{self.path}.{os.getpid()}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as f:
            json.dump(document, f, indent="\t")
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path)

    def _helperFor(self, document: dict[str, Any], host: str) -> str | None:
        helpers = document.get("credHelpers") or {}
        return helpers.get(host) or helpers.get(_key(host)) or document.get("credsStore") or None

    async def _runHelper(self, name: str, action: str, stdin: bytes) -> bytes:
        program = f"docker-credential-{name}"
        path = _which(program, self.environ)
        if path is None:
            raise CredentialHelperError(f"credential helper {program} not found on PATH")
        protocol = _HelperProtocol(stdin)
        self.reactor.spawnProcess(protocol, path, [program, action], env=self.environ)
        code, out, err = await protocol.ended
        if code != 0:
            message = (out or err).decode("utf-8", "replace").strip().splitlines()
            raise CredentialHelperError(
                f"{program} {action} exited {code}: {message[0] if message else ''}".rstrip(": "))
        return out

    async def get(self, host: str) -> Credentials | None:
        """
        The account saved for C{host}, or L{None}.
        """
        document = await deferToThread(self._read)
        helper = self._helperFor(document, host)
        if helper:
            try:
                out = await self._runHelper(helper, "get", _key(host).encode())
            except CredentialHelperError as e:
                if "credentials not found" in str(e).lower():
                    return None
                raise
            found = json.loads(out)
            username, secret = found.get("Username", ""), found.get("Secret", "")
            if username == "<token>":
                return Credentials(identityToken=secret)
            return Credentials(username, secret)
        entry = (document.get("auths") or {}).get(_key(host))
        if not entry:
            return None
        if entry.get("identitytoken"):
            return Credentials(entry.get("username", ""), identityToken=entry["identitytoken"])
        encoded = entry.get("auth")
        if encoded:
            username, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
            return Credentials(username, password)
        if entry.get("username"):
            return Credentials(entry["username"], entry.get("password", ""))
        return None

    async def store(self, host: str, credentials: Credentials) -> None:
        """
        Save C{credentials} for C{host}: in its helper if it has one, in
        the file otherwise.
        """
        document = await deferToThread(self._read)
        helper = self._helperFor(document, host)
        if helper:
            payload = {"ServerURL": _key(host), "Username": credentials.username,
                       "Secret": credentials.password}
            await self._runHelper(helper, "store", json.dumps(payload).encode())
            document.setdefault("auths", {})[_key(host)] = {}
        else:
            auth = base64.b64encode(
                f"{credentials.username}:{credentials.password}".encode()).decode("ascii")
            document.setdefault("auths", {})[_key(host)] = {"auth": auth}
        await deferToThread(self._write, document)

    async def erase(self, host: str) -> bool:
        """
        Forget C{host}'s credentials.

        @return: whether there were any.
        """
        document = await deferToThread(self._read)
        helper = self._helperFor(document, host)
        found = False
        if helper:
            try:
                await self._runHelper(helper, "erase", _key(host).encode())
                found = True
            except CredentialHelperError as e:
                if "not found" not in str(e).lower():
                    raise
        auths = document.get("auths") or {}
        if _key(host) in auths:
            del auths[_key(host)]
            found = True
            await deferToThread(self._write, document)
        return found
