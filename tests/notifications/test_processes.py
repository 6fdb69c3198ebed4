"""
Notifications from a real C{twistd txregistry} child process: events
acknowledged before a C{kill -9} are delivered after the restart, and a
docker push and pull (as a logged-in user) make exactly the expected
events.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import treq
import yaml
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.api.helpers import pushBlob
from tests.clients import daemons, wire
from tests.notifications.helpers import Receiver, endpoint, startReceiver, summary, waitUntil
from tests.support import RegistryProcess


class _Client:
    """
    L{tests.api.helpers}' push helpers over a child process.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def request(self, method: str, path: str, **kwargs: Any) -> Deferred[Any]:
        kwargs.setdefault("persistent", False)
        return treq.request(method, self.url + path, **kwargs)


def _environment(directory: str, receiver: Receiver, **extra: str) -> dict[str, str]:
    return {
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": os.path.join(directory, "storage"),
        "REGISTRY_NOTIFICATIONS_ENDPOINTS": yaml.safe_dump([endpoint(receiver)], default_flow_style=True),
        "REGISTRY_LOG_LEVEL": "debug",
        **extra,
    }


class KillTests(TestCase):
    async def test_killNine(self) -> None:
        """
        30 pushes acknowledged while the receiver is down, then C{kill -9}
        of the registry: the next registry on the same storage (and so the
        same outbox, beside it) delivers every one.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        receiver = Receiver()
        self.addCleanup(lambda: Deferred.fromCoroutine(receiver.stop()))
        environ = _environment(directory, receiver)
        os.makedirs(os.path.join(directory, "first"))
        first = RegistryProcess(os.path.join(directory, "first"), env=environ)
        self.addCleanup(first.stop)
        digests = [
            await pushBlob(self, _Client(first.url), "killed", b"acknowledged %d\n" % i)
            for i in range(30)
        ]
        first.kill()
        self.assertEqual(receiver.events, [])
        self.assertTrue(os.listdir(os.path.join(directory, "storage-outbox")))
        await receiver.start()
        os.makedirs(os.path.join(directory, "second"))
        second = RegistryProcess(os.path.join(directory, "second"), env=environ)
        self.addCleanup(second.stop)
        await waitUntil(lambda: {e["target"]["digest"] for e in receiver.events} >= set(digests))
        delivered = [e["target"]["digest"] for e in receiver.events if e["action"] == "push"]
        seen: list[str] = []
        for digest in delivered:
            if digest not in seen:
                seen.append(digest)
        self.assertEqual(seen, digests)


class DockerEventTests(TestCase):
    """
    docker push and pull as user alice.
    """

    async def test_pushPull(self) -> None:
        """
        A docker push makes a push per blob (docker checks with HEAD
        first: no event) and one for the manifest with its tag; a pull
        makes a pull for the manifest and one per blob; each names alice.
        """
        import bcrypt

        docker = daemons.dockerDaemon()
        receiver = await startReceiver(self)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        htpasswd = os.path.join(directory, "htpasswd")
        with open(htpasswd, "wb") as f:
            f.write(b"alice:" + bcrypt.hashpw(b"wonderland", bcrypt.gensalt(rounds=4)) + b"\n")
        registry = daemons.startRegistry(self, {
            "REGISTRY_AUTH_HTPASSWD_REALM": "txregistry",
            "REGISTRY_AUTH_HTPASSWD_PATH": htpasswd,
            "REGISTRY_NOTIFICATIONS_ENDPOINTS": yaml.safe_dump([endpoint(receiver)], default_flow_style=True),
        })
        host = f"127.0.0.1:{registry.port}"
        local, remote = "txregistry-test/notified:src", f"{host}/alice/notified:1"

        def run(*arguments: str, input: bytes | None = None) -> Any:
            return docker.run(*arguments, context=registry, input=input)

        self.addCleanup(lambda: docker.run("rmi", "-f", local, remote, check=False))
        self.addCleanup(lambda: docker.run("logout", host, check=False))
        tarball = os.path.join(directory, "rootfs.tar")
        wire.tarball(tarball, {"hello.txt": b"notify me\n"})
        run("import", tarball, local)
        run("tag", local, remote)
        run("login", "-u", "alice", "--password-stdin", host, input=b"wonderland\n")
        run("push", remote)
        await waitUntil(lambda: any(e["target"].get("tag") == "1" for e in receiver.events))
        manifest = wire.request(registry.url, "/v2/alice/notified/manifests/1",
                                headers={"Authorization": "Basic " + base64.b64encode(b"alice:wonderland").decode(),
                                         "Accept": wire.ALL_MANIFESTS})
        document = manifest.json()
        digest = manifest.headers["Docker-Content-Digest"]
        blobs = {document["config"]["digest"]} | {layer["digest"] for layer in document["layers"]}
        pushed = summary(receiver.events)
        self.assertEqual(sorted(pushed[:-1]), sorted(
            ("push", "alice/notified", "blobs", blob, "") for blob in blobs
        ))
        self.assertEqual(pushed[-1], ("push", "alice/notified", "manifests", digest, "1"))
        self.assertEqual(receiver.events[-1]["target"]["mediaType"], document["mediaType"])
        # The check above read the manifest: that pull is an event too.
        await waitUntil(lambda: len(receiver.events) >= len(pushed) + 1)
        del receiver.envelopes[:]

        run("rmi", local, remote)
        run("pull", remote)
        await waitUntil(lambda: {e["target"]["digest"] for e in receiver.events} >= blobs | {digest})
        pulled = summary(receiver.events)
        manifests = [p for p in pulled if p[2] == "manifests"]
        self.assertEqual({(a, r, d) for a, r, _, d, _ in manifests}, {("pull", "alice/notified", digest)})
        self.assertEqual(sorted(p for p in pulled if p[2] == "blobs"), sorted(
            ("pull", "alice/notified", "blobs", blob, "") for blob in blobs
        ))
        self.assertEqual({json.dumps(e["actor"]) for e in receiver.events}, {'{"name": "alice"}'})
        self.assertTrue(all(e["request"]["useragent"].startswith("docker/") or "containerd" in
                            e["request"]["useragent"] for e in receiver.events), receiver.events)


class OutboxLockTests(TestCase):
    def test_secondProcessRefused(self) -> None:
        """
        A second registry on the same outbox (several instances on one
        storage, without their own outbox directories) stops at start in
        one line naming the key and the process that has it.
        """
        directory = os.path.abspath(self.mktemp())
        receiver = Receiver()
        environ = _environment(directory, receiver)
        os.makedirs(os.path.join(directory, "first"))
        os.makedirs(os.path.join(directory, "second"))
        first = RegistryProcess(os.path.join(directory, "first"), env=environ)
        self.addCleanup(first.stop)
        with self.assertRaises(RuntimeError) as raised:
            RegistryProcess(os.path.join(directory, "second"), env=environ)
        self.assertIn(
            "txregistry: configuration error: notifications.outbox.directory: "
            f"{os.path.join(directory, 'storage-outbox')} is in use by another registry process"
            f" (pid {first.process.pid})",
            str(raised.exception),
        )
