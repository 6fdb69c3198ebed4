"""
The route table (L{txregistry.api.routes}): the Klein routes are exactly
its routes, and C{docs/api.rst} is what it generates.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from txregistry.api.app import RegistryAPI
from txregistry.api.describe import describe
from txregistry.api.errors import CODES
from txregistry.api.routes import BOUNDED_BODY, NO_BODY, ROUTES, STREAMED_BODY

_DOCUMENT = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "api.rst")


class RouteTableTests(SynchronousTestCase):
    def test_documentIsCurrent(self) -> None:
        """
        C{docs/api.rst} is what C{python -m txregistry.api.describe}
        makes of the table; regenerate it when a route changes.
        """
        with open(_DOCUMENT, encoding="utf-8") as f:
            committed = f.read()
        self.assertEqual(
            committed, describe(),
            "docs/api.rst is stale: run python -m txregistry.api.describe docs/api.rst",
        )

    def test_kleinServesTheTable(self) -> None:
        """
        Every route of the table is registered with Klein under its name,
        path and methods, and nothing else is.
        """
        rules = {
            rule.endpoint: (rule.rule, rule.methods - {"OPTIONS"})
            for rule in RegistryAPI.app.url_map.iter_rules()
        }
        expected = {route.name: (route.rule, set(route.methods)) for route in ROUTES}
        self.assertEqual(rules, expected)

    def test_routesAreWellFormed(self) -> None:
        names = [route.name for route in ROUTES]
        self.assertEqual(len(names), len(set(names)))
        for route in ROUTES:
            self.assertIn(route.access, (None, "pull", "push", "delete", "catalog"), route.name)
            self.assertIn(route.body, (NO_BODY, BOUNDED_BODY, STREAMED_BODY), route.name)
            for code in route.errors:
                self.assertIs(CODES[code.value], code)
            # What changes storage needs more than pull.
            if route.changesStorage:
                self.assertIn(route.access, ("push", "delete"), route.name)
