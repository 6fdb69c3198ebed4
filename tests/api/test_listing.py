"""
Listings: C{/v2/<name>/tags/list}, C{/v2/_catalog} and the referrers
index, with pagination and filtering.
"""

from __future__ import annotations

import random

from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    DUMMY_DIGEST,
    EMPTY_JSON,
    LAYER,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    assertError,
    config,
    deletingRegistry,
    descriptor,
    header,
    imageManifest,
    index,
    pushBlob,
    pushImage,
    pushManifest,
    sha256,
)
from txregistry.api.listing import MAX_PAGE

NAME = "listing/repo"
TAGS = ["0", "1.0", "A", "Z_z", "a", "latest", "v1", "v1.1", "v2", "z"]


class TagsTests(TestCase):
    async def setUp(self) -> None:
        self.registry = await deletingRegistry(self)
        configContent = config()
        await pushBlob(self, self.registry, NAME, configContent)
        await pushBlob(self, self.registry, NAME, LAYER)
        manifest = imageManifest(configContent)
        for tag in random.sample(TAGS, len(TAGS)):
            await pushManifest(self, self.registry, NAME, tag, manifest)

    async def tags(self, query: str = "", name: str = NAME):  # type: ignore[no-untyped-def]
        response = await self.registry.request("GET", f"/v2/{name}/tags/list{query}")
        body = await response.json()
        self.assertEqual(response.code, 200, body)
        self.assertEqual(header(response, "content-type"), "application/json")
        self.assertEqual(body["name"], name)
        return response, body["tags"]

    async def test_sorted(self) -> None:
        response, tags = await self.tags()
        self.assertEqual(tags, sorted(TAGS))
        self.assertIsNone(header(response, "link"))

    async def test_paginated(self) -> None:
        """
        Following C{Link} with C{n=3} walks every tag once, in order.
        """
        seen: list[str] = []
        query = "?n=3"
        while True:
            response, tags = await self.tags(query)
            self.assertLessEqual(len(tags), 3)
            seen += tags
            link = header(response, "link")
            if link is None:
                break
            self.assertEqual(link, f'</v2/{NAME}/tags/list?n=3&last={tags[-1]}>; rel="next"')
            self.assertEqual(len(tags), 3)
            query = link[len(f"</v2/{NAME}/tags/list"):link.index(">")]
        self.assertEqual(seen, sorted(TAGS))

    async def test_last(self) -> None:
        _, tags = await self.tags("?last=latest")
        self.assertEqual(tags, ["v1", "v1.1", "v2", "z"])
        _, tags = await self.tags("?last=b&n=2")
        self.assertEqual(tags, ["latest", "v1"])
        _, tags = await self.tags("?last=zzz")
        self.assertEqual(tags, [])

    async def test_zero(self) -> None:
        """
        C{n=0} is an empty list without C{Link}.
        """
        response, tags = await self.tags("?n=0")
        self.assertEqual(tags, [])
        self.assertIsNone(header(response, "link"))

    async def test_hugeN(self) -> None:
        """
        A huge C{n} is capped, not refused.
        """
        for n in ("100000", "99999999999999999999999999", str(MAX_PAGE)):
            _, tags = await self.tags(f"?n={n}")
            self.assertEqual(tags, sorted(TAGS))

    async def test_badN(self) -> None:
        for n in ("-1", "abc", "1.5", "", " 1", "1e3", "%D9%A3", "%C2%B2", "0x10", "+1", "1%0A"):
            response = await self.registry.request("GET", f"/v2/{NAME}/tags/list?n={n}")
            await assertError(self, response, 400, "PAGINATION_NUMBER_INVALID")

    async def test_unknownRepository(self) -> None:
        for name in ("listing/nope", "listing"):
            response = await self.registry.request("GET", f"/v2/{name}/tags/list")
            await assertError(self, response, 404, "NAME_UNKNOWN")

    async def test_uploadsOnlyRepository(self) -> None:
        """
        An upload that was started makes no repository: its tags list is
        404 C{NAME_UNKNOWN}, as the reference answers.
        """
        response = await self.registry.request("POST", "/v2/listing/uploading/blobs/uploads/")
        self.assertEqual(response.code, 202)
        response = await self.registry.request("GET", "/v2/listing/uploading/tags/list")
        await assertError(self, response, 404, "NAME_UNKNOWN")


