"""
The distribution conformance tests' push and pull workflows once more,
with the registry's content in Azure Blob Storage (azurite) and in GCS
(gcp-storage-emulator), which the tests start: the API behaves the same
on those stores as on a disk (as L{tests.api.test_s3storage} checks for
S3, with the whole conformance suite).
"""

from __future__ import annotations

from typing import Any

from tests.api import test_conformance_pull, test_conformance_push
from tests.api.helpers import deletingRegistry
from tests.storage.emulators import Azurite, GCSEmulator, emulator
from tests.support import InProcessRegistry

MODULES = [test_conformance_pull, test_conformance_push]


class _OnStore:
    """
    Makes the conformance module's registries use C{driver}, on a fresh
    prefix of its emulator, for one test.
    """

    driver = ""
    kind: type[Any]

    def setUp(self) -> None:
        async def deletingOnStore(testCase: Any, **document: Any) -> InProcessRegistry:
            parameters = emulator(self.kind).parameters(testCase)
            document.setdefault(
                "storage", {self.driver: parameters, "redirect": {"disable": True}}
            )
            return await deletingRegistry(testCase, **document)

        for module in MODULES:
            self.patch(module, "deletingRegistry", deletingOnStore)  # type: ignore[attr-defined]
        super().setUp()  # type: ignore[misc]


class _OnAzure(_OnStore):
    driver = "azure"
    kind = Azurite


class _OnGCS(_OnStore):
    driver = "gcs"
    kind = GCSEmulator


class PullOnAzureTests(_OnAzure, test_conformance_pull.PullTests):
    pass


class PushOnAzureTests(_OnAzure, test_conformance_push.PushTests):
    pass


class PullOnGCSTests(_OnGCS, test_conformance_pull.PullTests):
    pass


class PushOnGCSTests(_OnGCS, test_conformance_push.PushTests):
    pass
