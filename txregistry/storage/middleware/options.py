# -*- test-case-name: tests.storage.middleware.test_factories -*-
"""
Checking a storage middleware's C{options}: each check names the option
(C{middleware.storage[0].options.baseurl}) in a one-line
L{DriverConfigurationError}.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from txregistry.storage.errors import DriverConfigurationError

__all__ = ["Options"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
# Go's time.ParseDuration, as the reference reads these options (and as
# txregistry.config.parseDuration reads the registry's own, which storage
# does not import: the configuration is above it).
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class Options:
    """
    The C{options} of the middleware entry at C{where}, with typed getters.
    """

    def __init__(self, options: Any, where: str, known: Collection[str]) -> None:
        """
        @param known: the options the middleware reads; any other is refused.
        @raise DriverConfigurationError: when C{options} is not a mapping or
            has an unknown option.
        """
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise DriverConfigurationError(f"{where}.options: expected a mapping, got {options!r}")
        self.where = where
        self.options = options
        for key in options:
            if key not in known:
                raise DriverConfigurationError(
                    f"{self.key(str(key))}: unknown option (known: {', '.join(sorted(known))})"
                )

    def key(self, name: str) -> str:
        """
        The dotted key of option C{name}, for an error.
        """
        return f"{self.where}.options.{name}"

    def error(self, name: str, message: str) -> DriverConfigurationError:
        return DriverConfigurationError(f"{self.key(name)}: {message}")

    def __contains__(self, name: str) -> bool:
        return name in self.options

    def string(self, name: str, required: bool = False) -> str:
        """
        Option C{name}, a string; C{""} when absent and not C{required}.
        """
        value = self.options.get(name)
        if value is None or value == "":
            if required:
                raise self.error(name, "required")
            return ""
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {value!r}")
        return value

    def url(self, name: str, required: bool = False, schemes: Collection[str] = ("http", "https")) -> SplitResult | None:
        """
        Option C{name}, an absolute URL with a host and one of C{schemes}.
        """
        text = self.string(name, required)
        if not text:
            return None
        parts = urlsplit(text)
        if parts.scheme.lower() not in schemes or not parts.netloc:
            raise self.error(
                name, f"expected a URL such as https://cdn.example.com, got {text!r}")
        return parts

    def duration(self, name: str, default: float) -> float:
        """
        Option C{name}, a positive duration with its unit (C{20m}, C{3000s}):
        a bare number is refused, since the reference takes one as its
        default rather than as seconds.
        """
        value = self.options.get(name)
        if value is None:
            return default
        if not isinstance(value, str) or not _DURATION.match(value):
            raise self.error(name, f"expected a duration with its unit, such as 20m or 3000s, got {value!r}")
        seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(value))
        if seconds <= 0:
            raise self.error(name, "must be more than 0")
        return seconds

    def scheme(self, name: str) -> str:
        text = self.string(name)
        if text and not _SCHEME.match(text):
            raise self.error(name, f"expected a URL scheme such as https, got {text!r}")
        return text
