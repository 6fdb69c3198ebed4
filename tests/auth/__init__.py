# -*- test-case-name: tests.auth -*-
"""
Tests for L{txregistry.auth}.
"""
