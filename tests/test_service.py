"""
The composition root (L{txregistry.service}): which layers a
configuration gives a registry, in which order.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from txregistry.config import checkConfiguration
from txregistry.errors import Unsupported
from txregistry.registry.digest import Digest
from txregistry.registry.namespace import StorageNamespace
from txregistry.registry.switches import Switch, deletesDisabled, readOnly
from txregistry.service import layers, makeNamespace
from txregistry.storage.inmemory import InMemoryDriver


def _config(**storage: object) -> object:
    return checkConfiguration({"storage": {"inmemory": {}, **storage}})


class CompositionTests(TestCase):
    def test_defaultRefusesDeletes(self) -> None:
        """
        Out of the box deletes are refused (the reference's default) and
        nothing else is layered.
        """
        self.assertEqual(layers(_config()), [deletesDisabled])  # type: ignore[arg-type]

    def test_deletesEnabled(self) -> None:
        self.assertEqual(layers(_config(delete={"enabled": True})), [])  # type: ignore[arg-type]

    def test_readOnlyOutermost(self) -> None:
        """
        Read-only mode wraps everything else: its refusal is the one a
        client sees.
        """
        config = _config(maintenance={"readonly": {"enabled": True}})
        self.assertEqual(layers(config), [deletesDisabled, readOnly])  # type: ignore[arg-type]
        namespace = makeNamespace(config, InMemoryDriver(), Clock())  # type: ignore[arg-type]
        self.assertIsInstance(namespace, Switch)
        self.assertIsInstance(namespace.inner.inner, StorageNamespace)  # type: ignore[attr-defined]

    async def test_composedNamespaceRefuses(self) -> None:
        config = _config(maintenance={"readonly": {"enabled": True}}, delete={"enabled": True})
        namespace = makeNamespace(config, InMemoryDriver(), Clock())  # type: ignore[arg-type]
        error = await self.assertFailure(
            namespace.repository("a").blobs().delete(Digest.of(b"x")), Unsupported
        )
        self.assertEqual(error.message, "the registry is in read-only mode")


class NotificationsCompositionTests(TestCase):
    def test_notificationsInnermost(self) -> None:
        """
        With an endpoint, the notifications layer is the innermost: only
        what a switch let through reaches it (and so makes an event).
        """
        from txregistry.notifications.layer import NotifyingNamespace
        from txregistry.service import RegistryService

        config = checkConfiguration({
            "storage": {"inmemory": {}, "maintenance": {"readonly": {"enabled": True}}},
            "http": {"addr": "127.0.0.1:0"},
            "notifications": {
                "endpoints": [{"name": "a", "url": "http://127.0.0.1:9/hook"}],
                "outbox": {"directory": self.mktemp()},
            },
        })
        service = RegistryService(config, Clock())  # type: ignore[arg-type]
        self.assertIsNotNone(service.notifier)
        namespace = service.namespace
        self.assertIsInstance(namespace, Switch)
        self.assertIsInstance(namespace.inner.inner, NotifyingNamespace)  # type: ignore[attr-defined]
        self.assertIsInstance(namespace.inner.inner.inner, StorageNamespace)  # type: ignore[attr-defined]

    def test_notificationsNeedTheService(self) -> None:
        """
        A namespace made without the notifications service for a
        configuration with endpoints is refused, not silently quiet.
        """
        config = checkConfiguration({
            "storage": {"inmemory": {}},
            "notifications": {
                "endpoints": [{"name": "a", "url": "http://127.0.0.1:9/hook"}],
                "outbox": {"directory": "/nonexistent"},
            },
        })
        self.assertRaises(ValueError, makeNamespace, config, InMemoryDriver(), Clock())


class UploadSecretStartTests(TestCase):
    """
    Instances that share storage but not http.secret are told at start.
    """

    def test_otherSecretStopsTheStart(self) -> None:
        """
        A second registry on the first one's storage with another
        http.secret stops at start, saying why in one line; one with the
        same secret serves.
        """
        import os
        import time

        from tests.support import RegistryProcess
        from txregistry.registry import layout

        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        storage = os.path.join(directory, "storage")
        env = {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": storage}
        first = RegistryProcess(directory, env=dict(env, REGISTRY_HTTP_SECRET="one"))
        self.addCleanup(first.stop)
        record = os.path.join(storage, layout.HTTP_SECRET_CHECK.lstrip("/"))
        deadline = time.monotonic() + 30
        while not os.path.exists(record) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertTrue(os.path.exists(record))
        same = RegistryProcess(directory, env=dict(env, REGISTRY_HTTP_SECRET="one"))
        self.addCleanup(same.stop)
        other = os.path.join(directory, "other")
        os.makedirs(other)
        try:
            second = RegistryProcess(other, env=dict(env, REGISTRY_HTTP_SECRET="two"))
        except RuntimeError:
            log = open(os.path.join(other, "registry.log")).read()
        else:
            self.addCleanup(second.stop)
            second.process.wait(30)
            log = second.log()
        lines = [line for line in log.splitlines() if "txregistry: http.secret: " in line]
        self.assertEqual(len(lines), 1, log)
        self.assertIn(layout.HTTP_SECRET_CHECK, lines[0])
        self.assertIsNone(same.process.poll())
