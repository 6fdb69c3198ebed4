# -*- test-case-name: tests.storage.test_s3 -*-
"""
The S3 driver's check at start: are there credentials, is the bucket
there, do they open it?

It blocks (botocore's own HTTP client), so it runs only where blocking is
right: while the registry starts, before the reactor runs.  What it finds
wrong is said in one line.
"""

from __future__ import annotations

from typing import Any

from botocore.awsrequest import AWSRequest
from botocore.httpsession import URLLib3Session

from txregistry.storage.errors import StorageError
from txregistry.storage.s3.client import S3Client, elementText, parseXML

__all__ = ["checkBucket"]

#: Seconds to wait for the store at start.
TIMEOUT = 30


def checkBucket(client: S3Client) -> Any:
    """
    Resolve C{client}'s credentials and list one key of the bucket with
    them.

    @return: the credentials, for the client to keep.
    @raise StorageError: when there are none, the store cannot be reached,
        the bucket does not exist or the credentials do not open it.
    """
    p = client.parameters
    credentials = client.resolveCredentials()
    client.useCredentials(credentials)
    url = client.url(None, [("list-type", "2"), ("max-keys", "1"), ("prefix", p.prefix)])
    headers = client._sign("GET", url, {"User-Agent": p.userAgent}, b"")
    request = AWSRequest(method="GET", url=url, headers=headers)
    session = URLLib3Session(verify=not p.skipVerify, timeout=TIMEOUT)
    where = f"storage.s3: bucket {p.bucket!r} at {p.endpoint}"
    try:
        response = session.send(request.prepare())
    except Exception as e:
        raise StorageError(f"{where}: cannot be reached ({type(e).__name__}: {e})") from None
    finally:
        session.close()
    if response.status_code == 200:
        return credentials
    code = message = ""
    try:
        root = parseXML(response.content)
        code, message = elementText(root, "Code"), elementText(root, "Message")
    except Exception:
        pass
    if response.status_code == 404 or code == "NoSuchBucket":
        raise StorageError(f"{where}: no such bucket (create it first)")
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied") or (
        response.status_code == 403
    ):
        raise StorageError(
            f"{where}: the credentials are refused ({code or 'HTTP 403'}: "
            f"check accesskey/secretkey or the AWS profile)"
        )
    if response.status_code == 301 or code in ("PermanentRedirect", "AuthorizationHeaderMalformed"):
        raise StorageError(f"{where}: the bucket is in another region than {p.region!r}")
    raise StorageError(f"{where}: HTTP {response.status_code} {code} {message}".rstrip())
