"""
Screenshots of the web UI's main pages, for docs/ui/: a registry in this
process filled as the UI tests fill it, photographed by headless
chromium.  Run it as C{bin/ui-screenshots} (README, "Web UI").
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.internet import defer, task

from tests.support import InProcessRegistry
from tests.ui.chromium import chromiumMissing, screenshot
from tests.ui.content import fill


class _Checks:
    """
    What the push helpers assert with, outside a test.
    """

    def assertEqual(self, first: Any, second: Any, message: Any = None) -> None:
        if first != second:
            raise AssertionError(f"{first!r} != {second!r}: {message!r}")


async def write(directory: str) -> list[str]:
    """
    Write the screenshots into C{directory}.

    @return: the files written.
    """
    reason = chromiumMissing()
    if reason:
        raise SystemExit(reason)
    os.makedirs(directory, exist_ok=True)
    registry = await InProcessRegistry({"ui": {"enabled": True},
                                        "storage": {"inmemory": {}, "delete": {"enabled": True}}}).start()
    written = []
    try:
        pushed = await fill(_Checks(), registry)
        manifest = f"/ui/r/team/server/-/manifest/{pushed.image}"
        shots: list[tuple[str, str, dict[str, Any]]] = [
            ("repositories.png", "/ui/", {"height": 500}),
            ("repository.png", "/ui/r/team/server", {"height": 800}),
            ("image.png", manifest, {"height": 2300}),
            ("index.png", f"/ui/r/team/server/-/manifest/{pushed.index}", {"height": 900}),
            ("image-dark.png", manifest, {"height": 1200, "dark": True}),
            ("repository-phone.png", "/ui/r/team/server", {"width": 390, "height": 844}),
        ]
        for name, path, options in shots:
            target = os.path.join(directory, name)
            await screenshot(registry.url + path, target, **options)
            written.append(target)
    finally:
        await registry.stop()
    return written


def main(argv: list[str]) -> None:
    directory = argv[1] if len(argv) > 1 else "docs/ui"

    async def run(reactor: Any) -> None:
        for path in await write(directory):
            print(path)

    task.react(lambda reactor: defer.ensureDeferred(run(reactor)))


if __name__ == "__main__":
    main(sys.argv)
