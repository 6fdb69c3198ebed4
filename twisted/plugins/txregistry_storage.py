# -*- test-case-name: tests.storage.test_filesystem,tests.storage.test_inmemory -*-
"""
Registers txregistry's own storage drivers with L{twisted.plugin}.
"""

from txregistry.storage.factories import filesystem, inmemory

__all__ = ["filesystem", "inmemory"]
