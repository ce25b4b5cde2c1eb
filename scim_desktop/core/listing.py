"""Query parameters, sorting, paging and the ListResponse (RFC 7644 §3.4.2, RFC 9865).

Index paging (RFC 7644 §3.4.2.4): ``startIndex`` is 1-based (values below 1 mean 1), ``count``
defaults to 100, a negative count means 0 and a count above the maximum is capped.

Cursor paging (RFC 9865): ``cursor`` (empty for the first page) with ``count``; responses carry
``nextCursor`` / ``previousCursor``. A cursor records the sort key of the last resource it
covered, not an offset, so it stays valid while resources are added or removed.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar, cast

import orjson

from scim_desktop.core import filter as scim_filter
from scim_desktop.core.errors import InvalidCursor, InvalidValue
from scim_desktop.core.paths import AttrPath, ci_get, parse_attr_path
from scim_desktop.core.projection import Projection, make_projection
from scim_desktop.core.schemas import (
    DEFAULT_COUNT,
    LIST_RESPONSE_SCHEMA,
    MAX_COUNT,
    SEARCH_REQUEST_SCHEMA,
    ResourceType,
)

SortKey = tuple[Any, ...]
MAX_START_INDEX = 2**53


@dataclass(frozen=True, slots=True)
class ListQuery:
    filter: scim_filter.Filter | None = None
    start_index: int = 1
    count: int = DEFAULT_COUNT
    sort_by: AttrPath | None = None
    descending: bool = False
    #: None: index paging. "": the first page of cursor paging. Else an opaque cursor.
    cursor: str | None = None
    projection: Projection = field(default_factory=Projection)


def _int_param(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise InvalidValue(f"{name} must be an integer, got {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise InvalidValue(f"{name} must be an integer, got {raw!r}")


def _make_query(get: Callable[[str], Any], rtype: ResourceType) -> ListQuery:
    filter_text = get("filter")
    node: scim_filter.Filter | None = None
    if filter_text is not None:
        if not isinstance(filter_text, str):
            raise scim_filter.InvalidFilter("filter must be a string")
        if filter_text.strip():
            node = scim_filter.parse(filter_text)
            scim_filter.check(node, rtype)
    start_raw = get("startIndex")
    start = 1 if start_raw in (None, "") else max(1, _int_param("startIndex", start_raw))
    # Beyond any real list; also keeps the echoed value a JSON-safe integer.
    start = min(start, MAX_START_INDEX)
    count_raw = get("count")
    count = DEFAULT_COUNT if count_raw in (None, "") else _int_param("count", count_raw)
    count = min(max(count, 0), MAX_COUNT)  # RFC 7644 §3.4.2.4: negative means 0
    sort_raw = get("sortBy")
    sort_by = parse_attr_path(sort_raw) if isinstance(sort_raw, str) and sort_raw.strip() else None
    order = get("sortOrder")
    if order not in (None, "") and (
        not isinstance(order, str)
        or order.lower()
        not in (
            "ascending",
            "descending",
        )
    ):
        raise InvalidValue(f"sortOrder must be 'ascending' or 'descending', got {order!r}")
    cursor = get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise InvalidCursor("cursor must be a string")
    if cursor is not None and start_raw not in (None, ""):
        raise InvalidValue("Use either startIndex or cursor, not both (RFC 9865)")
    return ListQuery(
        filter=node,
        start_index=start,
        count=count,
        sort_by=sort_by,
        descending=sort_by is not None and isinstance(order, str) and order.lower() == "descending",
        cursor=cursor,
        projection=make_projection(get("attributes"), get("excludedAttributes"), rtype),
    )


def parse_list_query(params: Mapping[str, str], rtype: ResourceType) -> ListQuery:
    """Query-string parameters of ``GET /Users`` (names are case-sensitive per RFC 7644)."""
    return _make_query(params.get, rtype)


def parse_search_request(body: Any, rtype: ResourceType) -> ListQuery:
    """The body of ``POST /.search`` (RFC 7644 §3.4.3)."""
    if not isinstance(body, dict):
        raise InvalidValue("A SearchRequest body must be a JSON object")
    schemas = body.get("schemas")
    if schemas is not None and (
        not isinstance(schemas, list) or SEARCH_REQUEST_SCHEMA not in schemas
    ):
        raise InvalidValue(f"A SearchRequest must list the schema {SEARCH_REQUEST_SCHEMA}")
    return _make_query(lambda name: ci_get(body, name), rtype)


# --- sorting --------------------------------------------------------------------------------
def _sort_value(record: dict[str, Any], path: AttrPath, rtype: ResourceType) -> Any:
    container: Any = record
    if path.urn is not None and path.urn.lower() != rtype.schema.id.lower():
        container = ci_get(record, path.urn)
    value = ci_get(container, path.attr)
    if isinstance(value, list):
        # RFC 7644 §3.4.2.3: multi-valued attributes sort by their primary (or first) value.
        primary = next((v for v in value if isinstance(v, dict) and v.get("primary")), None)
        value = primary if primary is not None else (value[0] if value else None)
    if isinstance(value, dict):
        value = ci_get(value, path.sub or "value")
    elif path.sub is not None:
        value = None
    return value


def sort_key_fn(query: ListQuery, rtype: ResourceType) -> Callable[[dict[str, Any]], SortKey]:
    """Key for ordering records: the sortBy value (if any), then ``_seq`` for stability."""
    path = query.sort_by
    if path is None:
        return lambda r: (r["_seq"],)
    definition = rtype.resolve(path)
    case_exact = definition.case_exact if definition is not None else False

    def key(record: dict[str, Any]) -> SortKey:
        value = _sort_value(record, path, rtype)
        if value is None:
            # RFC 7644 §3.4.2.3: unassigned values sort last in ascending order.
            return (1, 0, "", record["_seq"])
        if isinstance(value, bool):
            return (0, 0, int(value), record["_seq"])
        if isinstance(value, int | float):
            return (0, 1, value, record["_seq"])
        text = str(value) if case_exact else str(value).casefold()
        return (0, 2, text, record["_seq"])

    return key


# --- cursors ----------------------------------------------------------------------------------
# A cursor is {"v": 1, "after": key} (the resources after the one with that sort key; key None
# means from the start) or {"v": 1, "before": key} (the page that ends just before it).
Cursor = tuple[str, SortKey | None]


def encode_cursor(key: SortKey | None, direction: str = "after") -> str:
    """An opaque cursor (RFC 9865 §2: only unreserved URI characters)."""
    raw = orjson.dumps({"v": 1, direction: list(key) if key is not None else None})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    if cursor == "":
        return ("after", None)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        direction = "before" if "before" in data else "after"
        key = data[direction]
        if data.get("v") != 1 or not (key is None or isinstance(key, list)):
            raise ValueError
        if direction == "before" and key is None:
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidCursor(f"The cursor {cursor!r} is not one this server issued") from None
    return (direction, tuple(key) if key is not None else None)


# --- the response -------------------------------------------------------------------------------
def list_response(
    total: int,
    resources: list[dict[str, Any]],
    start_index: int | None,
    *,
    next_cursor: str | None = None,
    previous_cursor: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [LIST_RESPONSE_SCHEMA], "totalResults": total}
    if start_index is not None:
        body["startIndex"] = start_index
    body["itemsPerPage"] = len(resources)
    if next_cursor is not None:
        body["nextCursor"] = next_cursor
    if previous_cursor is not None:
        body["previousCursor"] = previous_cursor
    body["Resources"] = resources
    return body


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    records: Sequence[dict[str, Any]]
    start_index: int | None
    next_cursor: str | None = None
    previous_cursor: str | None = None


#: Records whose sort keys are computed between two checkpoints of a sliced sort.
SORT_CHUNK = 4096
#: Sorted in one call (a few ms); longer lists are sorted in runs of this size and merged.
SORT_RUN = 8192

T = TypeVar("T")
Steps = Generator[None, None, T]


def run_steps(steps: Steps[T]) -> T:
    """Run a computation written in steps (see :meth:`ScimService.list_steps`) to its end
    without pausing: for callers that do not share a loop with other clients."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast(T, done.value)


