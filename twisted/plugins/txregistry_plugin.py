# -*- test-case-name: tests.test_plugin -*-
"""
The C{txregistry} twistd plugin: C{twistd -n txregistry --config FILE}.

Importing this module must stay cheap (twistd imports every plugin to list
them): the options and the service live in L{txregistry.tap}, imported
only when the plugin is used.
"""

from twisted.application.service import ServiceMaker

serviceMaker = ServiceMaker(
    "txregistry",
    "txregistry.tap",
    "A Docker Registry V2 / OCI Distribution container registry.",
    "txregistry",
)
