# -*- test-case-name: tests.client.test_command -*-
"""
The client's subcommands of C{txregistry}:

    txregistry copy SRC DST [--all] [--preserve-digests] [--platform OS/ARCH]
    txregistry push SRC REF | pull REF DST
    txregistry catalog HOST | tags REPO
    txregistry manifest get|head|put REF ... | blob get|head|put ...
    txregistry inspect REF | digest REF | tag REF TAG... | delete REF
    txregistry referrers REPO@DIGEST
    txregistry login HOST -u USER --password-stdin | logout HOST

References are skopeo's (C{docker://HOST/REPO:TAG}, C{oci:DIR[:TAG]},
C{docker-archive:FILE[:REF]}); the commands that only talk to registries
also take C{HOST/REPO:TAG} as it is.  Credentials are docker's
C{config.json} (C{--config-dir}, or C{$DOCKER_CONFIG}) and its credential
helpers.  C{--json} prints one JSON document; progress bars are drawn on a
terminal only.  A failure is one line on standard error naming the
reference and the cause, and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from typing import Any, BinaryIO, TextIO

from twisted.internet.defer import ensureDeferred

from txregistry import errors as model
from txregistry.client import actions
from txregistry.client.references import ReferenceError

__all__ = ["register", "run", "execute"]


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document")
    common.add_argument("--insecure", action="store_true",
                        help="HTTPS without checking the registry's certificate")
    common.add_argument("--plain-http", action="store_true",
                        help="plain HTTP to every registry (loopback hosts get it anyway, "
                             "unless --ca-file or --cert is given)")
    common.add_argument("--ca-file", help="PEM bundle of the authorities to trust")
    common.add_argument("--cert", help="PEM client certificate (and key, unless --key)")
    common.add_argument("--key", help="PEM key of the client certificate")
    common.add_argument("--config-dir", help="docker's configuration directory "
                                             "(default $DOCKER_CONFIG or ~/.docker)")
    common.add_argument("--creds", metavar="USER:PASSWORD",
                        help="log in as this account instead of config.json's")
    return common


def register(commands: Any) -> None:
    """
    Add the client's subcommands to C{txregistry}'s subparsers.
    """
    common = _common()

    def add(name: str, handler: Callable[..., Coroutine[Any, Any, int]], text: str) -> Any:
        parser = commands.add_parser(name, help=text, parents=[common])
        parser.set_defaults(client=handler)
        return parser

    def copyOptions(parser: Any) -> None:
        parser.add_argument("--all", action="store_true",
                            help="copy an index with every image it names")
        parser.add_argument("--preserve-digests", action="store_true",
                            help="fail rather than change a manifest's digest")
        parser.add_argument("--platform", help="OS/ARCH[/VARIANT] picked from an index "
                                               "(default this machine's)")
        parser.add_argument("--jobs", type=int, default=None, help="blobs copied at once")

    parser = add("copy", actions.copy, "copy an image between docker://, oci: and docker-archive:")
    parser.add_argument("source")
    parser.add_argument("destination")
    copyOptions(parser)
    parser = add("push", actions.push, "copy a local image (oci:, docker-archive:) to a registry")
    parser.add_argument("source")
    parser.add_argument("destination", help="HOST/REPO[:TAG]")
    copyOptions(parser)
    parser = add("pull", actions.pull, "copy an image from a registry to oci: or docker-archive:")
    parser.add_argument("source", help="HOST/REPO[:TAG|@DIGEST]")
    parser.add_argument("destination")
    copyOptions(parser)

    parser = add("catalog", actions.catalog, "list a registry's repositories")
    parser.add_argument("host")
    parser = add("tags", actions.tags, "list a repository's tags")
    parser.add_argument("repository", help="HOST/REPO")

    manifest = commands.add_parser("manifest", help="get, head or put a manifest")
    verbs = manifest.add_subparsers(dest="action", required=True)
    parser = verbs.add_parser("get", parents=[common], help="print a manifest")
    parser.set_defaults(client=actions.manifestGet)
    parser.add_argument("reference")
    parser.add_argument("-o", "--output", help="write it to this file")
    parser = verbs.add_parser("head", parents=[common], help="a manifest's digest and size")
    parser.set_defaults(client=actions.manifestHead)
    parser.add_argument("reference")
    parser = verbs.add_parser("put", parents=[common], help="store a manifest")
    parser.set_defaults(client=actions.manifestPut)
    parser.add_argument("reference", help="HOST/REPO:TAG or HOST/REPO@DIGEST")
    parser.add_argument("file", nargs="?", default="-", help="the manifest (default stdin)")
    parser.add_argument("--media-type", help="its Content-Type (default its mediaType)")

    blob = commands.add_parser("blob", help="get, head or put a blob")
    verbs = blob.add_subparsers(dest="action", required=True)
    parser = verbs.add_parser("get", parents=[common], help="write a blob out, verified")
    parser.set_defaults(client=actions.blobGet)
    parser.add_argument("reference", help="HOST/REPO@DIGEST")
    parser.add_argument("-o", "--output", help="write it to this file (default stdout)")
    parser = verbs.add_parser("head", parents=[common], help="a blob's size")
    parser.set_defaults(client=actions.blobHead)
    parser.add_argument("reference", help="HOST/REPO@DIGEST")
    parser = verbs.add_parser("put", parents=[common], help="upload a file as a blob")
    parser.set_defaults(client=actions.blobPut)
    parser.add_argument("repository", help="HOST/REPO")
    parser.add_argument("file")

    parser = add("inspect", actions.inspect, "an image's config, layers, platforms and sizes")
    parser.add_argument("reference")
    parser = add("digest", actions.digest, "the digest of the manifest a reference names")
    parser.add_argument("reference")
    parser = add("tag", actions.tag, "give the manifest a reference names more tags")
    parser.add_argument("reference")
    parser.add_argument("tags", nargs="+")
    parser = add("delete", actions.delete, "delete a manifest (by tag: the manifest it names)")
    parser.add_argument("reference")
    parser = add("referrers", actions.referrers, "the manifests whose subject is a manifest")
    parser.add_argument("reference", help="HOST/REPO@DIGEST or HOST/REPO:TAG")
    parser.add_argument("--artifact-type", help="only those of this artifact type")

    parser = add("login", actions.login, "check and save credentials in config.json")
    parser.add_argument("host")
    parser.add_argument("-u", "--username", required=True)
    parser.add_argument("-p", "--password", help="(prefer --password-stdin)")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    parser = add("logout", actions.logout, "forget the credentials of a registry")
    parser.add_argument("host")


def _subject(options: argparse.Namespace) -> str:
    for name in ("source", "reference", "repository", "host"):
        value = getattr(options, name, None)
        if value:
            if name == "source" and getattr(options, "destination", None):
                return f"{value} -> {options.destination}"
            return str(value)
    return "txregistry"


async def execute(options: argparse.Namespace, out: TextIO, err: TextIO,
                  stdin: BinaryIO | None = None, reactor: Any = None) -> int:
    """
    Run the client command C{options} names.

    @return: the exit status (a failure is printed on C{err}, one line).
    """
    context = None
    try:
        context = actions.Context(options, out, err, stdin, reactor)
        return await options.client(context)
    except (model.RegistryModelError, ReferenceError, actions.CommandError, OSError, ValueError) as e:
        text = " ".join(str(e).split()) or type(e).__name__
        err.write(f"txregistry: {_subject(options)}: {text}\n")
        return 1
    finally:
        if context is not None:
            await context.connector.close()


def run(options: argparse.Namespace) -> int:
    """
    L{execute} on the global reactor, to its end: what C{txregistry}
    runs for a client command.
    """
    from twisted.internet import reactor

    status: list[int] = []

    def done(result: Any) -> None:
        if isinstance(result, int):
            status.append(result)
        else:
            sys.stderr.write(f"txregistry: {_subject(options)}: {result.getErrorMessage()}\n")
            status.append(2)
        reactor.stop()  # type: ignore[attr-defined]

    def start() -> None:
        ensureDeferred(execute(options, sys.stdout, sys.stderr)).addBoth(done)

    reactor.callWhenRunning(start)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    return status[0] if status else 2

