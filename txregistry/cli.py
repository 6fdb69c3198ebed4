# -*- test-case-name: tests.test_cli -*-
"""
The C{txregistry} command.

    txregistry serve [twistd options] [-- plugin options]
    txregistry config check [FILE | --example]
    txregistry config example
    txregistry garbage-collect [--dry-run] [--delete-untagged] [--quiet] CONFIG
    txregistry usage [--json] CONFIG [REPOSITORY ...]
    txregistry copy|push|pull|catalog|tags|manifest|blob|inspect|digest|tag|delete|referrers|login|logout ...
    txregistry notifications list [--config FILE]
    txregistry notifications replay NAME (--dead-letter | --file PATH | --since TIME) [--config FILE]

C{serve} is C{twistd --nodaemon --pidfile= txregistry ...}: what a system
service runs.  C{config check} reads FILE (or C{REGISTRY_CONFIGURATION_PATH},
or the embedded defaults) with the environment's C{REGISTRY_*} overrides,
as the registry would, and prints the effective configuration with its
secrets masked, or one line naming the wrong key and exits 1.  C{config
example} prints the documented example configuration (C{etc/config.yml},
installed with the package), a start for one's own.  C{garbage-collect}
and C{usage} manage space (L{txregistry.collect}, L{txregistry.usage});
C{copy} and the commands after it are the registry client's
(L{txregistry.client.command}).
secrets masked, or one line naming the wrong key and exits 1.
C{notifications} reads the outbox of that configuration: C{list} shows
each endpoint's pending events and dead letters, C{replay} sends events
again (L{txregistry.notifications.operator}).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

# The configuration (and YAML) are imported by the commands that read one,
# not at the top: the client's commands (C{copy} ...) do not, and a
# command's start-up is part of its every run (about 0.15 s of CPU).

#: Keys whose values are secrets, wherever they appear.
SECRET_KEYS = frozenset({
    "secret", "password", "accesskey", "secretkey", "accountkey", "credentials",
    "sessiontoken", "token", "privatekey",
})

_MASK = "********"


def masked(document: Any) -> Any:
    """
    C{document} with the value of every key in L{SECRET_KEYS} replaced by
    a mask (an empty value stays empty: it says the secret is unset).
    """
    if isinstance(document, Mapping):
        return {
            key: (_MASK if str(key).lower() in SECRET_KEYS and value not in ("", None)
                  else masked(value))
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [masked(item) for item in document]
    return document


def checkConfig(path: str | None, environ: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """
    C{txregistry config check}.

    @return: the exit status.
    """
    import yaml

    from txregistry.config import ConfigurationError, loadConfiguration

    path = path or environ.get("REGISTRY_CONFIGURATION_PATH") or None
    from txregistry.storage.errors import DriverConfigurationError
    from txregistry.storage.middleware.factories import checkStorageMiddleware

    try:
        config = loadConfiguration(path, environ)
        # Their options are the middleware's to check (a private key that
        # cannot be read, a bad URL): as the start would.
        checkStorageMiddleware(config.storageMiddleware)
    except (ConfigurationError, DriverConfigurationError) as e:
        err.write(f"txregistry: configuration error: {e}\n")
        return 1
    out.write(f"# {path or 'embedded defaults'}: valid\n")
    yaml.safe_dump(masked(config.raw), out, default_flow_style=False, sort_keys=True)
    return 0


def examplePath() -> str:
    """
    The example configuration's file: C{etc/config.yml}, installed with
    the package as C{txregistry.etc} (or beside a checkout's source).
    """
    from importlib.resources import files

    try:
        path = str(files("txregistry.etc").joinpath("config.yml"))
    except ModuleNotFoundError:
        path = ""
    if not os.path.exists(path):
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        path = os.path.join(here, "etc", "config.yml")
    return path


def notifications(options: argparse.Namespace, environ: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """
    C{txregistry notifications list|replay}.

    @return: the exit status.
    """
    from txregistry.config import ConfigurationError, loadConfiguration
    from txregistry.notifications import operator

    path = options.config or environ.get("REGISTRY_CONFIGURATION_PATH") or None
    try:
        config = loadConfiguration(path, environ)
        if options.action == "list":
            return operator.listOutbox(config, out)
        operator.endpointNamed(config, options.endpoint)
        since = None
        if options.since is not None:
            import time

            since = operator.parseSince(options.since, time.time())
    except ConfigurationError as e:
        err.write(f"txregistry: configuration error: {e}\n")
        return 1
    from twisted.internet.task import react

    status: list[int] = []

    def main(reactor: Any) -> Any:
        return operator.replay(
            config, reactor, options.endpoint, out, deadLetter=options.dead_letter,
            path=options.file, since=since,
        ).addCallback(status.append)

    try:
        react(main)
    except SystemExit as e:
        if e.code:
            return int(e.code)
    return status[0] if status else 1


def serve(arguments: Sequence[str]) -> int:
    """
    C{txregistry serve}: twistd in the foreground, as systemd wants it.
    Arguments before C{--} are twistd's, after it the plugin's.
    """
    twistdOptions, pluginOptions = list(arguments), []
    if "--" in twistdOptions:
        at = twistdOptions.index("--")
        twistdOptions, pluginOptions = twistdOptions[:at], twistdOptions[at + 1:]
    from twisted.scripts.twistd import run

    sys.argv = ["twistd", "--nodaemon", "--pidfile=", *twistdOptions, "txregistry", *pluginOptions]
    run()
    return 0


def _clientCommands(frozen: bool) -> Any:
    """
    Import the client's commands (not for C{serve}: treq, twisted.web's
    client and TLS are heavy).

    @param frozen: this process is the command (not a caller of L{main}):
        import with the garbage collector off, then freeze what the imports
        made.  Those objects live as long as the process; collecting while
        they are made, and again over all of them at exit, was about a
        third of a client command's fixed CPU cost (importing and exiting
        took 0.59 s of CPU without this, 0.40 s with it).
    """
    if not frozen:
        from txregistry.client import command

        return command
    gc.disable()
    try:
        from txregistry.client import command

        return command
    finally:
        gc.freeze()
        gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["serve"]:
        # Everything after "serve" is twistd's (and the plugin's) to parse.
        return serve(arguments[1:])
    clientCommands = _clientCommands(frozen=argv is None)

    parser = argparse.ArgumentParser(prog="txregistry", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the registry in the foreground (twistd options, then -- and the plugin's)")
    config = commands.add_parser("config", help="work with the configuration")
    configCommands = config.add_subparsers(dest="action", required=True)
    check = configCommands.add_parser(
        "check", help="validate a configuration and print it, secrets masked"
    )
    check.add_argument("file", nargs="?", help="YAML file (default: REGISTRY_CONFIGURATION_PATH)")
    check.add_argument("--example", action="store_true",
                       help="check the example configuration installed with txregistry")
    configCommands.add_parser(
        "example", help="print the example configuration (every key, documented)"
    )
    notifying = commands.add_parser("notifications", help="see and replay the notifications outbox")
    notifyingCommands = notifying.add_subparsers(dest="action", required=True)
    listing = notifyingCommands.add_parser(
        "list", help="each endpoint's pending events and dead letters"
    )
    replaying = notifyingCommands.add_parser("replay", help="send an endpoint events again")
    replaying.add_argument("endpoint", help="the endpoint's name")
    which = replaying.add_mutually_exclusive_group(required=True)
    which.add_argument("--dead-letter", action="store_true", help="its dead-letter file")
    which.add_argument("--file", help="a file of events, one JSON object a line")
    which.add_argument("--since", help="every event still in the outbox from TIME (RFC 3339, or 2h for two hours ago)")
    for sub in (listing, replaying):
        sub.add_argument("--config", help="YAML file (default: REGISTRY_CONFIGURATION_PATH)")
    collect = commands.add_parser(
        "garbage-collect", help="remove blobs no manifest needs (nothing may write meanwhile)")
    collect.add_argument("config", help="the registry's YAML configuration")
    collect.add_argument("--dry-run", "-d", action="store_true", help="only print what would be removed")
    collect.add_argument("--delete-untagged", "-m", action="store_true",
                         help="also delete manifests no tag reaches (never an index's child or a referrer of a kept one)")
    collect.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    usage = commands.add_parser("usage", help="what each repository holds, and its quota")
    usage.add_argument("config", help="the registry's YAML configuration")
    usage.add_argument("repositories", nargs="*", help="repositories (default: all)")
    usage.add_argument("--json", action="store_true", help="print JSON")
    clientCommands.register(commands)
    options = parser.parse_args(arguments)
    if options.command == "notifications":
        return notifications(options, os.environ, sys.stdout, sys.stderr)
    if getattr(options, "client", None):
        return clientCommands.run(options)
    if options.command == "usage":
        from txregistry.usage import run as usageRun

        return usageRun(options, os.environ)
    if options.command == "garbage-collect":
        from txregistry.collect import run

        return run(options, os.environ)
    if options.action == "example":
        with open(examplePath(), encoding="utf-8") as f:
            sys.stdout.write(f.read())
        return 0
    if options.example and options.file:
        parser.error("config check takes a FILE or --example, not both")
    path = examplePath() if options.example else options.file
    return checkConfig(path, os.environ, sys.stdout, sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
