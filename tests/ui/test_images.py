"""
L{txregistry.ui.images}: what the pages read out of manifests and image
configs, including content that is not what its type says.
"""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from tests.ui.content import imageConfig
from txregistry.ui.images import (
    descriptorsOf,
    isIndex,
    parseConfig,
    parseDocument,
    platformOf,
)


class ImagesTests(SynchronousTestCase):
    def test_config(self) -> None:
        config = parseConfig(imageConfig("arm64"))
        assert config is not None
        self.assertEqual(config.platform, "linux/arm64")
        self.assertEqual(config.entrypoint, ["/usr/bin/server"])
        self.assertEqual(config.cmd, ["--port", "8080"])
        self.assertEqual(config.exposedPorts, ["8080/tcp"])
        self.assertEqual(config.labels["maintainer"], "ops <ops@example.com>")
        self.assertEqual([h.emptyLayer for h in config.history], [False, True])

    def test_notAConfig(self) -> None:
        """
        An artifact's empty config, bytes that are not JSON, and odd field
        types show nothing rather than failing the page.
        """
        self.assertIsNone(parseConfig(b"{}"))
        self.assertIsNone(parseConfig(b"\xff not json"))
        self.assertIsNone(parseConfig(b"[1, 2]"))
        odd = parseConfig(json.dumps({"architecture": "amd64", "config": {
            "Entrypoint": "/bin/sh", "Cmd": None, "Env": [1, {"x": 1}], "Labels": ["no"]},
            "history": ["no", {"created_by": "RUN x"}]}).encode())
        assert odd is not None
        self.assertEqual(odd.entrypoint, ["/bin/sh"])
        self.assertEqual(odd.cmd, [])
        self.assertEqual(odd.env, ["1"])
        self.assertEqual(odd.labels, {})
        self.assertEqual([h.createdBy for h in odd.history], ["RUN x"])

    def test_descriptors(self) -> None:
        """
        Entries that are not descriptors are skipped; a bad size is 0.
        """
        document = {"manifests": [
            {"mediaType": "m", "digest": "sha256:" + "a" * 64, "size": 3,
             "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            "junk", {"digest": 5}, {"digest": "sha256:" + "b" * 64, "size": -1},
        ]}
        found = descriptorsOf(document, "manifests")
        self.assertEqual([(d.platform, d.size) for d in found], [("linux/arm/v7", 3), ("", 0)])
        self.assertEqual(descriptorsOf({"manifests": "x"}, "manifests"), [])

    def test_kinds(self) -> None:
        self.assertTrue(isIndex("application/vnd.oci.image.index.v1+json", {}))
        self.assertFalse(isIndex("application/vnd.oci.image.manifest.v1+json", {"manifests": []}))
        self.assertTrue(isIndex("application/x-unknown", {"manifests": []}))
        self.assertEqual(parseDocument(b"null"), {})
        self.assertEqual(platformOf({"os": "windows", "architecture": 3}), "windows")
