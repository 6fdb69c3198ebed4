# -*- test-case-name: tests -*-
"""
txregistry: a Docker Registry HTTP API V2 / OCI Distribution registry built on Twisted.
"""

__version__ = "0.1.0"
