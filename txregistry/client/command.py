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
import hashlib
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any, BinaryIO, TextIO

from twisted.internet.defer import ensureDeferred
from twisted.internet.interfaces import IConsumer
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from txregistry import errors as model
from txregistry.client.auth import Credentials
from txregistry.client.connect import Connector
from txregistry.client.copy import CopyOptions, Progress, copyImage
from txregistry.client.credentials import DockerConfig
from txregistry.client.files import FileReader, FileWriter
from txregistry.client.http import TLSOptions
from txregistry.client.references import (
    ReferenceError,
    RegistryReference,
    parse,
    parseRegistry,
)
from txregistry.client.registry import Registry
from txregistry.registry.digest import Digest
from txregistry.registry.manifests import ParsedManifest

__all__ = ["register", "run", "execute"]


class CommandError(Exception):
    """
    A command cannot do what it was asked (one line for the user).
    """


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

    parser = add("copy", _copy, "copy an image between docker://, oci: and docker-archive:")
    parser.add_argument("source")
    parser.add_argument("destination")
    copyOptions(parser)
    parser = add("push", _push, "copy a local image (oci:, docker-archive:) to a registry")
    parser.add_argument("source")
    parser.add_argument("destination", help="HOST/REPO[:TAG]")
    copyOptions(parser)
    parser = add("pull", _pull, "copy an image from a registry to oci: or docker-archive:")
    parser.add_argument("source", help="HOST/REPO[:TAG|@DIGEST]")
    parser.add_argument("destination")
    copyOptions(parser)

    parser = add("catalog", _catalog, "list a registry's repositories")
    parser.add_argument("host")
    parser = add("tags", _tags, "list a repository's tags")
    parser.add_argument("repository", help="HOST/REPO")

    manifest = commands.add_parser("manifest", help="get, head or put a manifest")
    actions = manifest.add_subparsers(dest="action", required=True)
    parser = actions.add_parser("get", parents=[common], help="print a manifest")
    parser.set_defaults(client=_manifestGet)
    parser.add_argument("reference")
    parser.add_argument("-o", "--output", help="write it to this file")
    parser = actions.add_parser("head", parents=[common], help="a manifest's digest and size")
    parser.set_defaults(client=_manifestHead)
    parser.add_argument("reference")
    parser = actions.add_parser("put", parents=[common], help="store a manifest")
    parser.set_defaults(client=_manifestPut)
    parser.add_argument("reference", help="HOST/REPO:TAG or HOST/REPO@DIGEST")
    parser.add_argument("file", nargs="?", default="-", help="the manifest (default stdin)")
    parser.add_argument("--media-type", help="its Content-Type (default its mediaType)")

    blob = commands.add_parser("blob", help="get, head or put a blob")
    actions = blob.add_subparsers(dest="action", required=True)
    parser = actions.add_parser("get", parents=[common], help="write a blob out, verified")
    parser.set_defaults(client=_blobGet)
    parser.add_argument("reference", help="HOST/REPO@DIGEST")
    parser.add_argument("-o", "--output", help="write it to this file (default stdout)")
    parser = actions.add_parser("head", parents=[common], help="a blob's size")
    parser.set_defaults(client=_blobHead)
    parser.add_argument("reference", help="HOST/REPO@DIGEST")
    parser = actions.add_parser("put", parents=[common], help="upload a file as a blob")
    parser.set_defaults(client=_blobPut)
    parser.add_argument("repository", help="HOST/REPO")
    parser.add_argument("file")

    parser = add("inspect", _inspect, "an image's config, layers, platforms and sizes")
    parser.add_argument("reference")
    parser = add("digest", _digest, "the digest of the manifest a reference names")
    parser.add_argument("reference")
    parser = add("tag", _tag, "give the manifest a reference names more tags")
    parser.add_argument("reference")
    parser.add_argument("tags", nargs="+")
    parser = add("delete", _delete, "delete a manifest (by tag: the manifest it names)")
    parser.add_argument("reference")
    parser = add("referrers", _referrers, "the manifests whose subject is a manifest")
    parser.add_argument("reference", help="HOST/REPO@DIGEST or HOST/REPO:TAG")
    parser.add_argument("--artifact-type", help="only those of this artifact type")

    parser = add("login", _login, "check and save credentials in config.json")
    parser.add_argument("host")
    parser.add_argument("-u", "--username", required=True)
    parser.add_argument("-p", "--password", help="(prefer --password-stdin)")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    parser = add("logout", _logout, "forget the credentials of a registry")
    parser.add_argument("host")


