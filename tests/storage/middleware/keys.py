"""
Keys for the CloudFront tests, made once per test process (an RSA key
takes a moment to generate), and written to PEM files as an operator
would keep them.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@cache
def rsaKey() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def writeKey(testCase: Any, key: Any = None, traditional: bool = True,
             password: bytes | None = None) -> str:
    """
    Write C{key} (by default L{rsaKey}) as PEM to a new file of
    C{testCase}'s: PKCS #1 (C{BEGIN RSA PRIVATE KEY}, what AWS hands out)
    when C{traditional}, PKCS #8 otherwise.

    @return: the file's path.
    """
    key = rsaKey() if key is None else key
    path = os.path.abspath(testCase.mktemp()) + ".pem"
    encryption: Any = (serialization.BestAvailableEncryption(password) if password
                       else serialization.NoEncryption())
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL if traditional
        else serialization.PrivateFormat.PKCS8,
        encryption,
    )
    with open(path, "wb") as f:
        f.write(data)
    return path


def ecKey() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())
