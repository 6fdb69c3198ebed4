"""
What the notifications tests share: a real webhook receiver (a
twisted.web site on a local port, which can be taken down and brought
back on the same port), a registry run as L{RegistryService} in this
process with endpoints pointing at receivers, and waiting for events.
"""

from __future__ import annotations

import json
import os
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import deferLater
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.support import freePort
from txregistry.config import checkConfiguration
from txregistry.service import RegistryService


class _Hook(Resource):
    isLeaf = True

    def __init__(self, receiver: "Receiver") -> None:
        super().__init__()
        self.receiver = receiver

    def render_POST(self, request: Any) -> bytes:
        body = request.content.read()
        headers = {
            k.decode("latin-1").lower(): v[0].decode("latin-1")
            for k, v in request.requestHeaders.getAllRawHeaders()
        }
        self.receiver.requests.append((headers, body))
        status = self.receiver.status
        request.setResponseCode(status)
        if 200 <= status < 300:
            self.receiver.envelopes.append(json.loads(body))
        elif 300 <= status < 400:
            request.setHeader(b"location", self.receiver.url.encode("ascii") + b"/elsewhere")
        return b""


class Receiver:
    """
    A webhook endpoint: every envelope it accepted (answered 2xx), in
    order of arrival.

    @ivar status: what it answers.
    @ivar requests: every request's headers and body, accepted or not.
    """

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.port = freePort()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.envelopes: list[dict[str, Any]] = []
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._listening: Any = None

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for envelope in self.envelopes for event in envelope["events"]]

    async def start(self) -> "Receiver":
        site = Site(_Hook(self))
        site.noisy = False
        endpoint = TCP4ServerEndpoint(reactor, self.port, interface="127.0.0.1")
        self._listening = await endpoint.listen(site)
        return self

    async def stop(self) -> None:
        if self._listening is not None:
            listening, self._listening = self._listening, None
            await listening.stopListening()


async def startReceiver(testCase: Any, status: int = 200) -> Receiver:
    receiver = await Receiver(status).start()
    testCase.addCleanup(lambda: Deferred.fromCoroutine(receiver.stop()))
    return receiver


def endpoint(receiver: Receiver, name: str = "hook", **extra: Any) -> dict[str, Any]:
    """
    An endpoint entry for C{receiver} that retries quickly.
    """
    entry: dict[str, Any] = {
        "name": name, "url": receiver.url, "timeout": "5s", "threshold": 1, "backoff": "50ms",
    }
    entry.update(extra)
    return entry


class NotifyingRegistry:
    """
    A L{RegistryService} (in-memory storage unless C{storage} names
    another, deletes enabled, an outbox in the test's directory) on an
    ephemeral port of this process.
    """

    def __init__(self, testCase: Any, endpoints: list[dict[str, Any]], outbox: str | None = None,
                 storage: dict[str, Any] | None = None, **notifications: Any) -> None:
        self.outbox = outbox or os.path.abspath(testCase.mktemp())
        document = {
            "storage": {**(storage or {"inmemory": {}}), "delete": {"enabled": True}},
            "log": {"accesslog": {"disabled": True}},
            "http": {"addr": "127.0.0.1:0"},
            "notifications": {
                "endpoints": endpoints,
                "outbox": {"directory": self.outbox},
                **notifications,
            },
        }
        self.config = checkConfiguration(document)
        self.service = RegistryService(
            self.config, reactor, endpoint=TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        )
        self.url = ""

    async def start(self) -> "NotifyingRegistry":
        self.service.startService()
        port = await self.service._listener._waitingForPort
        self.url = f"http://127.0.0.1:{port.getHost().port}"
        return self

    async def stop(self) -> None:
        if self.service.running:
            await self.service.stopService()

    def request(self, method: str, path: str, **kwargs: Any) -> Deferred[Any]:
        kwargs.setdefault("persistent", False)
        return treq.request(method, self.url + path, **kwargs)

    @property
    def dispatchers(self) -> Any:
        assert self.service.notifier is not None
        return self.service.notifier.dispatchers


async def startNotifyingRegistry(
    testCase: Any, endpoints: list[dict[str, Any]], **notifications: Any
) -> NotifyingRegistry:
    registry = await NotifyingRegistry(testCase, endpoints, **notifications).start()
    testCase.addCleanup(lambda: Deferred.fromCoroutine(registry.stop()))
    return registry


async def waitUntil(condition: Any, interval: float = 0.02) -> None:
    """
    Poll C{condition} until it holds (the test's own timeout bounds the
    wait: nothing here is timed).
    """
    while not condition():
        await deferLater(reactor, interval, lambda: None)


def summary(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """
    Each event as (action, repository, kind, digest, tag): what the tests
    compare.
    """
    found = []
    for event in events:
        target = event["target"]
        url = target.get("url", "")
        kind = "manifests" if "/manifests/" in url else "blobs" if "/blobs/" in url else ""
        found.append((
            event["action"], target.get("repository", ""), kind,
            target.get("digest", ""), target.get("tag", ""),
        ))
    return found
