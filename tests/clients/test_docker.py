"""
The docker CLI and engine against a txregistry child process: images made
here (C{docker import}, C{docker build FROM scratch}), pushed, pulled back
by tag and by digest.
"""

from __future__ import annotations

import json
import os
import re

from twisted.trial.unittest import SkipTest, TestCase

from tests.clients import daemons, wire

BIG_LAYER = 110 * 1024 * 1024


def _pushedDigest(output: str) -> str:
    """
    The manifest digest C{docker push} reports (C{TAG: digest: D size: N}).
    """
    match = re.search(r"digest: (sha256:[0-9a-f]{64}) size: \d+", output)
    assert match, f"no digest in docker push output:\n{output}"
    return match.group(1)


class DockerTests(TestCase):
    """
    docker push and pull.
    """

    def setUp(self) -> None:
        self.docker = daemons.dockerDaemon()
        self.registry = daemons.startRegistry(self)
        self.host = f"127.0.0.1:{self.registry.port}"
        self.images: list[str] = []
        self.containers: list[str] = []
        self.addCleanup(self._forget)

    def _forget(self) -> None:
        for container in self.containers:
            self.docker.run("rm", "-f", container, check=False)
        if self.images:
            self.docker.run("rmi", "-f", *self.images, check=False)

    def dockerRun(self, *arguments: str, check: bool = True):
        return self.docker.run(*arguments, check=check, context=self.registry)

    def inspect(self, reference: str) -> dict:
        result = self.dockerRun("image", "inspect", reference)
        return json.loads(result.stdout)[0]

    def fileFromImage(self, image: str, path: str, directory: str) -> str:
        """
        Copy C{path} out of C{image} (through a created, never started,
        container) into C{directory}; return the copy's path.
        """
        container = self.dockerRun("create", image, "/none").stdout.decode().strip()
        self.containers.append(container)
        os.makedirs(directory, exist_ok=True)
        self.dockerRun("cp", f"{container}:{path}", directory)
        self.dockerRun("rm", container)
        self.containers.remove(container)
        return os.path.join(directory, os.path.basename(path))

    def test_importTagPush(self) -> None:
        """
        An image from C{docker import} pushes; the registry then serves
        its manifest under the tag with the digest docker reported, and
        every blob the manifest names.
        """
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        tarball = os.path.join(work, "rootfs.tar")
        wire.tarball(tarball, {"hello.txt": b"hello from txregistry\n", "etc/motd": b"imported\n"})
        local = "txregistry-test/imported:src"
        remote = f"{self.host}/test/imported:1"
        self.images += [local, remote]
        self.dockerRun("import", tarball, local)
        self.dockerRun("tag", local, remote)
        pushed = self.dockerRun("push", remote).stdout.decode()
        digest = _pushedDigest(pushed)

        response = wire.manifest(self.registry.url, "test/imported", "1")
        self.assertEqual(response.status, 200, str(response))
        self.assertEqual(response.headers["Docker-Content-Digest"], digest, str(response))
        self.assertEqual(wire.sha256(response.body), digest)
        document = response.json()
        self.assertEqual(response.headers["Content-Type"], document["mediaType"])
        self.assertIn(document["mediaType"], (wire.DOCKER_MANIFEST, wire.OCI_MANIFEST))
        self.assertEqual(len(document["layers"]), 1)

        config = wire.request(self.registry.url, f"/v2/test/imported/blobs/{document['config']['digest']}")
        self.assertEqual(config.status, 200, str(config))
        self.assertEqual(wire.sha256(config.body), document["config"]["digest"])
        image = self.inspect(remote)
        self.assertEqual(image["Id"], document["config"]["digest"])
        self.assertEqual(config.json()["rootfs"]["diff_ids"], image["RootFS"]["Layers"])
        for layer in document["layers"]:
            head = wire.request(self.registry.url, f"/v2/test/imported/blobs/{layer['digest']}", "HEAD")
            self.assertEqual(head.status, 200, str(head))
            self.assertEqual(int(head.headers["Content-Length"]), layer["size"])

        tags = wire.request(self.registry.url, "/v2/test/imported/tags/list")
        self.assertEqual(tags.json(), {"name": "test/imported", "tags": ["1"]})
        catalog = wire.request(self.registry.url, "/v2/_catalog")
        self.assertIn("test/imported", catalog.json()["repositories"])

        # And it comes back.
        self.dockerRun("rmi", local, remote)
        self.dockerRun("pull", remote)
        self.assertIn(f"{self.host}/test/imported@{digest}", self.inspect(remote)["RepoDigests"])
        copied = self.fileFromImage(remote, "/hello.txt", os.path.join(work, "out"))
        with open(copied, "rb") as f:
            self.assertEqual(f.read(), b"hello from txregistry\n")

    def test_multiLayerBigImage(self) -> None:
        """
        A three-layer image built FROM scratch, one layer over 100 MiB of
        incompressible data: pushed; pushed again with every layer found
        already there; removed and pulled back by tag and by digest with
        the same digest and the same bytes.
        """
        work = os.path.abspath(self.mktemp())
        context = os.path.join(work, "context")
        os.makedirs(context)
        with open(os.path.join(context, "small.txt"), "wb") as f:
            f.write(b"first layer\n" + os.urandom(16).hex().encode())
        bigDigest = wire.randomFile(os.path.join(context, "big.bin"), BIG_LAYER)
        with open(os.path.join(context, "third.txt"), "wb") as f:
            f.write(b"third layer\n" + os.urandom(16).hex().encode())
        with open(os.path.join(context, "Dockerfile"), "w") as f:
            f.write(
                "FROM scratch\n"
                "COPY small.txt /small.txt\n"
                "COPY big.bin /data/big.bin\n"
                "COPY third.txt /third.txt\n"
                'CMD ["/none"]\n'
            )
        repository = f"{self.host}/test/big"
        remote = f"{repository}:1"
        self.images.append(remote)
        self.dockerRun("build", "--no-cache", "-t", remote, context)
        built = self.inspect(remote)
        self.assertEqual(len(built["RootFS"]["Layers"]), 3)

        digest = _pushedDigest(self.dockerRun("push", remote).stdout.decode())
        self.assertIn(f"{repository}@{digest}", self.inspect(remote)["RepoDigests"])

        response = wire.manifest(self.registry.url, "test/big", "1")
        self.assertEqual(response.status, 200, str(response))
        self.assertEqual(wire.sha256(response.body), digest)
        layers = response.json()["layers"]
        self.assertEqual(len(layers), 3)
        self.assertTrue(any(layer["size"] > 100 * 1024 * 1024 for layer in layers), layers)

        again = self.dockerRun("push", remote).stdout.decode()
        self.assertEqual(_pushedDigest(again), digest)
        self.assertEqual(again.count("Layer already exists"), 3, again)
        self.assertNotIn("Pushed", again)

        # Pull by tag.
        self.dockerRun("rmi", remote)
        self.assertNotEqual(self.dockerRun("image", "inspect", remote, check=False).returncode, 0)
        self.dockerRun("pull", remote)
        pulled = self.inspect(remote)
        self.assertEqual(pulled["Id"], built["Id"])
        self.assertIn(f"{repository}@{digest}", pulled["RepoDigests"])
        copy = self.fileFromImage(remote, "/data/big.bin", os.path.join(work, "bytag"))
        self.assertEqual(wire.fileDigest(copy), bigDigest)
        os.remove(copy)

        # Pull by digest.
        self.dockerRun("rmi", remote)
        byDigest = f"{repository}@{digest}"
        self.images.append(byDigest)
        output = self.dockerRun("pull", byDigest).stdout.decode()
        self.assertIn(digest, output)
        pulled = self.inspect(byDigest)
        self.assertEqual(pulled["Id"], built["Id"])
        self.assertIn(byDigest, pulled["RepoDigests"])
        copy = self.fileFromImage(byDigest, "/data/big.bin", os.path.join(work, "bydigest"))
        self.assertEqual(wire.fileDigest(copy), bigDigest)
        small = self.fileFromImage(byDigest, "/third.txt", os.path.join(work, "bydigest"))
        with open(small, "rb") as f, open(os.path.join(context, "third.txt"), "rb") as g:
            self.assertEqual(f.read(), g.read())

    def importImage(self, files: dict[str, bytes], tag: str) -> str:
        """
        C{docker import} a tarball of C{files} as C{tag}; return the tag.
        """
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        tarball = os.path.join(work, "rootfs.tar")
        wire.tarball(tarball, files)
        self.images.append(tag)
        self.dockerRun("import", tarball, tag)
        return tag

    def test_crossRepositoryMount(self) -> None:
        """
        Pushing an image to a second repository mounts its layer from the
        first (no upload), and both repositories serve it.
        """
        first = self.importImage({"mounted.txt": os.urandom(20000)}, f"{self.host}/test/first:1")
        digest = _pushedDigest(self.dockerRun("push", first).stdout.decode())
        second = f"{self.host}/test/second:1"
        self.images.append(second)
        self.dockerRun("tag", first, second)
        output = self.dockerRun("push", second).stdout.decode()
        self.assertEqual(_pushedDigest(output), digest)
        self.assertIn("Mounted from test/first", output)
        for name in ("test/first", "test/second"):
            response = wire.manifest(self.registry.url, name, "1")
            self.assertEqual(response.status, 200, str(response))
            self.assertEqual(response.headers["Docker-Content-Digest"], digest)
            for layer in response.json()["layers"]:
                head = wire.request(self.registry.url, f"/v2/{name}/blobs/{layer['digest']}", "HEAD")
                self.assertEqual(head.status, 200, str(head))
        self.assertRegex(
            self.registry.log(),
            r'"POST /v2/test/second/blobs/uploads/\?[^ ]*mount=sha256%3A[0-9a-f]{64}[^ ]* HTTP/1.1" 201',
        )

    def test_pullMissing(self) -> None:
        """
        Pulling a tag or repository that is not there fails, saying so.
        """
        self.importImage({"x": b"x"}, f"{self.host}/test/present:1")
        self.dockerRun("push", f"{self.host}/test/present:1")
        for reference in (f"{self.host}/test/present:2", f"{self.host}/test/absent:1"):
            result = self.dockerRun("pull", reference, check=False)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("not found", result.stderr.decode().lower(), result.stderr)

    def test_pullMultiPlatformIndex(self) -> None:
        """
        docker pulls the linux/amd64 image out of a two-platform OCI index
        (pushed with skopeo), recording the index's digest.
        """
        work = os.path.abspath(self.mktemp())
        remote, _, indexDescriptor = daemons.pushTwoPlatformIndex(work, self.host, self.registry)
        self.images.append(remote)
        self.dockerRun("pull", remote)
        image = self.inspect(remote)
        self.assertEqual(image["Architecture"], "amd64")
        self.assertIn(f"{self.host}/test/multi@{indexDescriptor['digest']}", image["RepoDigests"])
        copied = self.fileFromImage(remote, "/arch.txt", os.path.join(work, "out"))
        with open(copied, "rb") as f:
            self.assertEqual(f.read(), b"amd64\n")

    def test_relativeURLs(self) -> None:
        """
        With C{http.relativeurls} the registry's C{Location} headers are
        paths; docker still pushes (uploads and mounts) and pulls.
        """
        registry = daemons.startRegistry(self, {"REGISTRY_HTTP_RELATIVEURLS": "true"})
        host = f"127.0.0.1:{registry.port}"
        image = self.importImage({"relative.txt": os.urandom(5000)}, f"{host}/test/relative:1")
        digest = _pushedDigest(self.docker.run("push", image, context=registry).stdout.decode())
        other = f"{host}/test/relative-copy:1"
        self.images.append(other)
        self.docker.run("tag", image, other)
        output = self.docker.run("push", other, context=registry).stdout.decode()
        self.assertIn("Mounted from test/relative", output)
        self.assertEqual(_pushedDigest(output), digest)
        self.docker.run("rmi", image, other)
        self.docker.run("pull", other, context=registry)
        self.assertIn(f"{host}/test/relative-copy@{digest}", self.inspect(other)["RepoDigests"])
        post = wire.request(registry.url, "/v2/test/probe/blobs/uploads/", "POST")
        self.assertEqual(post.status, 202, str(post))
        self.assertTrue(post.headers["Location"].startswith("/v2/test/probe/blobs/uploads/"), str(post))

    def test_manifestList(self) -> None:
        """
        C{docker manifest create/annotate/push} makes a manifest list in a
        third repository out of images in two others (mounting their
        blobs, putting their manifests by digest); docker pulls the
        linux/amd64 entry out of it.
        """
        sources = {}
        for name in ("left", "right"):
            content = f"{name}\n".encode() + os.urandom(1000)
            image = self.importImage({name: content}, f"{self.host}/test/{name}:1")
            sources[name] = (image, _pushedDigest(self.dockerRun("push", image).stdout.decode()), content)
        listName = f"{self.host}/test/list:1"
        self.dockerRun("manifest", "create", "--insecure", listName,
                       sources["left"][0], sources["right"][0])
        self.dockerRun("manifest", "annotate", "--arch", "arm64", listName, sources["right"][0])
        output = self.dockerRun("manifest", "push", "--purge", "--insecure", listName).stdout.decode()
        # It reports each entry it pushed, then the list's digest last.
        found = re.findall(r"sha256:[0-9a-f]{64}", output)
        self.assertTrue(found, output)
        listDigest = found[-1]

        response = wire.manifest(self.registry.url, "test/list", "1")
        self.assertEqual(response.status, 200, str(response))
        self.assertEqual(response.headers["Content-Type"], wire.DOCKER_MANIFEST_LIST)
        self.assertEqual(response.headers["Docker-Content-Digest"], listDigest)
        entries = {
            entry["platform"]["architecture"]: entry["digest"]
            for entry in response.json()["manifests"]
        }
        self.assertEqual(entries, {"amd64": sources["left"][1], "arm64": sources["right"][1]})
        for digest in entries.values():
            child = wire.manifest(self.registry.url, "test/list", digest)
            self.assertEqual(child.status, 200, str(child))
            for blob in [child.json()["config"], *child.json()["layers"]]:
                head = wire.request(self.registry.url, f"/v2/test/list/blobs/{blob['digest']}", "HEAD")
                self.assertEqual(head.status, 200, str(head))

        self.images.append(listName)
        self.dockerRun("pull", listName)
        self.assertIn(f"{self.host}/test/list@{listDigest}", self.inspect(listName)["RepoDigests"])
        copied = self.fileFromImage(listName, "/left", os.path.abspath(self.mktemp()))
        with open(copied, "rb") as f:
            self.assertEqual(f.read(), sources["left"][2])


