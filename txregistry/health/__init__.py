"""
Health checks: periodic checks of what the registry needs (its storage, a
file an operator creates to take it out of rotation, HTTP and TCP
services), found as L{twisted.plugin} plugins and run without ever
blocking the reactor.
"""
