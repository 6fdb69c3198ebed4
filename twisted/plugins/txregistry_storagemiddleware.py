# -*- test-case-name: tests.storage.middleware.test_factories -*-
"""
Registers txregistry's own storage middleware with L{twisted.plugin}.
"""

from txregistry.storage.middleware.factories import cloudfront, redirect, rewrite

__all__ = ["cloudfront", "redirect", "rewrite"]
