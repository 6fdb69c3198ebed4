"""
docker push against immutable tags and a tag quota: the refusal reaches
the user as docker's "denied" with the registry's message.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from tests.clients import daemons, wire


class DockerSpaceTests(TestCase):
    def setUp(self) -> None:
        self.docker = daemons.dockerDaemon()
        self.registry = daemons.startRegistry(self, config={"storage": {
            "tags": {"immutable": [{"repository": "release/**", "tags": ["v*"]}]},
            "quotas": [{"repository": "small/*", "maxtags": 1}],
        }})
        self.host = f"127.0.0.1:{self.registry.port}"
        self.images: list[str] = []
        self.addCleanup(lambda: self.images and self.docker.run("rmi", "-f", *self.images, check=False))

    def dockerRun(self, *arguments: str, check: bool = True):
        return self.docker.run(*arguments, check=check, context=self.registry)

    def image(self, reference: str, content: bytes) -> None:
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        tarball = os.path.join(work, "rootfs.tar")
        wire.tarball(tarball, {"file.txt": content})
        local = f"txregistry-test/space:{len(self.images)}"
        self.images += [local, reference]
        self.dockerRun("import", tarball, local)
        self.dockerRun("tag", local, reference)

    def test_immutableTag(self) -> None:
        remote = f"{self.host}/release/app:v1"
        self.image(remote, b"first\n")
        self.dockerRun("push", remote)
        self.image(remote, b"second\n")
        refused = self.dockerRun("push", remote, check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("tag v1 of release/app is immutable", refused.stderr.decode())
        # A tag the rule does not name moves freely.
        latest = f"{self.host}/release/app:latest"
        self.dockerRun("tag", remote, latest)
        self.images.append(latest)
        self.dockerRun("push", latest)

    def test_tagQuota(self) -> None:
        first, second = f"{self.host}/small/app:one", f"{self.host}/small/app:two"
        self.image(first, b"one\n")
        self.dockerRun("push", first)
        self.dockerRun("tag", first, second)
        self.images.append(second)
        refused = self.dockerRun("push", second, check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("quota exceeded for small/app", refused.stderr.decode())
        self.assertIn("1 of 1 tags used", refused.stderr.decode())
