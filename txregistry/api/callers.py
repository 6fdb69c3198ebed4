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


def _ns(request: Any) -> str:
    """
    containerd's C{?ns=}: the registry a mirror request is for.
    """
    values = (getattr(request, "args", None) or {}).get(b"ns") or [b""]
    try:
        return values[0].decode("utf-8").strip()
    except UnicodeDecodeError:
        return ""


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
        ns=_ns(request),
    )
    request.caller = caller
    return caller
