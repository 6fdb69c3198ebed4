# -*- test-case-name: tests.storage.test_exampledriver -*-
"""
An example storage driver for txregistry, shipped the way a third-party
driver is: its own package, a C{twisted/plugins} module registering an
L{IStorageDriverFactory}, and tests that run L{txregistry.storage.testing}.

It stores content in an object store with neither rename nor append
(L{txregistry_exampledriver.bucket}, an in-process stand-in for S3 or
GCS), so it shows how such a driver keeps the append and move contract of
L{txregistry.storage.IStorageWriter} and L{txregistry.storage.IStorageDriver}.
It imports nothing from txregistry but the public names of
L{txregistry.storage}.
"""
