"""
Tests for L{txregistry.config}.
"""

from __future__ import annotations

import os
import re

import yaml
from twisted.trial.unittest import TestCase

from txregistry.config import (
    KNOWN_KEYS,
    UNSUPPORTED,
    ConfigurationError,
    StorageMiddlewareEntry,
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
        # A worker per CPU, each with the tag cache (see tests.workers).
        self.assertEqual(config.http.workers, max(1, os.cpu_count() or 1))
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
            "redis: {addrs: [localhost:6379], tls: {enabled: true}}\n": "redis.tls",
            "proxy: {remoteurl: https://registry-1.docker.io, exec: {command: helper}}\n":
                "proxy.exec",
            "middleware: {registry: []}\n": "middleware.registry",
            "middleware: {repository: []}\n": "middleware.repository",
            "validation: {disabled: true}\n": "validation",
            "loglevel: debug\n": "loglevel",
            "log: {hooks: []}\n": "log.hooks",
            "http: {http2: {disabled: false}}\n": "http.http2",
            "http: {tls: {letsencrypt: {email: a@b}}}\n": "http.tls.letsencrypt",
            "storage: {tag: {concurrencylimit: 8}}\n": "storage.tag",
        }
        for text, key in cases.items():
            self.assertRefused(text, f"{key}: not supported yet")

    def test_unsupportedSectionFromEnvironmentRefused(self) -> None:
        self.assertRefused(
            "version: 0.1\n", "validation: not supported yet",
            {"REGISTRY_VALIDATION_DISABLED": "true"},
        )

    def test_auth(self) -> None:
        """
        One of the reference's schemes, with its required keys; anything
        else stops the start naming the key, so a registry told to
        authenticate never serves everyone.
        """
        config = loadConfiguration(self.write("auth: {htpasswd: {realm: r, path: /p}}\n"), {})
        self.assertEqual((config.auth.scheme, config.auth.parameters), ("htpasswd", {"realm": "r", "path": "/p"}))
        self.assertIsNone(loadConfiguration(None, {}).auth.scheme)
        for text, key in {
            "auth: {htpasswd: {realm: r}}\n": "auth.htpasswd.path: required",
            "auth: {silly: {realm: r}}\n": "auth.silly.service: required",
            "auth: {htpasswd: {realm: r, path: /p, bogus: 1}}\n": "auth.htpasswd.bogus: unknown key",
            "auth: {ldap: {}}\n": "auth.ldap: unknown key",
            "auth: {}\n": "auth: exactly one of silly, htpasswd, basic, token must be configured, found none",
            "auth: {silly: {realm: r, service: s}, htpasswd: {realm: r, path: /p}}\n":
                "auth: exactly one of silly, htpasswd, basic, token must be configured, found htpasswd, silly",
        }.items():
            self.assertRefused(text, key)
        self.assertRefused("version: 0.1\n", "auth.htpasswd.realm: required",
                           {"REGISTRY_AUTH_HTPASSWD_PATH": "/p"})

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
        the registry's caches do, so it is accepted; C{redis} needs the
        C{redis} section; anything else is a wrong value.
        """
        loadConfiguration(self.write("storage: {cache: {blobdescriptor: inmemory}}\n"), {})
        self.assertRefused(
            "storage: {cache: {blobdescriptor: redis}}\n",
            "storage.cache.blobdescriptor: redis needs the redis section (redis.addrs)",
        )
        self.assertRefused(
            "storage: {cache: {blobdescriptor: disk}}\n",
            "storage.cache.blobdescriptor: expected inmemory or redis, got 'disk'",
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
        documents all of them: set, or on C{#:} lines (sections that would
        change what the example does, such as C{auth}).
        """
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(here, "etc", "config.yml")) as f:
            text = re.sub(r"^#:", "", f.read(), flags=re.M)
        example = yaml.safe_load(text)

        def missing(known: dict[str, object], document: dict[str, object], path: str) -> list[str]:
            absent = []
            for key, below in known.items():
                if key not in document:
                    absent.append(path + key)
                elif isinstance(below, dict):
                    absent += missing(below, document[key], f"{path}{key}.")  # type: ignore[arg-type]
            return absent

        self.assertEqual(missing(KNOWN_KEYS, example, ""), [])


