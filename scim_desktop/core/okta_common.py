"""Okta insight, shared by the per-resource classifiers (``okta_users``, ``okta_groups``,
``okta_spec``): which endpoint a path names, a bounded map that forgets,
query, filter and PATCH helpers, and :class:`_State`, the history tables every part reads.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from scim_desktop.core.errors import ScimError
from scim_desktop.core.filter import And, Compare, Filter, Not, Or, Present, ValuePath, parse
from scim_desktop.core.filter import parse_path as parse_patch_path
from scim_desktop.core.okta_steps import IMPORT_PAGE_SIZE, OktaRequest, Step, _make
from scim_desktop.core.paths import ci_get

_USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:user"
_GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:group"
_PAGE_HINT = "(Okta pages with count=100)"


@dataclass(frozen=True, slots=True)
class _Target:
    """Which endpoint a path names."""

    kind: str  # users | groups | discovery | search | me | bulk | root | unknown
    id: str | None = None
    name: str = ""  # the path as written, for messages


_K = TypeVar("_K")
_V = TypeVar("_V")


class _Recent(Generic[_K, _V]):
    """A map that forgets: at most ``size`` keys, each kept ``max_age`` seconds since its last
    ``put``. Insertion-ordered, so the oldest entry is evicted first."""

    def __init__(self, size: int, max_age: float) -> None:
        self.size = size
        self.max_age = max_age
        self._data: OrderedDict[_K, tuple[float, _V]] = OrderedDict()

    def put(self, key: _K, value: _V, now: float) -> None:
        self._data.pop(key, None)
        self._data[key] = (now, value)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def get(self, key: _K, now: float) -> _V | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if now - hit[0] > self.max_age:
            del self._data[key]
            return None
        return hit[1]

    def pop(self, key: _K) -> None:
        self._data.pop(key, None)

    def prune(self, now: float) -> None:
        while self._data:
            key, (t, _value) = next(iter(self._data.items()))
            if now - t <= self.max_age:
                break
            del self._data[key]

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[_K]:
        return iter(self._data)


# --- small helpers -----------------------------------------------------------------------------
def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _q(query: dict[str, str], name: str) -> str | None:
    """A query parameter, its name matched case-insensitively."""
    value = query.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in query.items():
        if key.lower() == lowered:
            return val
    return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _bool(value: Any) -> bool | None:
    """A boolean, also as the strings "true" / "false" some clients send."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


_TARGETS: dict[str, _Target] = {}


def _target(path: str) -> _Target:
    """What ``path`` (relative to the SCIM base) names. Resource endpoints are matched
    case-insensitively, as the server routes them. Remembered for recent paths: each
    request asks twice (before and after its answer)."""
    found = _TARGETS.get(path)
    if found is None:
        found = _parse_target(path)
        if len(_TARGETS) >= 1024:
            _TARGETS.clear()
        _TARGETS[path] = found
    return found


def _parse_target(path: str) -> _Target:
    clean = path.split("?", 1)[0].rstrip("/")
    if clean.lower().startswith("/scim/v2/") or clean.lower() == "/scim/v2":
        clean = clean[len("/scim/v2") :]  # tolerate the conventional base path
    parts = [p for p in clean.split("/") if p]
    if not parts:
        return _Target("root", None, path or "/")
    head = parts[0].lower()
    rest = parts[1:]
    if head in ("users", "groups"):
        if not rest:
            return _Target(head, None, clean)
        if len(rest) == 1:
            if rest[0].lower() == ".search":
                return _Target("search", None, clean)
            return _Target(head, rest[0], clean)
        return _Target("unknown", None, clean)
    if head in ("serviceproviderconfig", "serviceproviderconfigs", "schemas", "resourcetypes"):
        return _Target("discovery", None, "/" + parts[0])
    if head == ".search" and not rest:
        return _Target("search", None, clean)
    if head in ("me", "bulk"):
        return _Target(head, None, clean)
    return _Target("unknown", None, clean)


def _eq_value(node: Filter, attr: str, schema: str) -> str | None:
    """The string of ``attr eq "..."`` when the filter is exactly that, else None."""
    if (
        isinstance(node, Compare)
        and node.op == "eq"
        and isinstance(node.value, str)
        and node.path.attr.lower() == attr
        and node.path.sub is None
        and (node.path.urn is None or node.path.urn.lower() == schema)
    ):
        return node.value
    return None


