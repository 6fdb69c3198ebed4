"""
Retention policies (C{storage.retention.policies}) applied by a
collection: which tags go, what untagged manifests and referrers go with
them, pull times recorded by pulls, and a dry run that lists exactly what
the run then deletes.
"""

from __future__ import annotations

import io
import os
import time
from typing import Any

import yaml
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.api.helpers import OCI_MANIFEST, descriptor, pushImage, sha256
from tests.support import startRegistry
from txregistry.collect import garbageCollect
from txregistry.config import ConfigurationError, checkConfiguration
from txregistry.registry import layout

DAY = 86400.0


class RetentionTests(TestCase):
    async def setUp(self) -> None:
        self.root = os.path.abspath(self.mktemp())
        self.policies: list[dict[str, Any]] = [
            {"repository": "ci/**", "deleteuntagged": True, "keeptags": [
                {"patterns": ["v*"]},
                {"patterns": ["build-*"], "mostrecentlypushedcount": 2},
                {"patterns": ["nightly-*"], "pushedwithin": "48h"},
                {"patterns": ["pr-*"], "pulledwithin": "24h"},
            ]},
        ]
        self.storage = {"filesystem": {"rootdirectory": self.root}, "delete": {"enabled": True},
                        "retention": {"policies": self.policies}}
        # The offline collection is another process: this registry reads
        # what it removed at once only without a tag cache.
        self.registry = await startRegistry(
            self, {"storage": {**self.storage, "cache": {"tagttl": "0s"}}})

    def age(self, name: str, tag: str, days: float, what: str = "current") -> None:
        """
        Make C{tag}'s push (or recorded pull) C{days} old.
        """
        path = self.root + (layout.tagCurrentLink(name, tag) if what == "current"
                            else layout.tagPulled(name, tag))
        then = time.time() - days * DAY
        os.utime(path, (then, then))

    async def collect(self, dryRun: bool = False) -> str:
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            yaml.safe_dump({"version": 0.1, "storage": {
                "filesystem": {"rootdirectory": self.root},
                "retention": {"policies": self.policies}}}, f)
        out, err = io.StringIO(), io.StringIO()
        status = await garbageCollect(reactor, path, {}, dryRun, False, False, out, err)
        self.assertEqual(status, 0, err.getvalue())
        return out.getvalue()

    async def tags(self, name: str) -> list[str]:
        response = await self.registry.request("GET", f"/v2/{name}/tags/list")
        return (await response.json())["tags"]  # type: ignore[no-any-return]

    async def test_policy(self) -> None:
        name = "ci/app"
        images = {}
        for tag, days in (("v1", 100), ("build-1", 3), ("build-2", 2), ("build-3", 1),
                          ("nightly-old", 5), ("nightly-new", 1), ("pr-pulled", 10),
                          ("pr-idle", 10), ("other", 50)):
            images[tag], _ = await pushImage(self, self.registry, name, tag)
            self.age(name, tag, days)
        # A pull records a time, within the hour, without slowing the pull.
        response = await self.registry.request(
            "GET", f"/v2/{name}/manifests/pr-pulled", headers={"Accept": [OCI_MANIFEST]})
        self.assertEqual(response.code, 200)
        await response.content()
        from twisted.internet.task import deferLater

        await deferLater(reactor, 0.2, lambda: None)
        self.assertTrue(os.path.exists(self.root + layout.tagPulled(name, "pr-pulled")))
        # A repository no policy names keeps everything.
        await pushImage(self, self.registry, "team/app", "old")
        self.age("team/app", "old", 1000)
        dry = await self.collect(dryRun=True)
        self.assertEqual(len(await self.tags(name)), 9)
        real = await self.collect()
        self.assertEqual(dry.replace("would delete", "deleted").replace("would remove", "removed"),
                         real)
        self.assertEqual(await self.tags(name),
                         ["build-2", "build-3", "nightly-new", "pr-pulled", "v1"])
        for gone in ("build-1", "nightly-old", "pr-idle", "other"):
            self.assertIn(f"{name}: deleted tag {gone}", real)
            self.assertIn(f"{name}: deleted manifest {sha256(images[gone])}", real)
        self.assertEqual(await self.tags("team/app"), ["old"])
        self.assertIn("removed 4 tags, 4 manifests and", real)

    async def test_referrersKept(self) -> None:
        """
        With deleteuntagged but not deletereferrers, a signature of a
        deleted image stays; with deletereferrers it goes.
        """
        name = "ci/signed"
        manifest, _ = await pushImage(self, self.registry, name, "other")
        self.age(name, "other", 1)
        from tests.api.helpers import config, imageManifest, pushBlob, pushManifest

        configContent = config()
        await pushBlob(self, self.registry, name, configContent)
        signature = imageManifest(configContent, [], subject=descriptor(OCI_MANIFEST, manifest))
        await pushManifest(self, self.registry, name, sha256(signature), signature)
        output = await self.collect()
        self.assertIn(f"deleted manifest {sha256(manifest)}", output)
        self.assertNotIn(sha256(signature), output)
        self.policies[0]["deletereferrers"] = True
        output = await self.collect()
        self.assertIn(f"deleted manifest {sha256(signature)}", output)


class RetentionConfigurationTests(TestCase):
    def refused(self, policies: Any, *parts: str) -> None:
        with self.assertRaises(ConfigurationError) as raised:
            checkConfiguration({"storage": {"inmemory": {}, "retention": {"policies": policies}}})
        for part in parts:
            self.assertIn(part, str(raised.exception))

    def test_errors(self) -> None:
        self.refused([{"repository": "a"}], "policies[0]: deletes nothing")
        self.refused([{"repository": "a", "keeptags": [{"pattern": "v*"}]}], "keeptags[0].pattern")
        self.refused([{"repository": "a", "keeptags": [{"pushedwithin": "soon"}]}],
                     "keeptags[0].pushedwithin")
        self.refused([{"repository": "a", "keeptags": [{"mostrecentlypushedcount": "3"}]}],
                     "mostrecentlypushedcount")
        self.refused([{"repository": "a", "deleteuntagged": "yes"}], "deleteuntagged")
        self.refused({"repository": "a"}, "expected a list")
