"""
The events a registry sends for what clients do through its API
(L{txregistry.notifications.layer}), received by a real webhook
receiver.
"""

from __future__ import annotations

import glob
import json
import os

from twisted.trial.unittest import TestCase

from tests.api.helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    LAYER,
    OCI_MANIFEST,
    config,
    imageManifest,
    index,
    pushBlob,
    pushImage,
    pushManifest,
    sha256,
)
from tests.notifications.helpers import (
    endpoint,
    startNotifyingRegistry,
    startReceiver,
    summary,
    waitUntil,
)
from txregistry.notifications.events import EVENTS_MEDIA_TYPE


class EventTests(TestCase):
    async def setUp(self) -> None:  # type: ignore[override]
        self.receiver = await startReceiver(self)
        self.registry = await startNotifyingRegistry(self, [endpoint(self.receiver)])

    async def settle(self, count: int) -> list[dict]:
        await waitUntil(lambda: len(self.receiver.events) >= count)
        return self.receiver.events

    async def test_pushAndPull(self) -> None:
        """
        Pushing an image by tag makes a push per blob and one for the
        manifest naming its tag; pulling it by tag makes a pull naming the
        tag and one for the blob read.  A HEAD makes none.
        """
        manifest, digest = await pushImage(self, self.registry, "team/app", "1")
        configDigest = json.loads(manifest)["config"]["digest"]
        head = await self.registry.request("HEAD", "/v2/team/app/manifests/1",
                                           headers={"Accept": [OCI_MANIFEST]})
        self.assertEqual(head.code, 200)
        got = await self.registry.request("GET", "/v2/team/app/manifests/1",
                                          headers={"Accept": [OCI_MANIFEST], "User-Agent": ["puller/1"]})
        self.assertEqual(await got.content(), manifest)
        blob = await self.registry.request("GET", f"/v2/team/app/blobs/{sha256(LAYER)}")
        self.assertEqual(await blob.content(), LAYER)
        events = await self.settle(5)
        self.assertEqual(summary(events), [
            ("push", "team/app", "blobs", configDigest, ""),
            ("push", "team/app", "blobs", sha256(LAYER), ""),
            ("push", "team/app", "manifests", digest, "1"),
            ("pull", "team/app", "manifests", digest, "1"),
            ("pull", "team/app", "blobs", sha256(LAYER), ""),
        ])
        push, pull = events[2], events[3]
        self.assertEqual(push["target"], {
            "mediaType": OCI_MANIFEST, "size": len(manifest), "digest": digest,
            "length": len(manifest), "repository": "team/app",
            "url": f"{self.registry.url}/v2/team/app/manifests/{digest}", "tag": "1",
        })
        self.assertEqual(push["request"]["method"], "PUT")
        self.assertEqual(pull["request"]["method"], "GET")
        self.assertEqual(pull["request"]["useragent"], "puller/1")
        self.assertEqual(pull["request"]["addr"], "127.0.0.1")
        self.assertEqual(pull["request"]["host"], self.registry.url.split("//")[1])
        self.assertEqual(pull["actor"], {})
        self.assertEqual(events[4]["target"]["size"], len(LAYER))
        self.assertEqual(events[4]["target"]["mediaType"], "application/octet-stream")
        self.assertEqual(len({e["id"] for e in events}), 5)
        self.assertEqual(len({e["source"]["instanceID"] for e in events}), 1)
        self.assertEqual(events[0]["source"]["addr"].split(":")[-1], "0")
        self.assertEqual(
            self.receiver.requests[0][0]["content-type"], EVENTS_MEDIA_TYPE
        )

    async def test_repeatedPullsSayHowEachAsked(self) -> None:
        """
        Pulls of one manifest by two tags, by its digest and through
        another C{Host}: each event names the tag it was asked by (none by
        digest) and the URL of the host it was asked through, with an id
        of its own, although the registry makes a manifest's pull target
        once.
        """
        manifest, digest = await pushImage(self, self.registry, "again", "1")
        await pushManifest(self, self.registry, "again", "2", manifest)
        await self.settle(4)
        del self.receiver.envelopes[:]
        accept = {"Accept": [OCI_MANIFEST]}
        for reference, host in (("1", None), ("2", None), (digest, None), ("1", "mirror.example:8443"),
                                ("1", None)):
            headers = dict(accept, Host=[host]) if host else accept
            got = await self.registry.request("GET", f"/v2/again/manifests/{reference}", headers=headers)
            self.assertEqual(await got.content(), manifest)
        events = await self.settle(5)
        self.assertEqual([e["target"].get("tag", "") for e in events], ["1", "2", "", "1", "1"])
        urls = [e["target"]["url"] for e in events]
        self.assertEqual(urls[3], f"http://mirror.example:8443/v2/again/manifests/{digest}")
        self.assertEqual(set(urls[:3] + urls[4:]), {f"{self.registry.url}/v2/again/manifests/{digest}"})
        self.assertEqual(len({e["id"] for e in events}), 5)

    async def test_indexPushNamesTagAndDigest(self) -> None:
        """
        An index pushed by tag is one push event with the index's media
        type, digest and tag (its children pushed by digest have no tag).
        """
        manifest, child = await pushImage(self, self.registry, "multi", "child")
        await self.settle(3)
        del self.receiver.envelopes[:]
        content = index([(OCI_MANIFEST, manifest)], mediaType=DOCKER_LIST)
        await pushManifest(self, self.registry, "multi", "1", content, mediaType=DOCKER_LIST)
        events = await self.settle(1)
        self.assertEqual(summary(events), [("push", "multi", "manifests", sha256(content), "1")])
        self.assertEqual(events[0]["target"]["mediaType"], DOCKER_LIST)
        self.assertNotIn("references", events[0]["target"])

    async def test_pushByDigestHasNoTag(self) -> None:
        configContent = config()
        await pushBlob(self, self.registry, "bydigest", configContent)
        await pushBlob(self, self.registry, "bydigest", LAYER)
        manifest = imageManifest(configContent, mediaType=DOCKER_MANIFEST)
        await pushManifest(self, self.registry, "bydigest", sha256(manifest), manifest,
                           mediaType=DOCKER_MANIFEST)
        events = await self.settle(3)
        self.assertEqual(summary(events)[2], ("push", "bydigest", "manifests", sha256(manifest), ""))
        self.assertEqual(events[2]["target"]["mediaType"], DOCKER_MANIFEST)

    async def test_monolithicPutAndMount(self) -> None:
        """
        A blob put in one request (POST ?digest=) is a push; one mounted
        from another repository is a mount naming where from.
        """
        response = await self.registry.request(
            "POST", f"/v2/one/blobs/uploads/?digest={sha256(LAYER)}", data=LAYER,
            headers={"Content-Type": ["application/octet-stream"]},
        )
        self.assertEqual(response.code, 201)
        response = await self.registry.request(
            "POST", f"/v2/two/blobs/uploads/?mount={sha256(LAYER)}&from=one"
        )
        self.assertEqual(response.code, 201)
        events = await self.settle(2)
        self.assertEqual(summary(events), [
            ("push", "one", "blobs", sha256(LAYER), ""),
            ("mount", "two", "blobs", sha256(LAYER), ""),
        ])
        self.assertEqual(events[1]["target"]["fromRepository"], "one")
        self.assertEqual(events[1]["target"]["size"], len(LAYER))

    async def test_deletes(self) -> None:
        """
        Deleting a tag names the tag; deleting a manifest or a blob names
        its digest, and no more (as the reference's delete events).
        """
        manifest, digest = await pushImage(self, self.registry, "gone", "1")
        await self.settle(3)
        del self.receiver.envelopes[:]
        for path in ("/v2/gone/manifests/1", f"/v2/gone/manifests/{digest}",
                     f"/v2/gone/blobs/{sha256(LAYER)}"):
            response = await self.registry.request("DELETE", path)
            self.assertEqual(response.code, 202, path)
        events = await self.settle(3)
        self.assertEqual([e["target"] for e in events], [
            {"repository": "gone", "tag": "1"},
            {"repository": "gone", "digest": digest},
            {"repository": "gone", "digest": sha256(LAYER)},
        ])
        self.assertEqual({e["action"] for e in events}, {"delete"})

    async def test_failuresMakeNoEvent(self) -> None:
        """
        What did not happen is not notified: a manifest naming a missing
        blob, an unknown tag pulled.
        """
        manifest = imageManifest(config())
        await pushManifest(self, self.registry, "nope", "1", manifest, expect=400)
        response = await self.registry.request("GET", "/v2/nope/manifests/absent")
        self.assertEqual(response.code, 404)
        await pushBlob(self, self.registry, "nope", LAYER)
        events = await self.settle(1)
        self.assertEqual(summary(events), [("push", "nope", "blobs", sha256(LAYER), "")])

    async def test_pushJournaledBeforeResponse(self) -> None:
        """
        When a push is answered its event is already in the journal (the
        endpoint, down here, has not had it).
        """
        await self.receiver.stop()
        digest = await pushBlob(self, self.registry, "durable", LAYER)
        journal = b"".join(
            open(path, "rb").read()
            for path in sorted(glob.glob(os.path.join(self.registry.outbox, "journal-*.log")))
        )
        self.assertIn(digest.encode(), journal)
        self.assertEqual(self.receiver.events, [])


class IncludeReferencesTests(TestCase):
    async def test_references(self) -> None:
        """
        With C{notifications.events.includereferences}, a manifest's
        events list its config and layers.
        """
        receiver = await startReceiver(self)
        registry = await startNotifyingRegistry(
            self, [endpoint(receiver)], events={"includereferences": True}
        )
        manifest, digest = await pushImage(self, registry, "refs", "1")
        await waitUntil(lambda: len(receiver.events) >= 3)
        document = json.loads(manifest)
        self.assertEqual(receiver.events[2]["target"]["references"], [
            {k: d[k] for k in ("mediaType", "digest", "size")}
            for d in [document["config"], *document["layers"]]
        ])
