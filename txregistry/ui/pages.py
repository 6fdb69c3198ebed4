# -*- test-case-name: tests.ui.test_pages -*-
"""
The UI's pages as L{twisted.web.template} tags: one function per page,
taking what L{txregistry.ui.reading} read.  Everything a visitor or a
pusher wrote (names, tags, labels, annotations) goes in as text, which
the flattener escapes; no page needs a script to work (the one script
only copies commands to the clipboard and asks before a delete).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from twisted.web.template import Tag, tags

from txregistry import __version__
from txregistry.sizes import formatSize
from txregistry.ui.images import Descriptor, ImageConfig
from txregistry.ui.reading import ManifestDetails, Referrer, RepositorySummary, TagRow
from txregistry.ui.sessions import Visitor

__all__ = [
    "Links",
    "render",
    "repositoriesPage",
    "repositoryPage",
    "manifestPage",
    "loginPage",
    "messagePage",
]

#: The client commands offered for copying, by the reference they pull.
COMMANDS = (
    ("docker", "docker pull {host}/{name}{ref}"),
    ("podman", "podman pull {host}/{name}{ref}"),
    ("txregistry", "txregistry copy --all docker://{host}/{name}{ref} oci:{leaf}:{tag}"),
    ("skopeo", "skopeo copy --all docker://{host}/{name}{ref} oci:{leaf}:{tag}"),
)


class Links:
    """
    The UI's URLs, below C{root} (C{http.prefix} and C{ui.path}): every
    page has one stable address.
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def static(self, name: str) -> str:
        return f"{self.root}static/{name}"

    def repositories(self, query: str = "", last: str = "") -> str:
        args = {k: v for k, v in (("q", query), ("last", last)) if v}
        return self.root + (f"?{urlencode(args)}" if args else "")

    def repository(self, name: str, **args: Any) -> str:
        args = {k: v for k, v in args.items() if v not in ("", None)}
        return f"{self.root}r/{quote(name, safe='/')}" + (f"?{urlencode(args)}" if args else "")

    def manifest(self, name: str, digest: str) -> str:
        return f"{self.root}r/{quote(name, safe='/')}/-/manifest/{quote(digest, safe=':')}"

    def tag(self, name: str, tag: str) -> str:
        return f"{self.root}r/{quote(name, safe='/')}/-/tag/{quote(tag, safe='')}"

    def delete(self, name: str) -> str:
        return f"{self.root}r/{quote(name, safe='/')}/-/delete"

    def login(self, next: str = "") -> str:
        return f"{self.root}login" + (f"?{urlencode({'next': next})}" if next else "")

    def logout(self) -> str:
        return f"{self.root}logout"


#: Elements that have no end tag in HTML.
_VOID = frozenset({"meta", "link", "input", "br", "hr", "img"})


async def render(page: Tag) -> bytes:
    """
    The HTML document of C{page}.

    The pages are plain trees of tags and text, so they are written out
    here rather than by L{twisted.web.template.flatten}, whose generality
    (Deferreds, renderers, slots) costs more than the rest of a 50-row tags
    page put together; text and attribute values are escaped alike.
    """
    out: list[str] = ["<!DOCTYPE html>\n"]
    _write(page, out)
    return "".join(out).encode("utf-8")


def _write(node: Any, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(escape(node, quote=False))
    elif isinstance(node, Tag):
        if node.render or node.slotData:
            raise TypeError("pages are plain tags: no renderers, no slots")
        name = node.tagName if isinstance(node.tagName, str) else node.tagName.decode("ascii")
        out.append("<" + name)
        for key, value in node.attributes.items():
            key = key if isinstance(key, str) else key.decode("ascii")
            value = value if isinstance(value, str) else str(value)
            out.append(f' {key}="{escape(value, quote=True)}"')
        out.append(">")
        if name in _VOID:
            return
        for child in node.children:
            _write(child, out)
        out.append(f"</{name}>")
    elif isinstance(node, (list, tuple)):
        for child in node:
            _write(child, out)
    elif node is None:
        return
    else:
        raise TypeError(f"cannot write {type(node).__name__} into a page")


def humanSize(size: int | None) -> str:
    if size is None:
        return "\N{EM DASH}"
    return formatSize(size)


def _time(moment: float | None) -> Tag | str:
    if moment is None:
        return "\N{EM DASH}"
    stamp = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    return tags.time(datetime=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))(stamp.strftime("%Y-%m-%d %H:%M UTC"))


