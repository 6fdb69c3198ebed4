# -*- test-case-name: tests.telemetry.test_metrics -*-
"""
Which route a request path goes to, by name: the C{handler} label of the
registry's metrics and the name of its request spans.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from werkzeug.exceptions import HTTPException

from txregistry.api.app import RegistryAPI
from txregistry.registry.cache import BoundedCache

#: The name of a request no route answers (a 404 or 405).
UNMATCHED = "other"


class RouteNames:
    """
    C{routeNames(method, path)}: the name of the route of L{ROUTES
    <txregistry.api.routes.ROUTES>} that serves C{method} on C{path}
    (below C{http.prefix}), or L{UNMATCHED}.  A registry's traffic is the
    same few paths over and over: each is matched once (a bounded cache).
    """

    def __init__(self, prefix: str = "/") -> None:
        self._map = RegistryAPI.app.url_map
        self._prefix = [p.encode("utf-8") for p in prefix.strip("/").split("/") if p]
        self._names: BoundedCache[tuple[bytes, bytes], str] = BoundedCache(maxEntries=4096)

    def __call__(self, method: bytes, path: bytes) -> str:
        key = (method, path)
        name = self._names.get(key)
        if name is None:
            name = self._match(method, path)
            self._names.put(key, name)
        return name

    def _match(self, method: bytes, path: bytes) -> str:
        # As twisted.web splits and unquotes the path into postpath.
        segments = [unquote_to_bytes(s) for s in path[1:].split(b"/")]
        count = len(self._prefix)
        if segments[:count] != self._prefix:
            return UNMATCHED
        try:
            text = "/" + "/".join(s.decode("utf-8") for s in segments[count:])
            adapter = self._map.bind("registry", "/", path_info=text,
                                     default_method=method.decode("ascii", "replace"))
            rule, _ = adapter.match(return_rule=True)
        except (HTTPException, UnicodeDecodeError):
            return UNMATCHED
        return str(rule.endpoint)
