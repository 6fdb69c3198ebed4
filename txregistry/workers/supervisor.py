# -*- test-case-name: tests.workers.test_supervisor -*-
"""
L{WorkerSupervisor}: the parent of C{http.workers} worker processes.

It holds the listening socket (never accepting on it), spawns each worker
with it (L{txregistry.workers.worker}), restarts a worker that dies, tells
systemd the server is ready once every worker listens, sends C{SIGHUP} on
to every worker, and on stop sends C{SIGTERM} to each and waits while they
drain (C{http.draintimeout}).  Workers write to the one log, in its one
format, with the worker's index and pid as fields: to standard output
themselves, and to a log file (which this process rotates) or another
observer through this process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, fail
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger, globalLogPublisher
from twisted.python.failure import Failure
from twisted.python.logfile import LogFile

from txregistry.config import Configuration
from txregistry.systemd import notify
from txregistry.workers.debug import gathered
from txregistry.workers.messages import (
    ANSWER,
    EVENT,
    FORGET,
    LINE,
    LISTENING_FD,
    LOG_FD,
    MESSAGES_FD,
    READY,
    parseEvent,
    parseLine,
)
from txregistry.workers.peers import ACKNOWLEDGED, FORGET_QUESTION

_log = Logger()

#: Seconds before a worker that died is started again; doubled each time
#: one dies within L{STABLE} seconds of its start, up to L{MAX_DELAY}.
FIRST_DELAY = 0.5
MAX_DELAY = 30.0
STABLE = 10.0
#: Seconds a worker has to answer a question (L{WorkerProcess.ask}).
ASK_TIMEOUT = 5.0
#: Seconds a worker gets beyond C{http.draintimeout} to exit on stop,
#: before it is killed.
EXIT_GRACE = 5.0


class WorkerProcess(ProcessProtocol):
    """
    One worker, as its supervisor sees it: its message pipe (log events,
    readiness), its standard output and error (anything else it prints,
    logged line by line), and its end.

    @ivar index: its place among the workers, kept by its successors.
    @ivar pid: its process id, once running.
    @ivar ready: whether it listens.
    """

    def __init__(self, supervisor: WorkerSupervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.pid: int | None = None
        self.ready = False
        self.ended: Deferred[None] = Deferred()
        self._buffers: dict[int, bytes] = {}
        self._questions: dict[int, Deferred[Any]] = {}
        self._asked = 0

    def connectionMade(self) -> None:
        self.pid = self.transport.pid  # type: ignore[union-attr]

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        lines = (self._buffers.get(childFD, b"") + data).split(b"\n")
        self._buffers[childFD] = lines.pop()
        for line in lines:
            if childFD == MESSAGES_FD:
                self._message(line)
            elif line:
                self._printed(childFD, line)

    def _message(self, line: bytes) -> None:
        kind, body = line[:1], line[1:]
        if kind == LINE:
            try:
                text = parseLine(body)
            except ValueError:
                self._printed(MESSAGES_FD, line)
                return
            self.supervisor.writeLog(text)
        elif kind == EVENT:
            try:
                event = parseEvent(body)
            except ValueError:
                self._printed(MESSAGES_FD, line)
                return
            event["worker"] = self.index
            event["worker_pid"] = self.pid
            globalLogPublisher(event)
        elif kind == READY:
            self.ready = True
            self.supervisor.workerReady(self)
        elif kind == FORGET:
            number, _, change = body.partition(b" ")
            self.supervisor.announce(self, change.decode("ascii", "replace")).addCallback(
                lambda _: self._acknowledge(number))
        elif kind == ANSWER:
            number, _, answer = body.partition(b" ")
            try:
                waiting = self._questions.pop(int(number), None)
                value = json.loads(answer)
            except ValueError:
                self._printed(MESSAGES_FD, line)
                return
            if waiting is not None and not waiting.called:  # not timed out
                waiting.callback(value)

    def _acknowledge(self, number: bytes) -> None:
        """
        Tell the worker every other one forgot its announcement C{number}.
        """
        if self.ended.called:
            return
        try:
            self.transport.writeToChild(0, ACKNOWLEDGED + number + b"\n")  # type: ignore[union-attr]
        except KeyError:
            pass  # its standard input is closed: it is ending

    def ask(self, question: str, timeout: float = ASK_TIMEOUT) -> Deferred[Any]:
        """
        Ask the worker C{question} (L{txregistry.workers.debug}).

        @return: its answer, parsed; failing if it gives none within
            C{timeout} seconds, or ends first.
        """
        self._asked += 1
        try:
            self.transport.writeToChild(0, b"%d %s\n" % (self._asked, question.encode("ascii")))  # type: ignore[union-attr]
        except KeyError:
            # Its standard input is closed: it is ending, and answers
            # nothing more.
            return fail(ProcessExitedAlready())
        answer: Deferred[Any] = Deferred()
        self._questions[self._asked] = answer
        return answer.addTimeout(timeout, self.supervisor.reactor)

    def _printed(self, childFD: int, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        if childFD == 2:
            _log.warn("{line}", line=text, worker=self.index, worker_pid=self.pid)
        else:
            _log.info("{line}", line=text, worker=self.index, worker_pid=self.pid)

    def processEnded(self, reason: Failure) -> None:
        for childFD, rest in self._buffers.items():
            if rest and childFD == MESSAGES_FD:
                self._message(rest)
            elif rest:
                self._printed(childFD, rest)
        self._buffers.clear()
        questions, self._questions = self._questions, {}
        for waiting in questions.values():
            if not waiting.called:
                waiting.errback(reason)
        self.supervisor.workerEnded(self, reason)
        self.ended.callback(None)

    def signal(self, name: str) -> None:
        try:
            self.transport.signalProcess(name)  # type: ignore[union-attr]
        except ProcessExitedAlready:
            pass


class WorkerSupervisor(Service):
    """
    Runs C{config.http.workers} workers on C{port}'s socket.

    @ivar workers: the running workers, by index.
    """

    def __init__(
        self,
        config: Configuration,
        reactor: Any,
        port: Callable[[], Deferred[IListeningPort]],
        configPath: str | None,
        environ: Mapping[str, str],
        reloadLogLevel: Callable[[], None] | None = None,
        logOutput: IO[str] | None = None,
    ) -> None:
        """
        @param port: opens the listening port (or hands over the one opened
            before twistd daemonised); it is never read from here.
        @param configPath: the configuration file the workers read, or
            L{None} for the embedded defaults.
        @param environ: the workers' environment (with the C{REGISTRY_*}
            overrides the supervisor itself read).
        @param reloadLogLevel: what else C{SIGHUP} does here: the
            supervisor's own log level.
        @param logOutput: the log's stream, where the workers' lines are
            written as they formatted them; L{None} when the log is
            another observer's (C{--syslog}, C{--logger}), which then gets
            their events.
        """
        self.config = config
        self.reactor = reactor
        self._openPort = port
        self._configPath = configPath
        self._environ = dict(environ)
        self._environ.pop("NOTIFY_SOCKET", None)
        # The workers import the same code as this process.
        self._environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._reloadLogLevel = reloadLogLevel
        self._logOutput = logOutput
        self.workers: dict[int, WorkerProcess] = {}
        self._port: Any = None
        self._stopping = False
        self._announced = False
        self._delays: dict[int, float] = {}
        self._started: dict[int, float] = {}
        self._pending: dict[int, Any] = {}
        self._previousHUP: Any = None
        self._startedAt = time.time()

    def startService(self) -> None:
        super().startService()
        self._openPort().addCallbacks(self._listening, self._cannotListen)
        current = signal.getsignal(signal.SIGHUP)
        if current in (signal.SIG_DFL, signal.SIG_IGN):
            self._previousHUP = current
            signal.signal(signal.SIGHUP, self._onSIGHUP)

    def _cannotListen(self, failure: Failure) -> None:
        _log.failure("Cannot listen on {addr}", failure, addr=self.config.http.addr)
        self.reactor.stop()

    def _listening(self, port: Any) -> None:
        # Only the workers accept: the port stays open here, unread.
        port.stopReading()
        self._port = port
        for index in range(self.config.http.workers):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        self._pending.pop(index, None)
        if self._stopping:
            return
        worker = WorkerProcess(self, index)
        arguments = [sys.executable, "-m", "txregistry.workers.worker", "--index", str(index)]
        childFDs: dict[int, int | str] = {
            0: "w", 1: "r", 2: "r", LISTENING_FD: self._port.fileno(), MESSAGES_FD: "r"}
        logFD = self._directLog()
        if self._logOutput is None:
            arguments.append("--log-events")
        elif logFD is not None:
            arguments.append("--log-direct")
            childFDs[LOG_FD] = logFD
        if self._configPath:
            arguments += ["--config", self._configPath]
        self._started[index] = self.reactor.seconds()
        self.reactor.spawnProcess(
            worker, sys.executable, arguments, env=self._environ, path=os.getcwd(), childFDs=childFDs,
        )
        self.workers[index] = worker

    def _directLog(self) -> int | None:
        """
        The log's descriptor, for workers to write their lines to
        themselves, when the log is a plain stream (standard output, a
        pipe to journald, a file the shell opened); L{None} when it is a
        L{LogFile}, which this process rotates (and so reopens), or has
        no descriptor.
        """
        if self._logOutput is None or isinstance(self._logOutput, LogFile):
            return None
        try:
            self._logOutput.flush()
            return self._logOutput.fileno()
        except (AttributeError, OSError, ValueError):
            return None

    def writeLog(self, text: str) -> None:
        """
        Write a worker's formatted log line to the log.
        """
        if self._logOutput is None:
            return
        try:
            self._logOutput.write(text)
            self._logOutput.flush()
        except (OSError, ValueError):
            pass

    def workerReady(self, worker: WorkerProcess) -> None:
        if self._announced:
            _log.info("Worker {index} (pid {pid}) serving again", index=worker.index, pid=worker.pid)
            return
        if all(w.ready for w in self.workers.values()) and len(self.workers) == self.config.http.workers:
            self._announced = True
            _log.info(
                "txregistry serving on {addr} with {driver} storage, {count} workers (pids {pids})",
                addr=self.config.http.addr, driver=self.config.storage.driver,
                count=len(self.workers), pids=" ".join(str(w.pid) for w in self.workers.values()))
            notify("READY=1")

    def workerEnded(self, worker: WorkerProcess, reason: Failure) -> None:
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
        if self._stopping:
            return
        if not self._announced and not worker.ready:
            # A worker that cannot start is a mistake the start did not
            # find: say so and stop, rather than start it again and again.
            _log.critical("Worker {index} (pid {pid}) could not start ({why}): stopping",
                          index=worker.index, pid=worker.pid, why=reason.getErrorMessage())
            self.reactor.stop()
            return
        lived = self.reactor.seconds() - self._started.get(worker.index, 0.0)
        delay = FIRST_DELAY
        if lived < STABLE:
            delay = min(MAX_DELAY, self._delays.get(worker.index, FIRST_DELAY / 2) * 2)
        self._delays[worker.index] = delay
        _log.error("Worker {index} (pid {pid}) ended ({why}) after {lived:.1f}s: starting another in {delay:g}s",
                   index=worker.index, pid=worker.pid, why=reason.getErrorMessage(), lived=lived,
                   delay=delay)
        self._pending[worker.index] = self.reactor.callLater(delay, self._spawn, worker.index)

    def announce(self, origin: WorkerProcess, change: str) -> Deferred[None]:
        """
        Have every worker but C{origin} forget C{change}
        (L{txregistry.workers.peers}).

        @return: fires once each has answered or ended.  One that serves
            but does not answer in time is killed (and restarted): it would
            serve what it cached; one still starting has served nothing,
            and is not waited for.
        """
        waits = []
        for worker in list(self.workers.values()):
            if worker is not origin:
                forgotten = worker.ask(f"{FORGET_QUESTION} {change}")
                forgotten.addErrback(self._notForgotten, worker)
                waits.append(forgotten)
        return DeferredList(waits).addCallback(lambda _: None)

    def _notForgotten(self, failure: Failure, worker: WorkerProcess) -> Deferred[None] | None:
        if worker.ended.called or not worker.ready:
            return None
        gone: Deferred[None] = Deferred()

        def ended(result: object) -> object:
            gone.callback(None)
            return result

        worker.ended.addBoth(ended)
        if failure.check(ProcessExitedAlready):
            return gone  # ending already
        _log.error("Worker {index} (pid {pid}) did not forget a changed tag within {timeout:g}s:"
                   " killing it", index=worker.index, pid=worker.pid, timeout=ASK_TIMEOUT)
        worker.signal("KILL")
        return gone

    def ask(self, question: str) -> Deferred[list[Any]]:
        """
        Ask every listening worker C{question}: the answers of those that
        gave one.
        """
        return gathered([w.ask(question) for w in self.workers.values() if w.ready])

    def variables(self) -> dict[str, Any]:
        """
        What C{/debug/vars} says of the supervisor itself.
        """
        return {
            "uptime_seconds": round(time.time() - self._startedAt, 3),
            "workers": {"configured": self.config.http.workers,
                        "serving": sorted(w.pid for w in self.workers.values() if w.ready and w.pid)},
        }

    def _onSIGHUP(self, signum: int, frame: Any) -> None:
        # Not in the handler itself: it interrupts the reactor anywhere.
        self.reactor.callFromThread(self.reload)

    def reload(self) -> None:
        """
        C{SIGHUP}: this process's log level, then every worker that
        listens (one still starting reads the configuration anyway).
        """
        if self._reloadLogLevel is not None:
            self._reloadLogLevel()
        for worker in list(self.workers.values()):
            if worker.ready:
                worker.signal("HUP")

    async def _stop(self) -> None:
        notify("STOPPING=1")
        self._stopping = True
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()
        if self._port is not None:
            # Closed here first: the socket stops listening once the
            # workers, told next, have closed their copies too.
            await self._port.stopListening()
            self._port = None
        workers = list(self.workers.values())
        for worker in workers:
            worker.signal("TERM")
        if workers:
            ended = DeferredList([w.ended for w in workers])
            def kill() -> None:
                for worker in workers:
                    worker.signal("KILL")

            killing = self.reactor.callLater(self.config.http.drainTimeout + EXIT_GRACE, kill)
            await ended
            if killing.active():
                killing.cancel()
        if signal.getsignal(signal.SIGHUP) == self._onSIGHUP:
            signal.signal(signal.SIGHUP, self._previousHUP)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return Deferred.fromCoroutine(self._stop())
