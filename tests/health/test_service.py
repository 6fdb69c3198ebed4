"""
Health checks in a running registry: C{/debug/health} on the debug
listener, and the API's 503 C{UNAVAILABLE} while a check fails.
"""

from __future__ import annotations

import json
import os
import subprocess

import treq
from twisted.internet import reactor, task
from twisted.trial.unittest import TestCase

from tests.support import startService
from tests.tmpfs import smallFilesystem


async def _wait(condition: object, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await condition():  # type: ignore[operator]
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("condition never held")


class StorageHealthTests(TestCase):
    async def test_unwritableStorageTurnsUnhealthyAndBack(self) -> None:
        """
        When the storage root stops taking writes (its file system
        remounted read-only: root ignores permission bits), the storage
        check fails: C{/debug/health} answers 503 naming it and the API
        answers 503 C{UNAVAILABLE} with the envelope; once writable again,
        both answer 200.
        """
        root = smallFilesystem(self, "4m")
        registry = await startService(self, {
            "storage": {"filesystem": {"rootdirectory": root}},
            "http": {"debug": {"addr": "127.0.0.1:0"}},
            "health": {"storagedriver": {"enabled": True, "interval": "100ms", "threshold": 2}},
        })

        async def status(path: str = "/debug/health") -> int:
            response = await registry.debug(path)
            await treq.content(response)
            return response.code  # type: ignore[no-any-return]

        await _wait(lambda: _equal(status(), 200))
        response = await registry.request("GET", "/v2/")
        self.assertEqual(response.code, 200)
        await treq.content(response)

        self._remount(root, "ro")
        self.addCleanup(self._remount, root, "rw")
        await _wait(lambda: _equal(status(), 503))
        response = await registry.debug("/debug/health")
        failing = json.loads(await treq.content(response))
        self.assertEqual(list(failing), ["storagedriver"])
        self.assertIn("Read-only file system", failing["storagedriver"])
        response = await registry.request("GET", "/v2/")
        self.assertEqual(response.code, 503)
        self.assertEqual(json.loads(await treq.content(response)), {"errors": [{
            "code": "UNAVAILABLE", "message": "service unavailable",
            "detail": "health check failed: please see /debug/health"}]})

        self._remount(root, "rw")
        await _wait(lambda: _equal(status(), 200))
        response = await registry.request("GET", "/v2/")
        self.assertEqual(response.code, 200)
        await treq.content(response)

    def _remount(self, path: str, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", path], check=True, capture_output=True)

    async def test_fileCheckTakesOutOfRotation(self) -> None:
        """
        A C{file} check fails while its file exists: the operator's switch.
        """
        down = os.path.abspath(self.mktemp())
        registry = await startService(self, {
            "storage": {"inmemory": {}},
            "http": {"debug": {"addr": "127.0.0.1:0"}},
            "health": {"file": [{"file": down, "interval": "100ms"}]},
        })

        async def apiStatus() -> int:
            response = await registry.request("GET", "/v2/")
            await treq.content(response)
            return response.code  # type: ignore[no-any-return]

        await _wait(lambda: _equal(apiStatus(), 200))
        open(down, "w").close()
        await _wait(lambda: _equal(apiStatus(), 503))
        response = await registry.debug("/debug/health")
        self.assertEqual(json.loads(await treq.content(response)),
                         {f"file:{down}": f"file exists: {down}"})
        os.remove(down)
        await _wait(lambda: _equal(apiStatus(), 200))

    async def test_withoutChecksAlwaysAvailable(self) -> None:
        """
        Without checks, C{/debug/health} answers 200 and C{{}}.
        """
        registry = await startService(self, {
            "storage": {"inmemory": {}}, "http": {"debug": {"addr": "127.0.0.1:0"}},
        })
        response = await registry.debug("/debug/health")
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(await treq.content(response)), {})


async def _equal(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]
