"""
The error table (L{txregistry.api.errors}): every error of the model has
its spec code, and one writer answers them all.
"""

from __future__ import annotations

import inspect
import json

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from txregistry import errors as model
from txregistry.api.errors import (
    CODES,
    MODEL_CODES,
    RANGE_INVALID,
    UNKNOWN,
    APIError,
    asAPIError,
    errorBody,
    writeError,
)


class ErrorTableTests(SynchronousTestCase):
    def test_everyModelErrorHasACode(self) -> None:
        classes = [
            value for _, value in inspect.getmembers(model, inspect.isclass)
            if issubclass(value, model.RegistryModelError) and value is not model.RegistryModelError
        ]
        self.assertEqual(set(classes), set(MODEL_CODES))
        for code in MODEL_CODES.values():
            self.assertIs(CODES[code.value], code)

    def test_fromModel(self) -> None:
        error = asAPIError(model.RangeMismatch("chunk starts at 3", 0))
        self.assertEqual((error.code, error.status, error.message), (RANGE_INVALID, 416, "chunk starts at 3"))
        self.assertEqual(error.envelope()["errors"][0]["detail"], {"size": 0})
        error = asAPIError(model.BlobUploadUnknown())
        self.assertEqual(error.message, "blob upload unknown to registry")

    def test_subclassInheritsCode(self) -> None:
        class Quota(model.Denied):
            pass

        self.assertEqual(asAPIError(Quota("over quota")).code.value, "DENIED")

    def test_anythingElseIsUnknown(self) -> None:
        error = asAPIError(ZeroDivisionError("secret detail"))
        self.assertEqual((error.code, error.status), (UNKNOWN, 500))
        self.assertNotIn(b"secret", error.body())

    def test_writeError(self) -> None:
        request = DummyRequest([b""])
        body = writeError(request, APIError(RANGE_INVALID, headers={"Range": "0-9"}))
        self.assertEqual(request.responseCode, 416)
        self.assertEqual(request.responseHeaders.getRawHeaders(b"range"), [b"0-9"])
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertEqual(json.loads(body)["errors"][0]["code"], "RANGE_INVALID")

    def test_errorBody(self) -> None:
        self.assertEqual(json.loads(errorBody(431, "too long"))["errors"][0],
                         {"code": "UNSUPPORTED", "message": "too long"})
        self.assertEqual(json.loads(errorBody(500, None))["errors"][0]["code"], "UNKNOWN")
