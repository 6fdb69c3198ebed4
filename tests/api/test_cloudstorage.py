"""
The distribution conformance tests' push and pull workflows once more,
with the registry's content in Azure Blob Storage (azurite) and in GCS
(gcp-storage-emulator), which the tests start: the API behaves the same
on those stores as on a disk (as L{tests.api.test_s3storage} checks for
S3, with the whole conformance suite).  And Azure's blob GETs redirect to
a SAS URL.
"""

from __future__ import annotations

from typing import Any

import treq
from twisted.trial.unittest import TestCase

from tests.api import test_conformance_pull, test_conformance_push
from tests.api.helpers import deletingRegistry, header, pushBlob
from tests.storage.emulators import Azurite, GCSEmulator, emulator
from tests.support import InProcessRegistry, startRegistry

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


class RedirectOnAzureTests(TestCase):
    async def test_redirectToSAS(self) -> None:
        """
        With C{storage.redirect} (the default), a blob GET is a 307 to a
        SAS URL that gives the blob's bytes to a client without the key.
        """
        parameters = emulator(Azurite).parameters(self)
        registry = await startRegistry(self, {"storage": {"azure": parameters}})
        digest = await pushBlob(self, registry, "r/x", b"content on azure")
        response = await registry.request("GET", f"/v2/r/x/blobs/{digest}", allow_redirects=False)
        self.assertEqual(response.code, 307)
        location = header(response, "location")
        assert location is not None
        self.assertTrue(location.startswith(parameters["serviceurl"]), location)
        direct = await treq.get(location, persistent=False)
        self.assertEqual((direct.code, await direct.content()), (200, b"content on azure"))
