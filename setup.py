from setuptools import find_packages, setup

setup(
    name="txregistry",
    version="0.1.0",
    description="A Docker Registry HTTP API V2 / OCI Distribution registry on Twisted",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    packages=find_packages(exclude=["tests", "tests.*"]) + ["twisted.plugins"],
    package_data={
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
    ],
    extras_require={
        "test": [
            # The tests' HTTP client.
            "treq>=23.11.0,<28",
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
