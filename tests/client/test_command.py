"""
Every client command of C{txregistry} against txregistry itself, and how
each reports a failure: one line naming the reference and the cause,
exit status 1.
"""

from __future__ import annotations

import json
import os

from twisted.trial.unittest import TestCase

from tests.api.helpers import OCI_MANIFEST, deletingRegistry, dumps, sha256
from tests.client.commands import txregistry
from tests.client.helpers import filesystemRegistry, pushLayeredImage, pushTwoPlatformIndex
from tests.clients import ocilayout
from tests.support import freePort
from txregistry.client.http import Session


class CommandTests(TestCase):
    async def setUp(self) -> None:
        self.registry = await filesystemRegistry(self)
        self.host = self.registry.url.split("//")[1]
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        self.image = await pushLayeredImage(self, self.registry, "team/app", "v1")

    async def ok(self, *arguments: str, stdin: bytes | None = None) -> str:
        status, out, err = await txregistry(*arguments, stdin=stdin)
        self.assertEqual((status, err.getvalue()), (0, ""), arguments)
        return out.getvalue()

    async def fails(self, *arguments: str) -> str:
        status, out, err = await txregistry(*arguments)
        message = err.getvalue()
        self.assertEqual(status, 1, (arguments, out.getvalue(), message))
        self.assertEqual(message.count("\n"), 1, message)
        self.assertTrue(message.startswith("txregistry: "), message)
        return message

    async def raw(self, path: str) -> tuple[int, bytes]:
        response = await self.registry.request("GET", path, headers={"Accept": ["*/*"]})
        return response.code, await response.content()

    async def test_copyJSON(self) -> None:
        out = await self.ok("copy", "--json", f"docker://{self.host}/team/app:v1",
                            f"docker://{self.host}/team/copy:v2")
        result = json.loads(out)
        self.assertEqual(result["digest"], self.image["digest"])
        self.assertEqual(sorted(result["mounted"]), sorted(self.image["blobs"]))
        self.assertEqual((await self.raw("/v2/team/copy/manifests/v2"))[1], self.image["manifest"])

    async def test_pushPull(self) -> None:
        """
        C{pull} to a new OCI layout and C{push} of it back are copies.
        """
        layout = os.path.join(self.work, "layout")
        await self.ok("pull", f"{self.host}/team/app:v1", f"oci:{layout}:v1")
        self.assertEqual(ocilayout.refDescriptor(layout, "v1")["digest"], self.image["digest"])
        await self.ok("push", f"oci:{layout}:v1", f"{self.host}/other/app:v9")
        self.assertEqual((await self.raw("/v2/other/app/manifests/v9"))[1], self.image["manifest"])

    async def test_catalogAndTags(self) -> None:
        await pushLayeredImage(self, self.registry, "team/app", "v2", (10,))
        await pushLayeredImage(self, self.registry, "alpha/app", "x", (10,))
        self.assertEqual(await self.ok("catalog", self.host), "alpha/app\nteam/app\n")
        self.assertEqual(json.loads(await self.ok("tags", "--json", f"{self.host}/team/app")),
                         ["v1", "v2"])

    async def test_manifestGetHeadPut(self) -> None:
        out = await txregistry("manifest", "get", f"{self.host}/team/app:v1")
        self.assertEqual(out[0], 0)
        self.assertEqual(out[1].buffer.getvalue(), self.image["manifest"])
        head = await self.ok("manifest", "head", f"{self.host}/team/app:v1")
        self.assertEqual(head, f"{self.image['digest']} {len(self.image['manifest'])}\n")
        path = os.path.join(self.work, "manifest.json")
        await self.ok("manifest", "get", "-o", path, f"{self.host}/team/app@{self.image['digest']}")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), self.image["manifest"])
        put = await self.ok("manifest", "put", f"{self.host}/team/app:copied", path)
        self.assertEqual(put, self.image["digest"] + "\n")
        put = await self.ok("manifest", "put", f"{self.host}/team/app:stdin", stdin=self.image["manifest"])
        self.assertEqual((await self.raw("/v2/team/app/manifests/stdin"))[1], self.image["manifest"])

    async def test_blobGetHeadPut(self) -> None:
        digest, content = max(self.image["blobs"].items(), key=lambda item: len(item[1]))
        self.assertEqual(await self.ok("blob", "head", f"{self.host}/team/app@{digest}"),
                         f"{digest} {len(content)}\n")
        path = os.path.join(self.work, "blob")
        await self.ok("blob", "get", "-o", path, f"{self.host}/team/app@{digest}")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), content)
        result = await txregistry("blob", "get", f"{self.host}/team/app@{digest}")
        self.assertEqual(result[1].buffer.getvalue(), content)
        upload = os.path.join(self.work, "upload")
        with open(upload, "wb") as f:
            f.write(os.urandom(2 * 1024 * 1024 + 3))
        with open(upload, "rb") as f:
            expected = sha256(f.read())
        out = json.loads(await self.ok("blob", "put", "--json", f"{self.host}/new/repo", upload))
        self.assertEqual((out["digest"], out["uploaded"]), (expected, True))
        self.assertEqual((await self.raw(f"/v2/new/repo/blobs/{expected}"))[0], 200)
        again = json.loads(await self.ok("blob", "put", "--json", f"{self.host}/new/repo", upload))
        self.assertFalse(again["uploaded"])

    async def test_inspectImage(self) -> None:
        document = json.loads(await self.ok("inspect", "--json", f"{self.host}/team/app:v1"))
        self.assertEqual(document["digest"], self.image["digest"])
        self.assertEqual(document["config"]["architecture"], "amd64")
        self.assertEqual([layer["size"] for layer in document["layers"]], [1000, 3 * 1024 * 1024 + 17])
        text = await self.ok("inspect", f"docker://{self.host}/team/app:v1")
        self.assertIn("platform: linux/amd64", text)
        self.assertIn("layers: 2", text)

    async def test_inspectIndex(self) -> None:
        index = await pushTwoPlatformIndex(self, self.registry, "multi/app", "1")
        document = json.loads(await self.ok("inspect", "--json", f"{self.host}/multi/app:1"))
        self.assertEqual([m["platform"] for m in document["manifests"]], ["linux/amd64", "linux/arm64"])
        self.assertEqual(document["digest"], index["digest"])

    async def test_digestTagDelete(self) -> None:
        self.assertEqual(await self.ok("digest", f"{self.host}/team/app:v1"), self.image["digest"] + "\n")
        await self.ok("tag", f"{self.host}/team/app:v1", "stable", "prod")
        tags = json.loads(await self.ok("tags", "--json", f"{self.host}/team/app"))
        self.assertEqual(tags, ["prod", "stable", "v1"])
        await self.ok("delete", f"{self.host}/team/app:stable")
        self.assertEqual((await self.raw(f"/v2/team/app/manifests/{self.image['digest']}"))[0], 404)
        message = await self.fails("digest", f"{self.host}/team/app:v1")
        self.assertIn(f"{self.host}/team/app:v1", message)

    async def test_referrers(self) -> None:
        subject = {"mediaType": OCI_MANIFEST, "digest": self.image["digest"],
                   "size": len(self.image["manifest"])}
        empty = b"{}"
        response = await self.registry.request("POST", f"/v2/team/app/blobs/uploads/?digest={sha256(empty)}",
                                               data=empty)
        self.assertEqual(response.code, 201)
        signature = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.sig",
                           "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                      "digest": sha256(empty), "size": 2},
                           "layers": [], "subject": subject})
        response = await self.registry.request("PUT", f"/v2/team/app/manifests/{sha256(signature)}",
                                               data=signature, headers={"Content-Type": [OCI_MANIFEST]})
        self.assertEqual(response.code, 201)
        found = json.loads(await self.ok("referrers", "--json", f"{self.host}/team/app:v1"))
        self.assertEqual([(d["digest"], d["artifactType"]) for d in found],
                         [(sha256(signature), "application/x.sig")])
        none = json.loads(await self.ok("referrers", "--json", "--artifact-type", "application/x.other",
                                        f"{self.host}/team/app@{self.image['digest']}"))
        self.assertEqual(none, [])

    async def test_unknownReference(self) -> None:
        message = await self.fails("copy", f"docker://{self.host}/team/none:v1", f"oci:{self.work}/out")
        self.assertIn(f"{self.host}/team/none:v1", message)
        self.assertIn("MANIFEST_UNKNOWN", message)
        self.assertFalse(os.path.exists(f"{self.work}/out"))
        self.assertEqual(os.listdir(self.work), [])

    async def test_badReference(self) -> None:
        message = await self.fails("copy", "nowhere:x", f"oci:{self.work}/out")
        self.assertIn("nowhere:x", message)

    async def test_networkFailure(self) -> None:
        self.patch(Session, "backoff", 0.01)
        message = await self.fails("tags", f"127.0.0.1:{freePort()}/team/app")
        self.assertIn("Connection refused", message)

    async def test_digestMismatch(self) -> None:
        """
        A layout whose blob was changed is refused at the copy's end: the
        destination's registry stores no image, and the message names the
        blob.
        """
        layout = os.path.join(self.work, "layout")
        await self.ok("pull", f"{self.host}/team/app:v1", f"oci:{layout}:v1")
        digest = max(self.image["blobs"], key=lambda d: len(self.image["blobs"][d]))
        path = os.path.join(layout, "blobs", "sha256", digest.split(":")[1])
        with open(path, "r+b") as f:
            f.seek(100)
            f.write(b"tampered")
        message = await self.fails("push", f"oci:{layout}:v1", f"{self.host}/victim/app:v1")
        self.assertIn(digest, message)
        self.assertEqual((await self.raw("/v2/victim/app/manifests/v1"))[0], 404)
        message = await self.fails("copy", f"oci:{layout}:v1", f"oci:{self.work}/again:v1")
        self.assertIn("digest", message)
        self.assertFalse(os.path.exists(f"{self.work}/again"))

    async def test_archiveRefusesIndexAll(self) -> None:
        await pushTwoPlatformIndex(self, self.registry, "multi/app", "1")
        archive = os.path.join(self.work, "image.tar")
        message = await self.fails("copy", "--all", f"docker://{self.host}/multi/app:1",
                                   f"docker-archive:{archive}")
        self.assertIn("not an index", message)
        self.assertEqual(os.listdir(self.work), [])
        await self.ok("copy", "--platform", "linux/arm64", "--jobs", "8", f"docker://{self.host}/multi/app:1",
                      f"docker-archive:{archive}:example/multi:arm")
        document = json.loads(await self.ok("inspect", "--json", f"docker-archive:{archive}"))
        self.assertEqual(document["config"]["architecture"], "arm64")


