# -*- test-case-name: tests.registry -*-
"""
The registry's model over a storage driver: content-addressed blobs,
repositories that link to them, uploads, manifests, tags and referrers.
It knows nothing of HTTP; L{txregistry.api} maps it onto the V2 routes.
"""
