# -*- test-case-name: tests.api -*-
"""
The Docker Registry HTTP API V2 / OCI Distribution API: routes, errors and
content negotiation.
"""