class DockerOnS3Tests(DockerTests):
    """
    docker push and pull again, with the registry's content in S3
    (SeaweedFS, started by the tests), redirects off so that the registry
    streams every blob from the bucket itself.
    """

    def setUp(self) -> None:
        self.docker = daemons.dockerDaemon()
        self.registry = daemons.startRegistry(self, daemons.s3Environment(self))
        self.host = f"127.0.0.1:{self.registry.port}"
        self.images: list[str] = []
        self.containers: list[str] = []
        self.addCleanup(self._forget)

    def test_relativeURLs(self) -> None:
        raise SkipTest("the same on S3 as on a filesystem: run by DockerTests")


class DockerLoginTests(TestCase):
    """
    docker login against a registry with C{auth.htpasswd}, then push and
    pull as that user; a wrong password fails the login, and nothing gets
    in without one.
    """

    def setUp(self) -> None:
        self.docker = daemons.dockerDaemon()
        self.registry = daemons.startRegistryWithUsers(self, {"alice": "wonderland"})
        self.host = f"127.0.0.1:{self.registry.port}"
        self.images: list[str] = []
        self.addCleanup(lambda: self.images and self.docker.run("rmi", "-f", *self.images, check=False))
        self.addCleanup(lambda: self.docker.run("logout", self.host, check=False))

    def dockerRun(self, *arguments: str, check: bool = True, input: bytes | None = None):
        return self.docker.run(*arguments, check=check, context=self.registry, input=input)

    def test_loginPushPull(self) -> None:
        wrong = self.dockerRun("login", "-u", "alice", "--password-stdin", self.host, check=False,
                               input=b"guess\n")
        self.assertNotEqual(wrong.returncode, 0, wrong)
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        tarball = os.path.join(work, "rootfs.tar")
        wire.tarball(tarball, {"secret.txt": b"for alice only\n"})
        local = "txregistry-test/login:src"
        remote = f"{self.host}/alice/private:1"
        self.images += [local, remote]
        self.dockerRun("import", tarball, local)
        self.dockerRun("tag", local, remote)
        anonymous = self.dockerRun("push", remote, check=False)
        self.assertNotEqual(anonymous.returncode, 0, anonymous)
        self.dockerRun("login", "-u", "alice", "--password-stdin", self.host, input=b"wonderland\n")
        digest = _pushedDigest(self.dockerRun("push", remote).stdout.decode())
        self.dockerRun("rmi", remote)
        self.dockerRun("pull", remote)
        self.assertIn(f"{self.host}/alice/private@{digest}", self.inspect(remote)["RepoDigests"])
        # Without credentials the registry gives nothing away.
        self.assertEqual(wire.request(self.registry.url, "/v2/alice/private/tags/list").status, 401)

    def inspect(self, reference: str) -> dict:
        return json.loads(self.dockerRun("image", "inspect", reference).stdout)[0]


