# -*- test-case-name: tests.test_plugin -*-
"""
Structured logging through L{twisted.logger}: a level filter and a text or
JSON-lines formatter, chosen by the C{log:} section.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    formatTime,
)
from twisted.python.logfile import LogFile
from zope.interface import implementer

from txregistry.config import ConfigurationError, LogConfig, loadConfiguration

_LEVELS = {
    "panic": LogLevel.critical,
    "fatal": LogLevel.critical,
    "error": LogLevel.error,
    "warn": LogLevel.warn,
    "warning": LogLevel.warn,
    "info": LogLevel.info,
    "debug": LogLevel.debug,
    "trace": LogLevel.debug,
}

#: Event keys that are bookkeeping, not fields worth printing.
_INTERNAL = frozenset(
    {
        "log_logger",
        "log_source",
        "log_namespace",
        "log_level",
        "log_time",
        "log_format",
        "log_failure",
        "log_io",
        "log_system",
        "log_text",
        "log_trace",
        "log_flattened",
        "log_legacy",
        "message",
        "time",
        "system",
        "format",
        "isError",
        "failure",
        "why",
        "log_observer",
    }
)


def _fields(event: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in event.items()
        if k not in _INTERNAL and not k.startswith("log_") and _jsonable(v)
    }


def _jsonable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, dict))


@implementer(ILogObserver)
class LineObserver:
    """
    Writes one line per event: text (time, level, namespace, message) or a
    JSON object with C{time}, C{level}, C{msg}, C{namespace}, any
    JSON-able event fields and the configured static fields.

    A text line's time is to the second: it is formatted once per second
    (the local time zone's offset looked up, C{strftime}) and reused by
    every line of that second, which the access log's line per request
    would otherwise pay each time.
    """

    def __init__(self, out: IO[str], formatter: str, staticFields: dict[str, Any]) -> None:
        self._out = out
        self._json = formatter == "json"
        self._static = staticFields
        self._second: int | None = None
        self._stamp = ""

    def __call__(self, event: dict[str, Any]) -> None:
        message = formatEvent(event) or ""
        failure = event.get("log_failure")
        level = event.get("log_level", LogLevel.info)
        when = event.get("log_time", time.time())
        if self._json:
            record: dict[str, Any] = dict(self._static)
            record.update(_fields(event))
            record["time"] = formatTime(when, "%Y-%m-%dT%H:%M:%S.%f%z")
            record["level"] = level.name
            record["msg"] = message
            record["namespace"] = event.get("log_namespace", "")
            if failure is not None:
                record["error"] = failure.getErrorMessage()
                record["traceback"] = failure.getTraceback()
            line = json.dumps(record, default=str)
        else:
            worker = event.get("worker")
            second = int(when)
            if second != self._second:
                self._stamp, self._second = formatTime(second), second
            line = "{} [{}] {}{}: {}".format(
                self._stamp,
                level.name,
                event.get("log_namespace", "-"),
                "" if worker is None else f" (worker {worker}, pid {event.get('worker_pid')})",
                message,
            )
            if failure is not None:
                line += "\n" + failure.getTraceback()
        try:
            self._out.write(line + "\n")
            self._out.flush()
        except (OSError, ValueError):
            pass


def logDestination(twistdOptions: Mapping[str, Any] | None) -> IO[str] | None:
    """
    Where the registry's log lines go, following twistd's own options as
    twistd itself does: standard output in the foreground (or with
    C{--logfile=-}), else C{--logfile} (default C{twistd.log}), a
    L{LogFile} that rotates by size as twistd's does (and on C{SIGUSR1}
    once L{rotateOnSIGUSR1} is called).

    @return: the stream, or L{None} when C{--syslog} or C{--logger} chose
        another observer, which is then left alone.
    """
    if twistdOptions is None:
        return sys.stdout
    if twistdOptions.get("logger") or twistdOptions.get("syslog"):
        return None
    logfile = twistdOptions.get("logfile")
    if logfile == "-" or (twistdOptions.get("nodaemon") and not logfile):
        return sys.stdout
    return LogFile.fromFullPath(logfile or "twistd.log")  # type: ignore[return-value]


def rotateOnSIGUSR1(logFile: LogFile) -> None:
    """
    Rotate C{logFile} on C{SIGUSR1}, as twistd does for the log file it
    opens itself (C{UnixAppLogger._getLogObserver}).  twistd installs that
    handler only when it makes the observer, and the registry makes its
    own, so without this a C{kill -USR1} from logrotate would kill the
    daemon.  A handler someone else installed is left alone, as twistd
    leaves it.
    """
    import signal

    if signal.getsignal(signal.SIGUSR1):
        return

    def rotate(signum: int, frame: Any) -> None:
        from twisted.internet import reactor

        # Not in the signal handler itself: the write it would interrupt
        # may be to this very file.
        reactor.callFromThread(logFile.rotate)  # type: ignore[attr-defined]

    signal.signal(signal.SIGUSR1, rotate)


class LevelFilteredObserver(FilteringLogObserver):
    """
    A L{FilteringLogObserver} whose level can change while it runs
    (C{log.level}, reloaded on C{SIGHUP}).

    @ivar level: the C{log.level} name in force.
    """

    def __init__(self, observer: ILogObserver, level: str) -> None:
        self.level = level
        self._predicate = LogLevelFilterPredicate(defaultLogLevel=_LEVELS[level])
        super().__init__(observer, [self._predicate])

    def setLevel(self, level: str) -> None:
        """
        Log at C{level} (a C{log.level} name) from now on.
        """
        self.level = level
        self._predicate.defaultLogLevel = _LEVELS[level]
        self._predicate.clearLogLevels()


def makeObserver(config: LogConfig, out: IO[str] | None = None) -> LevelFilteredObserver:
    """
    The registry's log observer for C{config}: a L{LineObserver} behind a
    level filter.
    """
    return LevelFilteredObserver(
        LineObserver(out if out is not None else sys.stdout, config.formatter, config.fields),
        config.level,
    )


def reloadLogLevel(
    observer: LevelFilteredObserver | None, configPath: str | None, environ: Mapping[str, str]
) -> None:
    """
    C{SIGHUP}: read the configuration again and apply its C{log.level} to
    C{observer}; nothing else in it changes while running, and a file that
    no longer loads changes nothing.

    @param observer: the registry's own observer, or L{None} when the log
        is someone else's (C{--syslog}, C{--logger}).
    """
    log = Logger()
    if observer is None:
        log.info("SIGHUP: the log is not the registry's own; log level unchanged")
        return
    try:
        config = loadConfiguration(configPath, environ)
    except ConfigurationError as e:
        log.error("SIGHUP: the configuration does not load, log level unchanged: {error}",
                  error=str(e))
        return
    level, previous = config.log.level, observer.level
    if level == previous:
        log.info("SIGHUP: log level unchanged ({name})", name=level)
        return
    observer.setLevel(level)
    log.warn("SIGHUP: log level is now {name} (was {previous})", name=level, previous=previous)