def _created(created: str) -> Tag | str:
    if not created:
        return "\N{EM DASH}"
    shown = created.replace("T", " ")[:16] + (" UTC" if created.endswith("Z") else "")
    return tags.time(datetime=created)(shown)


def _short(digest: str) -> Tag:
    algorithm, _, encoded = digest.partition(":")
    return tags.code(title=digest, class_="digest")(f"{algorithm}:{encoded[:12]}")


def _document(links: Links, visitor: Visitor, title: str, crumbs: Sequence[tuple[str, str]],
              *body: Any) -> Tag:
    account: list[Any] = []
    if visitor.name:
        account = [tags.span(class_="who")("Signed in as ", tags.strong(visitor.name)),
                   tags.form(method="post", action=links.logout(), class_="inline")(
                       tags.input(type="hidden", name="csrf", value=visitor.csrf),
                       tags.button(type="submit")("Log out"))]
    elif visitor.authRequired:
        account = [tags.a(href=links.login())("Log in")]
    trail = [tags.li(tags.a(href=href)(text)) for text, href in crumbs]
    return tags.html(lang="en")(
        tags.head(
            tags.meta(charset="utf-8"),
            tags.meta(name="viewport", content="width=device-width, initial-scale=1"),
            tags.meta(name="color-scheme", content="light dark"),
            tags.title(f"{title} \N{EN DASH} txregistry"),
            tags.link(rel="stylesheet", href=links.static("ui.css")),
            tags.script(src=links.static("ui.js"), defer="defer"),
        ),
        tags.body(
            tags.a(href="#main", class_="skip")("Skip to content"),
            tags.header(
                tags.nav(**{"aria-label": "Site"})(
                    tags.a(href=links.repositories(), class_="brand")("txregistry"),
                    tags.a(href=links.repositories())("Repositories"),
                ),
                tags.div(class_="account")(*account),
            ),
            Tag("main")(id="main")(
                tags.nav(**{"aria-label": "Breadcrumb"})(tags.ol(class_="crumbs")(*trail)) if trail else "",
                tags.h1(title),
                *body,
            ),
            tags.footer(f"txregistry {__version__}"),
        ),
    )


def _table(caption: str, headings: Sequence[Any], rows: Iterable[Sequence[Any]], empty: str = "None.",
           headed: bool = False) -> Tag:
    """
    A table in a region that scrolls sideways on a narrow screen (and can
    be scrolled with the keyboard).

    @param headed: whether a heading right above says what C{caption}
        says: the caption is then only for screen readers.
    """
    body = [tags.tr(*(tags.td(cell) for cell in row)) for row in rows]
    if not body:
        return tags.p(class_="empty")(empty)
    head = [h if isinstance(h, Tag) else tags.th(scope="col")(h) for h in headings]
    return tags.div(class_="scroll", tabindex="0", role="region", **{"aria-label": caption})(
        tags.table(tags.caption(class_="visually-hidden")(caption) if headed else tags.caption(caption),
                   tags.thead(tags.tr(*head)), tags.tbody(*body)))


def _command(label: str, text: str) -> Tag:
    return tags.div(class_="command")(
        tags.code(text),
        tags.button(type="button", **{"data-copy": text, "aria-label": f"Copy the {label} command"})("Copy"),
    )


def _commands(host: str, name: str, ref: str, tag: str) -> Tag:
    leaf = name.rsplit("/", 1)[-1]
    return tags.section(**{"aria-labelledby": "pull"})(
        tags.h2(id="pull")("Pull"),
        *(_command(label, pattern.format(host=host, name=name, ref=ref, leaf=leaf, tag=tag or "latest"))
          for label, pattern in COMMANDS),
    )


def _deleteForm(links: Links, visitor: Visitor, name: str, field: str, value: str, label: str,
                short: str = "") -> Tag:
    """
    A POST form deleting the tag or manifest C{value}, with the CSRF
    token; the button reads C{short} (when given) and says C{label} to a
    screen reader.
    """
    return tags.form(method="post", action=links.delete(name), class_="inline",
                     **{"data-confirm": f"{label}? This cannot be undone."})(
        tags.input(type="hidden", name="csrf", value=visitor.csrf),
        tags.input(type="hidden", name=field, value=value),
        tags.button(type="submit", class_="danger", **({"aria-label": label} if short else {}))(short or label),
    )