class UIConfigurationTests(TestCase):
    """
    The C{ui} section.
    """

    def test_defaults(self) -> None:
        """
        The UI is off unless asked for; its path is C{/ui/}.
        """
        ui = checkConfiguration({}).ui
        self.assertEqual((ui.enabled, ui.path, ui.sessionTimeout), (False, "/ui/", 8 * 3600.0))

    def test_path(self) -> None:
        """
        A path is taken with or without its slashes and kept as C{/a/b/}.
        """
        ui = checkConfiguration({"ui": {"enabled": True, "path": "/admin/browse", "sessiontimeout": "30m"}}).ui
        self.assertEqual((ui.enabled, ui.path, ui.sessionTimeout), (True, "/admin/browse/", 1800.0))

    def test_badValues(self) -> None:
        """
        A path that is not one, the API's own paths, a bad duration and a
        non-boolean switch each stop the start naming the key.
        """
        for section, key in [
            ({"path": "ui"}, "ui.path"), ({"path": "/"}, "ui.path"), ({"path": "/a//b/"}, "ui.path"),
            ({"path": "/a/../b"}, "ui.path"), ({"path": "/v2/ui/"}, "ui.path"),
            ({"path": "/auth/"}, "ui.path"), ({"path": "/a b/"}, "ui.path"),
            ({"sessiontimeout": "soon"}, "ui.sessiontimeout"), ({"sessiontimeout": 0}, "ui.sessiontimeout"),
            ({"enabled": "yes"}, "ui.enabled"), ({"bogus": 1}, "ui.bogus"),
        ]:
            with self.assertRaises(ConfigurationError) as raised:
                checkConfiguration({"ui": section})
            self.assertTrue(str(raised.exception).startswith(key + ":"), (section, str(raised.exception)))


