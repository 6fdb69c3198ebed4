# -*- test-case-name: tests.registry.test_switches -*-
"""
The registry's switches as layers: read-only mode
(C{storage.maintenance.readonly}) and the delete switch
(C{storage.delete.enabled}).

Each is a L{ForwardingNamespace} that refuses a set of operations with
L{Unsupported} before they reach storage, so no route checks them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from twisted.internet.defer import Deferred, fail

from txregistry.errors import Unsupported
from txregistry.interfaces import (
    IBlobStore,
    IBlobUpload,
    IManifestService,
    INamespace,
    IRepository,
    ITagService,
)
from txregistry.registry.forwarding import (
    ForwardingBlobStore,
    ForwardingBlobUpload,
    ForwardingManifestService,
    ForwardingNamespace,
    ForwardingRepository,
    ForwardingTagService,
)

__all__ = ["Switch", "readOnly", "deletesDisabled", "WRITES", "DELETES"]

#: The operations that change a registry, by the service they belong to.
WRITES = {
    "namespace": {"purgeUploads", "collectGarbage"},
    "manifests": {"put", "delete"},
    "tags": {"tag", "untag"},
    "blobs": {"create", "put", "mount", "delete"},
    "upload": {"append", "commit", "cancel"},
}

#: The operations that remove content.
DELETES = {
    "manifests": {"delete"},
    "tags": {"untag"},
    "blobs": {"delete"},
}


def _refusing(base: type, refused: Collection[str], message: str, **extra: Any) -> Any:
    """
    C{base} (a forwarding class) with each method in C{refused} failing
    with L{Unsupported}, and the methods in C{extra} added.
    """

    def refuse(*args: Any, **kwargs: Any) -> Deferred[Any]:
        return fail(Unsupported(message))

    methods = {name: refuse for name in refused}
    methods.update(extra)
    return type(f"Refusing{base.__name__}", (base,), methods)


class Switch(ForwardingNamespace):
    """
    A namespace that refuses the operations named in C{refused} (a
    mapping like L{WRITES}) with L{Unsupported}C{(message)}.
    """

    def __init__(self, inner: INamespace, refused: dict[str, set[str]], message: str) -> None:
        super().__init__(inner)
        self.message = message
        self._manifests = _refusing(ForwardingManifestService, refused.get("manifests", ()), message)
        self._tags = _refusing(ForwardingTagService, refused.get("tags", ()), message)
        upload = _refusing(ForwardingBlobUpload, refused.get("upload", ()), message)

        def wrapUpload(store: IBlobStore, inner: IBlobUpload) -> IBlobUpload:
            return upload(inner)  # type: ignore[no-any-return]

        self._blobs = _refusing(
            ForwardingBlobStore, refused.get("blobs", ()), message, wrapUpload=wrapUpload
        )
        for name in refused.get("namespace", ()):
            setattr(self, name, lambda *a, **k: fail(Unsupported(message)))

    def wrapRepository(self, repository: IRepository) -> IRepository:
        return _SwitchedRepository(repository, self)


class _SwitchedRepository(ForwardingRepository):
    def __init__(self, inner: IRepository, switch: Switch) -> None:
        super().__init__(inner)
        self._switch = switch

    def manifests(self) -> IManifestService:
        return self._switch._manifests(self.inner.manifests())  # type: ignore[no-any-return]

    def tags(self) -> ITagService:
        return self._switch._tags(self.inner.tags())  # type: ignore[no-any-return]

    def blobs(self) -> IBlobStore:
        return self._switch._blobs(self.inner.blobs())  # type: ignore[no-any-return]


def readOnly(inner: INamespace) -> Switch:
    """
    C{inner} with every write refused (C{storage.maintenance.readonly}).
    """
    return Switch(inner, WRITES, "the registry is in read-only mode")


def deletesDisabled(inner: INamespace) -> Switch:
    """
    C{inner} with every delete refused (C{storage.delete.enabled: false}).
    """
    return Switch(inner, DELETES, "deletes are disabled (storage.delete.enabled)")

