"""
The benchmark's webhook receiver: answers every C{POST} with 204 and
counts the events it was sent.  C{GET} answers the count (so the
benchmark can wait for delivery to catch up); C{GET /envelopes}, how
many requests brought them.

Run: C{python receiver.py}; it prints its port on the first line of
standard output and serves until killed.
"""

from __future__ import annotations

import sys

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site


class Hook(Resource):
    isLeaf = True
    events = 0
    envelopes = 0

    def render_POST(self, request):  # type: ignore[no-untyped-def]
        # Counted without parsing: each event has one "action" key, and
        # no string in an event can hold that key's quoted name unescaped.
        # (A receiver parsing JSON on this machine would take CPU from the
        # registry being measured; the tests parse what is delivered.)
        Hook.events += request.content.read().count(b'"action":')
        Hook.envelopes += 1
        request.setResponseCode(204)
        return b""

    def render_GET(self, request):  # type: ignore[no-untyped-def]
        if request.path == b"/envelopes":
            return str(Hook.envelopes).encode()
        return str(Hook.events).encode()


site = Site(Hook())
site.noisy = False
port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[attr-defined]
print(port.getHost().port, flush=True)
sys.stdout.flush()
reactor.run()  # type: ignore[attr-defined]
