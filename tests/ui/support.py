"""
What the UI tests share: getting a page as a browser would (cookies kept,
redirects not followed), and reading a form's CSRF token out of it.
"""

from __future__ import annotations

import re
from http.cookiejar import CookieJar
from typing import Any

from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.web.client import Agent, HTTPConnectionPool

from tests.support import InProcessRegistry


class Browser:
    """
    A visitor of one registry's UI, with a cookie jar of its own.
    """

    def __init__(self, registry: InProcessRegistry) -> None:
        self.registry = registry
        self.cookies = CookieJar()
        # A client of its own: treq's module functions keep no cookies.
        self._client = HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)),
                                  cookiejar=self.cookies)

    async def get(self, path: str, **kwargs: Any) -> tuple[Any, str]:
        return await self.request("GET", path, **kwargs)

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[Any, str]:
        kwargs.setdefault("allow_redirects", False)
        response = await self._client.request(method, self.registry.url + path, **kwargs)
        return response, (await response.content()).decode("utf-8")

    async def post(self, path: str, form: dict[str, str], **kwargs: Any) -> tuple[Any, str]:
        return await self.request("POST", path, data=form, **kwargs)


def csrfOf(page: str) -> str:
    """
    The CSRF token of the first form on C{page}.
    """
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match is not None, page
    return match.group(1)


def location(response: Any) -> str:
    values = response.headers.getRawHeaders("location")
    assert values, response.code
    return str(values[0])
