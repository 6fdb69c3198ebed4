"""
The registry behind a real nginx reverse proxy, configured the way
operators usually do: HTTP/1.0 to the upstream (nginx's default), TLS
terminated at the proxy and reported in X-Forwarded-Proto/Host.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.client import FileBodyProducer
from twisted.web.iweb import UNKNOWN_LENGTH

from tests.support import freePort, startRegistry

_CONFIG = """
daemon off;
{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-Host registry.example.test;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"""


def nginxBinary() -> str:
    """
    nginx from Debian, installed if missing (as root with apt-get).
    """
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SkipTest("nginx is not installed and cannot be (needs root and apt-get)")
    subprocess.run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q", "nginx-light"],
        check=False, capture_output=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
    )
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        raise SkipTest("apt-get could not install nginx")
    return found


class _Unsized(FileBodyProducer):
    """
    A body of unknown length, which treq sends chunked (as docker does).
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.length = UNKNOWN_LENGTH


class _Nginx(ProcessProtocol):
    def __init__(self) -> None:
        self.ended: Deferred[None] = Deferred()

    def processEnded(self, reason: object) -> None:
        self.ended.callback(None)


class NginxProxyTests(TestCase):
    async def startProxy(self) -> str:
        binary = nginxBinary()
        self.registry = await startRegistry(self, {"log": {"accesslog": {"disabled": False}}})
        self.events: list[dict] = []

        def observe(event: dict) -> None:
            if "protocol" in event and "status" in event:
                self.events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        port = freePort()
        upstream = self.registry.url.rsplit(":", 1)[1]
        config = os.path.join(directory, "nginx.conf")
        with open(config, "w") as f:
            # Workers must be able to write the temporary body files (nginx buffers
            # a chunked body for an HTTP/1.0 upstream) in this test-owned directory.
            user = "user root;" if os.geteuid() == 0 else ""
            f.write(_CONFIG.format(dir=directory, port=port, upstream=upstream, user=user))
        protocol = _Nginx()
        process = reactor.spawnProcess(
            protocol, binary, [binary, "-c", config, "-p", directory], env=dict(os.environ)
        )

        async def stop() -> None:
            process.signalProcess(signal.SIGQUIT)
            await protocol.ended

        self.addCleanup(lambda: Deferred.fromCoroutine(stop()))
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                await deferLater(reactor, 0.05, lambda: None)
        else:
            self.fail("nginx did not start: " + open(os.path.join(directory, "error.log")).read())
        return f"http://127.0.0.1:{port}"

    async def test_pushAndPullThroughProxy(self) -> None:
        """
        Through nginx, with HTTP/1.0 upstream requests: an upload's Location
        names the proxy's public https URL; a chunked PATCH, a final PUT and
        a GET of the blob round-trip the bytes.
        """
        proxy = await self.startProxy()
        response = await treq.get(proxy + "/v2/", persistent=False)
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.json(), {})

        response = await treq.post(proxy + "/v2/proxied/repo/blobs/uploads/", persistent=False)
        self.assertEqual(response.code, 202)
        location = response.headers.getRawHeaders("location")[0]
        self.assertTrue(
            location.startswith("https://registry.example.test/v2/proxied/repo/blobs/uploads/"),
            location,
        )
        path = location[len("https://registry.example.test"):]

        content = os.urandom(3 * 1024 * 1024 + 17)
        digest = "sha256:" + hashlib.sha256(content).hexdigest()

        response = await treq.patch(proxy + path, data=_Unsized(content), persistent=False)
        self.assertEqual(response.code, 202, await response.text())
        self.assertEqual(response.headers.getRawHeaders("range"), [f"0-{len(content) - 1}"])

        # The Location carries its signed _state: the digest goes after it.
        response = await treq.put(proxy + path + "&digest=" + digest, persistent=False)
        self.assertEqual(response.code, 201, await response.text())
        self.assertEqual(response.headers.getRawHeaders("docker-content-digest"), [digest])
        self.assertTrue(
            response.headers.getRawHeaders("location")[0].startswith("https://registry.example.test/")
        )

        response = await treq.get(proxy + "/v2/proxied/repo/blobs/" + digest, persistent=False)
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.content(), content)

        protocols = {e["protocol"] for e in self.events}
        self.assertEqual(protocols, {"HTTP/1.0"})
