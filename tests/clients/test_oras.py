"""
The oras Python SDK (PyPI C{oras}, in the test extras) against a
txregistry child process: artifacts with their own media types, a
referrer pushed with a C{subject}, found through the referrers API.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

from twisted.trial.unittest import SkipTest, TestCase

from tests.clients import daemons, wire

try:
    import oras.client
    import oras.oci
except ImportError as e:  # pragma: no cover - the test extras install it
    _orasMissing: str | None = f"the oras package is not installed ({e}); pip install -e '.[test]'"
else:
    _orasMissing = None

REPORT_TYPE = "application/vnd.txregistry.test.report.v1+json"
REPORT_CONFIG = "application/vnd.txregistry.test.report.config.v1+json"
SIGNATURE_CONFIG = "application/vnd.txregistry.test.signature.v1+json"
SBOM_TYPE = "application/vnd.txregistry.test.sbom.v1"
EMPTY = "application/vnd.oci.empty.v1+json"


class OrasTests(TestCase):
    """
    oras push, pull, and referrers.
    """

    def setUp(self) -> None:
        if _orasMissing:
            print(f"tests.clients.test_oras: skipped: {_orasMissing}")
            raise SkipTest(_orasMissing)
        self.registry = daemons.startRegistry(self)
        self.host = f"127.0.0.1:{self.registry.port}"
        self.client = oras.client.OrasClient(hostname=self.host, insecure=True)
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)

    def write(self, name: str, content: bytes) -> str:
        path = os.path.join(self.work, name)
        with open(path, "wb") as f:
            f.write(content)
        return path

    def check(self, response, statuses: tuple[int, ...] = (201,)) -> None:
        method = response.request.method if response.request is not None else "?"
        self.assertIn(
            response.status_code, statuses,
            f"{method} {response.url} -> {response.status_code} "
            f"{dict(response.headers)} {response.text[:2000]}\n" + self.registry.log()[-6000:],
        )

    def test_referrers(self) -> None:
        """
        An artifact pushed with oras comes back with oras byte for byte;
        artifacts pushed with it as C{subject} (one by oras, one written
        here with an explicit C{artifactType}) are listed by the referrers
        API, which filters them by C{artifactType} when asked and says so.
        """
        report = os.urandom(50000) + b"\nreport\n"
        reportPath = self.write("report.json", report)
        configPath = self.write("config.json", b'{"kind": "report"}')
        target = f"{self.host}/test/artifact:v1"
        pushed = self.client.push(
            target,
            files=[f"{reportPath}:{REPORT_TYPE}"],
            manifest_config=f"{configPath}:{REPORT_CONFIG}",
            manifest_annotations={"org.example.purpose": "subject"},
            disable_path_validation=True,
            quiet=True,
        )
        self.check(pushed)
        subjectDigest = pushed.headers["Docker-Content-Digest"]
        stored = wire.manifest(self.registry.url, "test/artifact", "v1")
        self.assertEqual(stored.status, 200, str(stored))
        self.assertEqual(wire.sha256(stored.body), subjectDigest)
        document = stored.json()
        self.assertEqual(document["config"]["mediaType"], REPORT_CONFIG)
        self.assertEqual([layer["mediaType"] for layer in document["layers"]], [REPORT_TYPE])
        subject = oras.oci.Subject(
            mediaType=stored.headers["Content-Type"], digest=subjectDigest, size=len(stored.body)
        )

        # A referrer through the SDK: its config media type is its artifactType.
        signature = self.write("signature.sig", b"signed: " + subjectDigest.encode())
        referrer = self.client.push(
            f"{self.host}/test/artifact:signature",
            files=[f"{signature}:application/vnd.txregistry.test.signature.blob"],
            manifest_config=f"{self.write('sigconfig.json', b'{}')}:{SIGNATURE_CONFIG}",
            manifest_annotations={"org.example.purpose": "signature"},
            subject=subject,
            disable_path_validation=True,
            quiet=True,
        )
        self.check(referrer)
        self.assertEqual(referrer.headers.get("OCI-Subject"), subjectDigest)
        signatureDigest = referrer.headers["Docker-Content-Digest"]

        # A referrer by hand, by digest only, with an explicit artifactType
        # and the empty config, as the image spec suggests for artifacts.
        sbom = b'{"packages": []}'
        for blob in (sbom, b"{}"):
            upload = self.client.upload_blob(
                self.write(wire.sha256(blob).split(":")[1], blob),
                self.client.get_container(f"{self.host}/test/artifact"),
                {"mediaType": EMPTY, "digest": wire.sha256(blob), "size": len(blob)},
            )
            # 200: oras found it there already (the "{}" config is shared).
            self.check(upload, (200, 201))
            head = wire.request(self.registry.url, f"/v2/test/artifact/blobs/{wire.sha256(blob)}", "HEAD")
            self.assertEqual(head.status, 200, str(head))
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": wire.OCI_MANIFEST,
            "artifactType": SBOM_TYPE,
            "config": {"mediaType": EMPTY, "digest": wire.sha256(b"{}"), "size": 2},
            "layers": [{"mediaType": "application/json", "digest": wire.sha256(sbom), "size": len(sbom)}],
            "subject": {"mediaType": subject.mediaType, "digest": subjectDigest, "size": subject.size},
        }).encode()
        sbomDigest = wire.sha256(manifest)
        put = wire.request(
            self.registry.url, f"/v2/test/artifact/manifests/{sbomDigest}", "PUT",
            {"Content-Type": wire.OCI_MANIFEST}, manifest,
        )
        self.assertEqual(put.status, 201, str(put))
        self.assertEqual(put.headers["OCI-Subject"], subjectDigest)

        listing = wire.request(self.registry.url, f"/v2/test/artifact/referrers/{subjectDigest}")
        self.assertEqual(listing.status, 200, str(listing))
        self.assertEqual(listing.headers["Content-Type"], wire.OCI_INDEX)
        self.assertIsNone(listing.headers["OCI-Filters-Applied"])
        index = listing.json()
        self.assertEqual(index["schemaVersion"], 2)
        self.assertEqual(index["mediaType"], wire.OCI_INDEX)
        byDigest = {d["digest"]: d for d in index["manifests"]}
        self.assertEqual(sorted(byDigest), sorted([signatureDigest, sbomDigest]), index)
        self.assertEqual(byDigest[signatureDigest]["artifactType"], SIGNATURE_CONFIG)
        self.assertEqual(byDigest[signatureDigest]["mediaType"], wire.OCI_MANIFEST)
        self.assertEqual(
            byDigest[signatureDigest]["annotations"], {"org.example.purpose": "signature"}
        )
        self.assertEqual(byDigest[sbomDigest]["artifactType"], SBOM_TYPE)
        self.assertEqual(byDigest[sbomDigest]["size"], len(manifest))
        got = wire.manifest(self.registry.url, "test/artifact", signatureDigest)
        self.assertEqual(byDigest[signatureDigest]["size"], len(got.body))

        filtered = wire.request(
            self.registry.url,
            f"/v2/test/artifact/referrers/{subjectDigest}?artifactType={quote(SBOM_TYPE, safe='')}",
        )
        self.assertEqual(filtered.status, 200, str(filtered))
        self.assertEqual(filtered.headers["OCI-Filters-Applied"], "artifactType")
        self.assertEqual([d["digest"] for d in filtered.json()["manifests"]], [sbomDigest])
        filtered = wire.request(
            self.registry.url,
            f"/v2/test/artifact/referrers/{subjectDigest}?artifactType={quote(SIGNATURE_CONFIG, safe='')}",
        )
        self.assertEqual([d["digest"] for d in filtered.json()["manifests"]], [signatureDigest])

        # Nothing refers to the signature.
        none = wire.request(self.registry.url, f"/v2/test/artifact/referrers/{signatureDigest}")
        self.assertEqual(none.status, 200, str(none))
        self.assertEqual(none.json()["manifests"], [])

        # Pull both artifacts back with the SDK.
        files = self.client.pull(target, outdir=os.path.join(self.work, "pulled"))
        self.assertEqual([os.path.basename(f) for f in files], ["report.json"])
        with open(files[0], "rb") as f:
            self.assertEqual(f.read(), report)
        files = self.client.pull(
            f"{self.host}/test/artifact@{signatureDigest}", outdir=os.path.join(self.work, "sig")
        )
        with open(files[0], "rb") as f:
            self.assertEqual(f.read(), b"signed: " + subjectDigest.encode())
        self.assertEqual(
            sorted(self.client.get_tags(f"{self.host}/test/artifact")), ["signature", "v1"]
        )

        # Deleting a referrer (oras: HEAD the tag, DELETE its digest) takes
        # it out of its subject's referrers.
        self.assertEqual(
            self.client.delete_tags(f"{self.host}/test/artifact", "signature"), ["signature"]
        )
        self.assertEqual(self.client.get_tags(f"{self.host}/test/artifact"), ["v1"])
        gone = wire.manifest(self.registry.url, "test/artifact", signatureDigest)
        self.assertEqual(gone.status, 404, str(gone))
        listing = wire.request(self.registry.url, f"/v2/test/artifact/referrers/{subjectDigest}")
        self.assertEqual([d["digest"] for d in listing.json()["manifests"]], [sbomDigest])

    def test_chunkedPush(self) -> None:
        """
        oras's chunked upload (POST, then PATCHes with Content-Range, then
        PUT) stores a blob that comes back whole.
        """
        content = os.urandom(3 * 1024 * 1024 + 12345)
        path = self.write("chunked.bin", content)
        target = f"{self.host}/test/chunked:v1"
        self.check(self.client.push(
            target, files=[path], do_chunked=True, chunk_size=1024 * 1024,
            disable_path_validation=True, quiet=True,
        ))
        files = self.client.pull(target, outdir=os.path.join(self.work, "pulled"))
        with open(files[0], "rb") as f:
            self.assertEqual(f.read(), content)
