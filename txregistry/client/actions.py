# -*- test-case-name: tests.client.test_command -*-
"""
What each client subcommand of C{txregistry} does (L{txregistry.client.command}
parses the arguments): one coroutine per command, taking the L{Context}
and returning the exit status, raising the model's errors on failure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO, TextIO

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


class CommandError(Exception):
    """
    A command cannot do what it was asked (one line for the user).
    """


class Context:
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
        credentials: Callable[[str], Awaitable[Credentials | None]] = self.config.get
        if options.creds:
            username, _, password = options.creds.partition(":")
            fixed = Credentials(username, password)

            async def given(host: str) -> Credentials | None:
                return fixed

            credentials = given
        self.connector = Connector(reactor, tls, credentials,
                                   True if options.plain_http else None)

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


async def _copyBetween(context: Context, source: str, destination: str) -> int:
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


async def copy(context: Context) -> int:
    return await _copyBetween(context, context.options.source, context.options.destination)


def _docker(text: str) -> str:
    return text if text.startswith("docker://") else f"docker://{text}"


async def push(context: Context) -> int:
    return await _copyBetween(context, context.options.source, _docker(context.options.destination))


async def pull(context: Context) -> int:
    return await _copyBetween(context, _docker(context.options.source), context.options.destination)


async def catalog(context: Context) -> int:
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


async def tags(context: Context) -> int:
    ref = context.remote(context.options.repository)
    tags = await context.registry(ref).repository(ref.repository).tags().listAll()
    context.emit(tags, "\n".join(tags))
    return 0


async def manifestGet(context: Context) -> int:
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


async def manifestHead(context: Context) -> int:
    ref = context.remote(context.options.reference)
    found = await context.registry(ref).repository(ref.repository).manifests().head(ref.reference)
    if found is None:
        raise model.ManifestUnknown(f"{ref}: no such manifest")
    context.emit({"digest": str(found.digest), "size": found.size}, f"{found.digest} {found.size}")
    return 0


async def manifestPut(context: Context) -> int:
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


async def blobGet(context: Context) -> int:
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


async def blobHead(context: Context) -> int:
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


async def blobPut(context: Context) -> int:
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


async def inspect(context: Context) -> int:
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


async def digest(context: Context) -> int:
    source = context.connector.source(_anyReference(context.options.reference))
    manifest = await source.manifest(None)
    context.emit({"digest": str(manifest.digest)}, str(manifest.digest))
    return 0


async def tag(context: Context) -> int:
    ref = context.remote(context.options.reference)
    manifests = context.registry(ref).repository(ref.repository).manifests()
    manifest = await manifests.fetch(ref.reference)
    for tag in context.options.tags:
        await manifests.putTagged(manifest.content, manifest.mediaType, tag)
    context.emit({"digest": str(manifest.digest), "tags": context.options.tags},
                 f"{manifest.digest}: tagged {', '.join(context.options.tags)}")
    return 0


async def delete(context: Context) -> int:
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


async def referrers(context: Context) -> int:
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


async def login(context: Context) -> int:
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


async def logout(context: Context) -> int:
    host = context.options.host.removeprefix("docker://").rstrip("/")
    found = await context.config.erase(host)
    if not found:
        raise CommandError(f"{host}: not logged in")
    context.emit({"host": host, "removed": True}, f"Removed login credentials for {host}")
    return 0
