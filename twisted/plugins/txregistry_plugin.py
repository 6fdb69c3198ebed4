"""
The C{txregistry} twistd plugin: C{twistd -n txregistry --config FILE}.

Importing this module must stay cheap (twistd imports every plugin to list
them), so the registry itself is imported only in C{makeService}.
"""

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class Options(usage.Options):
    synopsis = "[--config FILE]"
    longdesc = (
        "Serve a Docker Registry HTTP API V2 / OCI Distribution registry. "
        "Without --config the embedded defaults apply: filesystem storage "
        "under ./var/registry, listening on 127.0.0.1:5000. REGISTRY_* "
        "environment variables override the configuration "
        "(REGISTRY_HTTP_ADDR=127.0.0.1:5001, "
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data, ...)."
    )
    optParameters = [
        ["config", "c", None, "YAML configuration file (see etc/config.yml)."],
    ]


@implementer(IServiceMaker, IPlugin)
class RegistryServiceMaker:
    tapname = "txregistry"
    description = "A Docker Registry V2 / OCI Distribution container registry."
    options = Options

    def makeService(self, options):
        import os
        import sys

        from twisted.internet import reactor

        from txregistry.config import ConfigurationError, loadConfiguration
        from txregistry.logs import logDestination
        from txregistry.storage.errors import DriverConfigurationError

        path = options["config"] or os.environ.get("REGISTRY_CONFIGURATION_PATH")
        try:
            config = loadConfiguration(path, os.environ)
            from txregistry.service import RegistryService

            # twistd's own options (--nodaemon, --logfile...) decide where
            # the registry's log lines go, as they do for twistd's.
            return RegistryService(config, reactor, logDestination(options.parent))
        except (ConfigurationError, DriverConfigurationError) as e:
            sys.stderr.write(f"txregistry: configuration error: {e}\n")
            raise SystemExit(1) from None


serviceMaker = RegistryServiceMaker()
