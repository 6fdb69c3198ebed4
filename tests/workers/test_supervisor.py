"""
C{http.workers: 2} against a real C{twistd txregistry}: the supervisor,
its workers, and what one worker acknowledged as seen by the others.
"""

from __future__ import annotations

import json
import os
import re
import signal

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.api.helpers import header, pushImage, pushManifest, sha256
from tests.support import WorkersRegistry

#: The text log's tag on a worker's line.
_WORKER = re.compile(r"\(worker (\d+), pid (\d+)\)")


def workersIn(lines: list[str]) -> set[tuple[str, str]]:
    """
    The (index, pid) of each worker that logged one of C{lines}.
    """
    return {m.groups() for line in lines for m in [_WORKER.search(line)] if m}


def accessLines(registry: WorkersRegistry) -> list[str]:
    return [line for line in registry.process.log().splitlines() if "txregistry.access" in line]


async def fromEveryWorker(testCase: TestCase, registry: WorkersRegistry, path: str) -> list[tuple[int, bytes]]:
    """
    GET C{path}, each time on a new connection, until both workers
    have answered (at most 200 times); fails if one never does.

    @return: each answer's status and body.
    """
    answers = []
    for _ in range(200):
        response = await registry.request("GET", path)
        answers.append((response.code, await response.content()))
        if len(workersIn(accessLines(registry)[-len(answers):])) == 2:
            return answers
    testCase.fail(f"one worker answered every request: {accessLines(registry)[-5:]}")
    return answers


