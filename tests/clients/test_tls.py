"""
The registry serving HTTPS (C{http.tls}) to real clients: a private CA and
a server certificate for 127.0.0.1 made here; skopeo, podman and oras
verify against that CA; docker, for which 127.0.0.0/8 is an insecure
registry, speaks TLS without verifying.
"""

from __future__ import annotations

import http.client
import json
import os

from twisted.trial.unittest import SkipTest, TestCase

from tests.clients import daemons, ocilayout, wire
from tests.test_tls import Authority


def makeCertificates(directory: str) -> dict[str, str]:
    """
    Write a CA certificate and a server certificate and key for
    127.0.0.1 signed by it; return their paths (C{ca}, C{cert}, C{key}).
    """
    ca = Authority(directory, "ca")
    cert, key = ca.issue("server")
    return {"ca": ca.path, "cert": cert, "key": key}


class TLSTests(TestCase):
    """
    Clients over HTTPS.
    """

    def setUp(self) -> None:
        self.work = os.path.abspath(self.mktemp())
        # A directory holding only the CA: skopeo and podman read every
        # *.crt in --cert-dir as a CA and every *.cert/*.key pair as a
        # client certificate.
        self.certDir = os.path.join(self.work, "certs.d")
        os.makedirs(self.certDir)
        self.paths = makeCertificates(self.work)
        os.link(self.paths["ca"], os.path.join(self.certDir, "ca.crt"))
        self.registry = daemons.startRegistry(self, {
            "REGISTRY_HTTP_TLS_CERTIFICATE": self.paths["cert"],
            "REGISTRY_HTTP_TLS_KEY": self.paths["key"],
        })
        self.host = f"127.0.0.1:{self.registry.port}"

    def skopeo(self, *arguments: str, check: bool = True):
        path = daemons.require("skopeo")["skopeo"]
        return daemons.run([path, "--insecure-policy", *arguments], check=check,
                           context=self.registry)

    def test_skopeoVerifiesCertificate(self) -> None:
        """
        skopeo copies to and from the registry over verified HTTPS with
        the CA in C{--cert-dir}, and refuses it without.
        """
        layout = ocilayout.Layout(os.path.join(self.work, "src"))
        descriptor, manifest = layout.image([{"tls.txt": b"over tls\n"}, {"b": os.urandom(9000)}])
        layout.tag(descriptor, "v1")
        remote = f"docker://{self.host}/test/tls:v1"
        refused = self.skopeo("copy", "--preserve-digests", f"oci:{layout.path}:v1", remote,
                              check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("certificate", refused.stderr.decode(), refused.stderr)

        self.skopeo("copy", "--preserve-digests", "--dest-cert-dir", self.certDir,
                    f"oci:{layout.path}:v1", remote)
        raw = self.skopeo("inspect", "--raw", "--cert-dir", self.certDir, remote)
        self.assertEqual(raw.stdout, manifest)
        back = os.path.join(self.work, "back")
        self.skopeo("copy", "--preserve-digests", "--src-cert-dir", self.certDir,
                    remote, f"oci:{back}:v1")
        self.assertEqual(ocilayout.refDescriptor(back, "v1")["digest"], descriptor["digest"])

    def test_orasVerifiesCertificate(self) -> None:
        """
        The oras SDK pushes and pulls over HTTPS verified with the CA.
        """
        try:
            import oras.client
        except ImportError as e:
            raise SkipTest(f"the oras package is not installed: {e}") from None
        client = oras.client.OrasClient(hostname=self.host, tls_verify=self.paths["ca"])
        content = os.urandom(40000)
        path = os.path.join(self.work, "artifact.bin")
        with open(path, "wb") as f:
            f.write(content)
        response = client.push(f"{self.host}/test/tls-artifact:v1", files=[path],
                               disable_path_validation=True, quiet=True)
        self.assertEqual(response.status_code, 201, response.text)
        files = client.pull(f"{self.host}/test/tls-artifact:v1",
                            outdir=os.path.join(self.work, "pulled"))
        with open(files[0], "rb") as f:
            self.assertEqual(f.read(), content)

    def test_dockerOverTLS(self) -> None:
        """
        docker pushes and pulls over HTTPS (unverified: 127.0.0.0/8 is an
        insecure registry to it); the port serves nothing but TLS, so
        this cannot have been plain HTTP.
        """
        docker = daemons.dockerDaemon()
        work = self.work
        tarball = os.path.join(work, "rootfs.tar")
        wire.tarball(tarball, {"tls.bin": os.urandom(12345)})
        image = f"{self.host}/test/docker-tls:1"
        self.addCleanup(docker.run, "rmi", "-f", image, check=False)
        docker.run("import", tarball, image, context=self.registry)
        output = docker.run("push", image, context=self.registry).stdout.decode()
        self.assertIn("digest: sha256:", output)
        try:
            plain = wire.request(f"http://{self.host}", "/v2/")
        except (OSError, http.client.HTTPException):
            pass  # dropped: fine
        else:
            self.assertNotEqual(plain.status, 200, str(plain))
        docker.run("rmi", image, context=self.registry)
        docker.run("pull", image, context=self.registry)
        inspected = json.loads(docker.run("image", "inspect", image).stdout)[0]
        self.assertTrue(any(d.startswith(f"{self.host}/test/docker-tls@sha256:")
                            for d in inspected["RepoDigests"]))

    def test_podmanVerifiesCertificate(self) -> None:
        """
        podman pushes and pulls over HTTPS verified with C{--cert-dir}.
        """
        podman = daemons.Podman(self, self.work)
        tarball = os.path.join(self.work, "podman.tar")
        content = os.urandom(23456)
        wire.tarball(tarball, {"podman-tls.bin": content})
        image = f"{self.host}/test/podman-tls:1"
        podman.run("import", tarball, image)
        verified = ("--signature-policy", podman.policy, "--cert-dir", self.certDir)
        podman.run("push", *verified, image, context=self.registry)
        podman.run("rmi", image)
        podman.run("pull", *verified, image, context=self.registry)
        self.assertEqual(podman.readFromImage(image, "/podman-tls.bin"), content)


class MutualTLSTests(TestCase):
    """
    skopeo against a registry with C{http.tls.clientcas}: refused without
    a client certificate, served with one from the client CA, found where
    containers/image looks for it (C{*.cert} and C{*.key} in C{--cert-dir}).
    """

    def setUp(self) -> None:
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        registryCA = Authority(self.work, "registry-ca")
        certificate, key = registryCA.issue("server")
        clientCA = Authority(self.work, "client-ca")
        clientCertificate, clientKey = clientCA.issue("client", server=False)
        self.caOnly = os.path.join(self.work, "ca-only")
        self.withClient = os.path.join(self.work, "with-client")
        for directory in (self.caOnly, self.withClient):
            os.makedirs(directory)
            os.link(registryCA.path, os.path.join(directory, "ca.crt"))
        os.link(clientCertificate, os.path.join(self.withClient, "client.cert"))
        os.link(clientKey, os.path.join(self.withClient, "client.key"))
        self.registry = daemons.startRegistry(self, {
            "REGISTRY_HTTP_TLS_CERTIFICATE": certificate,
            "REGISTRY_HTTP_TLS_KEY": key,
            "REGISTRY_HTTP_TLS_CLIENTCAS": f"[{clientCA.path}]",
        })
        self.host = f"127.0.0.1:{self.registry.port}"

    def test_skopeoNeedsClientCertificate(self) -> None:
        path = daemons.require("skopeo")["skopeo"]
        layout = ocilayout.Layout(os.path.join(self.work, "src"))
        descriptor, manifest = layout.image([{"mtls.txt": b"mutual\n"}])
        layout.tag(descriptor, "v1")
        remote = f"docker://{self.host}/test/mtls:v1"
        refused = daemons.run(
            [path, "--insecure-policy", "copy", "--dest-cert-dir", self.caOnly,
             f"oci:{layout.path}:v1", remote],
            check=False, context=self.registry,
        )
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("certificate", refused.stderr.decode(), refused.stderr)
        daemons.run(
            [path, "--insecure-policy", "copy", "--preserve-digests",
             "--dest-cert-dir", self.withClient, f"oci:{layout.path}:v1", remote],
            context=self.registry,
        )
        raw = daemons.run(
            [path, "--insecure-policy", "inspect", "--raw", "--cert-dir", self.withClient, remote],
            context=self.registry,
        )
        self.assertEqual(raw.stdout, manifest)