def _filter_attrs(node: Filter) -> set[str]:
    """Every attribute name (lower-case, "attr.sub") a filter mentions."""
    if isinstance(node, (Compare, Present)):
        return {str(node.path).lower().rsplit(":", 1)[-1]}
    if isinstance(node, (And, Or)):
        return _filter_attrs(node.left) | _filter_attrs(node.right)
    if isinstance(node, Not):
        return _filter_attrs(node.expr)
    if isinstance(node, ValuePath):
        return {str(node.path).lower()} | _filter_attrs(node.filter)
    return set()


def _operations(body: Any) -> list[tuple[str, str | None, Any]] | None:
    """``(op lower-case, path or None, value)`` for each PatchOp operation (RFC 7644 §3.5.2),
    or None when the body is not a PatchOp."""
    ops = ci_get(body, "Operations")
    if not isinstance(ops, list):
        return None
    out: list[tuple[str, str | None, Any]] = []
    for op in ops:
        if not isinstance(op, dict):
            continue
        name = ci_get(op, "op")
        path = ci_get(op, "path")
        out.append(
            (
                name.lower() if isinstance(name, str) else "",
                path if isinstance(path, str) and path.strip() else None,
                ci_get(op, "value"),
            )
        )
    return out


def _patch_attr(path: str) -> tuple[str, Filter | None]:
    """The lower-case attribute a PATCH path names (without schema URN) and its value filter."""
    try:
        parsed = parse_patch_path(path)
    except ScimError:
        return path.strip().lower(), None
    name = parsed.attr.attr.lower()
    if parsed.attr.sub:
        name += "." + parsed.attr.sub.lower()
    return name, parsed.filter


def _canonical(body: Any) -> str:
    if body is None:
        return ""
    try:
        return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return repr(body)


def _request_key(req: OktaRequest) -> tuple[str, str, tuple[tuple[str, str], ...], str]:
    """Same method, path, query and body: what makes a request a retry of another."""
    return (
        req.method.upper(),
        req.path.rstrip("/") or "/",
        tuple(sorted(req.query.items())),
        _canonical(req.body),
    )


# --- the state the parts share -----------------------------------------------------------------
class _State:
    """The history tables of :class:`~scim_desktop.core.okta.OktaClassifier` (created in its
    ``__init__``) and the lookups every per-resource part uses."""

    max_age_s: float
    _users: _Recent[str, dict[str, Any]]
    _names: _Recent[str, str]
    _links: _Recent[str, str]
    _link_read: _Recent[str, bool]
    _checked: _Recent[str, bool]
    _totals: _Recent[str, int]
    _last_test_credentials: float | None
    _spec_users: _Recent[str, tuple[str, str]]
    _spec_ids: _Recent[str, bool]

    def _who(self, user_id: str, now: float) -> str:
        name = self._names.get(user_id, now)
        return f"{name} (id {user_id})" if name else f"user {user_id}"

    def _group(self, group_id: str, now: float) -> str:
        name = self._names.get(group_id, now)
        return f'"{name}" (id {group_id})' if name else group_id

    @staticmethod
    def _filter_user(req: OktaRequest) -> str | None:
        text = _q(req.query, "filter")
        if not text:
            return None
        try:
            return _eq_value(parse(text), "username", _USER_SCHEMA)
        except ScimError:
            return None

    def _import_page(
        self,
        req: OktaRequest,
        kind: str,
        start: int | None,
        count: int | None,
        step_id: str | None = None,
        **fields: Any,
    ) -> Step:
        """OKTA.md, "Import users": page = (startIndex - 1) // count + 1, startIndex 1-based.
        ``kind`` keys the remembered totalResults; ``step_id`` (import_users or import_groups
        by ``kind`` when None) and ``fields`` are for other paged imports (entitlements)."""
        first = max(start if start is not None else 1, 1)
        size = count if count is not None and count > 0 else IMPORT_PAGE_SIZE
        page = (first - 1) // size + 1
        notes: list[str] = []
        total = self._totals.get(kind, req.time)
        if total is not None and page > 1:
            notes.append(f"Page {page} of {max(math.ceil(total / size), 1)}.")
        if start is None or count is None:
            notes.append(f"Okta always sends startIndex and count {_PAGE_HINT}.")
        elif count != IMPORT_PAGE_SIZE:
            notes.append(f"count={count} is not Okta's page size {_PAGE_HINT}.")
        if step_id is None:
            step_id = "import_users" if kind == "users" else "import_groups"
        return _make(step_id, " ".join(notes), page=page, start=first, count=size, **fields)
