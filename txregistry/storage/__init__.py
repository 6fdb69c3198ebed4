"""
Storage drivers: where registry content lives.

L{txregistry.storage.interfaces} declares what a driver is; each driver is one
module here; drivers are found at run time through L{twisted.plugin}.
"""