def _storage(summary: RepositorySummary) -> Tag:
    usage = summary.usage
    shown = tags.span(class_="nowrap")(humanSize(usage.bytes), f" in {usage.blobs} blob{'s' if usage.blobs != 1 else ''}")
    limits = []
    if usage.maxBytes is not None:
        limits.append(f"{humanSize(usage.maxBytes)}")
    if usage.maxTags is not None:
        limits.append(f"{usage.maxTags} tags")
    if limits:
        return tags.span(shown, tags.br(), tags.small(class_="note")(f"quota {', '.join(limits)}"))
    return shown


def repositoriesPage(links: Links, visitor: Visitor, query: str, last: str,
                     summaries: list[RepositorySummary], more: bool) -> Tag:
    search = tags.form(method="get", action=links.repositories(), role="search", class_="search")(
        tags.label(for_="q")("Find repositories whose name contains"),
        tags.input(type="search", id="q", name="q", value=query),
        tags.button(type="submit")("Search"),
    )
    rows = [(tags.a(href=links.repository(s.name))(s.name), str(s.tags), _time(s.lastPush), _storage(s))
            for s in summaries]
    paging: list[Any] = []
    if last:
        paging.append(tags.a(href=links.repositories(query))("First page"))
    if more and summaries:
        paging.append(tags.a(href=links.repositories(query, summaries[-1].name), rel="next")("Next page"))
    return _document(
        links, visitor, "Repositories", [], search,
        _table("Repositories" + (f" containing \u201c{query}\u201d" if query else ""),
               ["Name", "Tags", "Last push",
                tags.th(scope="col", title="what the repository's blobs take, each counted once")("Storage")],
               rows, "No repositories" + (" match." if query else " yet.")),
        tags.nav(class_="paging", **{"aria-label": "Pages"})(*paging) if paging else "",
    )


def _sortLink(links: Links, name: str, label: str, key: str, sort: str, descending: bool,
              query: str) -> Tag:
    active = sort == key
    order = "asc" if active and descending else ("desc" if active or key == "pushed" else "asc")
    state = ("descending" if descending else "ascending") if active else "none"
    arrow = (" \u25bc" if descending else " \u25b2") if active else ""
    return tags.th(scope="col", **{"aria-sort": state})(
        tags.a(href=links.repository(name, sort=key, order=order, q=query))(label, arrow))


def _kind(mediaType: str) -> str:
    if "index" in mediaType or "list" in mediaType:
        return "Index"
    if "manifest" in mediaType:
        return "Image"
    return mediaType


