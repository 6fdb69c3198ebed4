"""
The web UI over what real clients pushed: an image by C{docker push}, a
two-platform index by C{skopeo copy --all}, and a referrer by the oras
SDK, read by headless chromium from a C{twistd txregistry} child process.
"""

from __future__ import annotations

import html
import os

from twisted.trial.unittest import SkipTest, TestCase

from tests.clients import daemons, wire
from tests.ui.chromium import chromiumMissing, dumpDOMBlocking

SIGNATURE_TYPE = "application/vnd.txregistry.test.signature.v1+json"


class UIOverRealPushesTests(TestCase):
    def setUp(self) -> None:
        reason = chromiumMissing()
        if reason:
            raise SkipTest(reason)
        try:
            import oras.client  # noqa: F401
        except ImportError as e:  # pragma: no cover - the test extras install it
            raise SkipTest(f"the oras package is not installed ({e})") from None
        self.docker = daemons.dockerDaemon()
        self.registry = daemons.startRegistry(self, env={"REGISTRY_UI_ENABLED": "true"})
        self.host = f"127.0.0.1:{self.registry.port}"
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)

    def page(self, path: str) -> str:
        return html.unescape(dumpDOMBlocking(self.registry.url + path))

    def test_pages(self) -> None:
        """
        The repositories page lists what docker and skopeo pushed; the
        index's page its two platforms; the image's page its layer and the
        signature oras attached to it.
        """
        import oras.client
        import oras.oci

        tarball = os.path.join(self.work, "rootfs.tar")
        wire.tarball(tarball, {"hello.txt": b"hello from the UI test\n"})
        image = f"{self.host}/test/app:1"
        self.docker.run("import", tarball, image, context=self.registry)
        self.addCleanup(self.docker.run, "rmi", "-f", image, check=False)
        self.docker.run("push", image, context=self.registry)
        daemons.pushTwoPlatformIndex(self.work, self.host, self.registry)

        stored = wire.manifest(self.registry.url, "test/app", "1")
        self.assertEqual(stored.status, 200, str(stored))
        digest = wire.sha256(stored.body)
        signature = os.path.join(self.work, "signature.sig")
        with open(signature, "wb") as f:
            f.write(b"signed: " + digest.encode())
        config = os.path.join(self.work, "config.json")
        with open(config, "wb") as f:
            f.write(b"{}")
        client = oras.client.OrasClient(hostname=self.host, insecure=True)
        pushed = client.push(
            f"{self.host}/test/app:signature", files=[f"{signature}:application/vnd.txregistry.test.sig"],
            manifest_config=f"{config}:{SIGNATURE_TYPE}", disable_path_validation=True, quiet=True,
            subject=oras.oci.Subject(mediaType=stored.headers["Content-Type"], digest=digest,
                                     size=len(stored.body)))
        self.assertEqual(pushed.status_code, 201, pushed.text)

        repositories = self.page("/ui/")
        self.assertIn(">test/app</a>", repositories)
        self.assertIn(">test/multi</a>", repositories)

        multi = self.page("/ui/r/test/multi")
        self.assertIn("Index", multi)
        self.assertIn("linux/amd64, linux/arm64", multi)

        app = self.page(f"/ui/r/test/app/-/manifest/{digest}")
        self.assertIn(stored.headers["Content-Type"], app)
        self.assertIn(f"docker pull {self.host}/test/app@{digest}", app)
        referrers = app.split('id="referrers"', 1)[1]
        self.assertIn(SIGNATURE_TYPE, referrers)
        self.assertIn(pushed.headers["Docker-Content-Digest"].split(":")[1][:12], referrers)
        layers = app.split('id="layers"', 1)[1].split("</section>", 1)[0]
        self.assertIn("1 layer", layers)
