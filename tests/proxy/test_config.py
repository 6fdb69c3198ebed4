"""
The C{proxy} section.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from txregistry.config import ConfigurationError, checkConfiguration, loadConfiguration


class ProxyConfigurationTests(TestCase):
    def check(self, proxy: object) -> object:
        return checkConfiguration({"proxy": proxy}).proxy

    def test_none(self) -> None:
        """
        Without the section there is no cache.
        """
        self.assertFalse(checkConfiguration({}).proxy.enabled)

    def test_referenceMode(self) -> None:
        """
        The reference's keys: one upstream for every repository (no
        prefix), its login and its expiry.
        """
        proxy = self.check({"remoteurl": "https://registry-1.docker.io/", "username": "u",
                            "password": "p", "ttl": "24h"})
        self.assertTrue(proxy.reference)
        [upstream] = proxy.upstreams
        self.assertEqual((upstream.prefix, upstream.url, upstream.username, upstream.password,
                          upstream.ttl, upstream.dockerHub),
                         ("", "https://registry-1.docker.io", "u", "p", 86400.0, True))

    def test_upstreams(self) -> None:
        """
        Upstreams under prefixes, each with its own settings; docker.io's
        bare names are Docker Hub's C{library/}.
        """
        proxy = self.check({"upstreams": [
            {"prefix": "docker.io", "url": "https://registry-1.docker.io"},
            {"prefix": "mirror.internal/team", "url": "http://10.0.0.5:5000", "ttl": 0,
             "tagttl": "5m", "timeout": "3s", "maxbytes": "2GiB"},
        ]})
        self.assertFalse(proxy.reference)
        hub, team = proxy.upstreams
        self.assertEqual((hub.prefix, hub.dockerHub, hub.ttl, hub.tagTTL), ("docker.io", True, 168 * 3600.0, 0.0))
        self.assertEqual((team.prefix, team.dockerHub, team.ttl, team.tagTTL, team.timeout, team.plainHTTP),
                         ("mirror.internal/team", False, 0.0, 300.0, 3.0, True))
        self.assertEqual((hub.maxBytes, team.maxBytes), (None, 2 << 30))

    def test_environment(self) -> None:
        """
        C{REGISTRY_PROXY_REMOTEURL} sets the reference's mode, as there.
        """
        config = loadConfiguration(None, {"REGISTRY_PROXY_REMOTEURL": "https://ghcr.io"})
        self.assertEqual(config.proxy.upstreams[0].url, "https://ghcr.io")

    def test_mistakes(self) -> None:
        """
        Each mistake stops the start naming its key, in one line.
        """
        cases = [
            ({"remoteurl": "ftp://x"}, "proxy.remoteurl"),
            ({"remoteurl": "https://x/path"}, "proxy.remoteurl"),
            ({"remoteurl": "https://x", "ttl": "soon"}, "proxy.ttl"),
            ({"remoteurl": "https://x", "username": "u"}, "proxy:"),
            ({"remoteurl": "https://x", "upstreams": []}, "proxy.upstreams"),
            ({"username": "u"}, "proxy.username"),
            ({}, "proxy:"),
            ({"upstreams": "docker.io"}, "proxy.upstreams"),
            ({"upstreams": [{"url": "https://x"}]}, "proxy.upstreams[0].prefix"),
            ({"upstreams": [{"prefix": "/a", "url": "https://x"}]}, "proxy.upstreams[0].prefix"),
            ({"upstreams": [{"prefix": "a"}]}, "proxy.upstreams[0].url"),
            ({"upstreams": [{"prefix": "a", "url": "https://x", "bogus": 1}]}, "proxy.upstreams[0].bogus"),
            ({"upstreams": [{"prefix": "a", "url": "https://x", "timeout": 0}]}, "proxy.upstreams[0].timeout"),
            ({"upstreams": [{"prefix": "a", "url": "https://x", "maxbytes": "lots"}]},
             "proxy.upstreams[0].maxbytes"),
            ({"upstreams": [{"prefix": "a", "url": "https://x", "tls": {"ca": "/no/such"}}]},
             "proxy.upstreams[0].tls.ca"),
            ({"upstreams": [{"prefix": "a", "url": "https://x", "tls": {"insecure": "yes"}}]},
             "proxy.upstreams[0].tls.insecure"),
            ({"upstreams": [{"prefix": "a", "url": "http://x", "tls": {"insecure": True}}]},
             "proxy.upstreams[0].tls"),
            ({"upstreams": [{"prefix": "a", "url": "https://x"}, {"prefix": "a/b", "url": "https://y"}]},
             "proxy.upstreams[1].prefix"),
        ]
        for proxy, key in cases:
            with self.assertRaises(ConfigurationError) as raised:
                self.check(proxy)
            message = str(raised.exception)
            self.assertTrue(message.startswith(key), (proxy, message))
            self.assertNotIn("\n", message)
