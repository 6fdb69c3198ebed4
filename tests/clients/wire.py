"""
Plain blocking HTTP to a registry child process, for checking what the
clients left there, and a few content helpers.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ALL_MANIFESTS = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])


@dataclass
class Response:
    method: str
    url: str
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        headers = "".join(f"\n  {k}: {v}" for k, v in self.headers.items())
        body = self.body[:2000].decode("utf-8", "replace")
        return f"{self.method} {self.url} -> {self.status}{headers}\n  body: {body}"


def request(
    url: str, path: str, method: str = "GET", headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Response:
    """
    One request to C{url + path}; any status is returned, not raised.
    """
    req = urllib.request.Request(url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return Response(method, url + path, response.status, response.headers, response.read())
    except urllib.error.HTTPError as e:
        return Response(method, url + path, e.code, e.headers, e.read())


def manifest(url: str, name: str, reference: str, accept: str = ALL_MANIFESTS) -> Response:
    return request(url, f"/v2/{name}/manifests/{reference}", headers={"Accept": accept})


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fileDigest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def randomFile(path: str, size: int) -> str:
    """
    Write C{size} incompressible bytes to C{path}; return their digest.
    """
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return "sha256:" + h.hexdigest()


def tarBytes(files: dict[str, bytes]) -> bytes:
    """
    An uncompressed tar of C{files} (name: content), byte-for-byte the same
    for the same files (fixed mode and time).
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


def tarball(path: str, files: dict[str, bytes]) -> None:
    """
    Write L{tarBytes} of C{files} to C{path}.
    """
    with open(path, "wb") as f:
        f.write(tarBytes(files))