def repositoryPage(links: Links, visitor: Visitor, host: str, name: str, rows: list[TagRow],
                   total: int, sort: str, descending: bool, page: int, perPage: int, query: str,
                   mayDelete: bool) -> Tag:
    pages = max(1, (total + perPage - 1) // perPage)
    order = "desc" if descending else "asc"
    headings: list[Any] = [
        _sortLink(links, name, "Tag", "name", sort, descending, query), "Digest", "Kind", "Size",
        "Platforms", "Created", _sortLink(links, name, "Pushed", "pushed", sort, descending, query),
    ]
    if mayDelete:
        headings.append(tags.th(scope="col")(tags.span(class_="visually-hidden")("Actions")))
    table = []
    for row in rows:
        cells: list[Any] = [
            tags.a(href=links.manifest(name, row.digest))(row.tag), _short(row.digest),
            tags.span(class_="nowrap")(_kind(row.mediaType)), tags.span(class_="nowrap")(humanSize(row.size)), ", ".join(row.platforms) or "\N{EM DASH}",
            _created(row.created), _time(row.pushed),
        ]
        if mayDelete:
            cells.append(_deleteForm(links, visitor, name, "tag", row.tag, f"Delete tag {row.tag}", "Delete"))
        table.append(cells)
    paging: list[Any] = []
    if page > 1:
        paging.append(tags.a(href=links.repository(name, sort=sort, order=order, q=query, page=page - 1),
                             rel="prev")("Previous page"))
    paging.append(tags.span(f"Page {page} of {pages}"))
    if page < pages:
        paging.append(tags.a(href=links.repository(name, sort=sort, order=order, q=query, page=page + 1),
                             rel="next")("Next page"))
    search = tags.form(method="get", action=links.repository(name), role="search", class_="search")(
        tags.label(for_="q")("Find tags containing"),
        tags.input(type="search", id="q", name="q", value=query),
        tags.input(type="hidden", name="sort", value=sort),
        tags.input(type="hidden", name="order", value=order),
        tags.button(type="submit")("Search"),
    )
    first = rows[0] if rows else None
    return _document(
        links, visitor, name, [("Repositories", links.repositories())],
        tags.p(f"{total} tag{'s' if total != 1 else ''}" + (f" containing \u201c{query}\u201d" if query else "")),
        _commands(host, name, f":{first.tag}" if first else "", first.tag if first else ""),
        search,
        _table(f"Tags of {name}", headings, table, "No tags" + (" match." if query else ".")),
        tags.nav(class_="paging", **{"aria-label": "Pages"})(*paging),
    )


def _descriptorRow(links: Links, name: str, d: Descriptor) -> list[Any]:
    return [tags.a(href=links.manifest(name, d.digest))(_short(d.digest)), d.mediaType, humanSize(d.size)]


def _mapping(caption: str, values: dict[str, str]) -> Tag:
    return _table(caption, ["Key", "Value"], [(tags.code(k), v) for k, v in sorted(values.items())],
                  headed=True)


def _facts(pairs: Iterable[tuple[str, Any]]) -> Tag:
    items: list[Any] = []
    for term, value in pairs:
        if value in ("", None, []):
            continue
        items += [tags.dt(term), tags.dd(value)]
    return tags.dl(class_="facts")(*items)


def _argv(values: list[str]) -> Tag | str:
    return tags.code(" ".join(values)) if values else ""


def _image(config: ImageConfig) -> list[Tag]:
    history = [
        (_created(h.created), tags.code(h.createdBy) if h.createdBy else "\N{EM DASH}",
         "no" if h.emptyLayer else "yes", h.comment)
        for h in config.history
    ]
    return [
        tags.section(**{"aria-labelledby": "config"})(
            tags.h2(id="config")("Image configuration"),
            _facts([("Created", _created(config.created) if config.created else ""),
                    ("Author", config.author), ("Platform", config.platform),
                    ("Entrypoint", _argv(config.entrypoint)), ("Command", _argv(config.cmd)),
                    ("Working directory", config.workingDir), ("User", config.user),
                    ("Exposed ports", ", ".join(config.exposedPorts))]),
            tags.h3("Environment"),
            tags.ul(class_="env")(*(tags.li(tags.code(e)) for e in config.env)) if config.env
            else tags.p(class_="empty")("None."),
            tags.h3("Labels"),
            _mapping("Labels", config.labels),
            tags.h3("History"),
            _table("History", ["Created", "Created by", "Layer", "Comment"], history, headed=True),
        ),
    ]


def _referrerTree(links: Links, name: str, grouped: dict[str, list[Referrer]]) -> Tag:
    return tags.ul(class_="tree")(*(
        tags.li(tags.span(class_="artifact")(artifactType), " (", str(len(referrers)), ")",
                tags.ul(*(_referrerItem(links, name, r) for r in referrers)))
        for artifactType, referrers in grouped.items()
    ))


def _referrerItem(links: Links, name: str, referrer: Referrer) -> Tag:
    d = referrer.descriptor
    created = d.annotations.get("org.opencontainers.image.created", "")
    item = tags.li(tags.a(href=links.manifest(name, d.digest))(_short(d.digest)), " ",
                   humanSize(d.size), (" \N{EM DASH} ", _created(created)) if created else "")
    if referrer.referrers:
        grouped: dict[str, list[Referrer]] = {}
        for below in referrer.referrers:
            grouped.setdefault(below.descriptor.artifactType or below.descriptor.mediaType, []).append(below)
        item(_referrerTree(links, name, grouped))
    return item


def manifestPage(links: Links, visitor: Visitor, host: str, details: ManifestDetails,
                 mayDelete: bool, deleteEnabled: bool) -> Tag:
    name = details.repository
    tagged = details.tags or []
    tagLinks: Any = (", ".join(tagged) if tagged else "none") if details.tags is not None else \
        "(not looked up in a repository this large)"
    sections: list[Any] = [
        _facts([
            ("Repository", tags.a(href=links.repository(name))(name)),
            ("Digest", tags.code(details.digest)),
            ("Media type", tags.code(details.mediaType)),
            ("Artifact type", tags.code(details.artifactType) if details.artifactType else ""),
            ("Manifest size", humanSize(details.size)),
            ("Total size", tags.span(title="the manifest, its config and layers (an index's: its children's),"
                                             " each blob once")(humanSize(details.totalSize))),
            ("Tags", tagLinks),
            ("Subject", tags.a(href=links.manifest(name, details.subject.digest))(_short(details.subject.digest))
             if details.subject else ""),
        ]),
        _commands(host, name, f"@{details.digest}", tagged[0] if tagged else details.digest.split(":")[-1][:12]),
        tags.section(**{"aria-labelledby": "annotations"})(
            tags.h2(id="annotations")("Annotations"), _mapping("Annotations", details.annotations)),
    ]
    if details.children or "index" in details.mediaType or "list" in details.mediaType:
        sections.append(tags.section(**{"aria-labelledby": "platforms"})(
            tags.h2(id="platforms")("Platforms"),
            _table("Manifests of this index", ["Platform", "Digest", "Media type", "Size"],
                   [[c.platform or c.artifactType or "\N{EM DASH}", *_descriptorRow(links, name, c)]
                    for c in details.children], headed=True),
        ))
    if details.image is not None:
        sections += _image(details.image)
    if details.config is not None or details.layers:
        layerRows = [(str(i), _short(layer.digest), layer.mediaType, humanSize(layer.size))
                     for i, layer in enumerate(details.layers, 1)]
        config = details.config
        configText: list[Any] = (["; config ", _short(config.digest), f" ({humanSize(config.size)})"]
                                 if config is not None else [])
        sections.append(tags.section(**{"aria-labelledby": "layers"})(
            tags.h2(id="layers")("Layers"),
            tags.p(f"{len(details.layers)} layer{'s' if len(details.layers) != 1 else ''}, ",
                   humanSize(sum(layer.size for layer in details.layers)), *configText),
            _table("Layers", ["#", "Digest", "Media type", "Size"], layerRows, headed=True),
        ))
    sections.append(tags.section(**{"aria-labelledby": "referrers"})(
        tags.h2(id="referrers")("Referrers"),
        _referrerTree(links, name, details.referrers) if details.referrers
        else tags.p(class_="empty")("No signatures, SBOMs or attestations refer to this manifest."),
    ))
    sections.append(tags.section(**{"aria-labelledby": "raw"})(
        tags.h2(id="raw")("Manifest"),
        tags.details(tags.summary("Show the manifest's JSON"),
                     tags.pre(tabindex="0")(details.raw.decode("utf-8", "replace"))),
    ))
    if mayDelete:
        sections.append(tags.section(**{"aria-labelledby": "manage"})(
            tags.h2(id="manage")("Manage"),
            tags.p("Deleting the manifest removes every tag naming it."),
            _deleteForm(links, visitor, name, "digest", details.digest, "Delete this manifest"),
        ))
    elif not deleteEnabled:
        sections.append(tags.p(class_="note")("Deletes are disabled on this registry (storage.delete.enabled)."))
    return _document(
        links, visitor, f"{name}@{details.digest[:19]}",
        [("Repositories", links.repositories()), (name, links.repository(name))], *sections)


def loginPage(links: Links, visitor: Visitor, next: str, error: str, passwords: bool) -> Tag:
    body: list[Any] = []
    if error:
        body.append(tags.p(class_="error", role="alert")(error))
    if passwords:
        body.append(tags.form(method="post", action=links.login(), class_="login")(
            tags.input(type="hidden", name="csrf", value=visitor.csrf),
            tags.input(type="hidden", name="next", value=next),
            tags.label(for_="username")("User name"),
            tags.input(id="username", name="username", autocomplete="username", required="required",
                       autofocus="autofocus"),
            tags.label(for_="password")("Password"),
            tags.input(id="password", name="password", type="password", autocomplete="current-password",
                       required="required"),
            tags.button(type="submit")("Log in"),
        ))
        body.append(tags.p(tags.a(href=links.login(next) + ("&" if next else "?") + "basic=1")(
            "Log in with the browser's password prompt instead")))
    else:
        body.append(tags.p("This registry's users log in with tokens from an external server "
                           "(auth.token): the UI has no password to check."))
    return _document(links, visitor, "Log in", [("Repositories", links.repositories())], *body)


def messagePage(links: Links, visitor: Visitor, title: str, message: str, login: bool = False) -> Tag:
    body: list[Any] = [tags.p(message)]
    if login and not visitor.name:
        body.append(tags.p(tags.a(href=links.login())("Log in")))
    body.append(tags.p(tags.a(href=links.repositories())("Back to the repositories")))
    return _document(links, visitor, title, [], *body)