class CatalogTests(TestCase):
    async def test_catalog(self) -> None:
        registry = await deletingRegistry(self)
        names = ["b", "a/b/c", "a", "z9", "a-b", "a/b"]
        for name in names:
            await pushImage(self, registry, name, "latest")
        # A repository with only blobs holds no images.
        await pushBlob(self, registry, "blobsonly", b"x")
        response = await registry.request("GET", "/v2/_catalog")
        self.assertEqual(response.code, 200)
        self.assertEqual((await response.json())["repositories"], sorted(names))
        response = await registry.request("GET", "/v2/_catalog?n=2")
        self.assertEqual((await response.json())["repositories"], ["a", "a-b"])
        self.assertEqual(header(response, "link"), '</v2/_catalog?n=2&last=a-b>; rel="next"')
        response = await registry.request("GET", "/v2/_catalog?n=2&last=a-b")
        self.assertEqual((await response.json())["repositories"], ["a/b", "a/b/c"])
        response = await registry.request("GET", "/v2/_catalog?n=99999999999999999999")
        self.assertEqual((await response.json())["repositories"], sorted(names))
        response = await registry.request("GET", "/v2/_catalog?n=0")
        self.assertEqual((await response.json())["repositories"], [])
        self.assertIsNone(header(response, "link"))
        await assertError(self, await registry.request("GET", "/v2/_catalog?n=x"), 400, "PAGINATION_NUMBER_INVALID")

    async def test_empty(self) -> None:
        registry = await deletingRegistry(self)
        response = await registry.request("GET", "/v2/_catalog")
        self.assertEqual(await response.json(), {"repositories": []})


