"""
Tests for L{txregistry.config}.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from txregistry.config import ConfigurationError, loadConfiguration, parseDuration


class LoadConfigurationTests(TestCase):
    def write(self, text: str) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_defaults(self) -> None:
        """
        With no file, the registry stores files under ./var/registry and
        listens on 127.0.0.1:5000.
        """
        config = loadConfiguration(None, {})
        self.assertEqual(config.storage.driver, "filesystem")
        self.assertEqual(config.storage.parameters, {"rootdirectory": "./var/registry"})
        self.assertEqual(config.http.addr, "127.0.0.1:5000")
        self.assertEqual(
            config.http.endpointDescription(), "tcp:5000:interface=127.0.0.1"
        )
        self.assertFalse(config.storage.deleteEnabled)
        self.assertEqual(config.storage.uploadPurging.age, 168 * 3600)
        self.assertEqual(config.storage.tagTTL, 1.0)

    def test_environmentOverridesFile(self) -> None:
        """
        REGISTRY_* variables override the file, in the reference style.
        """
        path = self.write(
            "version: 0.1\n"
            "http: {addr: '127.0.0.1:7000'}\n"
            "storage: {filesystem: {rootdirectory: /srv}}\n"
        )
        config = loadConfiguration(
            path,
            {
                "REGISTRY_HTTP_ADDR": "127.0.0.1:5001",
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/data",
                "REGISTRY_STORAGE_DELETE_ENABLED": "true",
                "UNRELATED": "x",
            },
        )
        self.assertEqual(config.http.addr, "127.0.0.1:5001")
        self.assertEqual(config.storage.parameters["rootdirectory"], "/data")
        self.assertTrue(config.storage.deleteEnabled)

    def test_otherDriverReplacesDefault(self) -> None:
        config = loadConfiguration(self.write("storage: {inmemory: {}}\n"), {})
        self.assertEqual(config.storage.driver, "inmemory")

    def test_errorsNameTheKey(self) -> None:
        """
        A wrong value is reported with its dotted key.
        """
        cases = {
            "http: {addr: nonsense}\n": "http.addr",
            "storage: {delete: {enabled: maybe}}\n": "storage.delete.enabled",
            "log: {level: loud}\n": "log.level",
            "log: {formatter: xml}\n": "log.formatter",
            "storage: {inmemory: {}, filesystem: {}}\n": "storage:",
            "version: 2\n": "version",
            "http: {tls: {certificate: /c}}\n": "http.tls",
            "storage: {maintenance: {uploadpurging: {age: soon}}}\n": "uploadpurging.age",
            "http: {prefix: v2}\n": "http.prefix",
            "storage: {cache: {tagttl: often}}\n": "storage.cache.tagttl",
        }
        for text, key in cases.items():
            with self.assertRaises(ConfigurationError, msg=text) as raised:
                loadConfiguration(self.write(text), {})
            self.assertIn(key, str(raised.exception))

    def test_badYAML(self) -> None:
        with self.assertRaises(ConfigurationError) as raised:
            loadConfiguration(self.write("http: [\n"), {})
        self.assertIn("not valid YAML", str(raised.exception))

    def test_missingFile(self) -> None:
        with self.assertRaises(ConfigurationError) as raised:
            loadConfiguration(os.path.join(self.mktemp(), "nope.yml"), {})
        self.assertIn("cannot read", str(raised.exception))

    def test_exampleConfigurationLoads(self) -> None:
        """
        etc/config.yml, the documented example, is a valid configuration.
        """
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        config = loadConfiguration(os.path.join(here, "etc", "config.yml"), {})
        self.assertEqual(config.storage.driver, "filesystem")


class DurationTests(TestCase):
    def test_goDurations(self) -> None:
        self.assertEqual(parseDuration("k", "1h30m"), 5400)
        self.assertEqual(parseDuration("k", "500ms"), 0.5)
        self.assertEqual(parseDuration("k", 12), 12)
        self.assertRaises(ConfigurationError, parseDuration, "k", "1 day")
        self.assertRaises(ConfigurationError, parseDuration, "k", True)
