"""
The debug listener of a server with workers (L{txregistry.workers.debug}):
the whole server's figures, summed over the workers.
"""

from __future__ import annotations

import json
import re

import treq
from twisted.trial.unittest import TestCase

from tests.support import WorkersRegistry, freePort
from tests.workers.test_supervisor import accessLines, workersIn
from txregistry.workers.debug import summed, summedExposition


class SumTests(TestCase):
    def test_summed(self) -> None:
        """
        Numbers add up, mappings merge key by key, anything else is the
        first worker's.
        """
        self.assertEqual(
            summed([{"requests": 2, "by_status": {"200": 2}, "seconds": 0.25, "driver": "filesystem"},
                    {"requests": 3, "by_status": {"404": 1, "200": 1}, "seconds": 0.5, "driver": "filesystem"}]),
            {"requests": 5, "by_status": {"200": 3, "404": 1}, "seconds": 0.75, "driver": "filesystem"})

    def test_summedExposition(self) -> None:
        """
        Each sample, by name and labels, is the sum of the workers'.
        """
        one = ('# HELP registry_http_requests_total The number of HTTP requests answered\n'
               '# TYPE registry_http_requests_total counter\n'
               'registry_http_requests_total{code="200",handler="base"} 2.0\n')
        two = one.replace(" 2.0", " 5.0") + 'registry_http_requests_total{code="404",handler="base"} 1.0\n'
        text = summedExposition([one, two]).decode()
        self.assertIn('registry_http_requests_total{code="200",handler="base"} 7.0', text)
        self.assertIn('registry_http_requests_total{code="404",handler="base"} 1.0', text)


class DebugListenerTests(TestCase):
    async def test_wholeServer(self) -> None:
        """
        C{/debug/vars} and the Prometheus path count the requests both
        workers served; C{/debug/health} answers for both.
        """
        debug = f"127.0.0.1:{freePort()}"
        registry = WorkersRegistry(self, {
            "log": {"accesslog": {"disabled": False}},
            "http": {"debug": {"addr": debug, "prometheus": {"enabled": True}}},
        }, 2)
        self.addCleanup(registry.process.kill)
        count = 0
        while len(workersIn(accessLines(registry))) < 2 and count < 200:
            response = await registry.request("GET", "/v2/")
            await response.content()
            count += 1
        self.assertEqual(len(workersIn(accessLines(registry))), 2)
        response = await treq.get(f"http://{debug}/debug/vars", persistent=False)
        document = json.loads(await response.content())
        self.assertEqual(document["http"]["requests"], count)
        self.assertEqual(len(document["workers"]["serving"]), 2)
        response = await treq.get(f"http://{debug}/metrics", persistent=False)
        text = (await response.content()).decode()
        served = re.findall(r'registry_http_requests_total\{[^}]*handler="base"[^}]*\} ([0-9.]+)', text)
        self.assertEqual(sum(float(n) for n in served), count)
        response = await treq.get(f"http://{debug}/debug/health", persistent=False)
        self.assertEqual((response.code, json.loads(await response.content())), (200, {}))
