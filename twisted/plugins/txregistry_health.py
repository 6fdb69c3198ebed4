# -*- test-case-name: tests.health.test_checks -*-
"""
Registers txregistry's own health checks with L{twisted.plugin}.
"""

from txregistry.health.factories import file, http, storagedriver, tcp

__all__ = ["file", "http", "storagedriver", "tcp"]
