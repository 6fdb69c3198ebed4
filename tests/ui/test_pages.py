"""
The UI's pages over HTTP against an in-process registry filled by real
pushes: repositories (search, paging), a repository's tags (sorting,
paging), a manifest and an index, the tag redirect, static files, and
the UI below C{http.prefix} and C{ui.path}.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    LAYER,
    config,
    imageManifest,
    pushBlob,
    pushImage,
    pushManifest,
    sha256,
)
from tests.support import startRegistry
from tests.ui.content import SBOM, SIGNATURE, fill, pushRichImage
from tests.ui.support import Browser, location
from txregistry.ui.app import REPOSITORIES_PER_PAGE, TAGS_PER_PAGE
from txregistry.ui.pages import humanSize


def rowsOf(page: str) -> list[str]:
    """
    The text of each body row of the page's first table.
    """
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())
            for row in body.split("</tr>") if "<td" in row]


def firstCells(page: str) -> list[str]:
    return [row.split(" ")[0] for row in rowsOf(page)]


class UIPagesTests(TestCase):
    async def setUp(self) -> None:
        self.registry = await startRegistry(self, {"ui": {"enabled": True},
                                                   "storage": {"inmemory": {}, "delete": {"enabled": True}}})
        self.browser = Browser(self.registry)

    async def test_disabledByDefault(self) -> None:
        """
        Without C{ui.enabled} there is no UI: C{/ui/} is an unknown route.
        """
        registry = await startRegistry(self, {})
        response = await registry.request("GET", "/ui/")
        self.assertEqual(response.code, 404)
        self.assertIn(b'"UNSUPPORTED"', await response.content())

    async def test_repositories(self) -> None:
        """
        The repositories page lists each repository with its tag count,
        last push and storage usage (as C{/v2/<name>/_usage} says), linking
        to it.
        """
        await fill(self, self.registry)
        usage = json.loads(await (await self.registry.request("GET", "/v2/team/server/_usage")).content())
        response, page = await self.browser.get("/ui/")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/html; charset=utf-8"])
        self.assertTrue(page.startswith("<!DOCTYPE html>"))
        rows = rowsOf(page)
        self.assertEqual([r.split(" ")[0] for r in rows], ["library/alpine", "team/server"])
        self.assertIn(" 3 ", rows[1])
        self.assertRegex(rows[1], r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")
        self.assertIn(f"{humanSize(usage['bytes'])} in {usage['blobs']} blobs", rows[1])
        self.assertIn('href="/ui/r/team/server"', page)

    async def test_quota(self) -> None:
        """
        A repository under a quota shows its limits beside its usage.
        """
        registry = await startRegistry(self, {"ui": {"enabled": True}, "storage": {
            "inmemory": {}, "quotas": [{"repository": "team/*", "maxbytes": "1MiB", "maxtags": 10}]}})
        await pushImage(self, registry, "team/app", "v1")
        _, page = await Browser(registry).get("/ui/")
        self.assertIn("quota 1.0 MiB, 10 tags", rowsOf(page)[0])

    async def test_search(self) -> None:
        """
        C{?q=} keeps the repositories whose name contains it; the box
        shows what was searched.
        """
        await fill(self, self.registry)
        _, page = await self.browser.get("/ui/?q=alp")
        self.assertEqual(firstCells(page), ["library/alpine"])
        self.assertIn('value="alp"', page)
        _, page = await self.browser.get("/ui/?q=nothing-like-it")
        self.assertIn("No repositories match.", page)

    async def test_repositoryPaging(self) -> None:
        """
        Repositories come a page at a time; the next page starts after the
        last name shown, and a search pages the same way.
        """
        names = [f"r{i:02d}" for i in range(REPOSITORIES_PER_PAGE + 5)]
        for name in names:
            await pushImage(self, self.registry, name, "v1")
        _, page = await self.browser.get("/ui/")
        self.assertEqual(firstCells(page), names[:REPOSITORIES_PER_PAGE])
        last = names[REPOSITORIES_PER_PAGE - 1]
        self.assertIn(f'href="/ui/?last={last}" rel="next"', page)
        _, page = await self.browser.get(f"/ui/?last={last}")
        self.assertEqual(firstCells(page), names[REPOSITORIES_PER_PAGE:])
        self.assertNotIn('rel="next"', page)
        _, page = await self.browser.get("/ui/?q=r2")
        self.assertEqual(firstCells(page), [n for n in names if "r2" in n])

    async def test_tags(self) -> None:
        """
        A repository's page lists its tags with digest, kind, size,
        platforms, created and pushed times, and the pull commands.
        """
        pushed = await fill(self, self.registry)
        response, page = await self.browser.get("/ui/r/team/server")
        self.assertEqual(response.code, 200)
        rows = rowsOf(page)
        self.assertEqual([r.split(" ")[0] for r in rows], ["arm64-only", "multi", "v1"])
        self.assertIn("Index", rows[1])
        self.assertIn("linux/amd64, linux/arm64/v8", rows[1])
        self.assertIn("linux/amd64", rows[2])
        self.assertIn("2026-11-30 12:00 UTC", rows[2])
        self.assertIn(pushed.image.split(":")[1][:12], rows[2])
        self.assertIn(f'href="/ui/r/team/server/-/manifest/{pushed.image}"', page)
        host = self.registry.url.split("://")[1]
        self.assertIn(f'data-copy="docker pull {host}/team/server:arm64-only"', page)
        self.assertIn(f'data-copy="podman pull {host}/team/server:arm64-only"', page)
        self.assertIn("3 tags", page)

    async def test_tagSortingAndPaging(self) -> None:
        """
        Tags sort by name or push time, either way, and come a page at a
        time on the server; a tag search narrows them.
        """
        manifest, _ = await pushImage(self, self.registry, "many", "t000")
        names = [f"t{i:03d}" for i in range(TAGS_PER_PAGE * 2 + 10)]
        for name in names[1:]:
            await pushManifest(self, self.registry, "many", name, manifest)
        _, page = await self.browser.get("/ui/r/many")
        self.assertEqual(firstCells(page), names[:TAGS_PER_PAGE])
        self.assertIn("Page 1 of 3", page)
        _, page = await self.browser.get("/ui/r/many?page=3")
        self.assertEqual(firstCells(page), names[TAGS_PER_PAGE * 2:])
        self.assertIn('rel="prev"', page)
        _, page = await self.browser.get("/ui/r/many?sort=name&order=desc")
        self.assertEqual(firstCells(page), names[::-1][:TAGS_PER_PAGE])
        self.assertIn('aria-sort="descending"', page)
        # Pushed newest first by default: the last pushed tag leads (ties
        # by time fall back to the name, in the same order).
        _, page = await self.browser.get("/ui/r/many?sort=pushed")
        self.assertEqual(firstCells(page)[0], names[-1])
        _, page = await self.browser.get("/ui/r/many?sort=pushed&order=asc")
        self.assertEqual(firstCells(page)[0], names[0])
        _, page = await self.browser.get("/ui/r/many?q=t10")
        self.assertEqual(firstCells(page), [n for n in names if "t10" in n])
        self.assertIn("10 tags containing", page)

    async def test_image(self) -> None:
        """
        An image's page shows its media type, annotations, config
        (entrypoint, command, environment, labels, history), layers with
        sizes, and its referrers as a tree by artifact type.
        """
        pushed = await fill(self, self.registry)
        response, page = await self.browser.get(f"/ui/r/team/server/-/manifest/{pushed.image}")
        self.assertEqual(response.code, 200, page)
        text = html.unescape(page)
        for expected in ["application/vnd.oci.image.manifest.v1+json", "org.opencontainers.image.version",
                         "/usr/bin/server", "--port 8080", "MODE=production", "maintainer",
                         "ops <ops@example.com>", "ADD rootfs.tar /", "ENV MODE=production", "8080/tcp",
                         "/srv", f"{len(LAYER)} B", "Tags</dt><dd>v1"]:
            self.assertIn(expected, text)
        referrers = text.split('id="referrers"', 1)[1].split("</section>", 1)[0]
        self.assertIn(SBOM, referrers)
        self.assertIn(SIGNATURE, referrers)
        # The SBOM's own signature hangs below the SBOM.
        sbomItem = referrers.split(pushed.sbom.split(":")[1][:12], 1)[1]
        self.assertIn(pushed.sbomSignature.split(":")[1][:12], sbomItem.split("</ul></li>", 1)[0])
        host = self.registry.url.split("://")[1]
        self.assertIn(f"docker pull {host}/team/server@{pushed.image}", text)
        self.assertIn(f"txregistry copy --all docker://{host}/team/server@{pushed.image} oci:server:v1", text)
        self.assertIn(f"skopeo copy --all docker://{host}/team/server@{pushed.image} oci:server:v1", text)
        self.assertIn("Delete this manifest", page)

    async def test_index(self) -> None:
        """
        An index's page lists its manifests by platform, linked.
        """
        pushed = await fill(self, self.registry)
        _, page = await self.browser.get(f"/ui/r/team/server/-/manifest/{pushed.index}")
        platforms = page.split('id="platforms"', 1)[1].split("</section>", 1)[0]
        self.assertIn("linux/amd64", platforms)
        self.assertIn("linux/arm64/v8", platforms)
        self.assertIn(f'href="/ui/r/team/server/-/manifest/{pushed.arm}"', platforms)
        self.assertNotIn('id="layers"', page)

    async def test_tagRedirect(self) -> None:
        """
        C{/-/tag/<tag>} is a stable address for what a tag names now.
        """
        _, digest = await pushImage(self, self.registry, "a/b", "v1")
        response, _ = await self.browser.get("/ui/r/a/b/-/tag/v1")
        self.assertEqual(response.code, 303)
        self.assertEqual(location(response), f"/ui/r/a/b/-/manifest/{digest}")
        response, page = await self.browser.get("/ui/r/a/b/-/tag/v2")
        self.assertEqual(response.code, 404)
        self.assertIn("Not found", page)

    async def test_notFound(self) -> None:
        """
        A repository, manifest or path that is not there is a 404 page,
        never a 500.
        """
        await pushImage(self, self.registry, "a", "v1")
        for path in ["/ui/r/nothing", "/ui/r/a/-/manifest/sha256:" + "0" * 64, "/ui/r/a/-/manifest/nonsense",
                     "/ui/r/A/B", "/ui/r/a/-/bogus", "/ui/else", "/ui/static/nothing.css", "/ui/r/a/-/tag/..."]:
            response, page = await self.browser.get(path)
            self.assertEqual(response.code, 404, path)
            self.assertIn("<h1>Not found</h1>", page)

    async def test_methods(self) -> None:
        """
        A page is read with GET (or HEAD); any other method is a 405 with
        C{Allow}.
        """
        response, _ = await self.browser.request("PUT", "/ui/")
        self.assertEqual(response.code, 405)
        self.assertEqual(response.headers.getRawHeaders("allow"), ["GET, HEAD"])
        response, _ = await self.browser.request("HEAD", "/ui/")
        self.assertEqual(response.code, 200)
        response, _ = await self.browser.get("/ui/logout")
        self.assertEqual(response.code, 405)
        response, _ = await self.browser.request("POST", "/ui/static/ui.css")
        self.assertEqual(response.code, 405)
        self.assertEqual(response.headers.getRawHeaders("allow"), ["GET, HEAD"])

    async def test_escaping(self) -> None:
        """
        What a pusher wrote (labels, annotations) is shown as text, never
        as markup.
        """
        content = config()
        await pushBlob(self, self.registry, "x", content)
        await pushBlob(self, self.registry, "x", LAYER)
        manifest = imageManifest(content, annotations={"note": "<script>alert(1)</script>"})
        await pushManifest(self, self.registry, "x", "v1", manifest)
        _, page = await self.browser.get(f"/ui/r/x/-/manifest/{sha256(manifest)}")
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
        self.assertNotIn("<script>alert", page)

    async def test_headers(self) -> None:
        """
        Pages forbid framing and foreign scripts, and are not cached;
        static files are.
        """
        response, _ = await self.browser.get("/ui/")
        policy = response.headers.getRawHeaders("content-security-policy")[0]
        self.assertIn("script-src 'self'", policy)
        self.assertIn("frame-ancestors 'none'", policy)
        self.assertEqual(response.headers.getRawHeaders("cache-control"), ["no-store"])
        response, css = await self.browser.get("/ui/static/ui.css")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/css; charset=utf-8"])
        self.assertIn("prefers-color-scheme: dark", css)
        response, script = await self.browser.get("/ui/static/ui.js")
        self.assertIn("clipboard", script)

    async def test_trailingSlash(self) -> None:
        """
        C{/ui} goes to C{/ui/}.
        """
        response, _ = await self.browser.get("/ui")
        self.assertEqual(response.code, 303)
        self.assertEqual(location(response), "/ui/")

    async def test_prefixAndPath(self) -> None:
        """
        Below C{http.prefix}, at C{ui.path}, every link carries both.
        """
        registry = await startRegistry(self, {"ui": {"enabled": True, "path": "/browse/here"},
                                              "http": {"prefix": "/registry/"}})
        await pushRichImage(self, _Prefixed(registry), "a", "v1")
        browser = Browser(registry)
        response, page = await browser.get("/registry/browse/here/")
        self.assertEqual(response.code, 200, page)
        self.assertIn('href="/registry/browse/here/r/a"', page)
        self.assertIn('href="/registry/browse/here/static/ui.css"', page)
        response, _ = await browser.get("/ui/")
        self.assertEqual(response.code, 404)


class _Prefixed:
    """
    A registry whose API is below C{/registry}, as the push helpers see it.
    """

    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if not path.startswith("/registry/"):
            path = "/registry" + path
        return self._registry.request(method, path, **kwargs)
