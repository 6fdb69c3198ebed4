"""
The pull-through cache with real clients and real processes: an upstream
txregistry (htpasswd, or its token server) and the cache, each a
C{twistd} child; docker pulling through C{registry-mirrors}, skopeo
pulling prefixed names; pulls with the upstream stopped; concurrent pulls
of a large blob counted in the upstream's access log.

Heavy (a private dockerd): run them once or twice, not in a loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from twisted.trial.unittest import TestCase

from tests.clients import daemons, ocilayout

USERS = {"mirror": "secret"}


def _image(directory: str, salt: bytes) -> tuple[ocilayout.Layout, dict[str, Any], bytes]:
    layout = ocilayout.Layout(directory)
    descriptor, manifest = layout.image([{"hello.txt": b"hello from upstream " + salt + b"\n",
                                          "data": os.urandom(200_000)}])
    layout.tag(descriptor, "v1")
    return layout, descriptor, manifest


def _skopeo(*arguments: str, context: Any = None) -> Any:
    skopeo = daemons.require("skopeo")["skopeo"]
    return daemons.run([skopeo, "--insecure-policy", *arguments], context=context)


def _pushToUpstream(upstream: Any, layout: ocilayout.Layout, name: str) -> None:
    _skopeo("copy", "--preserve-digests", "--dest-tls-verify=false",
            "--dest-creds", "mirror:secret", f"oci:{layout.path}:v1",
            f"docker://127.0.0.1:{upstream.port}/{name}", context=upstream)


class DockerMirrorTests(TestCase):
    """
    docker with C{registry-mirrors} pointing at a cache in the reference's
    mode, whose upstream logs it in through its token server.
    """

    def setUp(self) -> None:
        daemons.require("dockerd", "docker", "skopeo")
        self.upstream = daemons.startRegistryWithUsers(self, USERS, {"tokenserver": {}})
        self.cache = daemons.startRegistry(self, config={"proxy": {
            "remoteurl": self.upstream.url, "username": "mirror", "password": "secret"}})
        paths = daemons.require("dockerd", "docker")
        self.docker = daemons.DockerDaemon(
            paths["dockerd"], paths["docker"],
            ["--registry-mirror", f"http://127.0.0.1:{self.cache.port}"])
        self.addCleanup(self.docker.stop)

    def test_pullThroughMirror(self) -> None:
        """
        docker pulls a Docker Hub name through the mirror, and pulls it
        again once the upstream is stopped.
        """
        work = os.path.abspath(self.mktemp())
        layout, descriptor, manifest = _image(os.path.join(work, "image"), b"docker")
        _pushToUpstream(self.upstream, layout, "library/mirrored:v1")
        context = [self.cache, self.upstream]
        self.docker.run("pull", "mirrored:v1", context=context)
        inspected = json.loads(self.docker.run("image", "inspect", "mirrored:v1").stdout)
        self.assertIn(descriptor["digest"], json.dumps(inspected[0]["RepoDigests"]))
        self.upstream.stop()
        self.docker.run("rmi", "mirrored:v1", context=context)
        self.docker.run("pull", "mirrored:v1", context=context)
        self.assertIn("from the cache: upstream", self.cache.log())


class SkopeoPrefixTests(TestCase):
    """
    skopeo pulling prefixed names from a cache of several upstreams (one
    with htpasswd), pushing to a local repository of the same cache.
    """

    def setUp(self) -> None:
        daemons.require("skopeo")
        self.upstream = daemons.startRegistryWithUsers(self, USERS)
        self.cache = daemons.startRegistry(self, config={"proxy": {"upstreams": [
            {"prefix": "docker.io", "url": self.upstream.url, "username": "mirror",
             "password": "secret"},
            {"prefix": "ghcr.io", "url": self.upstream.url, "username": "mirror",
             "password": "secret"},
        ]}})
        self.host = f"127.0.0.1:{self.cache.port}"
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)

    def test_pullPushAndOutage(self) -> None:
        layout, descriptor, manifest = _image(os.path.join(self.work, "image"), b"skopeo")
        _pushToUpstream(self.upstream, layout, "library/tool:v1")
        context = [self.cache, self.upstream]
        out = os.path.join(self.work, "out")
        _skopeo("copy", "--src-tls-verify=false", f"docker://{self.host}/docker.io/tool:v1",
                f"oci:{out}:v1", context=context)
        self.assertEqual(ocilayout.refDescriptor(out, "v1")["digest"], descriptor["digest"])
        # The same instance takes pushes outside every prefix, and refuses
        # them inside one.
        _skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:v1",
                f"docker://{self.host}/team/tool:v1", context=context)
        refused = daemons.run(
            [daemons.require("skopeo")["skopeo"], "--insecure-policy", "copy",
             "--dest-tls-verify=false", f"oci:{layout.path}:v1",
             f"docker://{self.host}/ghcr.io/team/tool:v1"], check=False, context=context)
        self.assertNotEqual(refused.returncode, 0)
        self.upstream.stop()
        again = os.path.join(self.work, "again")
        _skopeo("copy", "--src-tls-verify=false", f"docker://{self.host}/docker.io/library/tool:v1",
                f"oci:{again}:v1", context=context)
        self.assertEqual(ocilayout.refDescriptor(again, "v1")["digest"], descriptor["digest"])


class ConcurrentPullTests(TestCase):
    """
    Eight clients at once pulling a 100 MiB blob nobody pulled before.
    """

    SIZE = 100 * 1024 * 1024

    def test_oneUpstreamGet(self) -> None:
        upstream = daemons.startRegistry(self)
        cache = daemons.startRegistry(self, config={"proxy": {"upstreams": [
            {"prefix": "up.example", "url": upstream.url}]}})
        # The same bytes, made twice: never all of them in memory twice.
        digest = _pushGenerated(upstream.url, "big/blob", self.SIZE)

        def pull(_: int) -> str:
            hasher = hashlib.sha256()
            url = f"{cache.url}/v2/up.example/big/blob/blobs/{digest}"
            with urllib.request.urlopen(url, timeout=600) as response:
                while chunk := response.read(1 << 20):
                    hasher.update(chunk)
            return "sha256:" + hasher.hexdigest()

        with ThreadPoolExecutor(8) as pool:
            digests = list(pool.map(pull, range(8)))
        self.assertEqual(digests, [digest] * 8)
        gets = re.findall(rf'"GET /v2/big/blob/blobs/{digest} ', upstream.log())
        self.assertEqual(len(gets), 1, upstream.log()[-4000:])


def _generated(size: int) -> Any:
    block = hashlib.sha256(b"seed").digest() * (1 << 15)
    sent = 0
    while sent < size:
        piece = block[:size - sent]
        sent += len(piece)
        yield piece


def _pushGenerated(url: str, name: str, size: int) -> str:
    hasher = hashlib.sha256()
    for piece in _generated(size):
        hasher.update(piece)
    digest = "sha256:" + hasher.hexdigest()
    request = urllib.request.Request(f"{url}/v2/{name}/blobs/uploads/", method="POST", data=b"")
    with urllib.request.urlopen(request) as response:
        location = response.headers["Location"]
    if location.startswith("/"):
        location = url + location
    separator = "&" if "?" in location else "?"
    request = urllib.request.Request(
        f"{location}{separator}digest={digest}", method="PUT", data=_generated(size),
        headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=600) as response:
        assert response.status == 201, response.status
    return digest
