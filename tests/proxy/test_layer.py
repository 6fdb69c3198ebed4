"""
The pull-through cache against a real upstream registry, both in this
process: what a client pulling through it sees, and what the upstream is
asked.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.api.helpers import assertError, header, pushBlob, pushManifest, sha256
from tests.client.test_auth import htpasswd
from tests.proxy.helpers import pushLayeredImage, settle, startCache, startUpstream, stopUpstream
from txregistry.registry.digest import Digest

LAYER = os.urandom(256 * 1024)


class PrefixTests(TestCase):
    """
    Upstreams under prefixes beside local repositories.
    """

    async def setUp(self) -> None:
        self.upstream, self.seen = await startUpstream(self)
        self.manifest, self.digest = await pushLayeredImage(self, self.upstream, "library/alpine", "3", LAYER)
        self.cache = await startCache(self, {"upstreams": [
            {"prefix": "docker.io", "url": self.upstream.url},
            {"prefix": "mirror.internal/team", "url": self.upstream.url},
        ]})

    async def get(self, path: str, **kwargs: object) -> tuple[int, bytes, object]:
        response = await self.cache.request("GET", path, **kwargs)
        return response.code, await response.content(), response

    async def test_pullThrough(self) -> None:
        """
        A manifest by tag and its blob come from the upstream's repository
        below the prefix; the second pull is the cache's alone.
        """
        code, body, response = await self.get("/v2/docker.io/library/alpine/manifests/3")
        self.assertEqual((code, body), (200, self.manifest))
        self.assertEqual(header(response, "docker-content-digest"), self.digest)
        code, body, _ = await self.get(f"/v2/docker.io/library/alpine/blobs/{sha256(LAYER)}")
        self.assertEqual((code, body), (200, LAYER))
        gets = self.seen.count("GET", "/blobs/")
        code, body, _ = await self.get(f"/v2/docker.io/library/alpine/blobs/{sha256(LAYER)}")
        self.assertEqual((code, body), (200, LAYER))
        code, body, _ = await self.get(f"/v2/docker.io/library/alpine/manifests/{self.digest}")
        self.assertEqual((code, body), (200, self.manifest))
        self.assertEqual(self.seen.count("GET", "/blobs/"), gets)
        self.assertEqual(self.seen.count("GET", f"/manifests/{self.digest}"), 1)

    async def test_dockerHubLibrary(self) -> None:
        """
        Under the docker.io prefix a bare name is C{library/<name>}, and
        one cache entry serves both spellings.
        """
        code, body, _ = await self.get("/v2/docker.io/alpine/manifests/3")
        self.assertEqual((code, body), (200, self.manifest))
        code, body, _ = await self.get(f"/v2/docker.io/library/alpine/manifests/{self.digest}")
        self.assertEqual((code, body), (200, self.manifest))
        self.assertEqual(self.seen.count("GET", f"/manifests/{self.digest}"), 1)

    async def test_containerdNamespace(self) -> None:
        """
        containerd's mirror request (C{?ns=docker.io}) is for the docker.io
        upstream.
        """
        code, body, _ = await self.get("/v2/library/alpine/manifests/3?ns=docker.io")
        self.assertEqual((code, body), (200, self.manifest))
        code, body, _ = await self.get(f"/v2/library/alpine/blobs/{sha256(LAYER)}?ns=docker.io")
        self.assertEqual((code, body), (200, LAYER))

    async def test_otherPrefixNotDockerHub(self) -> None:
        """
        Below another prefix a name is the upstream's as it is: no
        C{library/}.
        """
        code, _, _ = await self.get("/v2/mirror.internal/team/alpine/manifests/3")
        self.assertEqual(code, 404)
        code, body, _ = await self.get("/v2/mirror.internal/team/library/alpine/manifests/3")
        self.assertEqual((code, body), (200, self.manifest))

    async def test_localRepositoriesPushable(self) -> None:
        """
        A repository outside every prefix is the registry's own: pushed and
        pulled, never asked of an upstream.
        """
        manifest, digest = await pushLayeredImage(self, self.cache, "team/app", "v1", b"local layer")
        code, body, _ = await self.get("/v2/team/app/manifests/v1")
        self.assertEqual((code, body), (200, manifest))
        self.assertFalse([path for _, path in self.seen.requests if "team/app" in path])

    async def test_pushIntoPrefixRefused(self) -> None:
        """
        Uploads, manifests, tags and deletes into a proxied prefix are
        refused with UNSUPPORTED.
        """
        response = await self.cache.request("POST", "/v2/docker.io/library/alpine/blobs/uploads/")
        await assertError(self, response, 405, "UNSUPPORTED")
        response = await self.cache.request(
            "PUT", "/v2/docker.io/library/alpine/manifests/4", data=self.manifest,
            headers={"Content-Type": ["application/vnd.oci.image.manifest.v1+json"]})
        await assertError(self, response, 405, "UNSUPPORTED")

    async def test_servedWhileUpstreamDown(self) -> None:
        """
        What was pulled is served with the upstream stopped, the tag with a
        Warning; tags come from the cache then; what was never pulled is
        503 UNAVAILABLE.
        """
        await self.get("/v2/docker.io/library/alpine/manifests/3")
        await self.get(f"/v2/docker.io/library/alpine/blobs/{sha256(LAYER)}")
        await stopUpstream(self.upstream, self.cache)
        code, body, response = await self.get("/v2/docker.io/library/alpine/manifests/3")
        self.assertEqual((code, body), (200, self.manifest))
        self.assertIn("stale", header(response, "warning") or "")
        code, body, _ = await self.get(f"/v2/docker.io/library/alpine/blobs/{sha256(LAYER)}")
        self.assertEqual((code, body), (200, LAYER))
        code, body, response = await self.get("/v2/docker.io/library/alpine/tags/list")
        self.assertEqual(code, 200)
        self.assertIn(b'"3"', body)
        self.assertIn("stale", header(response, "warning") or "")
        response = await self.cache.request("GET", "/v2/docker.io/library/busybox/manifests/1")
        await assertError(self, response, 503, "UNAVAILABLE")

    async def test_tagsFromUpstream(self) -> None:
        """
        The tag list is the upstream's, tags never pulled included.
        """
        await pushManifest(self, self.upstream, "library/alpine", "edge", self.manifest)
        code, body, _ = await self.get("/v2/docker.io/library/alpine/tags/list")
        self.assertEqual(code, 200)
        self.assertIn(b'"edge"', body)

    async def test_concurrentPullsFetchOnce(self) -> None:
        """
        Eight clients asking at once for a blob nobody pulled make one
        upstream GET, and each gets every byte.
        """
        big = os.urandom(8 * 1024 * 1024)
        await pushBlob(self, self.upstream, "library/alpine", big)
        path = f"/v2/docker.io/library/alpine/blobs/{sha256(big)}"

        async def pull() -> bytes:
            response = await self.cache.request("GET", path)
            return await response.content()  # type: ignore[no-any-return]

        results = await DeferredList([Deferred.fromCoroutine(pull()) for _ in range(8)],
                                     consumeErrors=True)
        self.assertEqual([ok and body == big for ok, body in results], [True] * 8)
        self.assertEqual(self.seen.count("GET", f"/blobs/{sha256(big)}"), 1)


    async def test_concurrentManifestFetchOnce(self) -> None:
        """
        Eight clients asking at once for a tag nobody pulled make one
        upstream HEAD and one GET.
        """
        async def pull() -> bytes:
            response = await self.cache.request("GET", "/v2/docker.io/library/alpine/manifests/3")
            return await response.content()  # type: ignore[no-any-return]

        results = await DeferredList([Deferred.fromCoroutine(pull()) for _ in range(8)],
                                     consumeErrors=True)
        self.assertEqual([ok and body == self.manifest for ok, body in results], [True] * 8)
        self.assertEqual(self.seen.count("HEAD", "/manifests/3"), 1)
        self.assertEqual(self.seen.count("GET", "/manifests/"), 1)


class FreshnessTests(TestCase):
    """
    A tag is checked again after tagttl, with a HEAD; a digest never.
    """

    TTL = 3.0

    async def setUp(self) -> None:
        self.upstream, self.seen = await startUpstream(self)
        self.first, self.firstDigest = await pushLayeredImage(self, self.upstream, "app", "v1", LAYER)
        self.cache = await startCache(self, {"upstreams": [
            {"prefix": "up.example", "url": self.upstream.url, "tagttl": f"{self.TTL}s"}]})

    async def digestOf(self, reference: str) -> str | None:
        response = await self.cache.request("GET", f"/v2/up.example/app/manifests/{reference}")
        await response.content()
        return header(response, "docker-content-digest")

    async def test_movedTagSeenAfterTTL(self) -> None:
        """
        A tag moved upstream is served as it was until tagttl passed, and
        as it is after.
        """
        self.assertEqual(await self.digestOf("v1"), self.firstDigest)
        _, secondDigest = await pushLayeredImage(self, self.upstream, "app", "v1", b"another layer")
        self.assertEqual(await self.digestOf("v1"), self.firstDigest)
        await deferLater(reactor, self.TTL + 0.5, lambda: None)
        self.assertEqual(await self.digestOf("v1"), secondDigest)

    async def test_unchangedTagCheckedWithHead(self) -> None:
        """
        An unchanged tag is checked with a HEAD: no manifest body is
        fetched again.
        """
        await self.digestOf("v1")
        await deferLater(reactor, self.TTL + 0.5, lambda: None)
        self.assertEqual(await self.digestOf("v1"), self.firstDigest)
        self.assertEqual(self.seen.count("HEAD", "/manifests/v1"), 2)
        self.assertEqual(self.seen.count("GET", "/manifests/"), 1)

    async def test_digestNotRevalidated(self) -> None:
        """
        A manifest by digest, once cached, is never asked of the upstream.
        """
        await self.digestOf(self.firstDigest)
        await deferLater(reactor, self.TTL + 0.5, lambda: None)
        self.assertEqual(await self.digestOf(self.firstDigest), self.firstDigest)
        self.assertEqual(self.seen.count("GET", "/manifests/"), 1)
        self.assertEqual(self.seen.count("HEAD", "/manifests/"), 0)


class ReferenceModeTests(TestCase):
    """
    C{proxy.remoteurl}: one upstream for every repository, with a login.
    """

    async def setUp(self) -> None:
        path = htpasswd(os.path.abspath(self.mktemp()), {"mirror": "secret"})
        self.upstream, self.seen = await startUpstream(
            self, {"auth": {"htpasswd": {"realm": "r", "path": path}}})
        self.upstreamAuth = {"auth": ("mirror", "secret")}
        self.cache = await startCache(self, {"remoteurl": self.upstream.url,
                                             "username": "mirror", "password": "secret"})

    async def test_pullAndRefusePush(self) -> None:
        await pushBlob(self, _Authenticated(self.upstream, self.upstreamAuth), "library/busybox", LAYER)
        response = await self.cache.request("GET", f"/v2/library/busybox/blobs/{sha256(LAYER)}")
        self.assertEqual((response.code, await response.content()), (200, LAYER))
        response = await self.cache.request("POST", "/v2/anything/blobs/uploads/")
        await assertError(self, response, 405, "UNSUPPORTED")

    async def test_wrongCredentials(self) -> None:
        """
        An upstream refusing the cache's login is DENIED, not a hang.
        """
        cache = await startCache(self, {"remoteurl": self.upstream.url,
                                        "username": "mirror", "password": "wrong"})
        response = await cache.request("GET", "/v2/library/busybox/manifests/1")
        await assertError(self, response, 403, "DENIED")


class _Authenticated:
    """
    A registry whose requests carry a login.
    """

    def __init__(self, registry: object, kwargs: dict[str, object]) -> None:
        self.registry = registry
        self.kwargs = kwargs

    def request(self, method: str, path: str, **kwargs: object) -> Deferred[object]:
        return self.registry.request(method, path, **self.kwargs, **kwargs)  # type: ignore[attr-defined]



class ExpiryTests(TestCase):
    """
    Cached content goes in the collection after its ttl since the last
    pull, and is fetched again after.
    """

    async def test_expiredContentCollected(self) -> None:
        upstream, seen = await startUpstream(self)
        manifest, digest = await pushLayeredImage(self, upstream, "app", "v1", LAYER)
        cache = await startCache(self, {"upstreams": [
            {"prefix": "up.example", "url": upstream.url, "ttl": "1s"},
            {"prefix": "kept.example", "url": upstream.url, "ttl": 0}]})
        for prefix in ("up.example", "kept.example"):
            response = await cache.request("GET", f"/v2/{prefix}/app/manifests/v1")
            self.assertEqual(await response.content(), manifest)
            response = await cache.request("GET", f"/v2/{prefix}/app/blobs/{sha256(LAYER)}")
            self.assertEqual(await response.content(), LAYER)
        await settle(cache)
        report = await cache.namespace.collectGarbage()
        self.assertEqual(report.tags, [])
        await deferLater(reactor, 1.5, lambda: None)
        report = await cache.namespace.collectGarbage()
        self.assertEqual(report.tags, [("up.example/app", "v1")])
        self.assertIn(("up.example/app", Digest.parse(digest)), report.manifests)
        # The blobs stay: kept.example's copy of the image holds them.
        self.assertEqual(report.blobs, [])
        response = await cache.request("GET", "/v2/up.example/app/manifests/v1")
        self.assertEqual(await response.content(), manifest)
        self.assertEqual(seen.count("GET", f"/manifests/{digest}"), 3)
        await stopUpstream(upstream, cache)
        response = await cache.request("GET", "/v2/kept.example/app/manifests/v1")
        self.assertEqual(await response.content(), manifest)


class QuotaTests(TestCase):
    async def test_overQuotaServedNotStored(self) -> None:
        """
        Under a quota too small for a blob, the blob is served all the
        same, and not stored: with the upstream stopped it is unavailable.
        """
        upstream, _ = await startUpstream(self)
        await pushBlob(self, upstream, "app", LAYER)
        cache = await startCache(self, {"upstreams": [{"prefix": "up.example", "url": upstream.url}]},
                                 storage={"inmemory": {}, "quotas": [
                                     {"repository": "up.example/**", "maxbytes": 1000}]})
        response = await cache.request("GET", f"/v2/up.example/app/blobs/{sha256(LAYER)}")
        self.assertEqual((response.code, await response.content()), (200, LAYER))
        await stopUpstream(upstream, cache)
        response = await cache.request("GET", f"/v2/up.example/app/blobs/{sha256(LAYER)}")
        await assertError(self, response, 503, "UNAVAILABLE")

    async def test_upstreamSizeLimit(self) -> None:
        """
        What an upstream's cached repositories hold counts toward its
        maxbytes: past it, content is served and not stored.
        """
        upstream, _ = await startUpstream(self)
        manifest, digest = await pushLayeredImage(self, upstream, "app", "v1", LAYER)
        other = os.urandom(len(LAYER))
        await pushBlob(self, upstream, "app", other)
        cache = await startCache(self, {"upstreams": [
            {"prefix": "up.example", "url": upstream.url, "maxbytes": len(LAYER) + 10_000}]})
        for path in ("manifests/v1", f"blobs/{sha256(LAYER)}", f"blobs/{sha256(other)}"):
            response = await cache.request("GET", f"/v2/up.example/app/{path}")
            self.assertEqual(response.code, 200)
            await response.content()
            await settle(cache)
        await stopUpstream(upstream, cache)
        response = await cache.request("GET", f"/v2/up.example/app/blobs/{sha256(LAYER)}")
        self.assertEqual((response.code, await response.content()), (200, LAYER))
        response = await cache.request("GET", f"/v2/up.example/app/blobs/{sha256(other)}")
        await assertError(self, response, 503, "UNAVAILABLE")