class _Context:
    """
    What a command works with: its options, output, and the connector.
    """

    def __init__(self, options: argparse.Namespace, out: TextIO, err: TextIO,
                 stdin: BinaryIO | None, reactor: Any) -> None:
        self.options = options
        self.out = out
        self.err = err
        self.stdin = stdin
        self.reactor = reactor
        tls = TLSOptions(options.ca_file, options.cert, options.key, options.insecure)
        self.config = DockerConfig(options.config_dir, reactor)
        self.connector = Connector(reactor, tls, self.config, True if options.plain_http else None)
        if options.creds:
            username, _, password = options.creds.partition(":")
            fixed = Credentials(username, password)

            class _Fixed(DockerConfig):
                async def get(self, host: str) -> Credentials | None:
                    return fixed

            self.connector.config = _Fixed(options.config_dir, reactor)

    def emit(self, document: Any, text: str) -> None:
        if self.options.json:
            json.dump(document, self.out, indent=2, sort_keys=True)
            self.out.write("\n")
        elif text:
            self.out.write(text if text.endswith("\n") else text + "\n")

    def remote(self, text: str) -> RegistryReference:
        if text.startswith("docker://"):
            text = text[len("docker://"):]
        return parseRegistry(text)

    def registry(self, ref: RegistryReference) -> Registry:
        return self.connector.registry(ref.host)

    def progress(self) -> Progress:
        if self.options.json or not self.err.isatty():
            return Progress()
        return _Bars(self.err)


class _Bars(Progress):
    """
    One tqdm bar of the bytes a copy moves.
    """

    def __init__(self, stream: TextIO) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024, file=stream,
                        leave=False, desc="copying")

    def started(self, digest: str, size: int) -> None:
        self.bar.total = (self.bar.total or 0) + size
        self.bar.refresh()

    def advanced(self, digest: str, count: int) -> None:
        self.bar.update(count)

    def finished(self, digest: str, how: str) -> None:
        if how != "copied":
            self.bar.write(f"{digest[:19]}: {how}", file=self.bar.fp)

    def close(self) -> None:
        self.bar.close()


async def _copyBetween(context: _Context, source: str, destination: str) -> int:
    options = context.options
    opened = context.connector.source(parse(source))
    target = context.connector.destination(parse(destination), opened)
    progress = context.progress()
    try:
        result = await copyImage(opened, target, CopyOptions(
            options.all, options.preserve_digests, options.platform, options.jobs), progress)
    finally:
        if isinstance(progress, _Bars):
            progress.close()
    context.emit({
        "source": source, "destination": destination, "digest": str(result.digest),
        "mediaType": result.mediaType, "copied": result.copied, "skipped": result.skipped,
        "mounted": result.mounted, "bytes": result.bytes,
    }, f"copied {source} to {destination}: {result.digest} ({len(result.copied)} blobs copied, "
        f"{len(result.skipped)} there already, {len(result.mounted)} mounted, {result.bytes} bytes)")
    return 0


async def _copy(context: _Context) -> int:
    return await _copyBetween(context, context.options.source, context.options.destination)


def _docker(text: str) -> str:
    return text if text.startswith("docker://") else f"docker://{text}"


async def _push(context: _Context) -> int:
    return await _copyBetween(context, context.options.source, _docker(context.options.destination))


async def _pull(context: _Context) -> int:
    return await _copyBetween(context, _docker(context.options.source), context.options.destination)


async def _catalog(context: _Context) -> int:
    host = context.options.host.removeprefix("docker://").rstrip("/")
    registry = context.connector.registry(host)
    names: list[str] = []
    last = None
    while True:
        page = await registry.catalog(1000, last)
        names += page.items
        if not page.more or not page.items:
            break
        last = page.items[-1]
    context.emit(names, "\n".join(names))
    return 0


async def _tags(context: _Context) -> int:
    ref = context.remote(context.options.repository)
    tags = await context.registry(ref).repository(ref.repository).tags().listAll()
    context.emit(tags, "\n".join(tags))
    return 0


async def _manifestGet(context: _Context) -> int:
    source = context.connector.source(_anyReference(context.options.reference))
    manifest = await source.manifest(None)
    if context.options.output:
        writer = FileWriter(context.options.output, manifest.digest, len(manifest.content))
        writer.write(manifest.content)
        await writer.close()
    if context.options.json:
        context.emit({"digest": str(manifest.digest), "mediaType": manifest.mediaType,
                      "manifest": json.loads(manifest.content)}, "")
    elif not context.options.output:
        context.out.flush()
        _binary(context.out).write(manifest.content)
        _binary(context.out).flush()
    return 0


