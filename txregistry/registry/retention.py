# -*- test-case-name: tests.test_retention -*-
"""
Retention policies (C{storage.retention.policies}): which tags a
repository keeps, and whether what no tag reaches any more goes too.

A policy applies to the repositories its C{repository} pattern matches
(the first policy that matches is a repository's; a repository no policy
matches keeps everything).  With C{keeptags} rules, a tag is kept when
one of them keeps it: the tag matches the rule's C{patterns} (all tags
when none are given) and, if the rule names any of these, meets one:
among its C{mostrecentlypushedcount} most recently pushed matching tags,
pushed within C{pushedwithin}, pulled within C{pulledwithin}.  Other tags
are deleted.  Without C{keeptags} every tag is kept.

C{deleteuntagged} then deletes the manifests no kept tag reaches (never
a child of a kept index, never a referrer of a kept manifest; and, unless
C{deletereferrers}, never any referrer).  C{deletereferrers} also deletes
referrers whose subject is gone.  The blobs they alone held go in the
same collection.  Nothing is deleted unless a policy says so, and a dry
run lists exactly what a run would delete.

Push times are the tag's link time in storage; pull times are recorded
(at most hourly per tag, in the tag's C{pulled} file) only while a policy
uses C{pulledwithin}.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["KeepTags", "RetentionPolicy", "RetentionPolicies"]


@dataclass(frozen=True)
class KeepTags:
    """
    One C{keeptags} rule.
    """

    patterns: tuple[str, ...] = ()
    mostRecentlyPushedCount: int | None = None
    pushedWithin: float | None = None
    pulledWithin: float | None = None

    def matches(self, tag: str) -> bool:
        return not self.patterns or any(fnmatch.fnmatchcase(tag, p) for p in self.patterns)

    @property
    def hasCriteria(self) -> bool:
        return any(v is not None for v in (
            self.mostRecentlyPushedCount, self.pushedWithin, self.pulledWithin))


@dataclass(frozen=True)
class RetentionPolicy:
    """
    One C{storage.retention.policies} entry.
    """

    repository: str
    pattern: re.Pattern[str]
    keepTags: tuple[KeepTags, ...] = ()
    deleteUntagged: bool = False
    deleteReferrers: bool = False

    def tagsToDelete(
        self, tags: dict[str, tuple[float, float | None]], now: float
    ) -> list[str]:
        """
        Which of C{tags} (tag to push time and pull time) go.
        """
        if not self.keepTags:
            return []
        kept: set[str] = set()
        for rule in self.keepTags:
            matching = [tag for tag in tags if rule.matches(tag)]
            if not rule.hasCriteria:
                kept.update(matching)
                continue
            if rule.mostRecentlyPushedCount is not None:
                recent = sorted(matching, key=lambda t: (tags[t][0], t), reverse=True)
                kept.update(recent[:rule.mostRecentlyPushedCount])
            for tag in matching:
                pushed, pulled = tags[tag]
                if rule.pushedWithin is not None and pushed >= now - rule.pushedWithin:
                    kept.add(tag)
                if rule.pulledWithin is not None and pulled is not None and \
                        pulled >= now - rule.pulledWithin:
                    kept.add(tag)
        return sorted(set(tags) - kept)


class RetentionPolicies:
    """
    The policies, first match deciding.
    """

    def __init__(self, policies: Sequence[RetentionPolicy] = ()) -> None:
        self.policies = tuple(policies)
        self.recordsPulls = any(
            rule.pulledWithin is not None for p in self.policies for rule in p.keepTags)

    def policyFor(self, name: str) -> RetentionPolicy | None:
        for policy in self.policies:
            if policy.pattern.fullmatch(name):
                return policy
        return None
