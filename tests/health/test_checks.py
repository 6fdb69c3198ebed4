"""
The built-in checks against real things: files, a listening TCP port, a
twisted.web server, storage drivers.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.support import freePort
from txregistry.health.checks import CheckFailed
from txregistry.health.factories import checkFactories, createCheck
from txregistry.health.interfaces import CheckContext
from txregistry.opsconfig import CheckConfig
from txregistry.registry.layout import HEALTH_PROBE
from txregistry.storage.errors import StorageError
from txregistry.storage.filesystem import createFilesystemDriver
from txregistry.storage.inmemory import InMemoryDriver


class _Status(Resource):
    isLeaf = True

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code
        self.seen: list[bytes | None] = []

    def render_HEAD(self, request: object) -> bytes:
        self.seen.append(request.getHeader(b"x-probe"))  # type: ignore[attr-defined]
        request.setResponseCode(self.code)  # type: ignore[attr-defined]
        return b""


class CheckTests(TestCase):
    def context(self, driver: object = None, readOnly: bool = False) -> CheckContext:
        return CheckContext(reactor, driver, readOnly)

    def test_pluginsFound(self) -> None:
        self.assertEqual(sorted(checkFactories()), ["file", "http", "storagedriver", "tcp"])

    async def test_file(self) -> None:
        path = os.path.abspath(self.mktemp())
        check = createCheck(CheckConfig("file", path), self.context())
        self.assertEqual(check.name, f"file:{path}")
        await check.check()
        open(path, "w").close()
        error = await self.assertFailure(check.check(), CheckFailed)
        self.assertEqual(str(error), f"file exists: {path}")

    async def test_tcp(self) -> None:
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            Factory.forProtocol(Protocol))
        self.addCleanup(port.stopListening)
        check = createCheck(CheckConfig("tcp", f"127.0.0.1:{port.getHost().port}", timeout=2),
                            self.context())
        await check.check()
        closed = createCheck(CheckConfig("tcp", f"127.0.0.1:{freePort()}", timeout=2),
                             self.context())
        await self.assertFailure(closed.check(), Exception)

    async def test_http(self) -> None:
        """
        A HEAD with the configured headers; the status must be the
        configured one.
        """
        resource = _Status(204)
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(resource))
        self.addCleanup(port.stopListening)
        uri = f"http://127.0.0.1:{port.getHost().port}/ping"
        good = createCheck(CheckConfig("http", uri, statusCode=204, timeout=2,
                                       headers={"X-Probe": ["yes"]}), self.context())
        await good.check()
        self.assertEqual(resource.seen, [b"yes"])
        bad = createCheck(CheckConfig("http", uri, timeout=2), self.context())
        error = await self.assertFailure(bad.check(), CheckFailed)
        self.assertEqual(str(error), f"HEAD {uri} answered 204, expected 200")

    async def test_storageWrites(self) -> None:
        """
        The storage check writes its probe; read-only, it only reads.
        """
        driver = InMemoryDriver()
        await createCheck(CheckConfig("storagedriver", ""), self.context(driver)).check()
        await driver.stat(HEALTH_PROBE)
        other = InMemoryDriver()
        await createCheck(CheckConfig("storagedriver", ""), self.context(other, True)).check()
        self.assertEqual(await other.list("/"), [])

    async def test_storageUnwritable(self) -> None:
        """
        A filesystem root that is a file, not a directory, fails the check
        (a permission change would not: the tests run as root).
        """
        root = os.path.abspath(self.mktemp())
        driver = createFilesystemDriver({"rootdirectory": root}, reactor)
        self.addCleanup(driver.close)
        check = createCheck(CheckConfig("storagedriver", ""), self.context(driver))
        await check.check()
        os.rename(root, root + ".moved")
        open(root, "w").close()
        await self.assertFailure(check.check(), StorageError)
