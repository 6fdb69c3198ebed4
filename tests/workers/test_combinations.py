"""
C{http.workers}: its values, and what cannot run in several processes
(L{txregistry.workers.combinations}).
"""

from __future__ import annotations

import os
from typing import Any

from twisted.trial.unittest import TestCase

from txregistry.config import ConfigurationError, checkConfiguration, loadConfiguration


def _filesystem(**storage: Any) -> dict[str, Any]:
    return {"filesystem": {"rootdirectory": "/tmp/unused"}, **storage}


class WorkersTests(TestCase):
    def test_defaultIsTheCPUs(self) -> None:
        """
        Without C{http.workers}, a worker per CPU, each caching tags for
        the default C{storage.cache.tagttl} as a lone process does (a
        worker that changes a tag has the others forget it).
        """
        config = checkConfiguration({"storage": _filesystem()})
        self.assertEqual(config.http.workers, max(1, os.cpu_count() or 1))
        self.assertEqual(config.storage.tagTTL, 1.0)

    def test_values(self) -> None:
        """
        A positive count, from the file or from C{REGISTRY_HTTP_WORKERS};
        anything else is refused naming the key.
        """
        config = checkConfiguration({"storage": _filesystem(), "http": {"workers": 3}})
        self.assertEqual(config.http.workers, 3)
        self.assertEqual(loadConfiguration(None, {"REGISTRY_HTTP_WORKERS": "1"}).http.workers, 1)
        for value in (0, -1, "two", 1.5, True):
            with self.assertRaises(ConfigurationError) as raised:
                checkConfiguration({"storage": _filesystem(), "http": {"workers": value}})
            self.assertTrue(str(raised.exception).startswith("http.workers: expected a positive number"))

    def test_oneWorkerKeepsTheTagCache(self) -> None:
        """
        C{http.workers: 1} is today's single process, tag cache included.
        """
        config = checkConfiguration({"storage": _filesystem(), "http": {"workers": 1}})
        self.assertEqual((config.http.workers, config.storage.tagTTL), (1, 1.0))

    def assertRefused(self, document: dict[str, Any], message: str) -> None:
        with self.assertRaises(ConfigurationError) as raised:
            checkConfiguration({**document, "http": {**document.get("http", {}), "workers": 2}})
        self.assertEqual(str(raised.exception), message)

    def test_refused(self) -> None:
        """
        An explicit C{http.workers} above 1 with what needs one process
        fails the start with one line naming both.
        """
        self.assertRefused({"storage": {"inmemory": {}}},
                           "http.workers: 2 cannot be combined with storage.inmemory: each worker"
                           " would hold its own registry in memory")
        self.assertRefused({"storage": _filesystem(), "ui": {"enabled": True},
                            "auth": {"silly": {"realm": "r", "service": "s"}}},
                           "http.workers: 2 cannot be combined with ui.enabled: UI logins are kept"
                           " in one process's memory")

    def test_allowed(self) -> None:
        """
        Any tag TTL, and the UI without logins, run with workers.
        """
        for ttl, seconds in (("0s", 0.0), ("5s", 5.0)):
            config = checkConfiguration({"storage": _filesystem(cache={"tagttl": ttl}),
                                         "http": {"workers": 2}, "ui": {"enabled": True}})
            self.assertEqual((config.http.workers, config.storage.tagTTL), (2, seconds))

    def test_defaultFallsBackToOne(self) -> None:
        """
        Without C{http.workers}, what needs one process gets one, and the
        reason is kept for the start's log.
        """
        config = checkConfiguration({"storage": {"inmemory": {}}})
        self.assertEqual(config.http.workers, 1)
        if (os.cpu_count() or 1) > 1:
            self.assertIn("storage.inmemory", config.http.oneWorkerBecause)