class ReferrersTests(TestCase):
    async def setUp(self) -> None:
        self.registry = await deletingRegistry(self)
        self.subject, _ = await pushImage(self, self.registry, NAME, "latest")
        await pushBlob(self, self.registry, NAME, EMPTY_JSON)

    def artifact(self, artifactType: str | None, annotations: dict[str, str] | None = None,
                 subject: bytes | None = None, configType: str = OCI_EMPTY) -> bytes:
        extra = {"subject": descriptor(OCI_MANIFEST, subject or self.subject)}
        if artifactType:
            extra["artifactType"] = artifactType
        if annotations:
            extra["annotations"] = annotations
        return imageManifest(EMPTY_JSON, configType=configType, layers=[EMPTY_JSON], layerType=OCI_EMPTY, **extra)

    async def referrers(self, digest: str, query: str = "", name: str = NAME):  # type: ignore[no-untyped-def]
        response = await self.registry.request("GET", f"/v2/{name}/referrers/{digest}{query}")
        body = await response.json()
        self.assertEqual(response.code, 200, body)
        self.assertEqual(header(response, "content-type"), OCI_INDEX)
        self.assertEqual(body["schemaVersion"], 2)
        self.assertEqual(body["mediaType"], OCI_INDEX)
        return response, body["manifests"]

    async def test_index(self) -> None:
        """
        The index lists each manifest whose subject is the digest, with
        mediaType, size, artifactType (or the config type) and annotations.
        """
        sig = self.artifact("application/x-sig", {"k": "v"})
        sbom = self.artifact(None, configType="application/x-sbom")
        idx = index([(OCI_MANIFEST, self.subject)], artifactType="application/x-idx",
                    subject=descriptor(OCI_MANIFEST, self.subject))
        await pushManifest(self, self.registry, NAME, sha256(sig), sig)
        await pushManifest(self, self.registry, NAME, "sbom", sbom)
        await pushManifest(self, self.registry, NAME, sha256(idx), idx, OCI_INDEX)
        _, manifests = await self.referrers(sha256(self.subject))
        expected = [
            {"mediaType": OCI_MANIFEST, "digest": sha256(sig), "size": len(sig),
             "artifactType": "application/x-sig", "annotations": {"k": "v"}},
            {"mediaType": OCI_MANIFEST, "digest": sha256(sbom), "size": len(sbom),
             "artifactType": "application/x-sbom"},
            {"mediaType": OCI_INDEX, "digest": sha256(idx), "size": len(idx),
             "artifactType": "application/x-idx"},
        ]
        self.assertEqual(sorted(manifests, key=lambda d: d["digest"]),
                         sorted(expected, key=lambda d: d["digest"]))

    async def test_filter(self) -> None:
        a1, a2 = self.artifact("application/a", {"n": "1"}), self.artifact("application/a", {"n": "2"})
        b = self.artifact("application/b")
        for content in (a1, a2, b):
            await pushManifest(self, self.registry, NAME, sha256(content), content)
        response, manifests = await self.referrers(sha256(self.subject), "?artifactType=application/a")
        self.assertEqual(header(response, "oci-filters-applied"), "artifactType")
        self.assertEqual({m["digest"] for m in manifests}, {sha256(a1), sha256(a2)})
        response, manifests = await self.referrers(sha256(self.subject), "?artifactType=application/none")
        self.assertEqual(header(response, "oci-filters-applied"), "artifactType")
        self.assertEqual(manifests, [])
        response, manifests = await self.referrers(sha256(self.subject))
        self.assertIsNone(header(response, "oci-filters-applied"))
        self.assertEqual(len(manifests), 3)

    async def test_unknownDigest(self) -> None:
        _, manifests = await self.referrers(DUMMY_DIGEST)
        self.assertEqual(manifests, [])
        _, manifests = await self.referrers(DUMMY_DIGEST, name="listing/unknown-repo")
        self.assertEqual(manifests, [])
        await assertError(self, await self.registry.request("GET", f"/v2/{NAME}/referrers/sha256:x"),
                          400, "DIGEST_INVALID")

    async def test_updatedOnPutAndDelete(self) -> None:
        """
        A referrer appears when pushed, by tag or digest, and goes when
        deleted; other repositories never see it.
        """
        sig = self.artifact("application/x-sig")
        _, manifests = await self.referrers(sha256(self.subject))
        self.assertEqual(manifests, [])
        await pushManifest(self, self.registry, NAME, "sig", sig)
        _, manifests = await self.referrers(sha256(self.subject))
        self.assertEqual([m["digest"] for m in manifests], [sha256(sig)])
        _, manifests = await self.referrers(sha256(self.subject), name="listing/other")
        self.assertEqual(manifests, [])
        # Deleting the tag leaves the manifest, so the referrer stays.
        response = await self.registry.request("DELETE", f"/v2/{NAME}/manifests/sig")
        self.assertEqual(response.code, 202)
        _, manifests = await self.referrers(sha256(self.subject))
        self.assertEqual(len(manifests), 1)
        response = await self.registry.request("DELETE", f"/v2/{NAME}/manifests/{sha256(sig)}")
        self.assertEqual(response.code, 202)
        _, manifests = await self.referrers(sha256(self.subject))
        self.assertEqual(manifests, [])
        # Deleting the subject does not touch its referrers.
        await pushManifest(self, self.registry, NAME, sha256(sig), sig)
        response = await self.registry.request("DELETE", f"/v2/{NAME}/manifests/{sha256(self.subject)}")
        self.assertEqual(response.code, 202)
        _, manifests = await self.referrers(sha256(self.subject))
        self.assertEqual([m["digest"] for m in manifests], [sha256(sig)])
