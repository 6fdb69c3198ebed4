"""
A client of registries (the distribution API), Deferred-based on treq,
that provides the service model's interfaces (L{txregistry.interfaces})
over HTTP, and copies images between registries, OCI image layouts and
docker archives.

    from txregistry.client import Registry
    registry = Registry("registry.example.com")
    tags = await registry.repository("team/app").tags().list(None, None)

L{Registry} is an L{INamespace<txregistry.interfaces.INamespace>};
L{txregistry.client.copy.copyImage} copies between the transports of
L{txregistry.client.transports}; C{txregistry copy} and the other client
commands are L{txregistry.client.command}.
"""

from txregistry.client.auth import Credentials
from txregistry.client.errors import AuthenticationFailed, ClientError, NetworkError
from txregistry.client.http import TLSOptions
from txregistry.client.registry import Registry

__all__ = ["Registry", "Credentials", "TLSOptions", "ClientError", "AuthenticationFailed",
           "NetworkError"]
