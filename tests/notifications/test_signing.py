"""
Signed deliveries (L{txregistry.notifications.signing}): what a registry
with an endpoint C{secret} sends verifies with the Standard Webhooks
reference library, and not with another secret.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from twisted.trial.unittest import TestCase

from tests.api.helpers import LAYER, pushBlob
from tests.notifications.helpers import endpoint, startNotifyingRegistry, startReceiver, waitUntil
from txregistry.notifications.signing import messageID, sign, verify

SECRET = "whsec_" + base64.b64encode(b"a secret of twenty-four!").decode()
OTHER = "whsec_" + base64.b64encode(b"another secret, not ours").decode()


class SignedDeliveryTests(TestCase):
    async def test_verifiesWithStandardWebhooks(self) -> None:
        """
        Every request carries webhook-id, webhook-timestamp and a v1
        signature the reference library accepts with the endpoint's
        secret; with a wrong secret it is refused, and so it is with a
        changed body.
        """
        receiver = await startReceiver(self)
        plain = await startReceiver(self)
        registry = await startNotifyingRegistry(self, [
            endpoint(receiver, "signed", secret=SECRET), endpoint(plain, "plain"),
        ])
        await pushBlob(self, registry, "signed", LAYER)
        await waitUntil(lambda: receiver.events and plain.events)
        headers, body = receiver.requests[0]
        self.assertTrue(headers["webhook-id"].startswith("msg_"))
        self.assertLessEqual(abs(int(headers["webhook-timestamp"]) - time.time()), 300)
        self.assertTrue(headers["webhook-signature"].startswith("v1,"))
        self.assertEqual(Webhook(SECRET).verify(body, headers)["events"][0]["target"]["repository"], "signed")
        self.assertRaises(WebhookVerificationError, Webhook(OTHER).verify, body, headers)
        self.assertRaises(WebhookVerificationError, Webhook(SECRET).verify, body + b" ", headers)
        self.assertNotIn("webhook-signature", plain.requests[0][0])


class SigningTests(TestCase):
    def test_ownVerifier(self) -> None:
        """
        L{verify} (what the README's receiver does) agrees with the
        reference library, including on an old timestamp.
        """
        secret = base64.b64decode(SECRET[len("whsec_"):])
        now = int(time.time())
        body = b'{"events":[]}'
        headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now),
                   "webhook-signature": Webhook(SECRET).sign("msg_1", _datetime(now), body.decode())}
        self.assertEqual(headers["webhook-signature"], sign(secret, "msg_1", now, body))
        self.assertTrue(verify(secret, headers, body, now))
        self.assertFalse(verify(b"x" * 24, headers, body, now))
        self.assertFalse(verify(secret, headers, body, now + 3600))

    def test_messageID(self) -> None:
        """
        The same events (a retry) keep their message id; any other set
        has another.
        """
        self.assertEqual(messageID(["a", "b"]), messageID(["a", "b"]))
        self.assertNotEqual(messageID(["a", "b"]), messageID(["a", "b", "c"]))


def _datetime(seconds: int):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.fromtimestamp(seconds, tz=UTC)
