"""
What the real-client tests need outside Python: the client programs
(installed with apt-get when missing and we are root), one private
C{dockerd} per test run, started lazily and stopped at exit, and a
registry child process per test.

Everything here blocks; the tests that use it are synchronous and talk
to a registry in another process (L{tests.support.RegistryProcess}), so
nothing waits on the trial reactor.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from twisted.trial.unittest import SkipTest

from tests.support import RegistryProcess

#: Debian packages that provide each program the tests run.
PACKAGES = {
    "dockerd": "docker.io",
    "docker": "docker.io",
    "skopeo": "skopeo",
    "podman": "podman",
}

_aptUpdated = False
_installFailures: dict[str, str] = {}


def _say(message: str) -> None:
    sys.stderr.write(f"tests.clients: {message}\n")
    sys.stderr.flush()


def _apt(arguments: Sequence[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    environ = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(
        ["apt-get", *arguments], env=environ, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
    )


def require(*programs: str) -> dict[str, str]:
    """
    The paths of C{programs}, installing their Debian packages with
    apt-get first if any is missing.

    @raise SkipTest: when a program is missing and cannot be installed
        (not root, no apt-get, or apt-get failed), with the reason.
    """
    global _aptUpdated
    missing = [p for p in programs if _which(p) is None]
    if missing:
        packages = sorted({PACKAGES.get(p, p) for p in missing})
        known = [_installFailures[p] for p in packages if p in _installFailures]
        if known:
            raise SkipTest(known[0])
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            reason = (
                f"{', '.join(missing)} not installed and cannot install "
                f"(needs root and apt-get): apt-get install {' '.join(packages)}"
            )
            _say(reason)
            raise SkipTest(reason)
        _say(f"installing {' '.join(packages)} with apt-get")
        if not _aptUpdated:
            _apt(["update", "-q"], 600)
            _aptUpdated = True
        result = _apt(["install", "-y", "-q", *packages], 1200)
        if result.returncode != 0:
            reason = (
                f"apt-get install {' '.join(packages)} failed ({result.returncode}): "
                + result.stdout.decode("utf-8", "replace")[-2000:]
            )
            for package in packages:
                _installFailures[package] = reason
            _say(reason)
            raise SkipTest(reason)
    paths = {}
    for program in programs:
        path = _which(program)
        if path is None:
            reason = f"{program} still missing after installing {PACKAGES.get(program, program)}"
            _say(reason)
            raise SkipTest(reason)
        paths[program] = path
    return paths


def _which(program: str) -> str | None:
    if program == "docker" and os.access("/usr/bin/docker", os.X_OK):
        # The CLI that came with the distribution's dockerd.
        return "/usr/bin/docker"
    extra = os.pathsep.join(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    return shutil.which(program, path=os.environ.get("PATH", "") + os.pathsep + extra)


class CommandFailed(AssertionError):
    """
    A client command ended with an unexpected exit status.
    """


def run(
    arguments: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 300,
    input: bytes | None = None,
    context: Any = None,
) -> subprocess.CompletedProcess[bytes]:
    """
    Run a client command to its end, output captured.

    @param context: something with a C{log()} method (a registry, the
        docker daemon) whose tail goes into the failure message.
    @raise CommandFailed: if C{check} and the exit status is not 0.
    """
    environ = dict(os.environ)
    environ.update(env or {})
    try:
        result = subprocess.run(
            list(arguments), env=environ, input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        raise CommandFailed(
            f"{' '.join(arguments)} did not end in {timeout}s\n"
            f"stdout: {_text(e.stdout)}\nstderr: {_text(e.stderr)}" + _contextLog(context)
        ) from None
    if check and result.returncode != 0:
        raise CommandFailed(
            f"{' '.join(arguments)} exited {result.returncode}\n"
            f"stdout: {_text(result.stdout)}\nstderr: {_text(result.stderr)}" + _contextLog(context)
        )
    return result


def _text(data: bytes | None, limit: int = 6000) -> str:
    text = (data or b"").decode("utf-8", "replace")
    return text if len(text) <= limit else "..." + text[-limit:]


def _contextLog(context: Any) -> str:
    if context is None:
        return ""
    contexts = context if isinstance(context, (list, tuple)) else [context]
    parts = []
    for each in contexts:
        try:
            parts.append(f"\n--- {type(each).__name__} log (tail) ---\n{_tail(each.log())}")
        except Exception as e:  # the log is a diagnostic; never hide the failure
            parts.append(f"\n(no log from {each!r}: {e})")
    return "".join(parts)


def _tail(text: str, limit: int = 8000) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


# The registry


def pushTwoPlatformIndex(
    directory: str, host: str, registry: Any
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """
    Write an OCI layout holding an index of a linux/amd64 and a linux/arm64
    image (each with C{/arch.txt} naming its architecture) under
    C{directory}, and push it to C{host} with C{skopeo copy --all}.

    @return: the pushed reference, the two image descriptors (amd64 first)
        and the index descriptor.
    """
    from tests.clients import ocilayout

    skopeo = require("skopeo")["skopeo"]
    layout = ocilayout.Layout(os.path.join(directory, "multi"))
    children = []
    for architecture in ("amd64", "arm64"):
        descriptor, _ = layout.image(
            [{"arch.txt": architecture.encode() + b"\n"}], architecture=architecture
        )
        children.append(descriptor)
    indexDescriptor, _ = layout.index(children)
    layout.tag(indexDescriptor, "multi")
    remote = f"{host}/test/multi:1"
    run(
        [skopeo, "--insecure-policy", "copy", "--all", "--preserve-digests",
         "--dest-tls-verify=false", f"oci:{layout.path}:multi", f"docker://{remote}"],
        context=registry,
    )
    return remote, children, indexDescriptor


def startRegistry(
    testCase: Any, env: dict[str, str] | None = None, storage: str | None = None,
    config: dict[str, Any] | None = None,
) -> RegistryProcess:
    """
    A C{twistd txregistry} child process with filesystem storage in the
    test's temporary directory (or in C{storage}; or the driver C{env}
    chooses with C{REGISTRY_STORAGE}), deletes enabled and
    debug logging (its access log is in the failure messages), stopped at
    cleanup.
    """
    directory = os.path.abspath(testCase.mktemp())
    os.makedirs(directory)
    environ = {
        "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        "REGISTRY_LOG_LEVEL": "debug",
    }
    if "REGISTRY_STORAGE" not in (env or {}):
        environ["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = storage or os.path.join(
            directory, "storage"
        )
    environ.update(env or {})
    configPath = None
    if config is not None:
        import yaml

        configPath = os.path.join(directory, "config.yml")
        with open(configPath, "w") as f:
            yaml.safe_dump({"version": "0.1", **config}, f)
    registry = RegistryProcess(directory, config=configPath, env=environ)
    testCase.addCleanup(registry.stop)
    return registry


def s3Environment(testCase: Any) -> dict[str, str]:
    """
    The environment that puts a L{startRegistry} child's content in S3
    (SeaweedFS, started by the tests, a prefix of the test's own),
    redirects off so that the registry streams every blob from the
    bucket itself.
    """
    from tests.storage.servers import SeaweedFS, server

    s3 = server(SeaweedFS).parameters(testCase)
    environ = {"REGISTRY_STORAGE": "s3", "REGISTRY_STORAGE_REDIRECT_DISABLE": "true"}
    environ.update({f"REGISTRY_STORAGE_S3_{k.upper()}": str(v).lower() if isinstance(v, bool)
                    else str(v) for k, v in s3.items()})
    return environ


def startRegistryWithUsers(
    testCase: Any, users: dict[str, str], auth: dict[str, Any] | None = None
) -> RegistryProcess:
    """
    L{startRegistry} with C{auth.htpasswd}: C{users} (name to password)
    in a bcrypt htpasswd file, realm C{txregistry}; C{auth} adds to the
    C{auth} section (C{tokenserver}, C{access}).
    """
    import bcrypt

    directory = os.path.abspath(testCase.mktemp())
    os.makedirs(directory)
    path = os.path.join(directory, "htpasswd")
    with open(path, "wb") as f:
        for user, password in users.items():
            f.write(user.encode() + b":" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)) + b"\n")
    htpasswd = {"realm": "txregistry", "path": path}
    return startRegistry(testCase, config={"auth": {"htpasswd": htpasswd, **(auth or {})}})


# The docker daemon


class DockerDaemon:
    """
    A private C{dockerd}: its own socket, data root and exec root under a
    temporary directory, vfs storage, no iptables or bridge (the tests
    only push and pull to 127.0.0.1, an insecure registry by default).
    """

    def __init__(self, dockerd: str, docker: str, options: Sequence[str] = ()) -> None:
        """
        @param options: more of C{dockerd}'s options (C{--registry-mirror}).
        """
        self.docker = docker
        # Short: its sockets live here (unix socket paths are limited).
        self.directory = tempfile.mkdtemp(
            prefix="txregistry-dockerd-", dir="/tmp" if os.path.isdir("/tmp") else None
        )
        self.socket = os.path.join(self.directory, "docker.sock")
        self.host = f"unix://{self.socket}"
        self.logPath = os.path.join(self.directory, "dockerd.log")
        self.config = os.path.join(self.directory, "client-config")
        os.makedirs(self.config)
        self._log = open(self.logPath, "wb")
        self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [
                dockerd,
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
                # Its own namespaces, should it share a system containerd.
                "--containerd-namespace=txregistry-tests",
                "--containerd-plugins-namespace=txregistry-tests-plugins",
                "--host", self.host,
                "--data-root", os.path.join(self.directory, "data"),
                "--exec-root", os.path.join(self.directory, "exec"),
                "--pidfile", os.path.join(self.directory, "dockerd.pid"),
                *options,
            ],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        atexit.register(self.stop)
        try:
            self._waitUntilReady()
        except BaseException:
            self.stop()
            raise

    @property
    def env(self) -> dict[str, str]:
        """
        The environment for the C{docker} CLI: this daemon, a private
        client configuration, the classic builder (no buildx needed).
        """
        return {
            "DOCKER_HOST": self.host,
            "DOCKER_CONFIG": self.config,
            "DOCKER_BUILDKIT": "0",
            "DOCKER_CLI_HINTS": "false",
        }

    def _waitUntilReady(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = b""
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dockerd exited with {self.process.returncode}:\n{_tail(self.log())}"
                )
            result = subprocess.run(
                [self.docker, "-H", self.host, "info"], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                env=dict(os.environ, DOCKER_CONFIG=self.config),
            )
            if result.returncode == 0:
                return
            last = result.stdout
            time.sleep(0.5)
        raise RuntimeError(
            f"dockerd did not answer `docker info` in {timeout}s: {_text(last)}\n"
            f"{_tail(self.log())}"
        )

    def log(self) -> str:
        with open(self.logPath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def run(self, *arguments: str, check: bool = True, timeout: float = 300,
            context: Any = None, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """
        Run C{docker ARGUMENTS} against this daemon (with C{input} on its
        standard input).
        """
        contexts = [self] + (list(context) if isinstance(context, (list, tuple))
                             else [context] if context is not None else [])
        return run([self.docker, *arguments], env=self.env, check=check,
                   timeout=timeout, context=contexts, input=input)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                # dockerd's session also holds its containerd: end them all.
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(30)
        self._log.close()
        if os.environ.get("TXREGISTRY_KEEP_DOCKERD"):
            _say(f"dockerd files kept in {self.directory}")
            return
        shutil.rmtree(self.directory, ignore_errors=True)


_docker: DockerDaemon | None = None
_dockerFailure: str | None = None


def dockerDaemon() -> DockerDaemon:
    """
    The test run's one C{dockerd}, started on first use.

    @raise SkipTest: if docker is missing and cannot be installed.
    @raise RuntimeError: if it is there but does not start (an error:
        the machine is meant to run it).
    """
    global _docker, _dockerFailure
    if _docker is not None:
        return _docker
    if _dockerFailure is not None:
        raise RuntimeError(_dockerFailure)
    paths = require("dockerd", "docker")
    try:
        _docker = DockerDaemon(paths["dockerd"], paths["docker"])
    except Exception as e:
        _dockerFailure = f"cannot start dockerd: {e}"
        _say(_dockerFailure)
        raise
    return _docker


# podman


_podmanFailure: str | None = None


class Podman:
    """
    podman as root with its own vfs storage (in a short temporary
    directory: podman refuses a runroot of 50 characters or more) and its
    own configuration files under C{work}.

    @raise SkipTest: if podman is missing and cannot be installed, or
        cannot run here (not root, or C{podman info} fails).
    """

    def __init__(self, testCase: Any, work: str) -> None:
        global _podmanFailure
        if _podmanFailure:
            raise SkipTest(_podmanFailure)
        if os.geteuid() != 0:
            _podmanFailure = "the podman tests run podman as root with private storage; not root"
            _say(f"skipping: {_podmanFailure}")
            raise SkipTest(_podmanFailure)
        self.path = require("podman")["podman"]
        self.storage = tempfile.mkdtemp(prefix="txr-podman-", dir="/tmp" if os.path.isdir("/tmp") else None)
        testCase.addCleanup(shutil.rmtree, self.storage, True)
        self.root = os.path.join(self.storage, "root")
        self.runroot = os.path.join(self.storage, "run")
        self.policy = os.path.join(work, "policy.json")
        with open(self.policy, "w") as f:
            f.write('{"default": [{"type": "insecureAcceptAnything"}]}\n')
        files = {
            "registries.conf": "unqualified-search-registries = []\n",
            "storage.conf": f'[storage]\ndriver = "vfs"\nrunroot = "{self.runroot}"\ngraphroot = "{self.root}"\n',
            "containers.conf": "",
            "auth.json": '{"auths": {}}\n',
        }
        for name, text in files.items():
            with open(os.path.join(work, name), "w") as f:
                f.write(text)
        self.tmpdir = os.path.join(work, "podman-tmp")
        os.makedirs(self.tmpdir, exist_ok=True)
        self.env = {
            "CONTAINERS_REGISTRIES_CONF": os.path.join(work, "registries.conf"),
            "CONTAINERS_STORAGE_CONF": os.path.join(work, "storage.conf"),
            "CONTAINERS_CONF": os.path.join(work, "containers.conf"),
            "REGISTRY_AUTH_FILE": os.path.join(work, "auth.json"),
            "TMPDIR": self.tmpdir,
        }
        info = self.run("info", check=False)
        if info.returncode != 0:
            _podmanFailure = (
                f"podman cannot run here (podman info exited {info.returncode}): "
                + info.stderr.decode("utf-8", "replace")[-1500:]
            )
            _say(f"skipping: {_podmanFailure}")
            raise SkipTest(_podmanFailure)

    def run(self, *arguments: str, check: bool = True, context: Any = None
            ) -> subprocess.CompletedProcess[bytes]:
        return run(
            [
                self.path,
                "--root", self.root,
                "--runroot", self.runroot,
                "--storage-driver", "vfs",
                "--cgroup-manager", "cgroupfs",
                "--events-backend", "file",
                "--tmpdir", os.path.join(self.tmpdir, "libpod"),
                *arguments,
            ],
            env=self.env, check=check, context=context,
        )

    def inspect(self, reference: str) -> dict[str, Any]:
        import json

        return json.loads(self.run("image", "inspect", reference).stdout)[0]

    def readFromImage(self, reference: str, path: str) -> bytes:
        """
        The content of C{path} in the image C{reference} (mounted, read,
        unmounted).
        """
        root = self.run("image", "mount", reference).stdout.decode().strip()
        try:
            with open(os.path.join(root, path.lstrip("/")), "rb") as f:
                return f.read()
        finally:
            self.run("image", "unmount", reference)