class WorkersTests(TestCase):
    def start(self) -> WorkersRegistry:
        registry = WorkersRegistry(self, {
            "log": {"accesslog": {"disabled": False}}, "storage": {"delete": {"enabled": True}},
        }, 2)
        self.addCleanup(registry.process.kill)
        return registry

    async def test_requestsLandOnBothWorkers(self) -> None:
        """
        Both workers accept on the one port; the supervisor's log is the
        one log, each line saying which worker wrote it.
        """
        registry = self.start()
        answers = await fromEveryWorker(self, registry, "/v2/")
        self.assertEqual({code for code, _ in answers}, {200})
        log = registry.process.log()
        ready = re.search(r"2 workers \(pids (\d+) (\d+)\)", log)
        assert ready is not None, log
        self.assertEqual({pid for _, pid in workersIn(accessLines(registry))}, set(ready.groups()))

    async def test_killedWorkerRestarted(self) -> None:
        """
        A worker killed is started again, and service goes on.
        """
        registry = self.start()
        ready = re.search(r"2 workers \(pids (\d+) (\d+)\)", registry.process.log())
        assert ready is not None
        killed = int(ready.group(1))
        os.kill(killed, signal.SIGKILL)
        log = registry.process.waitForLog("Worker 0 (pid ")
        self.assertIn(f"Worker 0 (pid {killed}) ended", log)
        log = registry.process.waitForLog("serving again")
        restarted = re.search(r"Worker 0 \(pid (\d+)\) serving again", log)
        assert restarted is not None
        self.assertNotEqual(int(restarted.group(1)), killed)
        answers = await fromEveryWorker(self, registry, "/v2/")
        self.assertEqual({code for code, _ in answers}, {200})

    def test_SIGTERMToTheWholeGroup(self) -> None:
        """
        C{SIGTERM} to the supervisor and each worker at once (what
        systemd's default kill mode or a process group's signal does,
        before the supervisor sends its own) is one clean stop: no
        traceback, no worker restarted, and the supervisor ends as twistd
        ends on C{SIGTERM} (by the signal, which systemd counts as a clean
        stop).
        """
        registry = self.start()
        ready = re.search(r"2 workers \(pids (\d+) (\d+)\)", registry.process.log())
        assert ready is not None
        for pid in ready.groups():
            os.kill(int(pid), signal.SIGTERM)
        registry.process.kill(signal.SIGTERM)
        self.assertEqual(registry.process.process.returncode, -signal.SIGTERM)
        log = registry.process.log()
        self.assertNotIn("Traceback", log)
        self.assertNotIn("[critical]", log)
        self.assertNotIn("ended (", log)  # no worker was restarted
        self.assertEqual(log.count("Received SIGTERM"), 3)

    def test_SIGHUPReachesEveryWorker(self) -> None:
        """
        C{SIGHUP} to the supervisor reloads it and every worker.
        """
        registry = self.start()
        registry.process.process.send_signal(signal.SIGHUP)
        log = registry.process.waitForLog("SIGHUP: log level unchanged (info)", 3)
        lines = [line for line in log.splitlines() if "SIGHUP: log level unchanged" in line]
        self.assertEqual({index for index, _ in workersIn(lines)}, {"0", "1"})
        self.assertEqual(len([line for line in lines if "(worker" not in line]), 1)

    async def test_tagSeenByEveryWorker(self) -> None:
        """
        A tag moved by a PUT to one worker is what the next request to
        either worker reads: no worker answers from a stale cache.
        """
        registry = self.start()
        name = "workers/tags"
        first, firstDigest = await pushImage(self, registry, name, "latest")
        for code, body in await fromEveryWorker(self, registry, f"/v2/{name}/manifests/latest"):
            self.assertEqual((code, body), (200, first))
        document = json.loads(first)
        document["annotations"] = {"second": "yes"}
        second = json.dumps(document).encode()
        response = await pushManifest(self, registry, name, "latest", second)
        self.assertEqual(header(response, "docker-content-digest"), sha256(second))
        for code, body in await fromEveryWorker(self, registry, f"/v2/{name}/manifests/latest"):
            self.assertEqual((code, body), (200, second))
        # And a tag one worker deleted is unknown to both.
        response = await registry.request("DELETE", f"/v2/{name}/manifests/latest")
        self.assertEqual(response.code, 202, await response.content())
        answers = await fromEveryWorker(self, registry, f"/v2/{name}/manifests/latest")
        self.assertEqual({code for code, _ in answers}, {404})
        response = await registry.request("GET", f"/v2/{name}/manifests/{firstDigest}")
        self.assertEqual(await response.content(), first)

    async def test_silentWorkerKilled(self) -> None:
        """
        A worker that cannot be told of a changed tag (here: stopped) is
        killed once the supervisor has waited for it long enough, before
        the change is acknowledged; it is started again, and both workers
        then read the tag as moved.
        """
        registry = self.start()
        name = "workers/silent"
        first, _ = await pushImage(self, registry, name, "latest")
        for code, body in await fromEveryWorker(self, registry, f"/v2/{name}/manifests/latest"):
            self.assertEqual((code, body), (200, first))
        ready = re.search(r"2 workers \(pids (\d+) (\d+)\)", registry.process.log())
        assert ready is not None
        stopped = int(ready.group(2))
        os.kill(stopped, signal.SIGSTOP)
        document = json.loads(first)
        document["annotations"] = {"second": "yes"}
        second = json.dumps(document).encode()
        response = await pushManifest(self, registry, name, "latest", second)
        self.assertEqual(header(response, "docker-content-digest"), sha256(second))
        log = registry.process.log()
        self.assertIn(f"(pid {stopped}) did not forget a changed tag within 5s: killing it", log)
        registry.process.waitForLog("serving again")
        for code, body in await fromEveryWorker(self, registry, f"/v2/{name}/manifests/latest"):
            self.assertEqual((code, body), (200, second))


class HealthTests(TestCase):
    async def test_failingCheckInEveryWorker(self) -> None:
        """
        While a health check fails, every worker answers the API 503, and
        200 again once it passes.
        """
        down = os.path.abspath(self.mktemp())
        registry = WorkersRegistry(self, {
            "log": {"accesslog": {"disabled": False}},
            "health": {"file": [{"file": down, "interval": "100ms"}]},
        }, 2)
        self.addCleanup(registry.process.kill)
        open(down, "w").close()
        # Each worker sees the file within its interval (and threshold).
        await deferLater(reactor, 1.0, lambda: None)
        answers = await fromEveryWorker(self, registry, "/v2/")
        self.assertEqual({code for code, _ in answers}, {503})
        os.remove(down)
        await deferLater(reactor, 1.0, lambda: None)
        answers = await fromEveryWorker(self, registry, "/v2/")
        self.assertEqual({code for code, _ in answers}, {200})