def _binary(stream: TextIO) -> BinaryIO:
    return getattr(stream, "buffer", stream)  # type: ignore[arg-type, no-any-return]


def _anyReference(text: str) -> str:
    if text.startswith(("docker://", "oci:", "docker-archive:")):
        return text
    return f"docker://{text}"


async def _manifestHead(context: _Context) -> int:
    ref = context.remote(context.options.reference)
    found = await context.registry(ref).repository(ref.repository).manifests().head(ref.reference)
    if found is None:
        raise model.ManifestUnknown(f"{ref}: no such manifest")
    context.emit({"digest": str(found.digest), "size": found.size}, f"{found.digest} {found.size}")
    return 0


async def _manifestPut(context: _Context) -> int:
    ref = context.remote(context.options.reference)
    if context.options.file == "-":
        content = (context.stdin or sys.stdin.buffer).read()
    else:
        with open(context.options.file, "rb") as f:
            content = f.read()
    manifests = context.registry(ref).repository(ref.repository).manifests()
    if ref.tag:
        stored = await manifests.putTagged(content, context.options.media_type, ref.tag)
    else:
        stored = await manifests.put(content, context.options.media_type, ref.digest)
    context.emit({"digest": str(stored.digest),
                  "subject": str(stored.subject) if stored.subject else None}, str(stored.digest))
    return 0


def _blobReference(text: str) -> RegistryReference:
    ref = parseRegistry(text.removeprefix("docker://"))
    if ref.digest is None:
        raise ReferenceError(f"{text}: a blob is named HOST/REPO@DIGEST")
    return ref


@implementer(IConsumer)
class _StreamConsumer:
    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.size = 0

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self.stream.write(data)


async def _blobGet(context: _Context) -> int:
    ref = _blobReference(context.options.reference)
    assert ref.digest is not None
    blobs = context.registry(ref).repository(ref.repository).blobs()
    reader = await blobs.reader(ref.digest)
    if context.options.output:
        writer = FileWriter(context.options.output, ref.digest, reader.length)
        try:
            await reader.startProducing(writer)
        except BaseException:
            await writer.abort()
            raise
        size = await writer.close()
    else:
        stream = _binary(context.out)
        consumer = _StreamConsumer(stream)
        await reader.startProducing(consumer)
        stream.flush()
        size = consumer.size
    if context.options.json:
        context.emit({"digest": str(ref.digest), "size": size}, "")
    return 0


async def _blobHead(context: _Context) -> int:
    ref = _blobReference(context.options.reference)
    assert ref.digest is not None
    found = await context.registry(ref).repository(ref.repository).blobs().stat(ref.digest)
    context.emit({"digest": str(found.digest), "size": found.size}, f"{found.digest} {found.size}")
    return 0


def _hashFile(path: str) -> tuple[Digest, int]:
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            hasher.update(chunk)
            size += len(chunk)
    return Digest("sha256", hasher.hexdigest()), size


async def _blobPut(context: _Context) -> int:
    ref = context.remote(context.options.repository)
    digest, size = await deferToThread(_hashFile, context.options.file)
    blobs = context.registry(ref).repository(ref.repository).blobs()
    if await blobs.exists(digest):
        context.emit({"digest": str(digest), "size": size, "uploaded": False}, str(digest))
        return 0
    writer = await blobs.put(digest, size)
    try:
        await FileReader(context.options.file, 0, size, digest).startProducing(writer)
    except BaseException:
        await writer.abort()
        raise
    await writer.close()
    context.emit({"digest": str(digest), "size": size, "uploaded": True}, str(digest))
    return 0


