# -*- test-case-name: tests.workers.test_supervisor -*-
"""
One worker process: C{python -m txregistry.workers.worker --index N
[--config FILE]}, spawned by L{txregistry.workers.supervisor} with the
listening socket as descriptor 3 and its message pipe as descriptor 4.

A worker is a whole L{RegistryService} serving the adopted socket.  It
stops gracefully (the drain, C{http.draintimeout}) on C{SIGTERM}, reloads
on C{SIGHUP} as the single process does, ignores C{SIGINT} (a terminal's
Ctrl-C is the supervisor's to act on) and stops when its standard input,
the supervisor's end of a pipe, closes: a worker outlives no supervisor.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from twisted.internet import tcp, unix
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.internet.protocol import Protocol
from twisted.logger import Logger, globalLogBeginner
from zope.interface import implementer

from txregistry.collector import settle
from txregistry.config import Configuration, loadConfiguration
from txregistry.workers.debug import HEALTH, METRICS, VARS
from txregistry.workers.messages import (
    ANSWER,
    LISTENING_FD,
    LOG_FD,
    MESSAGES_FD,
    READY,
    DirectLineStream,
    EventForwarder,
    LineStream,
    MessageWriter,
)
from txregistry.workers.peers import ACKNOWLEDGED, FORGET_QUESTION, WorkerPeers

_log = Logger()


def outboxFor(config: Configuration, index: int) -> Configuration:
    """
    C{config} with worker C{index}'s own notifications outbox.

    Worker 0 keeps C{notifications.outbox.directory} itself (what a single
    process journaled there is drained by worker 0 when workers are turned
    on), worker N uses its C{worker-N} subdirectory.  An outbox is locked
    by the one process that has it, and worker N is always journaling
    into, and draining, the same directory: a worker restarted after a
    crash takes its predecessor's lock (freed when that process died)
    and sends what it left, from its cursor.  An event is journaled before
    its request is acknowledged, by the worker that served the request, in
    that worker's outbox only: so no acknowledged event is lost, and none
    is owned by two outboxes.  Lowering C{http.workers} leaves the higher
    workers' directories to be drained: start with as many workers again,
    or replay them with C{txregistry notifications replay --file}.
    """
    notifications = config.notifications
    if not notifications.enabled or index == 0 or not notifications.outbox:
        return config
    directory = os.path.join(notifications.outbox, f"worker-{index}")
    return replace(config, notifications=replace(notifications, outbox=directory))


class _OneAcceptAtATime:
    """
    A listening port that accepts one connection each time the reactor
    finds it readable.  Every worker waits on the one socket; Twisted's
    ports accept up to a hundred connections at a wake, so whichever
    worker woke first took a whole burst (64 connections opened at once
    went 59 to one worker, 5 to the other, which then idled).  One at a
    time, the worker that is less busy comes back to the socket sooner
    and takes more.
    """

    @property
    def numberAccepts(self) -> int:
        return 1

    @numberAccepts.setter
    def numberAccepts(self, value: int) -> None:
        pass


class _TCPPort(_OneAcceptAtATime, tcp.Port):
    pass


class _UNIXPort(_OneAcceptAtATime, unix.Port):
    pass


@implementer(IStreamServerEndpoint)
class AdoptedEndpoint:
    """
    Serves a listening socket another process opened (the supervisor's,
    inherited as a descriptor), with TLS when C{tls} is given.
    """

    def __init__(self, reactor: Any, fd: int, tls: Any = None) -> None:
        self._reactor = reactor
        self._fd = fd
        self._tls = tls

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        with socket.socket(fileno=os.dup(self._fd)) as inherited:
            family = inherited.family
        if self._tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            protocolFactory = TLSMemoryBIOFactory(self._tls, False, protocolFactory)
        if family == socket.AF_UNIX:
            port: Any = _UNIXPort._fromListeningDescriptor(self._reactor, self._fd, protocolFactory)
        else:
            port = _TCPPort._fromListeningDescriptor(self._reactor, self._fd, family, protocolFactory)
        port.startListening()
        # adoptStreamPort dups the descriptor: the inherited one is closed
        # so that stopping the port really stops this worker's listening.
        os.close(self._fd)
        return succeed(port)


class _Supervisor(Protocol):
    """
    The worker's standard input: the supervisor's questions (one line
    each, answered on the message pipe) and its acknowledgements of this
    worker's announcements (L{txregistry.workers.peers}), at the end of a
    pipe that closes when the supervisor dies.
    """

    def __init__(self, reactor: Any, service: Any, writer: MessageWriter, peers: WorkerPeers) -> None:
        self._reactor = reactor
        self._service = service
        self._writer = writer
        self._peers = peers
        self._buffer = b""

    def dataReceived(self, data: bytes) -> None:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            if line.startswith(ACKNOWLEDGED):
                self._peers.acknowledged(int(line[1:]))
                continue
            number, _, question = line.partition(b" ")
            answer = self._answer(question.decode("ascii", "replace"))
            self._writer.send(ANSWER, number + b" " + json.dumps(answer).encode("utf-8"))

    def _answer(self, question: str) -> Any:
        service = self._service
        kind, _, change = question.partition(" ")
        if kind == FORGET_QUESTION:
            try:
                self._peers.forget(change)
            except ValueError:
                _log.error("Not a change to forget: {change!r}", change=change)
                return False
            return True
        if question == HEALTH:
            return dict(service.health.failing())
        if question == VARS:
            return service._variables()
        if question == METRICS and service.telemetry.prometheus is not None:
            from prometheus_client.exposition import generate_latest

            return generate_latest(service.telemetry.prometheus.registry).decode("utf-8")
        return None

    def connectionLost(self, reason: Any = None) -> None:
        if self._reactor.running:
            _log.warn("The supervisor is gone: stopping")
            self._reactor.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="txregistry.workers.worker")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--config")
    parser.add_argument("--log-events", action="store_true",
                        help="send log events, not formatted lines (the supervisor's log is not its own)")
    parser.add_argument("--log-direct", action="store_true",
                        help="write formatted lines to the log itself, descriptor 5")
    options = parser.parse_args(argv)
    from twisted.internet import reactor
    from twisted.internet.stdio import StandardIO

    from txregistry.logs import LevelFilteredObserver, LineObserver
    from txregistry.service import RegistryService

    writer = MessageWriter(MESSAGES_FD)
    config = outboxFor(loadConfiguration(options.config, os.environ), options.index)
    inner: Any = EventForwarder(writer)
    if options.log_direct:
        inner = LineObserver(DirectLineStream(LOG_FD), config.log.formatter, config.log.fields)  # type: ignore[arg-type]
    elif not options.log_events:
        inner = LineObserver(LineStream(writer), config.log.formatter, config.log.fields)  # type: ignore[arg-type]
    pid = os.getpid()

    def tagged(event: dict[str, Any]) -> None:
        event["worker"] = options.index
        event["worker_pid"] = pid
        inner(event)

    observer = LevelFilteredObserver(tagged, config.log.level)  # type: ignore[arg-type]
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    tls = None
    if config.http.tlsCertificate:
        from txregistry.tls import ServerTLS

        tls = ServerTLS(config.http)
    peers = WorkerPeers(writer)
    service = RegistryService(
        config, reactor, endpoint=AdoptedEndpoint(reactor, LISTENING_FD, tls), tls=tls,
        configPath=options.config, worker=options.index, logObserver=observer, peers=peers)
    StandardIO(_Supervisor(reactor, service, writer, peers), stdin=0, stdout=1)  # type: ignore[call-arg]

    stopping: list[bool] = []

    def stopOnce() -> None:
        # SIGTERM may come twice (the whole process group or control group
        # is signalled, and the supervisor sends it on): one stop.
        if not stopping:
            stopping.append(True)
            _log.info("Received SIGTERM, shutting down.")
            reactor.stop()  # type: ignore[attr-defined]

    def start() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda signum, frame: reactor.callFromThread(stopOnce))  # type: ignore[attr-defined]
        service.startService()
        writer.send(READY, str(os.getpid()).encode("ascii"))
        settle()

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1:])
