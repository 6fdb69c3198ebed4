"""
The C{notifications:} section (L{txregistry.notifications.config}): the
reference's endpoint keys and txregistry's, each mistake stopping the
start with the key named.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from txregistry.config import ConfigurationError, checkConfiguration, loadConfiguration
from txregistry.notifications.config import MAX_BACKOFF, EndpointConfig, globPattern

URL = "https://hooks.example.com/registry"


def check(*endpoints: dict[str, Any], storage: Any = None, **section: Any) -> Any:
    document = {
        "storage": storage or {"filesystem": {"rootdirectory": "/srv/registry"}},
        "notifications": {"endpoints": list(endpoints), **section},
    }
    return checkConfiguration(document).notifications


class NotificationsConfigTests(TestCase):
    def assertRefused(self, message: str, *endpoints: dict[str, Any], **section: Any) -> None:
        with self.assertRaises(ConfigurationError) as raised:
            check(*endpoints, **section)
        self.assertEqual(str(raised.exception), message)

    def test_referenceExample(self) -> None:
        """
        The reference's documented example is taken as it is, with its
        durations and both spellings of the ignored media types.
        """
        config = check(
            {
                "name": "alistener", "disabled": False, "url": URL,
                "headers": {"Authorization": ["Bearer x"]}, "timeout": "500ms",
                "threshold": 5, "backoff": "1s",
                "ignoredmediatypes": ["application/octet-stream"],
                "ignore": {"mediatypes": ["text/plain"], "actions": ["pull"]},
            },
            events={"includereferences": True},
        )
        (endpoint,) = config.endpoints
        self.assertEqual(endpoint.timeout, 0.5)
        self.assertEqual(endpoint.threshold, 5)
        self.assertEqual(endpoint.headers, {"Authorization": ["Bearer x"]})
        self.assertEqual(endpoint.ignoredMediaTypes, {"application/octet-stream", "text/plain"})
        self.assertEqual(endpoint.ignoredActions, {"pull"})
        self.assertTrue(config.includeReferences)
        self.assertEqual(config.outbox, "/srv/registry-outbox")

    def test_badEndpointsNamed(self) -> None:
        """
        No URL, a scheme other than http(s), a negative timeout (and the
        other mistakes) stop the start naming the key.
        """
        key = "notifications.endpoints[0]"
        cases = [
            ({"name": "a"}, f"{key}.url: required (endpoint a)"),
            ({"name": "a", "url": "ftp://h/x"}, f"{key}.url: expected an http or https URL, got 'ftp://h/x'"),
            ({"name": "a", "url": "file:///etc/passwd"},
             f"{key}.url: expected an http or https URL, got 'file:///etc/passwd'"),
            ({"name": "a", "url": URL, "timeout": -1}, f"{key}.timeout: must not be negative, got -1"),
            ({"name": "a", "url": URL, "timeout": "-1s"}, f"{key}.timeout: must not be negative, got '-1s'"),
            ({"name": "a", "url": URL, "timeout": 0}, f"{key}.timeout: must be more than 0"),
            ({"name": "a", "url": URL, "backoff": "-5s"}, f"{key}.backoff: must not be negative, got '-5s'"),
            ({"name": "a", "url": URL, "threshold": -1},
             f"{key}.threshold: expected a whole number >= 0, got -1"),
            ({"name": "a", "url": URL, "bogus": 1}, f"{key}.bogus: unknown key"),
            ({"name": "a", "url": URL, "ignore": {"tags": []}}, f"{key}.ignore.tags: unknown key"),
            ({"name": "a", "url": URL, "ignore": {"actions": ["pul"]}},
             f"{key}.ignore.actions: expected push, pull, mount or delete, got 'pul'"),
            ({"name": "a", "url": URL, "maxbytes": "1KiB"},
             f"{key}.maxbytes: must be at least 16384 (16KiB), got 1024"),
            ({"name": "a", "url": URL, "maxbytes": "lots"},
             f"{key}.maxbytes: expected a size such as 1GiB or 65536, got 'lots'"),
            ({"name": "a", "url": URL, "secret": "not base64!"},
             f"{key}.secret: not base64 (expected whsec_ and base64, as Standard Webhooks secrets are)"),
            ({"name": "a", "url": URL, "headers": {"X": [1]}}, f"{key}.headers.X: expected a list of strings"),
        ]
        for entry, message in cases:
            self.assertRefused(message, entry)
        with self.assertRaises(ConfigurationError) as raised:
            check({"url": URL})
        self.assertTrue(str(raised.exception).startswith(f"{key}.name: required"))
        self.assertRefused(
            "notifications.endpoints[1].name: 'a' names two endpoints",
            {"name": "a", "url": URL}, {"name": "a", "url": URL},
        )

    def test_outboxRequiredWithoutFilesystem(self) -> None:
        """
        With a driver other than filesystem there is nothing to be beside:
        the outbox directory must be named.
        """
        with self.assertRaises(ConfigurationError) as raised:
            check({"name": "a", "url": URL}, storage={"inmemory": {}})
        self.assertIn("notifications.outbox.directory: required with the inmemory", str(raised.exception))
        config = check({"name": "a", "url": URL}, storage={"inmemory": {}}, outbox={"directory": "/o"})
        self.assertEqual(config.outbox, "/o")
        # Nothing enabled, nothing journaled: no directory needed.
        config = check({"name": "a", "url": URL, "disabled": True}, storage={"inmemory": {}})
        self.assertEqual((config.outbox, config.enabled), ("", ()))

    def test_fromEnvironment(self) -> None:
        config = loadConfiguration(None, {
            "REGISTRY_NOTIFICATIONS_ENDPOINTS": f"[{{name: env, url: '{URL}', maxbytes: 64KiB}}]",
        }).notifications
        self.assertEqual([(e.name, e.url, e.maxBytes) for e in config.endpoints], [("env", URL, 65536)])
        self.assertEqual(config.outbox, "./var/registry-outbox")

    def test_secret(self) -> None:
        (endpoint,) = check({"name": "a", "url": URL, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}).endpoints
        self.assertEqual(len(endpoint.secret), 24)
        self.assertNotIn("MfKQ", repr(endpoint))


class FilterTests(TestCase):
    def event(self, action: str = "push", repository: str = "a/b", mediaType: str = "x") -> dict[str, Any]:
        return {"action": action, "target": {"repository": repository, "mediaType": mediaType}}

    def test_globs(self) -> None:
        """
        C{*} stays within a path component, C{**} crosses them.
        """
        import re

        self.assertTrue(re.fullmatch(globPattern("team/*"), "team/app"))
        self.assertFalse(re.fullmatch(globPattern("team/*"), "team/app/sub"))
        self.assertTrue(re.fullmatch(globPattern("team/**"), "team/app/sub"))
        self.assertFalse(re.fullmatch(globPattern("team.x"), "teamyx"))

    def test_accepts(self) -> None:
        endpoint = EndpointConfig(
            name="a", url=URL, ignoredActions=frozenset({"pull"}),
            ignoredMediaTypes=frozenset({"application/octet-stream"}),
            ignoredRepositories=("prod/secret",), onlyRepositories=("prod/**",),
        )
        self.assertTrue(endpoint.accepts(self.event(repository="prod/app")))
        self.assertFalse(endpoint.accepts(self.event(repository="dev/app")))
        self.assertFalse(endpoint.accepts(self.event(repository="prod/secret")))
        self.assertFalse(endpoint.accepts(self.event("pull", repository="prod/app")))
        self.assertFalse(endpoint.accepts(self.event(repository="prod/app", mediaType="application/octet-stream")))

    def test_retryDelay(self) -> None:
        """
        Retried at once up to the threshold, then backoff doubling, capped.
        """
        endpoint = EndpointConfig(name="a", url=URL, threshold=2, backoff=1.0)
        self.assertEqual([endpoint.retryDelay(n) for n in range(1, 6)], [0.0, 1.0, 2.0, 4.0, 8.0])
        self.assertEqual(endpoint.retryDelay(100), MAX_BACKOFF)
