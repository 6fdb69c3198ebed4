# -*- test-case-name: tests.api.test_routes -*-
"""
C{docs/api.rst}, generated from the route table.

    python -m txregistry.api.describe docs/api.rst

writes the document; without an argument it goes to standard output.  A
test fails when the committed document differs from what the table says.
"""

from __future__ import annotations

import sys

from txregistry.api.routes import ROUTES, Route

_TITLE = "The txregistry HTTP API"

_INTRO = """\
Every route txregistry serves, generated from ``txregistry/api/routes.py``
by ``python -m txregistry.api.describe docs/api.rst``; do not edit by hand.

*Access* is what the caller needs, as token scopes name it:
``repository:<name>:pull``, ``push`` or ``delete``, or
``registry:catalog:*``.  *Body* is what the route does with a request body:
none, bounded (read whole, up to a limit) or streamed (into storage, never
buffered).  Every route may also answer ``UNAUTHORIZED``, ``DENIED``,
``TOOMANYREQUESTS``, ``UNKNOWN`` and ``UNAVAILABLE``; every error is the
spec's JSON envelope ``{"errors": [{"code", "message", "detail"}]}``.
"""


def _access(route: Route) -> str:
    if route.access is None:
        return "none"
    if route.access == "catalog":
        return "``registry:catalog:*``"
    return f"``repository:<name>:{route.access}``"


def describeRoute(route: Route) -> str:
    """
    One route's section.
    """
    heading = f"{' '.join(route.methods)} {route.path}"
    errors = ", ".join(
        f"``{code.value}`` ({code.status})" for code in route.errors
    ) or "none beyond the common ones"
    lines = [
        heading,
        "-" * len(heading),
        "",
        route.description,
        "",
        f":name: ``{route.name}``",
        f":access: {_access(route)}",
        f":body: {route.body}",
        f":success: {', '.join(str(s) for s in route.statuses)}",
        f":headers: {', '.join(f'``{h}``' for h in route.headers) or 'none'}",
        f":errors: {errors}",
        "",
    ]
    return "\n".join(lines)


def describe() -> str:
    """
    The whole document.
    """
    parts = ["=" * len(_TITLE), _TITLE, "=" * len(_TITLE), "", _INTRO]
    parts.extend(describeRoute(route) for route in ROUTES)
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    text = describe()
    if len(argv) > 1:
        with open(argv[1], "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
