# -*- test-case-name: tests.workers.test_supervisor -*-
"""
What a worker tells its supervisor, one line each on the worker's file
descriptor 4: its log lines, formatted (or, when the supervisor's log is
not its own, such as syslog, its log events in L{twisted.logger}'s JSON
form), that it listens, and its answers.  When the log is standard
output, the worker writes its lines there itself (L{DirectLineStream}).  A line is written whole with one lock, so that events logged
from the blocking pool's threads never interleave with the reactor's.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from twisted.logger import ILogObserver, eventAsJSON, eventFromJSON, formatEvent
from zope.interface import implementer

#: The first byte of each line: what the rest is.  An answer is the
#: question's number, a space and the answer as JSON; the supervisor asks
#: on the worker's standard input, one line each: the number, a space and
#: the question (see L{txregistry.workers.debug}).
EVENT = b"E"
LINE = b"L"
READY = b"R"
ANSWER = b"A"
#: A change to forget in every other worker (L{txregistry.workers.peers}).
FORGET = b"F"

#: The worker's descriptor for these lines.
MESSAGES_FD = 4
#: The worker's descriptor for the shared listening socket.
LISTENING_FD = 3
#: The worker's descriptor for the log itself, when the supervisor's log
#: is a stream that never changes file (standard output).
LOG_FD = 5


class MessageWriter:
    """
    Writes whole lines to a descriptor, from any thread, blocking until each
    is written (as writing the log to a file would).
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, kind: bytes, body: bytes = b"") -> None:
        self.write(kind + body + b"\n")

    def write(self, data: bytes) -> None:
        """
        Write C{data} whole, before any other thread's.
        """
        with self._lock:
            try:
                while data:
                    data = data[os.write(self._fd, data):]
            except OSError:
                # The supervisor is gone: the worker stops when its
                # standard input closes.
                pass


@implementer(ILogObserver)
class EventForwarder:
    """
    A worker's log observer: each event, as JSON, to the supervisor.
    """

    def __init__(self, writer: MessageWriter) -> None:
        self._writer = writer

    def __call__(self, event: dict[str, Any]) -> None:
        # The message is formatted here, where its fields have their
        # types (a float through JSON may come back formatted otherwise).
        text = formatEvent(event).replace("{", "{{").replace("}", "}}")
        self._writer.send(EVENT, eventAsJSON({**event, "log_format": text}).encode("utf-8"))


class LineStream:
    """
    The stream a worker's L{txregistry.logs.LineObserver} writes to: each
    line it formats (a traceback's included) to the supervisor as one JSON
    string, which the supervisor writes to the log as it is.  Formatting
    in the worker costs what the single process's log costs; the
    supervisor only copies.
    """

    def __init__(self, writer: MessageWriter) -> None:
        self._writer = writer

    def write(self, text: str) -> int:
        self._writer.send(LINE, json.dumps(text).encode("utf-8"))
        return len(text)

    def flush(self) -> None:
        pass


class DirectLineStream:
    """
    The stream a worker's L{txregistry.logs.LineObserver} writes to when
    it has the log's own descriptor (L{LOG_FD}): each line written whole
    in one C{write} from any thread, as the supervisor's own lines are,
    so that no line passes through the supervisor (at a log line per
    request, copying them cost the supervisor a tenth of a core).
    """

    def __init__(self, fd: int) -> None:
        self._writer = MessageWriter(fd)

    def write(self, text: str) -> int:
        self._writer.write(text.encode("utf-8", "replace"))
        return len(text)

    def flush(self) -> None:
        pass


def parseLine(body: bytes) -> str:
    """
    The log text a worker sent as C{body}.
    """
    text = json.loads(body)
    if not isinstance(text, str):
        raise ValueError("not a log line")
    return text


def parseEvent(body: bytes) -> dict[str, Any]:
    """
    The log event a worker sent as C{body}.
    """
    return eventFromJSON(body.decode("utf-8", "replace"))
