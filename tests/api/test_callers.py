"""
The L{Caller} every request reaches the model's layers with
(L{txregistry.api.callers}): the actor the door let in, and the facts of
the request, bound through L{INamespace.actingFor}.
"""

from __future__ import annotations

from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import TestCase

from txregistry.config import checkConfiguration
from txregistry.interfaces import ANONYMOUS, Caller, INamespace, IRepository
from txregistry.registry.forwarding import ForwardingNamespace
from txregistry.registry.namespace import StorageNamespace
from txregistry.registry.switches import readOnly
from txregistry.service import siteFor
from txregistry.storage.factories import createDriver


class Recording(ForwardingNamespace):
    """
    A layer that depends on its caller: notes who each repository was
    asked for by.
    """

    dependsOnCaller = True

    def __init__(self, inner: INamespace, seen: list[Caller]) -> None:
        super().__init__(inner)
        self.seen = seen

    def wrapRepository(self, repository: IRepository) -> IRepository:
        self.seen.append(self.caller)
        return repository


class ActingForTests(TestCase):
    def setUp(self) -> None:
        self.storage = StorageNamespace(createDriver("inmemory", {}, reactor), reactor)

    def test_layersThatIgnoreTheCallerAreShared(self) -> None:
        """
        Binding a caller costs nothing where no layer uses it: storage and
        the switches are the same objects for every caller.
        """
        namespace = readOnly(self.storage)
        self.assertIs(namespace.actingFor(Caller(name="alice")), namespace)
        self.assertIs(self.storage.actingFor(Caller(name="alice")), self.storage)

    def test_bindingLeavesTheSharedLayerAlone(self) -> None:
        """
        A layer that depends on the caller is copied for each; the shared
        one still acts for nobody, and a layer outside it is copied too.
        """
        seen: list[Caller] = []
        shared = readOnly(Recording(self.storage, seen))
        alice = Caller(name="alice")
        bound = shared.actingFor(alice)
        self.assertIsNot(bound, shared)
        bound.repository("a/b")
        shared.repository("a/b")
        self.assertEqual(seen, [alice, ANONYMOUS])


class RequestCallerTests(TestCase):
    async def serve(self, document: dict[str, Any]) -> tuple[str, list[Caller]]:
        document = {"storage": {"inmemory": {}}, "log": {"accesslog": {"disabled": True}},
                    **document}
        config = checkConfiguration(document)
        driver = createDriver("inmemory", {}, reactor)
        seen: list[Caller] = []
        site = siteFor(config, Recording(StorageNamespace(driver, reactor), seen), reactor)
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
        self.addCleanup(port.stopListening)
        return f"http://127.0.0.1:{port.getHost().port}", seen

    async def test_actorAndRequest(self) -> None:
        """
        The layers see who logged in and how the request came: its
        method, host, origin, client address and user agent, and an id of
        its own.
        """
        url, seen = await self.serve(
            {"auth": {"silly": {"realm": "https://auth.example/token", "service": "reg"}}})
        for _ in range(2):
            response = await treq.get(
                url + "/v2/a/b/tags/list", persistent=False,
                headers={"Authorization": ["Bearer x"], "User-Agent": ["docker/27.0"]})
            await response.content()
        first, second = seen
        port = url.rsplit(":", 1)[1]
        self.assertEqual(
            (first.name, first.method, first.host, first.origin, first.address, first.userAgent),
            ("silly", "GET", f"127.0.0.1:{port}", url, "127.0.0.1", "docker/27.0"))
        self.assertNotEqual(first.requestID, second.requestID)
        self.assertEqual(len(first.requestID), 36)

    async def test_anonymousBehindAProxy(self) -> None:
        """
        Without auth the caller has no name; behind a proxy its address is
        the first C{X-Forwarded-For} entry and its origin what the proxy
        forwarded.
        """
        url, seen = await self.serve({})
        response = await treq.get(
            url + "/v2/a/b/tags/list", persistent=False,
            headers={"X-Forwarded-For": ["203.0.113.7, 10.0.0.1"],
                     "X-Forwarded-Proto": ["https"], "X-Forwarded-Host": ["registry.example"]})
        await response.content()
        [caller] = seen
        self.assertEqual((caller.name, caller.address, caller.origin),
                         ("", "203.0.113.7", "https://registry.example"))
