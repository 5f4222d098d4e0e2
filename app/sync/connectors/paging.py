"""Pagination strategies.  Each turns ``fetch(params, page)`` into a stream of pages of items.

``fetch`` sends one request with the paging parameters merged in and returns ``(items, body)``.
Every strategy stops on an empty page; the counting ones also stop on a short page (fewer items than
asked for); the cursor one stops when ``has_more`` is false or the next cursor is empty.  A cursor
that does not move, or more than ``max_pages`` pages, is an error: a source that never ends is broken.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from app.sync.connectors.mapping import MISSING, _empty, get_path

Fetch = Callable[[dict[str, Any], int], tuple[list[Any], Any]]
Fail = Callable[[str, int], Exception]
MAX_PAGES = 100_000


class Paging(Protocol):
    def pages(self, fetch: Fetch, fail: Fail) -> Iterator[list[Any]]: ...


@dataclass(frozen=True)
class NoPaging:
    """One request answers everything."""

    def pages(self, fetch: Fetch, fail: Fail) -> Iterator[list[Any]]:  # noqa: ARG002
        items, _ = fetch({}, 1)
        yield items


@dataclass(frozen=True)
class OffsetPaging:
    """``skip``/``limit`` (Jiandaoyun), ``StartRow``/``Limit`` (Kingdee), ``offset``/``size`` (DingTalk roles)."""

    offset_param: str
    limit_param: str
    size: int
    start: int = 0

    def pages(self, fetch: Fetch, fail: Fail) -> Iterator[list[Any]]:
        offset = self.start
        for page in range(1, MAX_PAGES + 1):
            items, _ = fetch({self.offset_param: offset, self.limit_param: self.size}, page)
            if items:
                yield items
            if len(items) < self.size:
                return
            offset += len(items)
        raise fail(f"more than {MAX_PAGES} pages", MAX_PAGES)


@dataclass(frozen=True)
class PageNumberPaging:
    """``curpage``/``pagesize`` (e-cology), ``pageNumber``/``pageSize`` (Fxiaoke incremental)."""

    page_param: str
    size_param: str
    size: int
    first: int = 1

    def pages(self, fetch: Fetch, fail: Fail) -> Iterator[list[Any]]:
        for page in range(1, MAX_PAGES + 1):
            items, _ = fetch({self.page_param: self.first + page - 1, self.size_param: self.size}, page)
            if items:
                yield items
            if len(items) < self.size:
                return
        raise fail(f"more than {MAX_PAGES} pages", MAX_PAGES)


@dataclass(frozen=True)
class CursorPaging:
    """``cursor``/``next_cursor`` (WeCom, DingTalk), ``page_token``/``has_more`` (Feishu).

    The first request carries no cursor unless ``first_cursor`` is set.  ``has_more`` (a path), when
    given, decides whether to continue; otherwise a missing or empty next cursor ends the walk.
    """

    cursor_param: str
    next_path: str
    size_param: str | None = None
    size: int | None = None
    has_more_path: str | None = None
    first_cursor: Any = None

    def pages(self, fetch: Fetch, fail: Fail) -> Iterator[list[Any]]:
        cursor = self.first_cursor
        seen: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            params: dict[str, Any] = {}
            if self.size_param and self.size:
                params[self.size_param] = self.size
            if cursor is not None:
                params[self.cursor_param] = cursor
            items, body = fetch(params, page)
            if not items:
                return
            yield items
            nxt = get_path(body, self.next_path)
            if self.has_more_path is not None:
                more = get_path(body, self.has_more_path)
                if more is MISSING or not more or str(more).lower() == "false":
                    return
            if _empty(nxt):
                if self.has_more_path is not None:
                    raise fail("has_more is true but there is no next cursor", page)
                return
            if str(nxt) in seen or nxt == cursor:
                raise fail(f"the cursor {nxt!r} came back a second time", page)
            seen.add(str(nxt))
            cursor = nxt
        raise fail(f"more than {MAX_PAGES} pages", MAX_PAGES)


def build_paging(config: Mapping[str, Any] | None, size: int | None = None) -> Paging:
    """A paging strategy from a mapping section's ``paging`` (``size`` overrides the file's page size)."""
    if not config or config.get("style", "none") == "none":
        return NoPaging()
    style = config["style"]
    page_size = int(size or config.get("size", 100))
    if style == "offset":
        return OffsetPaging(
            config.get("offset", "offset"), config.get("limit", "limit"), page_size, int(config.get("start", 0))
        )
    if style == "page":
        return PageNumberPaging(
            config.get("page", "page"), config.get("size_param", "size"), page_size, int(config.get("first", 1))
        )
    if style == "cursor":
        return CursorPaging(
            config.get("cursor", "cursor"),
            config.get("next", "next_cursor"),
            config.get("size_param"),
            page_size if config.get("size_param") else None,
            config.get("has_more"),
            config.get("first_cursor"),
        )
    raise ValueError(f"unknown paging style {style!r}: use none, offset, page or cursor")


K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def walk_tree(roots: Iterable[K], children: Callable[[K], Iterable[tuple[K, T]]]) -> Iterator[tuple[K, T]]:
    """Breadth-first over a tree one department at a time (``children(key)`` lists one level).

    Yields ``(key, record)`` for every descendant of the roots, each once, even if the source lists a
    node under two parents or has a cycle.
    """
    start = list(roots)
    seen = set(start)
    queue = deque(start)
    while queue:
        parent = queue.popleft()
        for key, record in children(parent):
            if key in seen:
                continue
            seen.add(key)
            queue.append(key)
            yield key, record
