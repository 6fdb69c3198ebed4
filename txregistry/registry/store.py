"""
L{Registry}: the stores of one registry over one storage driver.
"""

from __future__ import annotations

from txregistry.api.errors import RegistryError
from txregistry.registry import layout
from txregistry.registry.blobs import BlobStore
from txregistry.registry.manifests import ManifestStore
from txregistry.registry.uploads import Uploads
from txregistry.storage.errors import PathNotFoundError
from txregistry.storage.interfaces import IStorageDriver


class Registry:
    """
    Blobs, uploads and manifests over C{driver}.

    @ivar deleteEnabled: whether blobs and manifests may be deleted.
    @ivar readOnly: whether every write is refused.
    @param tagTTL: see L{ManifestStore}'s C{referenceTTL}.
    @ivar redirect: whether blob reads go to the driver's direct URL when it
        has one (C{storage.redirect}).
    """

    def __init__(
        self,
        driver: IStorageDriver,
        deleteEnabled: bool = False,
        readOnly: bool = False,
        tagTTL: float = 0.0,
        redirect: bool = True,
    ) -> None:
        self.driver = driver
        self.deleteEnabled = deleteEnabled
        self.readOnly = readOnly
        self.redirect = redirect
        self.blobs = BlobStore(driver)
        self.uploads = Uploads(driver, self.blobs)
        self.manifests = ManifestStore(driver, self.blobs, referenceTTL=tagTTL)

    def checkWritable(self) -> None:
        """
        @raise RegistryError: C{UNSUPPORTED} in read-only mode.
        """
        if self.readOnly:
            raise RegistryError(
                "UNSUPPORTED", "the registry is in read-only mode", status=405
            )

    def checkDeletable(self) -> None:
        """
        @raise RegistryError: C{UNSUPPORTED} unless deletes are enabled.
        """
        self.checkWritable()
        if not self.deleteEnabled:
            raise RegistryError(
                "UNSUPPORTED", "deletes are disabled (storage.delete.enabled)", status=405
            )

    async def repositories(self) -> list[str]:
        """
        Every repository with manifests, sorted.
        """
        found: list[str] = []

        async def visit(path: str, name: str) -> None:
            try:
                children = await self.driver.list(path)
            except PathNotFoundError:
                return
            leaves = {c.rsplit("/", 1)[1] for c in children}
            if "_manifests" in leaves and name:
                found.append(name)
            for child in children:
                leaf = child.rsplit("/", 1)[1]
                if not leaf.startswith("_"):
                    await visit(child, f"{name}/{leaf}" if name else leaf)

        await visit(layout.REPOSITORIES, "")
        return sorted(found)
