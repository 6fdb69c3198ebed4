# -*- test-case-name: tests.test_systemd -*-
"""
systemd's readiness protocol (C{sd_notify}), for C{Type=notify} units.

systemd starts the registry with C{NOTIFY_SOCKET} naming a datagram
socket; sending C{READY=1} there once the port is open tells it (and
whatever is ordered after the unit) that the registry serves.  Outside
systemd the variable is unset and nothing is sent.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from twisted.logger import Logger

_log = Logger()


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """
    Send C{state} (C{"READY=1"}, C{"STOPPING=1"}...) to systemd.

    @return: whether there was a socket to send it to.
    """
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        # An abstract socket: its name starts with a NUL byte.
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as e:
        _log.warn("Cannot notify systemd at {address}: {error}", address=address, error=e)
        return False
    return True