class ProgressTests(TestCase):
    """
    Progress bars go to a terminal, and nowhere else.
    """

    async def setUp(self) -> None:
        self.registry = await deletingRegistry(self)
        self.host = self.registry.url.split("//")[1]
        await pushLayeredImage(self, self.registry, "team/app", "v1")

    async def copy(self, terminal: bool) -> str:
        from tests.client import commands

        self.patch(commands.Output, "isatty", lambda stream: terminal)
        work = os.path.abspath(self.mktemp())
        status, out, err = await txregistry("copy", f"docker://{self.host}/team/app:v1", f"oci:{work}:v1")
        self.assertEqual(status, 0, err.getvalue())
        return err.getvalue()

    async def test_terminal(self) -> None:
        self.assertIn("copying", await self.copy(True))

    async def test_notTerminal(self) -> None:
        self.assertEqual(await self.copy(False), "")


class LayoutTests(TestCase):
    """
    Writing into an OCI layout that exists: other images stay, a tag is
    replaced, and a failed copy leaves C{index.json} as it was.
    """

    async def setUp(self) -> None:
        self.registry = await deletingRegistry(self)
        self.host = self.registry.url.split("//")[1]
        self.layout = os.path.join(os.path.abspath(self.mktemp()), "layout")

    async def test_addAndReplace(self) -> None:
        one = await pushLayeredImage(self, self.registry, "team/one", "v1", (100,))
        two = await pushLayeredImage(self, self.registry, "team/two", "v1", (200,))
        for name, tag in (("one", "a"), ("two", "b"), ("one", "b")):
            status, _, err = await txregistry("copy", f"docker://{self.host}/team/{name}:v1",
                                              f"oci:{self.layout}:{tag}")
            self.assertEqual(status, 0, err.getvalue())
        self.assertEqual(ocilayout.refDescriptor(self.layout, "a")["digest"], one["digest"])
        self.assertEqual(ocilayout.refDescriptor(self.layout, "b")["digest"], one["digest"])
        self.assertEqual(len(ocilayout.readIndex(self.layout)["manifests"]), 2)
        status, out, _ = await txregistry("digest", f"oci:{self.layout}:b")
        self.assertEqual(out.getvalue(), one["digest"] + "\n")
        self.assertTrue(os.path.exists(os.path.join(self.layout, "blobs", "sha256", two["digest"][7:])))

    async def test_failedCopyLeavesIndex(self) -> None:
        await pushLayeredImage(self, self.registry, "team/one", "v1", (100,))
        broken = await pushLayeredImage(self, self.registry, "team/broken", "v1", (300,))
        status, _, err = await txregistry("copy", f"docker://{self.host}/team/one:v1", f"oci:{self.layout}:a")
        self.assertEqual(status, 0, err.getvalue())
        with open(os.path.join(self.layout, "index.json"), "rb") as f:
            before = f.read()
        # The broken image's layer is gone from the registry: its copy fails
        # after its config was written.
        layer = [d for d, c in broken["blobs"].items() if len(c) == 300][0]
        response = await self.registry.request("DELETE", f"/v2/team/broken/blobs/{layer}")
        self.assertEqual(response.code, 202)
        status, _, err = await txregistry("copy", f"docker://{self.host}/team/broken:v1",
                                          f"oci:{self.layout}:b")
        self.assertEqual(status, 1)
        self.assertIn(layer, err.getvalue())
        with open(os.path.join(self.layout, "index.json"), "rb") as f:
            self.assertEqual(f.read(), before)
        leftovers = [n for n in os.listdir(os.path.join(self.layout, "blobs", "sha256")) if n.endswith(".partial")]
        self.assertEqual(leftovers, [])
