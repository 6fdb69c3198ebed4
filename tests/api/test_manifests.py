"""
Manifests: pushing each kind by tag and by digest, serving the stored
bytes with their media type, content negotiation, validation, the size
limit, and deletes.
"""

from __future__ import annotations

import json

from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DUMMY_DIGEST,
    EMPTY_JSON,
    LAYER,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    assertError,
    chunked,
    config,
    deletingRegistry,
    descriptor,
    dumps,
    header,
    imageManifest,
    index,
    pushBlob,
    pushManifest,
    rawRequest,
    relative,
    requestBytes,
    sha256,
    sha512,
)

NAME = "manifests/repo"
LIMIT = 4 * 1024 * 1024


class ManifestTests(TestCase):
    async def setUp(self) -> None:
        self.registry = await deletingRegistry(self)
        self.config = config()
        for blob in (self.config, LAYER, EMPTY_JSON):
            await pushBlob(self, self.registry, NAME, blob)

    def put(self, reference: str, content: bytes, mediaType: str | None = OCI_MANIFEST, name: str = NAME):  # type: ignore[no-untyped-def]
        headers = {"Content-Type": [mediaType]} if mediaType else {}
        return self.registry.request("PUT", f"/v2/{name}/manifests/{reference}", data=content, headers=headers)

    def get(self, reference: str, method: str = "GET", accept: list[str] | None = None, name: str = NAME):  # type: ignore[no-untyped-def]
        headers = {"Accept": accept} if accept else {}
        return self.registry.request(method, f"/v2/{name}/manifests/{reference}", headers=headers)

    async def assertServed(self, reference: str, content: bytes, mediaType: str, accept: list[str] | None = None) -> None:
        """
        GET returns exactly C{content} as C{mediaType}; HEAD the same
        headers and no body.
        """
        for method in ("GET", "HEAD"):
            response = await self.get(reference, method, accept)
            body = await response.content()
            self.assertEqual(response.code, 200, body)
            self.assertEqual(header(response, "content-type"), mediaType)
            self.assertEqual(header(response, "docker-content-digest"), sha256(content))
            if method == "GET":
                self.assertEqual(body, content)
                self.assertEqual(response.length, len(content))
            else:
                self.assertEqual(body, b"")
                self.assertEqual(header(response, "content-length"), str(len(content)))

    async def assertCreated(self, response, content: bytes, name: str = NAME, subject: bytes | None = None) -> None:  # type: ignore[no-untyped-def]
        body = await response.content()
        self.assertEqual(response.code, 201, body)
        self.assertEqual(relative(header(response, "location")), f"/v2/{name}/manifests/{sha256(content)}")
        self.assertEqual(header(response, "docker-content-digest"), sha256(content))
        self.assertEqual(header(response, "oci-subject"), sha256(subject) if subject else None)

    async def test_ociManifestByTagAndDigest(self) -> None:
        manifest = imageManifest(self.config)
        await self.assertCreated(await self.put("v1", manifest), manifest)
        await self.assertCreated(await self.put(sha256(manifest), manifest), manifest)
        await self.assertServed("v1", manifest, OCI_MANIFEST, [OCI_MANIFEST])
        await self.assertServed(sha256(manifest), manifest, OCI_MANIFEST)

    async def test_sha512Reference(self) -> None:
        manifest = imageManifest(self.config)
        response = await self.put(sha512(manifest), manifest)
        self.assertEqual(response.code, 201)
        self.assertEqual(header(response, "docker-content-digest"), sha512(manifest))
        response = await self.get(sha512(manifest))
        self.assertEqual(await response.content(), manifest)

    async def test_dockerManifestAndList(self) -> None:
        """
        Docker schema 2 manifests and manifest lists are stored and served
        as pushed, with their media types.
        """
        manifest = imageManifest(
            self.config, configType=DOCKER_CONFIG, layerType=DOCKER_LAYER, mediaType=DOCKER_MANIFEST
        )
        await self.assertCreated(await self.put("amd64", manifest, DOCKER_MANIFEST), manifest)
        manifestList = dumps({
            "schemaVersion": 2, "mediaType": DOCKER_LIST,
            "manifests": [descriptor(DOCKER_MANIFEST, manifest,
                                     platform={"architecture": "amd64", "os": "linux"})],
        })
        await self.assertCreated(await self.put("multi", manifestList, DOCKER_LIST), manifestList)
        await self.assertServed("amd64", manifest, DOCKER_MANIFEST, [DOCKER_MANIFEST])
        # docker sends one Accept line per type.
        await self.assertServed("multi", manifestList, DOCKER_LIST, [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST])
        await self.assertServed("multi", manifestList, DOCKER_LIST, [f"{DOCKER_MANIFEST}, {DOCKER_LIST}"])
        # A client that takes no list gets the linux/amd64 image.
        response = await self.get("multi", accept=[DOCKER_MANIFEST])
        self.assertEqual(await response.content(), manifest)
        self.assertEqual(header(response, "content-type"), DOCKER_MANIFEST)
        self.assertEqual(header(response, "docker-content-digest"), sha256(manifest))

    async def test_negotiationOddIndex(self) -> None:
        """
        An index whose platform entries are not objects, or whose
        linux/amd64 child was deleted, is served as it is to a client that
        takes only single manifests (it was a 500).
        """
        child = imageManifest(self.config)
        await pushManifest(self, self.registry, NAME, sha256(child), child)
        for platform in ("linux", ["linux"], None, {"os": "linux", "architecture": "amd64"}):
            extra = {} if platform is None else {"platform": platform}
            document = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                              "manifests": [descriptor(OCI_MANIFEST, child, **extra)]})
            await pushManifest(self, self.registry, NAME, "odd", document, OCI_INDEX)
            response = await self.get("odd", accept=[OCI_MANIFEST])
            self.assertEqual(response.code, 200)
            expected = child if isinstance(platform, dict) else document
            self.assertEqual(await response.content(), expected)
        response = await self.registry.request("DELETE", f"/v2/{NAME}/manifests/{sha256(child)}")
        self.assertEqual(response.code, 202)
        response = await self.get("odd", accept=[OCI_MANIFEST])
        self.assertEqual(response.code, 200)
        self.assertEqual(header(response, "content-type"), OCI_INDEX)

    async def test_ociIndex(self) -> None:
        manifest = imageManifest(self.config)
        await self.put(sha256(manifest), manifest)
        document = index([(OCI_MANIFEST, manifest)])
        await self.assertCreated(await self.put("idx", document, OCI_INDEX), document)
        await self.assertServed("idx", document, OCI_INDEX, [OCI_INDEX, OCI_MANIFEST])
        await self.assertServed(sha256(document), document, OCI_INDEX)

    async def test_artifacts(self) -> None:
        """
        Artifacts with C{artifactType} and the empty config, with a custom
        config type, and with a subject (C{OCI-Subject} in the answer).
        """
        withType = imageManifest(EMPTY_JSON, configType=OCI_EMPTY, layers=[LAYER],
                                 layerType="application/x-thing", artifactType="application/x-thing")
        await self.assertCreated(await self.put(sha256(withType), withType), withType)
        await self.assertServed(sha256(withType), withType, OCI_MANIFEST)
        customConfig = imageManifest(self.config, configType="application/vnd.example.config+json", layers=[])
        await self.assertCreated(await self.put("custom", customConfig), customConfig)
        subject = imageManifest(self.config)
        referrer = imageManifest(EMPTY_JSON, configType=OCI_EMPTY, layers=[EMPTY_JSON], layerType=OCI_EMPTY,
                                 artifactType="application/x-sig", subject=descriptor(OCI_MANIFEST, subject))
        await self.assertCreated(await self.put(sha256(referrer), referrer), referrer, subject=subject)
        await self.assertCreated(await self.put("sig", referrer), referrer, subject=subject)

    async def test_storedMediaTypeWithoutField(self) -> None:
        """
        A manifest without C{mediaType} is served with the Content-Type it
        was pushed with.
        """
        manifest = imageManifest(self.config, mediaType=None)
        await self.assertCreated(await self.put("bare", manifest, OCI_MANIFEST), manifest)
        await self.assertServed("bare", manifest, OCI_MANIFEST)
        docker = imageManifest(self.config, mediaType=None, configType=DOCKER_CONFIG, layerType=DOCKER_LAYER)
        await self.assertCreated(await self.put("bare-docker", docker, DOCKER_MANIFEST), docker)
        await self.assertServed("bare-docker", docker, DOCKER_MANIFEST)

    async def test_storedMediaTypePerRepository(self) -> None:
        """
        The same bytes without C{mediaType}, pushed with different
        Content-Types to two repositories (or again to one), are served
        with the type each push gave.
        """
        manifest = imageManifest(self.config, mediaType=None)
        for blob in (self.config, LAYER):
            await pushBlob(self, self.registry, "manifests/other", blob)
        await pushManifest(self, self.registry, NAME, "t", manifest, DOCKER_MANIFEST)
        await self.assertServed("t", manifest, DOCKER_MANIFEST)
        await pushManifest(self, self.registry, "manifests/other", "t", manifest, OCI_MANIFEST)
        response = await self.get("t", name="manifests/other")
        self.assertEqual(header(response, "content-type"), OCI_MANIFEST)
        await self.assertServed("t", manifest, DOCKER_MANIFEST)
        await pushManifest(self, self.registry, NAME, "t", manifest, OCI_MANIFEST)
        await self.assertServed("t", manifest, OCI_MANIFEST)

    async def test_mediaTypeMismatch(self) -> None:
        manifest = imageManifest(self.config)
        await assertError(self, await self.put("x", manifest, OCI_INDEX), 400, "MANIFEST_INVALID")
        await assertError(self, await self.put("x", manifest, DOCKER_MANIFEST), 400, "MANIFEST_INVALID")
        self.assertEqual((await self.get("x")).code, 404)

    async def test_invalid(self) -> None:
        for content in (b"", b"blablabla", b"null", b"[]", b'{"schemaVersion": 1}',
                        b'{"schemaVersion": 2, "mediaType": "%s"}' % OCI_MANIFEST.encode(),
                        b"\xff\xfe{}", b"[" * 100000, b'{"a":' * 50000):
            response = await self.put("bad", content)
            await assertError(self, response, 400, "MANIFEST_INVALID")
        await assertError(self, await self.put("bad", imageManifest(self.config), "application/x-nope"),
                          400, "MANIFEST_INVALID")
        for tag in ("-bad", "a" * 129, ".x"):
            await assertError(self, await self.put(tag, imageManifest(self.config)), 400, "TAG_INVALID")

    async def test_missingBlobs(self) -> None:
        """
        A manifest whose config or layer this repository lacks is 400
        MANIFEST_BLOB_UNKNOWN, even if another repository has it.
        """
        other = config()
        await pushBlob(self, self.registry, "manifests/other", other)
        for manifest in (imageManifest(config()), imageManifest(self.config, layers=[b"absent"]),
                         imageManifest(other)):
            await assertError(self, await self.put("t", manifest), 400, "MANIFEST_BLOB_UNKNOWN")
        self.assertEqual((await self.get("t")).code, 404)

    async def test_indexWithMissingChild(self) -> None:
        child = imageManifest(self.config)
        document = index([(OCI_MANIFEST, child)])
        await assertError(self, await self.put("idx", document, OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN")
        list_ = index([(DOCKER_MANIFEST, child)], mediaType=DOCKER_LIST)
        await assertError(self, await self.put("lst", list_, DOCKER_LIST), 400, "MANIFEST_BLOB_UNKNOWN")

    async def test_digestMismatch(self) -> None:
        manifest = imageManifest(self.config)
        for reference in (sha256(b"other"), sha512(manifest + b" ")):
            await assertError(self, await self.put(reference, manifest), 400, "DIGEST_INVALID")
        self.assertEqual((await self.get(sha256(manifest))).code, 404)
        await assertError(self, await self.put("sha256:totallywrong", manifest), 400, "DIGEST_INVALID")

    async def test_sizeLimit(self) -> None:
        """
        Exactly 4 MiB is accepted; one byte more is 413, and nothing is stored.
        """
        manifest = imageManifest(self.config)
        padded = manifest + b" " * (LIMIT - len(manifest))
        await self.assertCreated(await self.put("big", padded), padded)
        response = await self.put("bigger", padded + b" ")
        await assertError(self, response, 413)
        self.assertEqual((await self.get("bigger")).code, 404)

    async def test_sizeLimitBeforeBody(self) -> None:
        """
        A declared length over the limit is refused with 413 before any of
        the body is sent.
        """
        request = requestBytes(b"PUT", f"/v2/{NAME}/manifests/huge".encode(),
                               [(b"Content-Type", OCI_MANIFEST.encode()), (b"Content-Length", b"%d" % (LIMIT + 1))])
        response = await rawRequest(self.registry, request)
        self.assertEqual(response.code, 413)

    async def test_sizeLimitChunked(self) -> None:
        """
        A chunked body is refused with 413 once it passes the limit, while
        the client is still sending (no terminating chunk is ever sent).
        """
        head = requestBytes(b"PUT", f"/v2/{NAME}/manifests/huge".encode(),
                            [(b"Content-Type", OCI_MANIFEST.encode()), (b"Transfer-Encoding", b"chunked")])
        body = b" " * (LIMIT + 1)
        response = await rawRequest(self.registry, [head, b"%x\r\n%s\r\n" % (len(body), body)])
        self.assertEqual(response.code, 413)
        # Under the limit, chunked is fine.
        manifest = imageManifest(self.config)
        response = await rawRequest(self.registry, requestBytes(
            b"PUT", f"/v2/{NAME}/manifests/chunked".encode(),
            [(b"Content-Type", OCI_MANIFEST.encode()), (b"Transfer-Encoding", b"chunked")],
            chunked(manifest[:10], manifest[10:]),
        ))
        self.assertEqual(response.code, 201)

    sizeLimitBeforeBody_timeout = sizeLimitChunked_timeout = 30

    async def test_retag(self) -> None:
        first, second = imageManifest(self.config), imageManifest(self.config, layers=[])
        await pushManifest(self, self.registry, NAME, "t", first)
        await pushManifest(self, self.registry, NAME, "t", second)
        await self.assertServed("t", second, OCI_MANIFEST)
        await self.assertServed(sha256(first), first, OCI_MANIFEST)

    async def test_otherRepositories(self) -> None:
        manifest = imageManifest(self.config)
        await pushManifest(self, self.registry, NAME, "t", manifest)
        for reference in ("t", sha256(manifest)):
            await assertError(self, await self.get(reference, name="manifests/other"), 404, "MANIFEST_UNKNOWN")
        await assertError(self, await self.get(DUMMY_DIGEST), 404, "MANIFEST_UNKNOWN")
        await assertError(self, await self.get("nope"), 404, "MANIFEST_UNKNOWN")

    async def test_deletes(self) -> None:
        """
        DELETE by tag removes only the tag; DELETE by digest is 202 and
        removes the manifest with its tags.
        """
        manifest = imageManifest(self.config)
        await pushManifest(self, self.registry, NAME, "a", manifest)
        await pushManifest(self, self.registry, NAME, "b", manifest)
        response = await self.registry.request("DELETE", f"/v2/{NAME}/manifests/a")
        self.assertEqual(response.code, 202)
        await assertError(self, await self.get("a"), 404, "MANIFEST_UNKNOWN")
        await self.assertServed("b", manifest, OCI_MANIFEST)
        await self.assertServed(sha256(manifest), manifest, OCI_MANIFEST)
        await assertError(self, await self.registry.request("DELETE", f"/v2/{NAME}/manifests/a"),
                          404, "MANIFEST_UNKNOWN")
        response = await self.registry.request("DELETE", f"/v2/{NAME}/manifests/{sha256(manifest)}")
        self.assertEqual(response.code, 202)
        for reference in ("b", sha256(manifest)):
            await assertError(self, await self.get(reference), 404, "MANIFEST_UNKNOWN")
        response = await self.registry.request("GET", f"/v2/{NAME}/tags/list")
        self.assertEqual((await response.json())["tags"], [])
        # Pushing it again brings it back.
        await pushManifest(self, self.registry, NAME, "c", manifest)
        await self.assertServed("c", manifest, OCI_MANIFEST)
        self.assertEqual(json.loads(manifest)["schemaVersion"], 2)
