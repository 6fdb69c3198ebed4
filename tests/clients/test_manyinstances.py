"""
docker push and pull through nginx, round robin with no sticky sessions,
to two txregistry instances (twistd children) on one storage: S3
(SeaweedFS) with a Redis cache (a real redis-server), and one shared
filesystem root.  The configuration files are README's example,
C{docs/many-instances/}, with the addresses rewritten.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from typing import Any

import yaml
from twisted.trial.unittest import TestCase

from tests.clients import daemons, wire
from tests.support import freePort
from tests.test_nginx import nginxBinary

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "docs", "many-instances")
MiB = 1024 * 1024


def exampleNginx(directory: str, port: int, upstreams: list[int]) -> str:
    """
    C{docs/many-instances/nginx.conf} listening on C{port} and proxying to
    C{upstreams}, with its files in C{directory}; the path written.
    """
    with open(os.path.join(EXAMPLE, "nginx.conf")) as f:
        text = f.read()
    text = text.replace("listen 127.0.0.1:5000;", f"listen 127.0.0.1:{port};")
    servers = "".join(f"server 127.0.0.1:{p};\n        " for p in upstreams)
    text = re.sub(r"server 127\.0\.0\.1:5001;\s*server 127\.0\.0\.1:5002;\s*", servers, text)
    own = (f"daemon off;\n{'user root;' if os.geteuid() == 0 else ''}\n"
           f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n")
    temp = "".join(f"    {kind}_temp_path {directory}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = own + text.replace("http {\n", "http {\n    access_log off;\n" + temp, 1)
    path = os.path.join(directory, "nginx.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


class _ManyInstances:
    """
    Two instances of the example configuration behind the example nginx.
    """

    example = ""

    def configure(self, config: dict[str, Any]) -> dict[str, str]:
        """
        Point C{config} (the example's) at this test's storage; the
        environment the instances need.
        """
        raise NotImplementedError

    def setUp(self) -> None:
        testCase: Any = self
        self.docker = daemons.dockerDaemon()
        with open(os.path.join(EXAMPLE, self.example)) as f:
            config = yaml.safe_load(f)
        del config["http"]["addr"]  # each its own, from the environment
        env = self.configure(config)
        config.pop("version", None)
        self.instances = [daemons.startRegistry(testCase, env=dict(env), config=config,
                                                storage=getattr(self, "root", None))
                          for _ in range(2)]
        directory = os.path.abspath(testCase.mktemp())
        os.makedirs(directory)
        self.port = freePort()
        binary = nginxBinary()
        conf = exampleNginx(directory, self.port, [i.port for i in self.instances])
        nginx = subprocess.Popen([binary, "-c", conf, "-p", directory],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop() -> None:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(30)

        testCase.addCleanup(stop)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(open(os.path.join(directory, "error.log")).read()) from None
                time.sleep(0.05)
        self.host = f"127.0.0.1:{self.port}"
        self.images: list[str] = []
        testCase.addCleanup(self._forget)

    def _forget(self) -> None:
        if self.images:
            self.docker.run("rmi", "-f", *self.images, check=False)

    def dockerRun(self, *arguments: str, check: bool = True) -> Any:
        return self.docker.run(*arguments, check=check, context=self.instances[0])

    def test_pushPullRoundRobin(self) -> None:
        """
        A three-layer image pushed through the proxy lands, uploads begun
        on one instance going on on the other; its tag is read back through
        each instance at once; removed and pulled back through the proxy,
        it is the same image.
        """
        testCase: Any = self
        work = os.path.abspath(testCase.mktemp())
        context = os.path.join(work, "context")
        os.makedirs(context)
        with open(os.path.join(context, "small.txt"), "wb") as f:
            f.write(b"first layer\n" + os.urandom(16).hex().encode())
        bigDigest = wire.randomFile(os.path.join(context, "big.bin"), 12 * MiB)
        with open(os.path.join(context, "third.txt"), "wb") as f:
            f.write(b"third layer\n" + os.urandom(16).hex().encode())
        with open(os.path.join(context, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY small.txt /small.txt\nCOPY big.bin /data/big.bin\n"
                    'COPY third.txt /third.txt\nCMD ["/none"]\n')
        remote = f"{self.host}/many/app:1"
        self.images.append(remote)
        self.dockerRun("build", "--no-cache", "-t", remote, context)
        built = json.loads(self.dockerRun("image", "inspect", remote).stdout)[0]
        output = self.dockerRun("push", remote).stdout.decode()
        match = re.search(r"digest: (sha256:[0-9a-f]{64})", output)
        testCase.assertIsNotNone(match, output)
        assert match is not None
        digest = match.group(1)

        # Round robin, no stickiness: some upload was begun on one instance
        # and went on (a PATCH or the PUT) on the other.
        uploads = [set(re.findall(r"/v2/many/app/blobs/uploads/([0-9a-f-]{36})", i.log()))
                   for i in self.instances]
        testCase.assertTrue(uploads[0] & uploads[1], uploads)
        for instance in self.instances:
            response = wire.manifest(instance.url, "many/app", "1")
            testCase.assertEqual(response.status, 200, str(response))
            testCase.assertEqual(wire.sha256(response.body), digest)
        layers = wire.manifest(self.instances[1].url, "many/app", "1").json()["layers"]
        testCase.assertEqual(len(layers), 3)

        self.dockerRun("rmi", remote)
        self.dockerRun("pull", remote)
        pulled = json.loads(self.dockerRun("image", "inspect", remote).stdout)[0]
        testCase.assertEqual(pulled["Id"], built["Id"])
        container = self.dockerRun("create", remote, "/none").stdout.decode().strip()
        try:
            self.dockerRun("cp", f"{container}:/data/big.bin", work)
        finally:
            self.dockerRun("rm", container, check=False)
        testCase.assertEqual(wire.fileDigest(os.path.join(work, "big.bin")), bigDigest)


class S3AndRedisTests(_ManyInstances, TestCase):
    example = "registry.yml"

    def configure(self, config: dict[str, Any]) -> dict[str, str]:
        from tests.rediscache.redisserver import RedisServer
        from tests.storage.servers import SeaweedFS, server

        redis = RedisServer(self).start()
        config["redis"]["addrs"] = redis.section["addrs"]
        parameters = server(SeaweedFS).parameters(self)
        # The example's keys, with the test store's endpoint, credentials
        # and prefix (and its 5 MiB parts, so the big layer has several).
        config["storage"]["s3"].update(parameters)
        # The whole section (YAML, as the environment's values are): the
        # helpers keep their filesystem default unless REGISTRY_STORAGE is set.
        return {"REGISTRY_STORAGE": json.dumps(config.pop("storage"))}


class SharedFilesystemTests(_ManyInstances, TestCase):
    example = "registry-filesystem.yml"

    def configure(self, config: dict[str, Any]) -> dict[str, str]:
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        del config["storage"]["filesystem"]
        return {}
