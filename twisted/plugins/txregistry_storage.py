# -*- test-case-name: tests.storage.test_filesystem,tests.storage.test_inmemory,tests.storage.test_s3 -*-
"""
Registers txregistry's own storage drivers with L{twisted.plugin}.
"""

from txregistry.storage.factories import filesystem, inmemory, s3

__all__ = ["filesystem", "inmemory", "s3"]
