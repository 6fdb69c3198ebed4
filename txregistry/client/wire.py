# -*- test-case-name: tests.client.test_registry -*-
"""
Reading a registry's answers: a header, the status a request expects (or
the model's error for the one it got), the scopes a repository request
needs.
"""

from __future__ import annotations

import treq
from twisted.web.iweb import IResponse

from txregistry import errors as model
from txregistry.client.errors import errorFor

__all__ = ["header", "check", "scopes"]


def header(response: IResponse, name: str) -> str | None:
    values = response.headers.getRawHeaders(name.encode("ascii"))
    return values[0].decode("latin-1") if values else None


async def check(response: IResponse, what: str,
                notFound: type[model.RegistryModelError] | None = None,
                expected: tuple[int, ...] = (200,)) -> IResponse:
    """
    C{response}, if its status is one of C{expected}.

    @raise txregistry.errors.RegistryModelError: the error the answer
        means (L{txregistry.client.errors.errorFor}), its body read.
    """
    if response.code in expected:
        return response
    body = await treq.content(response)
    raise errorFor(response.code, body, what, notFound)


def scopes(name: str, *actions: str) -> list[str]:
    """
    The token scope for C{actions} on the repository C{name}.
    """
    return [f"repository:{name}:{','.join(actions)}"]
