"""
A small tmpfs for tests that need a disk that fills up: a real full
filesystem, not a patched system call.  Needs root (CI runs as root);
elsewhere the test is skipped.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from twisted.trial.unittest import SkipTest


def smallFilesystem(testCase: Any, size: str = "2m") -> str:
    """
    Mount a tmpfs of C{size} on a fresh directory, unmounted at cleanup.

    @return: its path.
    """
    if os.geteuid() != 0:
        raise SkipTest("mounting a tmpfs needs root")
    path = os.path.abspath(testCase.mktemp())
    os.makedirs(path)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise SkipTest(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    testCase.addCleanup(subprocess.run, ["umount", "-l", path], capture_output=True)
    return path
