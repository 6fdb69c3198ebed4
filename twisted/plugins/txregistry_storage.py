# -*- test-case-name: tests.storage.test_filesystem,tests.storage.test_inmemory,tests.storage.test_s3,tests.storage.test_azure,tests.storage.test_gcs -*-
"""
Registers txregistry's own storage drivers with L{twisted.plugin}.
"""

from txregistry.storage.factories import azure, filesystem, gcs, inmemory, s3

__all__ = ["azure", "filesystem", "gcs", "inmemory", "s3"]
