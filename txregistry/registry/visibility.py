# -*- test-case-name: tests.registry.test_visibility -*-
"""
A catalog that lists only what its caller may see: with a per-repository
access policy, C{/v2/_catalog} must not name repositories the caller
cannot pull.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred

from txregistry.interfaces import INamespace, Page
from txregistry.registry.forwarding import ForwardingNamespace

__all__ = ["VisibleCatalog"]

#: Whether the account (L{None}: anonymous) may pull the repository.
MayPull = Callable[[str | None, str], bool]


class VisibleCatalog(ForwardingNamespace):
    """
    Filters the catalog through C{mayPull} for the caller it acts for.

    A page is filled from as many of the inner namespace's pages as it
    takes, so a caller who may see few repositories still gets full pages
    and a C{Link} only when more follow.
    """

    dependsOnCaller = True

    def __init__(self, inner: INamespace, mayPull: MayPull) -> None:
        super().__init__(inner)
        self._mayPull = mayPull

    def catalog(self, n: int | None, last: str | None) -> Deferred[Page]:
        return Deferred.fromCoroutine(self._catalog(n, last))

    async def _catalog(self, n: int | None, last: str | None) -> Page:
        account = self.caller.name or None
        batch = None if n is None else max(n, 100)
        items: list[str] = []
        while True:
            page = await self.inner.catalog(batch, last)
            for name in page.items:
                if self._mayPull(account, name):
                    if n is not None and len(items) == n:
                        return Page(items, True)
                    items.append(name)
            if not page.more or not page.items:
                return Page(items, False)
            last = page.items[-1]
