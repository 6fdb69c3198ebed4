# -*- test-case-name: tests.notifications.test_events -*-
"""
Events and envelopes in the reference implementation's shape
(C{notifications.md}): C{{"events": [...]}} as
C{application/vnd.docker.distribution.events.v2+json}, each event with
C{id}, C{timestamp}, C{action}, C{target}, C{request}, C{actor} and
C{source}.

An event is a plain JSON-ready dict: it is journaled as one JSON line and
sent as it was journaled, so a retry sends the same C{id}.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from json.encoder import encode_basestring_ascii
from typing import Any

from txregistry.interfaces import Caller
from txregistry.registry.digest import Digest

__all__ = [
    "EVENTS_MEDIA_TYPE",
    "BLOB_MEDIA_TYPE",
    "PUSH",
    "PULL",
    "MOUNT",
    "DELETE",
    "Source",
    "makeEvent",
    "eventLine",
    "encodeTarget",
    "target",
    "encode",
    "envelope",
    "timestamp",
    "references",
]

#: The envelope's media type, sent as the request's C{Content-Type}.
EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v2+json"

#: What the reference names a blob's target media type (a blob has none
#: of its own).
BLOB_MEDIA_TYPE = "application/octet-stream"

PUSH, PULL, MOUNT, DELETE = "push", "pull", "mount", "delete"

#: One encoder for every event (C{json.dumps} with options makes one per
#: call); ASCII, so a line never holds a zero byte or a newline.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True)
class Source:
    """
    The registry node that generates events.

    @ivar addr: its C{host:port}.
    @ivar instanceID: unique per process start.
    """

    addr: str
    instanceID: str

    @classmethod
    def forAddress(cls, addr: str) -> "Source":
        return cls(addr, str(uuid.uuid4()))

    @cached_property
    def encoded(self) -> str:
        """
        An event's C{source}, as JSON.
        """
        return _ENCODER.encode({"addr": self.addr, "instanceID": self.instanceID})


_second: tuple[int, str] = (-1, "")


def timestamp(when: float) -> str:
    """
    C{when} (POSIX seconds) as RFC 3339 in UTC with microseconds, as the
    reference writes it.  (Every pull is an event: the formatted second
    is kept, since formatting it costs more than the rest of the event.)
    """
    global _second
    whole = int(when)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((when - whole) * 1e6):06d}Z"


#: Random ids made ahead (L{eventID}): one C{os.urandom} call for
#: L{_IDS_AHEAD} events rather than a system call per pull.
_idsAhead: list[str] = []
_IDS_AHEAD = 256


def _forgetIDsAhead() -> None:
    # A forked child must not hand out its parent's ids.
    del _idsAhead[:]


os.register_at_fork(after_in_child=_forgetIDsAhead)


def eventID() -> str:
    """
    A random (version 4) UUID, as text: an event's C{id}.
    """
    if not _idsAhead:
        h = os.urandom(16 * _IDS_AHEAD).hex()
        _idsAhead.extend(
            f"{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-"
            f"{'89ab'[int(h[i + 16], 16) & 3]}{h[i + 17:i + 20]}-{h[i + 20:i + 32]}"
            for i in range(0, 32 * _IDS_AHEAD, 32)
        )
    return _idsAhead.pop()


def references(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """
    The descriptors a manifest refers to, as the reference's
    C{References()} lists them: an image's config then its layers, an
    index's manifests.  Only C{mediaType}, C{digest} and C{size} are kept.
    """
    if isinstance(document.get("manifests"), list):
        entries = list(document["manifests"])
    else:
        entries = [document.get("config")] + list(document.get("layers") or [])
    found = []
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("digest"):
            found.append({
                key: entry[key] for key in ("mediaType", "digest", "size") if key in entry
            })
    return found


def target(
    repository: str,
    baseURL: str,
    kind: str,
    digest: Digest | None,
    mediaType: str | None = None,
    size: int | None = None,
    tag: str | None = None,
    fromRepository: str | None = None,
) -> dict[str, Any]:
    """
    An event's C{target}.  With no C{size} (a delete) it has only the
    repository, the digest and the tag, as the reference's delete events
    do.

    @param kind: C{"manifests"} or C{"blobs"}: the URL's path segment.
    @param baseURL: C{scheme://host} and the API's prefix, without the
        trailing slash.
    """
    found: dict[str, Any] = {}
    if size is not None and digest is not None:
        found["mediaType"] = mediaType or BLOB_MEDIA_TYPE
        found["size"] = size
        found["digest"] = str(digest)
        found["length"] = size
        found["repository"] = repository
        found["url"] = f"{baseURL}/v2/{repository}/{kind}/{digest}"
    else:
        if digest is not None:
            found["digest"] = str(digest)
        found["repository"] = repository
    if tag:
        found["tag"] = tag
    if fromRepository:
        found["fromRepository"] = fromRepository
    return found


def makeEvent(
    action: str, target: dict[str, Any], caller: Caller, source: Source, when: float
) -> dict[str, Any]:
    """
    One event, with a fresh C{id}.
    """
    return {
        "id": eventID(),
        "timestamp": timestamp(when),
        "action": action,
        "target": target,
        "request": {
            "id": caller.requestID,
            "addr": caller.address,
            "host": caller.host,
            "method": caller.method,
            "useragent": caller.userAgent,
        },
        "actor": {"name": caller.name} if caller.name else {},
        "source": {"addr": source.addr, "instanceID": source.instanceID},
    }


#: An event as L{makeEvent} makes it, with its target, actor and source
#: put in: the template of L{eventLine}.
_EVENT = (
    '{"id":%s,"timestamp":%s,"action":%s,"target":%s,"request":{"id":%s,"addr":%s,"host":%s,'
    '"method":%s,"useragent":%s},"actor":%s,"source":%s}'
)


#: The target of a push or pull (L{target} with a size), and with a tag.
_CONTENT_KEYS = ("mediaType", "size", "digest", "length", "repository", "url")
_CONTENT_TAGGED_KEYS = _CONTENT_KEYS + ("tag",)
_CONTENT = '{"mediaType":%s,"size":%d,"digest":%s,"length":%d,"repository":%s,"url":%s'


def encodeTarget(target: Mapping[str, Any]) -> str:
    """
    An event's C{target} as JSON, as L{encode} writes it in the event.
    """
    q = encode_basestring_ascii
    keys = tuple(target)
    if keys == _CONTENT_KEYS or keys == _CONTENT_TAGGED_KEYS:
        size, length = target["size"], target["length"]
        if type(size) is int and type(length) is int:
            encoded = _CONTENT % (q(target["mediaType"]), size, q(target["digest"]), length,
                                  q(target["repository"]), q(target["url"]))
            return encoded + (f',"tag":{q(target["tag"])}}}' if len(keys) == 7 else "}")
    fields = []
    for key, value in target.items():
        kind = type(value)
        if kind is str:
            fields.append(f"{q(key)}:{q(value)}")
        elif kind is int:
            fields.append(f"{q(key)}:{value:d}")
        else:
            fields.append(f"{q(key)}:{_ENCODER.encode(value)}")
    return "{" + ",".join(fields) + "}"


def eventLine(
    action: str, target: Mapping[str, Any], caller: Caller, source: Source, when: float,
    encodedTarget: str | None = None,
) -> bytes:
    """
    The journal line of L{makeEvent}C{(action, target, caller, source,
    when)}, the same JSON text that L{encode} makes of it, without making
    the event's dicts: written from a template with each string quoted,
    several times cheaper than building and encoding the event, since
    every pull is one (on the request path of every manifest GET).

    @param encodedTarget: L{encodeTarget}C{(target)}, when the caller
        kept it (the same manifest is pulled again and again).
    """
    q = encode_basestring_ascii
    return (_EVENT % (
        q(eventID()), q(timestamp(when)), q(action),
        encodeTarget(target) if encodedTarget is None else encodedTarget,
        q(caller.requestID), q(caller.address), q(caller.host), q(caller.method),
        q(caller.userAgent),
        f'{{"name":{q(caller.name)}}}' if caller.name else "{}",
        source.encoded,
    )).encode("ascii")


def encode(event: Mapping[str, Any]) -> bytes:
    """
    C{event} as one journal line's JSON (no newline in it).
    """
    return _ENCODER.encode(event).encode("ascii")


def envelope(events: Iterable[bytes]) -> bytes:
    """
    The request body for C{events}, each already encoded (as journaled).
    """
    return b'{"events":[' + b",".join(events) + b"]}"
