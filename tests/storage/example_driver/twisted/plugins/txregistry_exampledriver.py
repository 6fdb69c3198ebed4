# -*- test-case-name: tests.storage.test_exampledriver -*-
"""
Registers the C{example} storage driver with L{twisted.plugin}.

Installing the package puts this module in C{twisted/plugins/}, and
C{storage: {example: {bucket: ...}}} then selects the driver.  It imports
only the interface: the driver module (and, for a real driver, its SDK) is
imported when a driver is created.
"""

from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer

from txregistry.storage import IStorageDriver, IStorageDriverFactory


@implementer(IPlugin, IStorageDriverFactory)
class ExampleDriverFactory:
    name = "example"
    description = "Objects in an in-process bucket (an example third-party driver)."

    def create(self, parameters: Any, reactor: Any) -> IStorageDriver:
        from txregistry_exampledriver.driver import createExampleDriver

        return createExampleDriver(parameters, reactor)


example = ExampleDriverFactory()
