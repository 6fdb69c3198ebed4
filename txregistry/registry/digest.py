"""
Content digests (C{algorithm:encoded}) and the hashers that compute them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IConsumer
from zope.interface import implementer

#: The algorithms this registry computes, with their encoded lengths.
ALGORITHMS = {"sha256": 64, "sha512": 128}

_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX = re.compile(r"^[a-f0-9]+$")


class InvalidDigest(ValueError):
    """
    A string is not a digest this registry can verify.
    """


@dataclass(frozen=True, order=True)
class Digest:
    """
    A checked digest.
    """

    algorithm: str
    encoded: str

    @classmethod
    def parse(cls, value: str) -> "Digest":
        """
        @raise InvalidDigest: unless C{value} follows the OCI grammar with a
            supported algorithm and the right hex encoding.
        """
        if not isinstance(value, str) or len(value) > 256 or not _GRAMMAR.match(value):
            raise InvalidDigest(f"invalid digest {value!r}")
        algorithm, encoded = value.split(":", 1)
        size = ALGORITHMS.get(algorithm)
        if size is None:
            raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
        if len(encoded) != size or not _HEX.match(encoded):
            raise InvalidDigest(f"invalid {algorithm} digest {value!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, content: bytes, algorithm: str = "sha256") -> "Digest":
        return cls(algorithm, hashlib.new(algorithm, content).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


@implementer(IConsumer)
class DigestingConsumer:
    """
    Passes data through to C{consumer}, hashing it on the way.

    @ivar hasher: the running hash (a L{hashlib} object).
    @ivar size: bytes seen.
    """

    def __init__(self, consumer: IConsumer, hasher: Any, size: int = 0) -> None:
        self._consumer = consumer
        self.hasher = hasher
        self.size = size

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._consumer.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._consumer.unregisterProducer()

    def write(self, data: bytes) -> None:
        self.hasher.update(data)
        self.size += len(data)
        self._consumer.write(data)
