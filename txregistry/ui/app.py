# -*- test-case-name: tests.ui.test_pages -*-
"""
The web UI's requests: which page a path is, who may see it, and the
answer.  L{WebUI.handle} is mounted beside the API
(L{txregistry.api.app.RegistryRoot}'s C{trees}) below C{ui.path}; the
door does not guard it, so every page checks the visitor itself, as the
door would for the API request that reads the same thing.

URLs, below the UI's root::

    ./                               repositories (?q= search, ?last= paging)
    ./r/<name>                       a repository's tags (?sort=name|pushed,
                                     ?order=asc|desc, ?page=, ?q=)
    ./r/<name>/-/manifest/<digest>   a manifest or index
    ./r/<name>/-/tag/<tag>           the manifest a tag names (a redirect)
    ./r/<name>/-/delete              POST tag= or digest=, with csrf=
    ./login, ./logout                (logout is a POST)
    ./static/ui.css, ./static/ui.js

A repository name never has a C{-} component, so C{/-/} ends it.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.template import Tag

from txregistry.api.callers import callerOf
from txregistry.errors import ManifestUnknown, NameInvalid, NameUnknown, Unsupported
from txregistry.interfaces import INamespace, IRepository
from txregistry.registry.digest import Digest, InvalidDigest
from txregistry.registry.names import isValidTag
from txregistry.ui import pages
from txregistry.ui.pages import Links
from txregistry.ui.reading import Reader, findRepositories
from txregistry.ui.sessions import Sessions, Visitor
from txregistry.web.body import BodyTooLarge

__all__ = ["WebUI", "REPOSITORIES_PER_PAGE", "TAGS_PER_PAGE"]

_log = Logger()

REPOSITORIES_PER_PAGE = 25
TAGS_PER_PAGE = 50
#: The largest form read (a login, a delete).
MAX_FORM = 16 * 1024

_STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
_STATIC_TYPES = {"ui.css": b"text/css; charset=utf-8", "ui.js": b"text/javascript; charset=utf-8"}

#: Scripts, styles and forms only from here; never framed.
_POLICY = (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
           b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class _Answer(Exception):
    """
    Stop and answer C{status} with C{page} (or only the headers set).
    """

    def __init__(self, status: int, page: Tag | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.page = page


class WebUI:
    """
    The UI of one registry.

    @param namespace: the namespace the API serves (every layer around
        it), which each page uses acting for its visitor.
    @param root: the UI's absolute path (C{http.prefix} then C{ui.path}).
    @param deleteEnabled: C{storage.delete.enabled}.
    @param reader: reads the pages' content (and keeps its caches).
    """

    def __init__(self, namespace: INamespace, sessions: Sessions, root: str, deleteEnabled: bool,
                 reader: Reader) -> None:
        self._namespace = namespace
        self._reader = reader
        self._sessions = sessions
        self.links = Links(root)
        self._root = root
        self._deleteEnabled = deleteEnabled
        self._static = {}
        for name in _STATIC_TYPES:
            with open(os.path.join(_STATIC, name), "rb") as f:
                self._static[name] = f.read()

    def handle(self, request: Any) -> Deferred[bytes]:
        """
        Answer C{request}, whose C{postpath} is what follows the UI's root.

        @return: L{Deferred} of the body, with status and headers set.
        """
        return Deferred.fromCoroutine(self._sized(request))

    async def _sized(self, request: Any) -> bytes:
        # A page is made whole before it is sent: say how long it is, so
        # that it is not sent chunked.
        body = await self._handle(request)
        request.setHeader(b"content-length", b"%d" % len(body))
        return body

    async def _handle(self, request: Any) -> bytes:
        request.uiRoot = self._root.encode("utf-8")
        request.setHeader(b"content-security-policy", _POLICY)
        request.setHeader(b"referrer-policy", b"same-origin")
        request.setHeader(b"x-frame-options", b"DENY")
        path = [segment.decode("utf-8") for segment in request.postpath]
        if not path:
            return self._redirect(request, self._root)
        if path[0] == "static" and len(path) == 2 and path[1] in self._static:
            if request.method not in (b"GET", b"HEAD"):
                request.setHeader(b"allow", b"GET, HEAD")
                request.setResponseCode(405)
                return b""
            request.setHeader(b"content-type", _STATIC_TYPES[path[1]])
            request.setHeader(b"cache-control", b"max-age=3600")
            return self._static[path[1]]
        request.setHeader(b"cache-control", b"no-store")
        visitor = await self._sessions.visitorOf(request)
        if visitor.actor is not None:
            request.actor = visitor.actor
        try:
            return await self._page(request, visitor, path)
        except _Answer as answer:
            request.setResponseCode(answer.status)
            return await self._html(request, answer.page) if answer.page is not None else b""
        except Exception:
            _log.failure("The web UI failed for {uri}", uri=request.uri)
            request.setResponseCode(500)
            return await self._html(request, pages.messagePage(
                self.links, visitor, "Something went wrong",
                "The registry could not show this page; its log says why."))

    async def _page(self, request: Any, visitor: Visitor, path: list[str]) -> bytes:
        if path == [""]:
            self._allow(request, (b"GET", b"HEAD"))
            return await self._repositories(request, visitor)
        if path == ["login"]:
            self._allow(request, (b"GET", b"HEAD", b"POST"))
            return await self._login(request, visitor)
        if path == ["logout"]:
            self._allow(request, (b"POST",))
            await self._checkedForm(request, visitor)
            self._sessions.endSession(request, visitor)
            return self._redirect(request, self._root)
        if path[0] == "r" and len(path) > 1:
            if "-" in path:
                at = path.index("-")
                name, rest = "/".join(path[1:at]), path[at + 1:]
            else:
                name, rest = "/".join(path[1:]), []
            return await self._repositoryPath(request, visitor, name, rest)
        raise self._notFound(visitor)

    # Pages

    async def _repositories(self, request: Any, visitor: Visitor) -> bytes:
        if not visitor.mayBrowse:
            return self._toLogin(request)
        query = self._arg(request, "q").strip()
        last = self._arg(request, "last")
        namespace = self._namespace.actingFor(callerOf(request))
        names, more = await findRepositories(namespace, query, last or None, REPOSITORIES_PER_PAGE)
        summaries = [await self._reader.summarize(namespace.repository(name)) for name in names]
        return await self._html(request, pages.repositoriesPage(self.links, visitor, query, last, summaries, more))

    async def _repositoryPath(self, request: Any, visitor: Visitor, name: str, rest: list[str]) -> bytes:
        if not visitor.may("pull", name):
            if not visitor.name:
                return self._toLogin(request)
            raise _Answer(403, pages.messagePage(
                self.links, visitor, "Not allowed", f"You may not see the repository {name}."))
        try:
            repository = self._namespace.actingFor(callerOf(request)).repository(name)
        except NameInvalid:
            raise self._notFound(visitor) from None
        try:
            if not rest:
                self._allow(request, (b"GET", b"HEAD"))
                return await self._tags(request, visitor, repository)
            if rest[0] == "manifest" and len(rest) == 2:
                self._allow(request, (b"GET", b"HEAD"))
                return await self._manifest(request, visitor, repository, rest[1])
            if rest[0] == "tag" and len(rest) == 2 and isValidTag(rest[1]):
                self._allow(request, (b"GET", b"HEAD"))
                digest = await repository.tags().get(rest[1])
                return self._redirect(request, self.links.manifest(name, str(digest)))
            if rest == ["delete"]:
                self._allow(request, (b"POST",))
                return await self._delete(request, visitor, repository)
        except (NameUnknown, ManifestUnknown):
            raise self._notFound(visitor) from None
        raise self._notFound(visitor)

    async def _tags(self, request: Any, visitor: Visitor, repository: IRepository) -> bytes:
        sort = "pushed" if self._arg(request, "sort") == "pushed" else "name"
        order = self._arg(request, "order")
        descending = order == "desc" if order in ("asc", "desc") else sort == "pushed"
        try:
            page = max(1, int(self._arg(request, "page") or "1"))
        except ValueError:
            page = 1
        query = self._arg(request, "q").strip()
        rows, total = await self._reader.tagPage(repository, sort, descending, page, TAGS_PER_PAGE, query)
        return await self._html(request, pages.repositoryPage(
            self.links, visitor, self._host(request), repository.name, rows, total, sort, descending,
            page, TAGS_PER_PAGE, query, self._mayDelete(visitor, repository.name)))

    async def _manifest(self, request: Any, visitor: Visitor, repository: IRepository, reference: str) -> bytes:
        try:
            digest = Digest.parse(reference)
        except InvalidDigest:
            raise self._notFound(visitor) from None
        details = await self._reader.manifestDetails(repository, digest)
        return await self._html(request, pages.manifestPage(
            self.links, visitor, self._host(request), details,
            self._mayDelete(visitor, repository.name), self._deleteEnabled))

    async def _delete(self, request: Any, visitor: Visitor, repository: IRepository) -> bytes:
        form = await self._checkedForm(request, visitor)
        if not self._mayDelete(visitor, repository.name):
            raise _Answer(403, pages.messagePage(
                self.links, visitor, "Not allowed",
                f"You may not delete in {repository.name}." if self._deleteEnabled
                else "Deletes are disabled on this registry (storage.delete.enabled).", login=True))
        tag, digest = form.get("tag", [""])[0], form.get("digest", [""])[0]
        try:
            if tag and not isValidTag(tag):
                raise self._notFound(visitor)
            if tag:
                await repository.tags().untag(tag)
            elif digest:
                await repository.manifests().delete(Digest.parse(digest))
            else:
                raise _Answer(400, pages.messagePage(self.links, visitor, "Nothing to delete",
                                                     "The form named no tag and no manifest."))
        except InvalidDigest:
            raise self._notFound(visitor) from None
        except Unsupported as e:
            raise _Answer(405, pages.messagePage(self.links, visitor, "Not possible", str(e))) from None
        self._reader.forget(repository.name)
        return self._redirect(request, self.links.repository(repository.name))

    async def _login(self, request: Any, visitor: Visitor) -> bytes:
        next = self._arg(request, "next")
        passwords = self._sessions.authRequired
        if request.method == b"POST":
            form = await self._checkedForm(request, visitor)
            next = form.get("next", [""])[0]
            user, password = form.get("username", [""])[0], form.get("password", [""])[0]
            actor = await self._sessions.login(request, user.encode("utf-8"), password.encode("utf-8")) \
                if user else None
            if actor is None:
                request.setResponseCode(401)
                return await self._html(request, pages.loginPage(
                    self.links, visitor, next, "Wrong user name or password.", passwords))
            self._sessions.startSession(request, actor)
            return self._redirect(request, self._safeNext(next))
        if self._arg(request, "basic"):
            if visitor.name:
                return self._redirect(request, self._safeNext(next))
            request.setHeader(b"www-authenticate", b'Basic realm="txregistry", charset="UTF-8"')
            request.setResponseCode(401)
        if not passwords:
            return await self._html(request, pages.messagePage(
                self.links, visitor, "No login needed", "This registry has no authentication: "
                "everyone may see everything."))
        return await self._html(request, pages.loginPage(self.links, visitor, next, "", True))

    # Helpers

    def _mayDelete(self, visitor: Visitor, name: str) -> bool:
        return self._deleteEnabled and visitor.may("delete", name)

    async def _checkedForm(self, request: Any, visitor: Visitor) -> dict[str, list[str]]:
        """
        The form C{request} posted, refused (403) unless it carries the
        visitor's CSRF token.
        """
        contentType = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if contentType != b"application/x-www-form-urlencoded":
            raise _Answer(400, pages.messagePage(self.links, visitor, "Bad request", "Expected a form."))
        try:
            form = parse_qs((await request.body.read(MAX_FORM)).decode("utf-8"), keep_blank_values=True,
                            max_num_fields=20)
        except (BodyTooLarge, UnicodeDecodeError, ValueError):
            raise _Answer(400, pages.messagePage(self.links, visitor, "Bad request",
                                                 "The form is too large or not UTF-8.")) from None
        if not self._sessions.checkCSRF(visitor, form.get("csrf", [""])[0]):
            raise _Answer(403, pages.messagePage(
                self.links, visitor, "Form expired",
                "The form was not from this page, or your session changed: reload the page and try again."))
        return form

    @staticmethod
    def _arg(request: Any, name: str) -> str:
        values = request.args.get(name.encode("ascii"))
        return values[0].decode("utf-8", "replace") if values else ""

    @staticmethod
    def _allow(request: Any, methods: tuple[bytes, ...]) -> None:
        if request.method not in methods:
            request.setHeader(b"allow", b", ".join(methods))
            raise _Answer(405)

    @staticmethod
    def _host(request: Any) -> str:
        return str(callerOf(request).origin.split("://", 1)[-1])

    def _safeNext(self, next: str) -> str:
        # Only back into the UI: never to another site (//evil, https://).
        if next.startswith(self._root) and not next.startswith("//") and "\\" not in next:
            return next
        return self._root

    def _toLogin(self, request: Any) -> bytes:
        return self._redirect(request, self.links.login(request.uri.decode("utf-8", "replace")))

    def _notFound(self, visitor: Visitor) -> _Answer:
        return _Answer(404, pages.messagePage(self.links, visitor, "Not found", "There is nothing here."))

    @staticmethod
    def _redirect(request: Any, location: str) -> bytes:
        request.setResponseCode(303)
        request.setHeader(b"location", location.encode("utf-8"))
        return b""

    @staticmethod
    async def _html(request: Any, page: Tag) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return await pages.render(page)