async def _inspect(context: _Context) -> int:
    source = context.connector.source(_anyReference(context.options.reference))
    manifest = await source.manifest(None)
    parsed = ParsedManifest(manifest.content, manifest.mediaType)
    document: dict[str, Any] = {"reference": source.reference, "digest": str(manifest.digest),
                                "mediaType": manifest.mediaType, "size": len(manifest.content)}
    lines = [f"{source.reference}", f"digest: {manifest.digest}", f"type: {manifest.mediaType}"]
    if parsed.isIndex:
        platforms = []
        for entry in parsed.document.get("manifests", []):
            platform = entry.get("platform") or {}
            name = "/".join(filter(None, [platform.get(k) for k in ("os", "architecture", "variant")]))
            platforms.append({"platform": name or None, "digest": entry["digest"],
                              "size": entry["size"], "mediaType": entry.get("mediaType")})
            lines.append(f"  {name or '(no platform)':<16} {entry['digest']} {entry['size']}")
        document["manifests"] = platforms
    else:
        configDescriptor = parsed.document["config"]
        reader = await source.blob(configDescriptor)
        collected = _StreamConsumer(_Buffer())
        await reader.startProducing(collected)
        config = json.loads(collected.stream.getvalue()) if configDescriptor["size"] else {}
        layers = [{"digest": d["digest"], "size": d["size"], "mediaType": d.get("mediaType")}
                  for d in parsed.document.get("layers", [])]
        total = sum(layer["size"] for layer in layers) + configDescriptor["size"]
        document.update({
            "config": {"digest": configDescriptor["digest"], "mediaType": configDescriptor["mediaType"],
                       "os": config.get("os"), "architecture": config.get("architecture"),
                       "variant": config.get("variant"), "created": config.get("created"),
                       "config": config.get("config")},
            "layers": layers, "totalSize": total,
        })
        platform = "/".join(filter(None, [config.get("os"), config.get("architecture"),
                                          config.get("variant")]))
        lines += [f"platform: {platform or '?'}", f"created: {config.get('created') or '?'}",
                  f"config: {configDescriptor['digest']} {configDescriptor['size']}",
                  f"layers: {len(layers)}, {total} bytes in all"]
        lines += [f"  {layer['digest']} {layer['size']}" for layer in layers]
    context.emit(document, "\n".join(lines))
    return 0


class _Buffer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


async def _digest(context: _Context) -> int:
    source = context.connector.source(_anyReference(context.options.reference))
    manifest = await source.manifest(None)
    context.emit({"digest": str(manifest.digest)}, str(manifest.digest))
    return 0


async def _tag(context: _Context) -> int:
    ref = context.remote(context.options.reference)
    manifests = context.registry(ref).repository(ref.repository).manifests()
    manifest = await manifests.fetch(ref.reference)
    for tag in context.options.tags:
        await manifests.putTagged(manifest.content, manifest.mediaType, tag)
    context.emit({"digest": str(manifest.digest), "tags": context.options.tags},
                 f"{manifest.digest}: tagged {', '.join(context.options.tags)}")
    return 0


async def _delete(context: _Context) -> int:
    ref = context.remote(context.options.reference)
    manifests = context.registry(ref).repository(ref.repository).manifests()
    digest = ref.digest
    if digest is None:
        found = await manifests.head(ref.reference)
        if found is None:
            raise model.ManifestUnknown(f"{ref}: no such manifest")
        digest = found.digest
    await manifests.delete(digest)
    context.emit({"deleted": str(digest)}, f"deleted {digest}")
    return 0


async def _referrers(context: _Context) -> int:
    ref = context.remote(context.options.reference)
    repository = context.registry(ref).repository(ref.repository)
    digest = ref.digest
    if digest is None:
        found = await repository.manifests().head(ref.reference)
        if found is None:
            raise model.ManifestUnknown(f"{ref}: no such manifest")
        digest = found.digest
    found_ = await repository.referrers(digest, context.options.artifact_type)
    context.emit(found_, "\n".join(
        f"{d.get('digest')} {d.get('artifactType') or d.get('mediaType')} {d.get('size')}"
        for d in found_))
    return 0


async def _login(context: _Context) -> int:
    options = context.options
    host = options.host.removeprefix("docker://").removeprefix("https://").rstrip("/")
    if options.password_stdin:
        password = (context.stdin or sys.stdin.buffer).read().decode("utf-8").rstrip("\r\n")
    elif options.password is not None:
        password = options.password
    else:
        raise CommandError("give the password with --password-stdin (or -p)")
    credentials = Credentials(options.username, password)
    registry = Registry(host, credentials, context.connector.tls, context.connector.plainHTTP,
                        context.connector.session)
    await registry.ping()
    await context.config.store(host, credentials)
    context.emit({"host": host, "username": options.username, "stored": context.config.path},
                 f"Login Succeeded ({options.username} at {host})")
    return 0


async def _logout(context: _Context) -> int:
    host = context.options.host.removeprefix("docker://").rstrip("/")
    found = await context.config.erase(host)
    if not found:
        raise CommandError(f"{host}: not logged in")
    context.emit({"host": host, "removed": True}, f"Removed login credentials for {host}")
    return 0


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
        context = _Context(options, out, err, stdin, reactor)
        return await options.client(context)
    except (model.RegistryModelError, ReferenceError, CommandError, OSError, ValueError) as e:
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

