# -*- test-case-name: tests.registry.test_immutability -*-
"""
Immutable tags (C{storage.tags.immutable}): once a tag that matches one
of a repository's patterns names a manifest, it names that manifest for
good: a push that would move it, a DELETE of it, and a DELETE of the
manifest it names are refused with L{Denied}, saying which rule.
Pushing the same manifest under the same tag again is no change, and
passes.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from twisted.internet.defer import Deferred

from txregistry.errors import Denied, ManifestUnknown
from txregistry.interfaces import IManifestService, INamespace, IRepository, ITagService
from txregistry.registry.digest import Digest
from txregistry.registry.forwarding import (
    ForwardingManifestService,
    ForwardingNamespace,
    ForwardingRepository,
    ForwardingTagService,
)

__all__ = ["ImmutableTags", "ImmutabilityRule"]


@dataclass(frozen=True)
class ImmutabilityRule:
    """
    One C{storage.tags.immutable} entry: in repositories matching
    C{repository} (the pattern as written, and compiled), tags matching
    any of C{tags} (shell-style: C{v*}, C{release-?}) are immutable.
    """

    repository: str
    pattern: re.Pattern[str]
    tags: tuple[str, ...]

    def covers(self, name: str, tag: str) -> bool:
        return self.pattern.fullmatch(name) is not None and any(
            fnmatch.fnmatchcase(tag, glob) for glob in self.tags)


class ImmutableTags(ForwardingNamespace):
    """
    Refuses what would move or remove an immutable tag.
    """

    def __init__(self, inner: INamespace, rules: Sequence[ImmutabilityRule]) -> None:
        super().__init__(inner)
        self.rules = tuple(rules)

    def ruleFor(self, name: str, tag: str) -> ImmutabilityRule | None:
        for rule in self.rules:
            if rule.covers(name, tag):
                return rule
        return None

    def wrapRepository(self, repository: IRepository) -> IRepository:
        if not any(rule.pattern.fullmatch(repository.name) for rule in self.rules):
            return repository
        return _Repository(repository, self)


def _refusal(name: str, tag: str, digest: Digest, rule: ImmutabilityRule, doing: str) -> Denied:
    return Denied(
        f"tag {tag} of {name} is immutable (storage.tags.immutable: {rule.repository} "
        f"{', '.join(rule.tags)}) and names {digest}: it cannot be {doing}")


class _Repository(ForwardingRepository):
    def __init__(self, inner: IRepository, layer: ImmutableTags) -> None:
        super().__init__(inner)
        self._layer = layer

    def tags(self) -> ITagService:
        return _Tags(self.inner.tags(), self.name, self._layer)

    def manifests(self) -> IManifestService:
        return _Manifests(self.inner.manifests(), self.inner.tags(), self.name, self._layer)


class _Tags(ForwardingTagService):
    def __init__(self, inner: ITagService, name: str, layer: ImmutableTags) -> None:
        super().__init__(inner)
        self._name = name
        self._layer = layer

    async def _current(self, tag: str) -> Digest | None:
        try:
            return await self.inner.get(tag)
        except ManifestUnknown:
            return None

    def tag(self, tag: str, digest: Digest) -> Deferred[None]:
        rule = self._layer.ruleFor(self._name, tag)
        if rule is None:
            return self.inner.tag(tag, digest)

        async def check() -> None:
            current = await self._current(tag)
            if current is not None and current != digest:
                raise _refusal(self._name, tag, current, rule, f"moved to {digest}")
            await self.inner.tag(tag, digest)

        return Deferred.fromCoroutine(check())

    def untag(self, tag: str) -> Deferred[None]:
        rule = self._layer.ruleFor(self._name, tag)
        if rule is None:
            return self.inner.untag(tag)

        async def check() -> None:
            current = await self._current(tag)
            if current is not None:
                raise _refusal(self._name, tag, current, rule, "deleted")
            await self.inner.untag(tag)

        return Deferred.fromCoroutine(check())


class _Manifests(ForwardingManifestService):
    def __init__(self, inner: IManifestService, tags: ITagService, name: str,
                 layer: ImmutableTags) -> None:
        super().__init__(inner)
        self._tags = tags
        self._name = name
        self._layer = layer

    def delete(self, digest: Digest) -> Deferred[None]:
        async def check() -> None:
            for tag in await self._tags.lookup(digest):
                rule = self._layer.ruleFor(self._name, tag)
                if rule is not None:
                    raise _refusal(self._name, tag, digest, rule, "deleted with its manifest")
            await self.inner.delete(digest)

        return Deferred.fromCoroutine(check())
