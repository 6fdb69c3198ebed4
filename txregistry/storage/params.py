# -*- test-case-name: tests.storage.test_azure,tests.storage.test_gcs -*-
"""
Checking a driver's parameters (C{storage.<driver>.<key>}): typed values
with defaults, and one-line errors naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from txregistry.storage.errors import DriverConfigurationError

__all__ = ["parseBool", "parseDurationParameter", "parseInt", "parseRoot", "parseString"]

_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parseBool(driver: str, parameters: Mapping[str, Any], key: str, default: bool) -> bool:
    """
    C{true} or C{false} (a YAML boolean, or its text).
    """
    value = parameters.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise DriverConfigurationError(f"storage.{driver}.{key}: must be true or false")
    return value


def parseInt(
    driver: str, parameters: Mapping[str, Any], key: str, default: int, low: int, high: int
) -> int:
    """
    An integer from C{low} to C{high} (or its text).
    """
    value = parameters.get(key, default)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DriverConfigurationError(
            f"storage.{driver}.{key}: must be an integer from {low} to {high}"
        )
    return value


def parseString(
    driver: str, parameters: Mapping[str, Any], key: str, default: str | None = None
) -> str | None:
    """
    A string, or L{None} when absent (and no C{default}).
    """
    value = parameters.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DriverConfigurationError(f"storage.{driver}.{key}: must be a string")
    return value


def parseDurationParameter(
    driver: str, parameters: Mapping[str, Any], key: str, default: float
) -> float:
    """
    Seconds, from a Go-style duration (C{100ms}, C{2s}) or a number.
    """
    value = parameters.get(key, default)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str) and _DURATION.match(value):
        return sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(value))
    raise DriverConfigurationError(
        f"storage.{driver}.{key}: must be a duration such as 100ms or 2s"
    )


def parseRoot(driver: str, parameters: Mapping[str, Any], key: str = "rootdirectory") -> str:
    """
    The key prefix from C{rootdirectory}: empty, or its parts joined by
    C{/} and ending in C{/}.
    """
    root = (parseString(driver, parameters, key, "") or "").strip("/")
    if root and any(not part or part.startswith(".") for part in root.split("/")):
        raise DriverConfigurationError(
            f"storage.{driver}.{key}: must be a key prefix like /registry (no empty or dot parts)"
        )
    return f"{root}/" if root else ""