class TLSConfigurationTests(TestCase):
    """
    C{http.tls}'s options: a value txregistry cannot honour stops the start
    naming the key (and the value), rather than serving something weaker.
    """

    tls = "http: {tls: {certificate: /c.pem, key: /k.pem, "

    def assertRefused(self, text: str, *parts: str) -> None:
        with self.assertRaises(ConfigurationError, msg=text) as raised:
            checkConfiguration(yaml.safe_load(text))
        for part in parts:
            self.assertIn(part, str(raised.exception))

    def test_options(self) -> None:
        """
        The reference's keys are read: client CAs, the client check, the
        minimum version and the cipher suites.
        """
        config = checkConfiguration(yaml.safe_load(
            self.tls + "clientcas: [/ca1.pem, /ca2.pem], clientauth: verify-client-cert-if-given,"
            " minimumtls: tls1.3, ciphersuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]}}"
        ))
        self.assertEqual(config.http.tlsClientCAs, ("/ca1.pem", "/ca2.pem"))
        self.assertEqual(config.http.tlsClientAuth, "verify-client-cert-if-given")
        self.assertEqual(config.http.tlsMinimumVersion, "tls1.3")
        self.assertEqual(config.http.tlsCipherSuites, ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",))

    def test_defaults(self) -> None:
        """
        Without them: no client certificate asked for, TLS 1.2 and up, the
        reference's default suites.
        """
        config = checkConfiguration(yaml.safe_load(self.tls + "}}"))
        self.assertEqual(config.http.tlsClientCAs, ())
        self.assertEqual(config.http.tlsClientAuth, "require-and-verify-client-cert")
        self.assertEqual(config.http.tlsMinimumVersion, "tls1.2")
        self.assertEqual(config.http.tlsCipherSuites, ())

    def test_minimumTLS(self) -> None:
        """
        TLS 1.0 and 1.1 are refused as minimums, as is a value that is no
        version.
        """
        self.assertRefused(self.tls + "minimumtls: tls1.0}}", "http.tls.minimumtls", "tls1.0")
        self.assertRefused(self.tls + "minimumtls: tls1.1}}", "http.tls.minimumtls", "tls1.1")
        self.assertRefused(self.tls + "minimumtls: ssl3}}", "http.tls.minimumtls", "'ssl3'")

    def test_cipherSuites(self) -> None:
        """
        An unknown suite and the reference's insecure ones are named; a
        list with no TLS 1.2 suite is refused unless TLS 1.2 is.
        """
        self.assertRefused(
            self.tls + "ciphersuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_BOGUS]}}",
            "http.tls.ciphersuites", "TLS_BOGUS",
        )
        self.assertRefused(
            self.tls + "ciphersuites: [TLS_RSA_WITH_RC4_128_SHA]}}",
            "http.tls.ciphersuites", "TLS_RSA_WITH_RC4_128_SHA", "insecure",
        )
        self.assertRefused(
            self.tls + "ciphersuites: [TLS_AES_128_GCM_SHA256]}}",
            "http.tls.ciphersuites", "no TLS 1.2 cipher suite",
        )
        config = checkConfiguration(yaml.safe_load(
            self.tls + "minimumtls: tls1.3, ciphersuites: [TLS_AES_128_GCM_SHA256]}}"
        ))
        self.assertEqual(config.http.tlsCipherSuites, ("TLS_AES_128_GCM_SHA256",))

    def test_clientAuth(self) -> None:
        """
        The modes that do not verify the certificate are refused by name;
        a mode without client CAs, or client CAs without TLS, is refused.
        """
        cas = "clientcas: [/ca.pem], "
        for mode in ("request-client-cert", "require-any-client-cert"):
            self.assertRefused(
                self.tls + cas + f"clientauth: {mode}}}}}", "http.tls.clientauth", mode,
                "does not verify",
            )
        self.assertRefused(self.tls + cas + "clientauth: maybe}}", "http.tls.clientauth", "maybe")
        self.assertRefused(
            self.tls + "clientauth: require-and-verify-client-cert}}",
            "http.tls.clientauth", "needs http.tls.clientcas",
        )
        self.assertRefused(
            "http: {tls: {clientcas: [/ca.pem]}}", "http.tls.clientcas", "needs http.tls.certificate"
        )
        self.assertRefused(self.tls + "clientcas: [1]}}", "http.tls.clientcas")

    def test_environment(self) -> None:
        """
        The options come from C{REGISTRY_HTTP_TLS_*} as any key does.
        """
        config = loadConfiguration(None, {
            "REGISTRY_HTTP_TLS_CERTIFICATE": "/c.pem",
            "REGISTRY_HTTP_TLS_KEY": "/k.pem",
            "REGISTRY_HTTP_TLS_CLIENTCAS": "[/ca.pem]",
            "REGISTRY_HTTP_TLS_MINIMUMTLS": "tls1.3",
        })
        self.assertEqual(config.http.tlsClientCAs, ("/ca.pem",))
        self.assertEqual(config.http.tlsMinimumVersion, "tls1.3")

    def test_unixSocket(self) -> None:
        """
        TLS on a unix socket is refused rather than served as plain HTTP.
        """
        self.assertRefused(
            "http: {net: unix, addr: /tmp/r.sock, tls: {certificate: /c, key: /k}}",
            "http.tls", "unix",
        )


class DurationTests(TestCase):
    def test_goDurations(self) -> None:
        self.assertEqual(parseDuration("k", "1h30m"), 5400)
        self.assertEqual(parseDuration("k", "500ms"), 0.5)
        self.assertEqual(parseDuration("k", 12), 12)
        self.assertRaises(ConfigurationError, parseDuration, "k", "1 day")
        self.assertRaises(ConfigurationError, parseDuration, "k", True)


class RedisConfigurationTests(TestCase):
    """
    C{redis} and C{storage.cache.blobdescriptor: redis}.
    """

    def assertRefused(self, document: dict, *parts: str) -> None:  # type: ignore[type-arg]
        with self.assertRaises(ConfigurationError) as raised:
            checkConfiguration(document)
        for part in parts:
            self.assertIn(part, str(raised.exception))

    def test_parsed(self) -> None:
        config = checkConfiguration({
            "storage": {"inmemory": {}, "cache": {"blobdescriptor": "redis"}},
            "redis": {"addrs": ["cache:6380"], "password": "p", "db": 2, "readtimeout": "50ms",
                      "poolsize": 4},
        })
        self.assertEqual(config.storage.blobDescriptorCache, "redis")
        redis = config.redis
        assert redis is not None
        self.assertEqual((redis.host, redis.port, redis.password, redis.db, redis.poolSize),
                         ("cache", 6380, "p", 2, 4))
        self.assertEqual((redis.readTimeout, redis.dialTimeout), (0.05, 1.0))
        self.assertEqual(checkConfiguration({"redis": {"addr": "r:1"}}).redis.port, 1)  # type: ignore[union-attr]

    def test_refused(self) -> None:
        self.assertRefused({"storage": {"inmemory": {}, "cache": {"blobdescriptor": "redis"}}},
                           "storage.cache.blobdescriptor", "redis section")
        self.assertRefused({"storage": {"inmemory": {}, "cache": {"blobdescriptor": "memcached"}}},
                           "storage.cache.blobdescriptor")
        self.assertRefused({"redis": {"addrs": ["a:1", "b:2"]}}, "redis.addrs")
        self.assertRefused({"redis": {"addrs": ["nohost"]}}, "redis.addrs")
        self.assertRefused({"redis": {"addrs": ["a:1"], "db": -1}}, "redis.db")
        self.assertRefused({"redis": {"addrs": ["a:1"], "poolsize": 0}}, "redis.poolsize")
        self.assertRefused({"redis": {"addrs": ["a:1"], "readtimeout": "soon"}}, "redis.readtimeout")
        self.assertRefused({"redis": {"addrs": ["a:1"], "maxidleconns": 16}},
                           "redis.maxidleconns", "not supported")
        self.assertRefused({"redis": {"addrs": ["a:1"], "tls": {"enabled": True}}},
                           "redis.tls", "not supported")
        self.assertRefused({"redis": {"addrs": ["a:1"], "adress": "x"}}, "redis.adress")


class StorageMiddlewareConfigurationTests(TestCase):
    """
    C{middleware.storage}: a list of entries, from the file or the
    environment, each shape checked at load (their options are the
    middleware's to check: tests.storage.middleware).
    """

    def test_parsed(self) -> None:
        config = loadConfiguration(None, {
            "REGISTRY_MIDDLEWARE_STORAGE":
                "[{name: redirect, options: {baseurl: 'https://blobs.example.com:5443/x'}},"
                " {name: rewrite, disabled: true, options: {host: cdn.example}}]",
        })
        self.assertEqual(config.storageMiddleware, (
            StorageMiddlewareEntry("redirect", {"baseurl": "https://blobs.example.com:5443/x"}, False,
                                   "middleware.storage[0]"),
            StorageMiddlewareEntry("rewrite", {"host": "cdn.example"}, True, "middleware.storage[1]"),
        ))
        self.assertEqual(checkConfiguration({}).storageMiddleware, ())
        self.assertEqual(checkConfiguration({"middleware": {}}).storageMiddleware, ())

    def test_refused(self) -> None:
        cases = {
            "middleware: {storage: {name: redirect}}":
                "middleware.storage: expected a list of {name, options} entries, got {'name': 'redirect'}",
            "middleware: [storage]": "middleware: expected a mapping, got ['storage']",
            "middleware: {storage: [redirect]}": "middleware.storage[0]: expected a mapping, got 'redirect'",
            "middleware: {storage: [{options: {}}]}": "middleware.storage[0].name: required (the middleware's name)",
            "middleware: {storage: [{name: redirect, option: {}}]}": "middleware.storage[0].option: unknown key",
            "middleware: {storage: [{name: redirect, disabled: maybe}]}":
                "middleware.storage[0].disabled: expected true or false, got 'maybe'",
            "middleware: {storage: [{name: redirect, options: [baseurl]}]}":
                "middleware.storage[0].options: expected a mapping, got ['baseurl']",
        }
        for text, message in cases.items():
            with self.assertRaises(ConfigurationError, msg=text) as raised:
                checkConfiguration(yaml.safe_load(text))
            self.assertEqual(str(raised.exception), message)
