# -*- test-case-name: tests.rediscache -*-
"""
C{storage.cache.blobdescriptor: redis}: the registry's metadata cached in
Redis for every instance (L{layer}), over a client that never fails a
request because Redis did (L{client}).
"""
