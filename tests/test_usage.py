"""
C{txregistry usage}: each repository's bytes, blobs and tags, with its
quota, as text and as JSON.
"""

from __future__ import annotations

import io
import json
import os

import yaml
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from tests.api.helpers import LAYER, pushImage
from tests.support import startRegistry
from txregistry.usage import reportUsage


class UsageCommandTests(TestCase):
    async def test_report(self) -> None:
        root = os.path.abspath(self.mktemp())
        storage = {"filesystem": {"rootdirectory": root},
                   "quotas": [{"repository": "team/*", "maxbytes": "1GiB", "maxtags": 10}]}
        registry = await startRegistry(self, {"storage": storage})
        await pushImage(self, registry, "team/a", "v1")
        await pushImage(self, registry, "other", "v1")
        await pushImage(self, registry, "other", "v2")
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            yaml.safe_dump({"version": 0.1, "storage": storage}, f)
        out, err = io.StringIO(), io.StringIO()
        self.assertEqual(await reportUsage(reactor, path, {}, [], False, out, err), 0, err.getvalue())
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].startswith("other: "))
        self.assertIn("in 3 blobs, 2 tags", lines[0])
        self.assertIn("(quota team/*: 1073741824 bytes, 10 tags)", lines[1])
        out = io.StringIO()
        self.assertEqual(await reportUsage(reactor, path, {}, ["team/a"], True, out, err), 0)
        [entry] = json.loads(out.getvalue())
        self.assertEqual((entry["repository"], entry["blobs"], entry["tags"]), ("team/a", 2, 1))
        self.assertGreater(entry["bytes"], len(LAYER))
        self.assertEqual(entry["quota"], {"repository": "team/*", "maxbytes": 1 << 30, "maxtags": 10})
        err = io.StringIO()
        self.assertEqual(await reportUsage(reactor, path, {}, ["Bad//name"], False, out, err), 1)
        self.assertIn("is not a repository name", err.getvalue())
