"""
C{http.debug}, C{http.draintimeout} and C{health}: parsed into their
dataclasses, and every wrong value refused naming its key.
"""

from __future__ import annotations

import yaml
from twisted.trial.unittest import TestCase

from txregistry.config import ConfigurationError, checkConfiguration
from txregistry.opsconfig import CheckConfig, DebugConfig


def _load(text: str) -> object:
    return checkConfiguration(yaml.safe_load(text))


class OperationsConfigurationTests(TestCase):
    def assertRefused(self, text: str, message: str) -> None:
        with self.assertRaises(ConfigurationError, msg=text) as raised:
            _load(text)
        self.assertEqual(str(raised.exception), message)

    def test_defaults(self) -> None:
        config = _load("{}")
        self.assertEqual(config.http.debug, DebugConfig())  # type: ignore[attr-defined]
        self.assertEqual(config.http.drainTimeout, 10.0)  # type: ignore[attr-defined]
        self.assertEqual(config.health.checks, ())  # type: ignore[attr-defined]

    def test_debug(self) -> None:
        config = _load("http: {debug: {addr: '127.0.0.1:5001', prometheus: {enabled: true}}}")
        debug = config.http.debug  # type: ignore[attr-defined]
        self.assertEqual(debug, DebugConfig("127.0.0.1:5001", True, "/metrics"))
        self.assertEqual(debug.endpointDescription(), "tcp:5001:interface=127.0.0.1")

    def test_debugRefused(self) -> None:
        self.assertRefused("http: {debug: {}}",
                           "http.debug.addr: required (HOST:PORT) when http.debug is set")
        self.assertRefused("http: {debug: {addr: nope}}",
                           "http.debug.addr: expected HOST:PORT or :PORT with a port from 0 to"
                           " 65535, got 'nope'")
        self.assertRefused("http: {debug: {addr: ':1', prometheus: {enabled: yes please}}}",
                           "http.debug.prometheus.enabled: expected true or false, got 'yes please'")
        self.assertRefused("http: {debug: {addr: ':1', prometheus: {path: /debug/vars}}}",
                           "http.debug.prometheus.path: /debug/vars is taken by the debug listener")
        self.assertRefused("http: {debug: {addr: ':1', bogus: 1}}", "http.debug.bogus: unknown key")

    def test_drainTimeout(self) -> None:
        self.assertEqual(_load("http: {draintimeout: 1m}").http.drainTimeout, 60.0)  # type: ignore[attr-defined]
        self.assertRefused("http: {draintimeout: soon}",
                           "http.draintimeout: expected a duration such as 168h or 30s, got 'soon'")

    def test_health(self) -> None:
        """
        Every kind, with the reference's defaults (10s, threshold 1, 200)
        and a plain integer as nanoseconds.
        """
        config = _load("""
health:
  storagedriver: {enabled: true, interval: 5s, threshold: 3}
  file: [{file: /down}]
  http: [{uri: 'http://127.0.0.1:80/', headers: {A: [b]}, statuscode: 204, timeout: 3s}]
  tcp: [{addr: '127.0.0.1:6379', interval: 2000000000}]
""")
        self.assertEqual(config.health.checks, (  # type: ignore[attr-defined]
            CheckConfig("storagedriver", "", interval=5, threshold=3),
            CheckConfig("file", "/down"),
            CheckConfig("http", "http://127.0.0.1:80/", timeout=3, headers={"A": ["b"]},
                        statusCode=204),
            CheckConfig("tcp", "127.0.0.1:6379", interval=2, timeout=2),
        ))
        self.assertEqual(_load("health: {storagedriver: {enabled: false}}").health.checks, ())  # type: ignore[attr-defined]

    def test_healthRefused(self) -> None:
        self.assertRefused("health: {storagedriver: {enabled: true, interval: 10}}",
                           "health.storagedriver.interval: 10 is too short (at least 100ms;"
                           " a plain number is nanoseconds)")
        self.assertRefused("health: {storagedriver: {enabled: true, threshold: -1}}",
                           "health.storagedriver.threshold: expected a positive integer, got -1")
        self.assertRefused("health: {file: [{interval: 1s}]}", "health.file[0].file: required")
        self.assertRefused("health: {file: [{file: /x, threshold: 2}]}",
                           "health.file[0].threshold: unknown key")
        self.assertRefused("health: {http: [{uri: 'ftp://x'}]}",
                           "health.http[0].uri: expected an http or https URL, got 'ftp://x'")
        self.assertRefused("health: {http: [{uri: 'http://x', headers: {A: b}}]}",
                           "health.http[0].headers.A: expected a list of strings")
        self.assertRefused("health: {http: [{uri: 'http://x', statuscode: 999}]}",
                           "health.http[0].statuscode: expected an HTTP status, got 999")
        self.assertRefused("health: {tcp: [{addr: 'redis'}]}",
                           "health.tcp[0].addr: expected HOST:PORT or :PORT with a port from 0 to"
                           " 65535, got 'redis'")
        self.assertRefused("health: {tcp: [{addr: 'a:1'}, {addr: 'a:1'}]}",
                           "health: the check tcp:a:1 is configured twice")
        self.assertRefused("health: {bogus: []}", "health.bogus: unknown key")
