"""
Repository names: the spec's grammar and length limit, answered with
400 NAME_INVALID on every route, never a 5xx, and never a storage path
outside the registry's root.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    DUMMY_DIGEST,
    LAYER,
    assertError,
    checkEnvelope,
    deletingRegistry,
    pushBlob,
    pushImage,
    rawRequest,
    requestBytes,
    sha256,
)
from txregistry.registry.names import MAX_NAME_LENGTH, isValidName

VALID = [
    "a", "a0", "0a", "library/ubuntu", "a.b", "a_b", "a__b", "a-b", "a---b", "a/b/c/d",
    "my-org/my.repo_name__x", "x" * MAX_NAME_LENGTH,
]
INVALID = [
    "", "A", "a/B", "-a", "a-", ".a", "a.", "_a", "a_", "a___b", "a..b", "a._b", "a/", "/a",
    "a//b", "..", "a/..", "../a", "a/../b", ".", "a/./b", "a b", "a:b", "a@b", "é",
    "a\x00b", "a\nb", "x" * (MAX_NAME_LENGTH + 1),
]

#: What a client can put where a name goes, percent-encoded or not.
INVALID_ON_THE_WIRE = [
    "A", "a..b", "-a", "a//b", "..", "a/..", "a/../b", "%2e%2e", "a/%2e%2e",
    "a%2F..%2Fb", "%2E%2E%2F%2E%2E", "a%2F%2Fb", "%2Fetc", "a%00b", "a%0Ab", "a%20b",
    "%C3%A9", "x" * (MAX_NAME_LENGTH + 1), "x/" * 200 + "x",
]


def routes(name: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/v2/{name}/tags/list"),
        ("GET", f"/v2/{name}/referrers/{DUMMY_DIGEST}"),
        ("GET", f"/v2/{name}/manifests/latest"),
        ("HEAD", f"/v2/{name}/manifests/latest"),
        ("PUT", f"/v2/{name}/manifests/latest"),
        ("DELETE", f"/v2/{name}/manifests/{DUMMY_DIGEST}"),
        ("GET", f"/v2/{name}/blobs/{DUMMY_DIGEST}"),
        ("HEAD", f"/v2/{name}/blobs/{DUMMY_DIGEST}"),
        ("DELETE", f"/v2/{name}/blobs/{DUMMY_DIGEST}"),
        ("POST", f"/v2/{name}/blobs/uploads/"),
        ("POST", f"/v2/{name}/blobs/uploads/?digest={sha256(b'x')}"),
        ("POST", f"/v2/{name}/blobs/uploads/?mount={DUMMY_DIGEST}&from=a"),
        ("GET", f"/v2/{name}/blobs/uploads/0a4ed2fa-77d5-4d68-a4f8-0b7fb0d7c4a2"),
        ("PATCH", f"/v2/{name}/blobs/uploads/0a4ed2fa-77d5-4d68-a4f8-0b7fb0d7c4a2"),
        ("PUT", f"/v2/{name}/blobs/uploads/0a4ed2fa-77d5-4d68-a4f8-0b7fb0d7c4a2?digest={sha256(b'x')}"),
        ("DELETE", f"/v2/{name}/blobs/uploads/0a4ed2fa-77d5-4d68-a4f8-0b7fb0d7c4a2"),
    ]


class NameGrammarTests(TestCase):
    def test_valid(self) -> None:
        for name in VALID:
            self.assertTrue(isValidName(name), name)

    def test_invalid(self) -> None:
        for name in INVALID:
            self.assertFalse(isValidName(name), name)


class NameRouteTests(TestCase):
    async def test_validNamesWork(self) -> None:
        """
        Every valid form, up to the length limit, takes a push and lists.
        """
        registry = await deletingRegistry(self)
        for name in ("a", "a.b_c__d-e---f/g", "x" * MAX_NAME_LENGTH, "a/b/c/d/e"):
            await pushImage(self, registry, name, "latest")
            response = await registry.request("GET", f"/v2/{name}/tags/list")
            self.assertEqual((await response.json())["tags"], ["latest"])

    async def test_invalidNamesEveryRoute(self) -> None:
        """
        Invalid names, percent-encoded or not, are 400 NAME_INVALID (or a
        404 when the path is not a route at all) with the error envelope;
        never a 5xx.
        """
        registry = await deletingRegistry(self)
        for name in INVALID_ON_THE_WIRE:
            for method, path in routes(name):
                response = await rawRequest(
                    registry, requestBytes(method.encode(), path.encode(), body=b"x"), head=method == "HEAD"
                )
                self.assertLess(response.code, 500, (method, path))
                self.assertIn(response.code, (400, 404, 405), (method, path, response.raw[:300]))
                if method != "HEAD":
                    document = checkEnvelope(self, response.body, None, response.header("content-type"))
                    if response.code == 400:
                        self.assertEqual(document["errors"][0]["code"], "NAME_INVALID", (method, path))

    async def test_tooLongName(self) -> None:
        registry = await deletingRegistry(self)
        name = "x" * (MAX_NAME_LENGTH + 1)
        await assertError(
            self, await registry.request("POST", f"/v2/{name}/blobs/uploads/"), 400, "NAME_INVALID"
        )
        name = "/".join(["abcdefghij"] * 30)
        await assertError(
            self, await registry.request("GET", f"/v2/{name}/tags/list"), 400, "NAME_INVALID"
        )

    async def test_nothingOutsideStorage(self) -> None:
        """
        Names and references that climb out (C{..}, C{%2e%2e}, C{%2F})
        write nothing outside the filesystem root, and what they could
        have named stays untouched.
        """
        root = self.mktemp()
        os.makedirs(root)
        outside = os.path.join(os.path.dirname(os.path.abspath(root)), "outside")
        registry = await deletingRegistry(
            self, storage={"filesystem": {"rootdirectory": root}}
        )
        await pushBlob(self, registry, "victim", LAYER)
        before = sorted(os.walk(os.path.dirname(os.path.abspath(root))))
        for name in ("..", "%2e%2e", "a%2F..%2F..%2F..", "a/../../..", "a%2F%2F..", "victim%2F..%2F..",
                     "%2E%2E/%2E%2E/outside"):
            for method, path in routes(name):
                response = await rawRequest(registry, requestBytes(method.encode(), path.encode(), body=b"{}"))
                self.assertLess(response.code, 500, (method, path))
        for reference in ("..", "%2e%2e", "..%2F..%2F..", "%2E%2E%2Fx"):
            for method in ("GET", "PUT", "DELETE"):
                path = f"/v2/victim/manifests/{reference}"
                response = await rawRequest(registry, requestBytes(method.encode(), path.encode(), body=b"{}"))
                self.assertLess(response.code, 500, (method, path))
                path = f"/v2/victim/blobs/uploads/{reference}"
                response = await rawRequest(registry, requestBytes(method.encode(), path.encode(), body=b"{}"))
                self.assertLess(response.code, 500, (method, path))
        self.assertEqual(sorted(os.walk(os.path.dirname(os.path.abspath(root)))), before)
        self.assertFalse(os.path.exists(outside))
        response = await registry.request("GET", f"/v2/victim/blobs/{sha256(LAYER)}")
        self.assertEqual(await response.content(), LAYER)