#: Anonymous pulls of public/*, each user's own namespace, alice everywhere.
PUBLIC_PULL = {
    "rules": [
        {"repository": "${account}/**", "authenticated": ["pull", "push", "delete"]},
        {"repository": "public/**", "anonymous": ["pull"], "authenticated": ["pull"],
         "users": {"alice": ["push"]}},
    ],
}


class DockerAccessPolicyTests(TestCase):
    """
    docker against a registry with an access policy allowing anonymous
    pulls of public repositories and authenticated pushes, through the
    built-in token server.  (With Basic passwords alone docker cannot do
    both: it will not go on after a Basic challenge it has no password
    for, and will not send its password without one.)
    """

    def setUp(self) -> None:
        self.docker = daemons.dockerDaemon()
        self.images: list[str] = []
        self.addCleanup(lambda: self.images and self.docker.run("rmi", "-f", *self.images, check=False))

    def start(self, auth: dict) -> None:
        self.registry = daemons.startRegistryWithUsers(
            self, {"alice": "wonderland", "bob": "builder"}, auth)
        self.host = f"127.0.0.1:{self.registry.port}"
        self.addCleanup(lambda: self.docker.run("logout", self.host, check=False))

    def dockerRun(self, *arguments: str, check: bool = True, input: bytes | None = None):
        return self.docker.run(*arguments, check=check, context=self.registry, input=input)

    def image(self, remote: str, content: bytes) -> None:
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        tarball = os.path.join(work, "rootfs.tar")
        wire.tarball(tarball, {"file.txt": content})
        local = "txregistry-test/policy:src"
        self.images += [local, remote]
        self.dockerRun("import", tarball, local)
        self.dockerRun("tag", local, remote)

    def anonymousPullAuthenticatedPush(self) -> None:
        remote = f"{self.host}/public/app:1"
        self.image(remote, b"public content\n")
        anonymous = self.dockerRun("push", remote, check=False)
        self.assertNotEqual(anonymous.returncode, 0, anonymous)
        self.dockerRun("login", "-u", "bob", "--password-stdin", self.host, input=b"builder\n")
        # bob may push his own namespace (not public/app: tests.api.test_access).
        own = f"{self.host}/bob/app:1"
        self.dockerRun("tag", remote, own)
        self.images.append(own)
        self.dockerRun("push", own)
        self.dockerRun("logout", self.host)
        self.dockerRun("login", "-u", "alice", "--password-stdin", self.host, input=b"wonderland\n")
        digest = _pushedDigest(self.dockerRun("push", remote).stdout.decode())
        self.dockerRun("logout", self.host)
        # Anonymous: the public image pulls, bob's does not.
        self.dockerRun("rmi", remote, own)
        self.dockerRun("pull", remote)
        self.assertIn(f"{self.host}/public/app@{digest}",
                      json.loads(self.dockerRun("image", "inspect", remote).stdout)[0]["RepoDigests"])
        private = self.dockerRun("pull", own, check=False)
        self.assertNotEqual(private.returncode, 0, private)

    def test_tokenServer(self) -> None:
        """
        The same through the built-in token server: docker is challenged
        to get tokens from the registry itself, logs in there, and pulls
        anonymously with an anonymous token.
        """
        self.start({"access": PUBLIC_PULL, "tokenserver": {"service": "txregistry-test"}})
        wrong = self.dockerRun("login", "-u", "alice", "--password-stdin", self.host, check=False,
                               input=b"guess\n")
        self.assertNotEqual(wrong.returncode, 0, wrong)
        self.anonymousPullAuthenticatedPush()
        self.assertIn("Token server: issued bob a token", self.registry.log())
        self.assertIn("Token server: issued (anonymous) a token for repository:public/app:pull",
                      self.registry.log())

