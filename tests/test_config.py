"""
Tests for L{txregistry.config}.
"""

from __future__ import annotations

import os

import yaml
from twisted.trial.unittest import TestCase

from txregistry.config import (
    KNOWN_KEYS,
    UNSUPPORTED,
    ConfigurationError,
    checkConfiguration,
    loadConfiguration,
    parseDuration,
)


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

    def assertRefused(self, text: str, message: str, environ: dict[str, str] | None = None) -> None:
        """
        Loading C{text} (with C{environ}) fails with exactly C{message}.
        """
        with self.assertRaises(ConfigurationError, msg=text) as raised:
            loadConfiguration(self.write(text), environ or {})
        self.assertEqual(str(raised.exception), message)

    def test_unknownKeyRefused(self) -> None:
        """
        A key txregistry does not read, at any depth, stops the start with
        its dotted name, instead of being ignored.
        """
        cases = {
            "http: {bogus: 1}\n": "http.bogus: unknown key",
            "bogus: 1\n": "bogus: unknown key",
            "log: {levle: debug}\n": "log.levle: unknown key",
            "log: {accesslog: {enabled: true}}\n": "log.accesslog.enabled: unknown key",
            "http: {tls: {cert: /c}}\n": "http.tls.cert: unknown key",
            "storage: {delete: {enable: true}}\n": "storage.delete.enable: unknown key",
            "storage: {maintenance: {uploadpurging: {ages: 1h}}}\n":
                "storage.maintenance.uploadpurging.ages: unknown key",
        }
        for text, message in cases.items():
            self.assertRefused(text, message)

    def test_unknownKeyFromEnvironmentRefused(self) -> None:
        """
        A C{REGISTRY_*} variable naming a key txregistry does not read is
        refused as the same key in the file would be.
        """
        self.assertRefused("version: 0.1\n", "http.bogus: unknown key", {"REGISTRY_HTTP_BOGUS": "1"})

    def test_freeFormSectionsAcceptAnyKey(self) -> None:
        """
        Header names, log fields and driver parameters are the user's own
        keys, not checked against txregistry's.
        """
        config = loadConfiguration(
            self.write(
                "log: {fields: {anything: 1}}\n"
                "http: {headers: {X-Anything: [y]}}\n"
                "storage: {filesystem: {rootdirectory: /r, maxthreads: 2}}\n"
            ),
            {},
        )
        self.assertEqual(config.log.fields, {"anything": 1})
        self.assertEqual(config.http.headers["X-Anything"], ["y"])
        self.assertEqual(config.storage.parameters, {"rootdirectory": "/r", "maxthreads": 2})

    def test_unsupportedSectionsRefused(self) -> None:
        """
        Reference sections txregistry does not honour yet stop the start
        with "not supported yet": serving anonymously when C{auth} is
        configured would be a security hole.
        """
        cases = {
            "auth: {htpasswd: {realm: r, path: /p}}\n": "auth",
            "notifications: {endpoints: []}\n": "notifications",
            "redis: {addrs: [localhost:6379]}\n": "redis",
            "proxy: {remoteurl: https://registry-1.docker.io}\n": "proxy",
            "middleware: {registry: []}\n": "middleware",
            "health: {storagedriver: {enabled: true}}\n": "health",
            "validation: {disabled: true}\n": "validation",
            "loglevel: debug\n": "loglevel",
            "log: {hooks: []}\n": "log.hooks",
            "http: {debug: {addr: 'localhost:5001'}}\n": "http.debug",
            "http: {http2: {disabled: false}}\n": "http.http2",
            "http: {tls: {clientcas: [/ca.pem]}}\n": "http.tls.clientcas",
            "http: {tls: {letsencrypt: {email: a@b}}}\n": "http.tls.letsencrypt",
            "storage: {tag: {concurrencylimit: 8}}\n": "storage.tag",
        }
        for text, key in cases.items():
            self.assertRefused(text, f"{key}: not supported yet")

    def test_unsupportedSectionFromEnvironmentRefused(self) -> None:
        self.assertRefused(
            "version: 0.1\n", "auth: not supported yet", {"REGISTRY_AUTH_HTPASSWD_PATH": "/p"}
        )

    def test_everyUnsupportedKeyRefused(self) -> None:
        """
        Each entry of L{UNSUPPORTED} is refused, whatever its value.
        """
        for entry in sorted(UNSUPPORTED):
            key, _, choice = entry.partition("=")
            document: dict[str, object] = {}
            node = document
            words = key.split(".")
            for word in words[:-1]:
                node = node.setdefault(word, {})  # type: ignore[assignment]
            node[words[-1]] = choice or {}
            expected = f"{key}: {choice} is not supported yet" if choice else f"{key}: not supported yet"
            with self.assertRaises(ConfigurationError, msg=entry) as raised:
                checkConfiguration(document)
            self.assertEqual(str(raised.exception), expected)

    def test_blobDescriptorCache(self) -> None:
        """
        The reference's C{storage.cache.blobdescriptor: inmemory} is what
        the registry's caches do, so it is accepted; C{redis} is refused as
        not supported yet, anything else as a wrong value.
        """
        loadConfiguration(self.write("storage: {cache: {blobdescriptor: inmemory}}\n"), {})
        self.assertRefused(
            "storage: {cache: {blobdescriptor: redis}}\n",
            "storage.cache.blobdescriptor: redis is not supported yet",
        )
        self.assertRefused(
            "storage: {cache: {blobdescriptor: disk}}\n",
            "storage.cache.blobdescriptor: expected inmemory, got 'disk'",
        )

    def test_scalarStorage(self) -> None:
        """
        C{storage: inmemory}, the reference's form for a driver without
        parameters, selects that driver.
        """
        config = loadConfiguration(self.write("version: 0.1\nstorage: inmemory\n"), {})
        self.assertEqual(config.storage.driver, "inmemory")
        self.assertEqual(config.storage.parameters, {})
        self.assertFalse(config.storage.deleteEnabled)

    def test_scalarStorageFromEnvironment(self) -> None:
        """
        C{REGISTRY_STORAGE=inmemory} replaces the file's driver, and later
        C{REGISTRY_STORAGE_*} variables still apply to it.
        """
        path = self.write("storage: {filesystem: {rootdirectory: /srv}}\n")
        config = loadConfiguration(
            path, {"REGISTRY_STORAGE": "inmemory", "REGISTRY_STORAGE_DELETE_ENABLED": "true"}
        )
        self.assertEqual(config.storage.driver, "inmemory")
        self.assertEqual(config.storage.parameters, {})
        self.assertTrue(config.storage.deleteEnabled)

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

    def test_exampleConfigurationDocumentsEveryKey(self) -> None:
        """
        Every key txregistry reads is in etc/config.yml, so the example
        documents all of them.
        """
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(here, "etc", "config.yml")) as f:
            example = yaml.safe_load(f)

        def missing(known: dict[str, object], document: dict[str, object], path: str) -> list[str]:
            absent = []
            for key, below in known.items():
                if key not in document:
                    absent.append(path + key)
                elif isinstance(below, dict):
                    absent += missing(below, document[key], f"{path}{key}.")  # type: ignore[arg-type]
            return absent

        self.assertEqual(missing(KNOWN_KEYS, example, ""), [])


class DurationTests(TestCase):
    def test_goDurations(self) -> None:
        self.assertEqual(parseDuration("k", "1h30m"), 5400)
        self.assertEqual(parseDuration("k", "500ms"), 0.5)
        self.assertEqual(parseDuration("k", 12), 12)
        self.assertRaises(ConfigurationError, parseDuration, "k", "1 day")
        self.assertRaises(ConfigurationError, parseDuration, "k", True)