def paginate(
    matches: Sequence[dict[str, Any]],
    query: ListQuery,
    rtype: ResourceType,
    *,
    presorted: bool,
) -> Page:
    """Sort (unless ``presorted``: already in key order) and cut one page out of ``matches``."""
    return run_steps(paginate_steps(matches, query, rtype, presorted=presorted))


def paginate_steps(
    matches: Sequence[dict[str, Any]],
    query: ListQuery,
    rtype: ResourceType,
    *,
    presorted: bool,
) -> Steps[Page]:
    """:func:`paginate` in steps: a generator that yields between bounded pieces of the sort
    (each a point where the caller may pause) and returns the Page. Presorted input is cut
    at once, without yielding, so ``matches`` may be the store's live list."""
    key = sort_key_fn(query, rtype)
    ordered: Sequence[dict[str, Any]] = matches
    if not presorted:
        ordered = yield from _sorted_steps(list(matches), key, query.descending)
    total = len(ordered)
    if query.cursor is None:
        begin = query.start_index - 1
        return Page(total, ordered[begin : begin + query.count], query.start_index)
    direction, anchor = decode_cursor(query.cursor)
    if anchor is None:
        begin = 0
        end = min(total, query.count)
    elif direction == "after":
        begin = _first_after(ordered, key, anchor, query.descending)
        end = min(total, begin + query.count)
    else:
        # "before": the page that ends just before the anchor (RFC 9865 previousCursor).
        end = _first_after(ordered, key, anchor, query.descending, inclusive=True)
        begin = max(0, end - query.count)
    page = ordered[begin:end]
    next_cursor = encode_cursor(key(ordered[end - 1])) if end < total and page else None
    previous_cursor = None
    if begin > 0 and page:
        previous_cursor = encode_cursor(key(ordered[begin]), "before")
    return Page(total, page, None, next_cursor, previous_cursor)