class DockerMetricsTests(TestCase):
    """
    The Prometheus metrics of a registry that docker pushed to.
    """

    def test_pushShowsInMetrics(self) -> None:
        """
        After C{docker push}, a scrape of the debug listener counts the
        push's requests by route, and the upload routes' request bytes hold
        at least every blob pushed.
        """
        from prometheus_client.parser import text_string_to_metric_families

        from tests.support import freePort

        docker = daemons.dockerDaemon()
        debug = f"127.0.0.1:{freePort()}"
        registry = daemons.startRegistry(self, env={
            "REGISTRY_HTTP_DEBUG_ADDR": debug,
            "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED": "true",
        })
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        tarball = os.path.join(work, "rootfs.tar")
        wire.tarball(tarball, {"random.bin": os.urandom(1 << 20)})
        local, remote = "txregistry-test/metrics:src", f"127.0.0.1:{registry.port}/test/metrics:1"
        self.addCleanup(docker.run, "rmi", "-f", local, remote, check=False)
        docker.run("import", tarball, local, context=registry)
        docker.run("tag", local, remote, context=registry)
        docker.run("push", remote, context=registry)
        document = wire.manifest(registry.url, "test/metrics", "1").json()
        pushed = document["config"]["size"] + sum(layer["size"] for layer in document["layers"])

        scrape = wire.request(f"http://{debug}", "/metrics")
        self.assertEqual(scrape.status, 200, str(scrape))
        found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(scrape.body.decode()):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        self.assertEqual(found[("registry_http_requests_total",
                                (("code", "201"), ("handler", "manifest.put"), ("method", "PUT")))], 1)
        uploaded = sum(value for (name, labels), value in found.items()
                       if name == "registry_http_request_size_bytes_sum"
                       and dict(labels)["handler"].startswith("upload."))
        self.assertGreaterEqual(uploaded, pushed)
        self.assertGreater(pushed, 1 << 20)
        self.assertEqual(sum(value for (name, _), value in found.items()
                             if name == "registry_http_in_flight_requests"), 0)
