# -*- test-case-name: tests.storage.test_exampledriver -*-
"""
An in-process object store, shaped like the ones real drivers talk to.

A bucket maps flat keys to immutable objects.  It has no directories, no
rename and no append: an object is created whole (L{Bucket.put}), built
server-side from other objects (L{Bucket.compose}, as GCS's compose or
S3's completed multipart upload), copied (L{Bucket.copy}) or deleted.
Every object has a generation, and writes may be made conditional on it
(C{ifGenerationMatch}, as GCS's precondition or S3's C{If-Match}), which is
what makes a safe append possible.  Each call answers on a later turn of
the reactor, as a network call would, so calls made together interleave.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

T = TypeVar("T")


class NoSuchKey(Exception):
    """
    No object has the key.
    """


class PreconditionFailed(Exception):
    """
    The object's generation is not the one a conditional write named.
    """


@dataclass(frozen=True)
class StoredObject:
    """
    An object: its content as the parts it was composed from (sharing them
    is what makes compose cheap), its generation and its creation time.
    """

    parts: tuple[bytes, ...]
    generation: int
    modified: float

    @property
    def size(self) -> int:
        return sum(len(part) for part in self.parts)

    def content(self) -> bytes:
        return b"".join(self.parts)


class Bucket:
    """
    Objects by key.

    @param reactor: the reactor whose next turn each call answers on.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._objects: dict[str, StoredObject] = {}
        self._generations = itertools.count(1)

    def _later(self, f: Callable[..., T], *args: Any) -> Deferred[T]:
        return deferLater(self._reactor, 0, f, *args)

    def _get(self, key: str) -> StoredObject:
        try:
            return self._objects[key]
        except KeyError:
            raise NoSuchKey(key) from None

    def _store(
        self, key: str, parts: tuple[bytes, ...], ifGenerationMatch: int | None
    ) -> StoredObject:
        if ifGenerationMatch is not None:
            # 0 means "only if there is no such object", as in GCS.
            current = self._objects.get(key)
            if (current.generation if current else 0) != ifGenerationMatch:
                raise PreconditionFailed(key)
        stored = StoredObject(parts, next(self._generations), time.time())
        self._objects[key] = stored
        return stored

    def head(self, key: str) -> Deferred[StoredObject]:
        """
        @return: a L{Deferred} firing with the object at C{key}, or failing
            with L{NoSuchKey}.
        """
        return self._later(self._get, key)

    def put(
        self, key: str, content: bytes, ifGenerationMatch: int | None = None
    ) -> Deferred[StoredObject]:
        """
        Create the object C{key}, replacing any there.

        @return: a L{Deferred} firing with the new object, or failing with
            L{PreconditionFailed}.
        """
        return self._later(self._store, key, (bytes(content),), ifGenerationMatch)

    def compose(
        self, sources: Sequence[str], destination: str, ifGenerationMatch: int | None = None
    ) -> Deferred[StoredObject]:
        """
        Create the object C{destination} from the contents of C{sources},
        one after the other, in one step: it appears whole or not at all.

        @return: a L{Deferred} firing with the new object, or failing with
            L{NoSuchKey} or L{PreconditionFailed}.
        """

        def compose() -> StoredObject:
            parts = tuple(p for key in sources for p in self._get(key).parts)
            return self._store(destination, parts, ifGenerationMatch)

        return self._later(compose)

    def copy(self, source: str, destination: str) -> Deferred[StoredObject]:
        """
        Copy C{source} to C{destination}, server-side, in one step.
        """
        return self.compose([source], destination)

    def delete(self, key: str) -> Deferred[None]:
        """
        Delete C{key}; deleting a missing key succeeds, as in S3.
        """

        def delete() -> None:
            self._objects.pop(key, None)

        return self._later(delete)

    def keys(self, prefix: str) -> Deferred[list[str]]:
        """
        @return: a L{Deferred} firing with every key that starts with
            C{prefix}, sorted.
        """
        return self._later(lambda: sorted(k for k in self._objects if k.startswith(prefix)))
