# -*- test-case-name: tests.registry.test_quotas -*-
"""
Byte counts as people read them (C{1.5 GiB}), for messages and pages.
"""

from __future__ import annotations

__all__ = ["formatSize"]


def formatSize(count: int) -> str:
    """
    C{count} bytes in the largest binary unit (up to TiB) that keeps the
    figure at least 1: C{"512 B"}, C{"1.5 KiB"}, C{"10.0 GiB"}.
    """
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
