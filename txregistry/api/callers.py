# -*- test-case-name: tests.api.test_callers -*-
"""
The L{Caller} a request is made for: the actor the door let in, and the
request's own facts, as the model's layers see them.
"""

from __future__ import annotations

import uuid
from typing import Any

from txregistry.api.responses import origin
from txregistry.interfaces import ANONYMOUS, Caller

__all__ = ["callerOf"]


def _header(request: Any, name: bytes) -> str:
    value = request.getHeader(name)
    return value.decode("latin-1") if value else ""


def callerOf(request: Any) -> Caller:
    """
    The L{Caller} of C{request}, made once and kept on it as
    C{request.caller}.
    """
    caller: Caller | None = getattr(request, "caller", None)
    if caller is not None:
        return caller
    actor = getattr(request, "actor", None)
    forwarded = _header(request, b"x-forwarded-for").split(",", 1)[0].strip()
    address = forwarded or getattr(request.getClientAddress(), "host", "") or ""
    caller = Caller(
        name=getattr(actor, "name", "") or ANONYMOUS.name,
        requestID=str(uuid.uuid4()),
        address=address,
        host=_header(request, b"host"),
        origin=origin(request),
        method=request.method.decode("latin-1"),
        userAgent=_header(request, b"user-agent"),
    )
    request.caller = caller
    return caller