def _sorted_steps(
    records: list[dict[str, Any]], key: Callable[[dict[str, Any]], SortKey], descending: bool
) -> Steps[list[dict[str, Any]]]:
    """``sorted(records, key=key, reverse=descending)`` in pieces of a few milliseconds.

    One ``sorted`` of 100,000 users by userName is ~76 ms in a single C call, plus ~65 ms of
    key functions: keys are computed in chunks, runs of SORT_RUN sorted one at a time, and
    the runs merged a chunk at a time. Every key ends with the unique ``_seq`` (and its kind
    number keeps values of different types apart), so keys never tie and the merged order is
    exactly the one-call order, descending included.
    """
    n = len(records)
    keys: list[SortKey] = []
    for start in range(0, n, SORT_CHUNK):
        keys.extend(map(key, records[start : start + SORT_CHUNK]))
        yield
    key_of = keys.__getitem__
    if n <= SORT_RUN:
        order = sorted(range(n), key=key_of, reverse=descending)
    else:
        runs: list[list[int]] = []
        for start in range(0, n, SORT_RUN):
            run = range(start, min(n, start + SORT_RUN))
            runs.append(sorted(run, key=key_of, reverse=descending))
            yield
        merged = heapq.merge(*runs, key=key_of, reverse=descending)
        order = []
        while True:
            part = list(islice(merged, SORT_CHUNK))
            order.extend(part)
            if len(part) < SORT_CHUNK:
                break
            yield
    return [records[i] for i in order]


def _first_after(
    ordered: Sequence[dict[str, Any]],
    key: Callable[[dict[str, Any]], SortKey],
    after: SortKey,
    descending: bool,
    *,
    inclusive: bool = False,
) -> int:
    """Index of the first record whose key comes after ``after`` in the listing order (or is
    equal to it, with ``inclusive``)."""
    lo, hi = 0, len(ordered)
    try:
        while lo < hi:
            mid = (lo + hi) // 2
            k = key(ordered[mid])
            if inclusive:
                passed = k <= after if descending else k >= after
            else:
                passed = k < after if descending else k > after
            if passed:
                hi = mid
            else:
                lo = mid + 1
    except TypeError:
        raise InvalidCursor("The cursor does not belong to this query") from None
    return lo
