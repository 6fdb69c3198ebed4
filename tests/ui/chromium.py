"""
Debian's C{chromium}, headless, as a real browser for the UI: the DOM a
page has once its script ran (C{--dump-dom}), and screenshots.  Run as a
child process through the reactor, so an in-process registry keeps
serving while the browser reads it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue

__all__ = ["CHROMIUM", "chromiumMissing", "dumpDOM", "dumpDOMBlocking", "screenshot"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or ""


def chromiumMissing() -> str | None:
    """
    Why the browser tests cannot run here, or L{None}.
    """
    if not CHROMIUM:
        return "chromium is not installed (apt-get install chromium; .ci/run installs it)"
    return None


def _arguments(extra: list[str], profile: str, width: int, height: int) -> list[str]:
    return [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-extensions", "--hide-scrollbars",
        f"--user-data-dir={profile}", f"--window-size={width},{height}", *extra,
    ]


async def _run(extra: list[str], url: str, width: int = 1280, height: int = 900,
               dark: bool = False) -> bytes:
    profile = tempfile.mkdtemp(prefix="txregistry-chromium-")
    try:
        if dark:
            extra = [*extra, "--force-dark-mode", "--blink-settings=preferredColorScheme=0"]
        out, err, code = await getProcessOutputAndValue(
            CHROMIUM, _arguments(extra, profile, width, height) + [url], env=dict(os.environ), reactor=reactor)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if code != 0:
        raise RuntimeError(f"chromium exited {code}: {err.decode('utf-8', 'replace')[-2000:]}")
    return out  # type: ignore[no-any-return]


async def dumpDOM(url: str) -> str:
    """
    The page's DOM as the browser built it, serialised.
    """
    return (await _run(["--dump-dom", "--virtual-time-budget=2000"], url)).decode("utf-8")


async def screenshot(url: str, path: str, width: int = 1280, height: int = 900, dark: bool = False) -> None:
    """
    Write a PNG of C{url} as a C{width} by C{height} window shows it.
    """
    await _run([f"--screenshot={os.path.abspath(path)}", "--virtual-time-budget=2000"], url,
               width, height, dark)


def dumpDOMBlocking(url: str, timeout: float = 120) -> str:
    """
    L{dumpDOM} for a test whose registry is another process (nothing in
    this one has to keep serving).
    """
    profile = tempfile.mkdtemp(prefix="txregistry-chromium-")
    try:
        done = subprocess.run(
            [CHROMIUM, *_arguments(["--dump-dom", "--virtual-time-budget=2000"], profile, 1280, 900), url],
            capture_output=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr.decode('utf-8', 'replace')[-2000:]}")
    return done.stdout.decode("utf-8")
