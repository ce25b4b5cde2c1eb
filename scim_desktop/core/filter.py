"""SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (RFC 7644 §3.5.2): parse, check, evaluate.

The syntax (the AST, the limits, the tokenizer, :func:`parse` and :func:`parse_path`) is
:mod:`scim_desktop.core.filter_parse`; this module re-exports it, so importers use
``core.filter`` for both, and holds what needs definitions: resolving paths against the schemas,
checking and evaluating.

:func:`check` rejects what the RFC forbids whatever the data (``gt`` on a boolean, ...);
:func:`evaluate` answers one resource. Neither needs I/O; definitions come from
:mod:`scim_desktop.core.schemas` so ``caseExact`` and ``dateTime`` are honoured.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from scim_desktop.core.errors import InvalidFilter
from scim_desktop.core.filter_parse import (
    _COMPARE_OPS,
    _OPS_TEXT,
    _ORDERING_OPS,
    _SUBSTRING_OPS,
    MAX_FILTER_CLAUSES,
    MAX_FILTER_DEPTH,
    MAX_FILTER_LENGTH,
    And,
    Compare,
    Filter,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
    parse,
    parse_path,
)
from scim_desktop.core.paths import AttrPath, ci_get
from scim_desktop.core.schemas import Attribute, ResourceType

__all__ = [
    "MAX_FILTER_CLAUSES",
    "MAX_FILTER_DEPTH",
    "MAX_FILTER_LENGTH",
    "And",
    "Compare",
    "Filter",
    "Not",
    "Or",
    "PatchPath",
    "Present",
    "ValuePath",
    "check",
    "compile_filter",
    "evaluate",
    "evaluate_element",
    "evaluate_steps",
    "filter_size",
    "parse",
    "parse_path",
    "resource_bulk",
]


# --- resolving paths against definitions -------------------------------------------------------
_Scope: TypeAlias = ResourceType | Attribute | None


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a path reads from and how its values compare."""

    container: str | None  # extension schema URN to step into first, or None
    attr: str
    sub: str | None
    definition: Attribute | None  # what the path names (None: unknown attribute)
    kind: str  # type of the compared scalars ("" unknown); complex -> its "value" sub-attribute
    case_exact: bool


_TARGETS: dict[tuple[int, AttrPath], tuple[_Scope, _Target]] = {}
_TARGETS_MAX = 4096


def _target(path: AttrPath, scope: _Scope) -> _Target:
    """``_build_target`` cached by (scope, path): evaluation runs over every stored record."""
    key = (id(scope), path)
    hit = _TARGETS.get(key)
    if hit is not None and hit[0] is scope:
        return hit[1]
    target = _build_target(path, scope)
    if len(_TARGETS) >= _TARGETS_MAX:
        _TARGETS.clear()
    _TARGETS[key] = (scope, target)
    return target


def _build_target(path: AttrPath, scope: _Scope) -> _Target:
    container: str | None = None
    attr_def: Attribute | None = None
    if isinstance(scope, ResourceType):
        schema = scope.schema_for(path.urn)
        if path.urn is not None and schema is not scope.schema:
            # Extension attributes live in a complex attribute named by the schema URN
            # (RFC 7643 §3.3); an unknown URN is read the same way and simply matches nothing.
            container = path.urn
        if schema is not None:
            attr_def = schema.attribute(path.attr)
        if attr_def is None and path.urn is None:
            # Leniency: an unqualified name that only an extension defines ("employeeNumber").
            for ext, _required in scope.extensions:
                found = ext.attribute(path.attr)
                if found is not None:
                    attr_def, container = found, ext.id
                    break
    elif isinstance(scope, Attribute):
        # Inside a valuePath the names are sub-attributes of the filtered attribute.
        attr_def = scope.sub(path.attr)
    definition = attr_def
    if path.sub is not None:
        definition = attr_def.sub(path.sub) if attr_def is not None else None
    scalar = definition
    if definition is not None and definition.type == "complex":
        # A complex attribute compared as a whole compares its "value" (RFC 7644 §3.4.2.2:
        # "emails co ..."), so "members eq <id>" works.
        scalar = definition.sub("value")
    kind = scalar.type if scalar is not None else ""
    case_exact = scalar.case_exact if scalar is not None else False
    return _Target(container, path.attr, path.sub, definition, kind, case_exact)


def _collect(obj: dict[str, Any], t: _Target) -> list[Any]:
    """Every value the path names in ``obj``; multi-valued attributes are flattened."""
    base: Any = obj
    if t.container is not None:
        base = ci_get(obj, t.container)
    value = ci_get(base, t.attr)
    if value is None:
        return []
    if t.sub is None:
        return value if isinstance(value, list) else [value]
    out: list[Any] = []
    for element in value if isinstance(value, list) else (value,):
        sub = ci_get(element, t.sub)
        if sub is None:
            continue
        if isinstance(sub, list):
            out.extend(sub)
        else:
            out.append(sub)
    return out


def _present(value: Any) -> bool:
    """RFC 7644 §3.4.2.2 "pr": a non-empty value, or a non-empty node of a complex attribute.
    null, "", [] and {} are unassigned (RFC 7643 §2.5)."""
    if value is None or value == "":
        return False
    if isinstance(value, list):
        return any(_present(v) for v in value)
    if isinstance(value, dict):
        return any(_present(v) for v in value.values())
    return True


# --- dateTime (RFC 7643 §2.3.5: xsd:dateTime, in practice RFC 3339) ----------------------------
_LONG_FRACTION_RE = re.compile(r"(\.[0-9]{6})[0-9]+")


def _instant(text: str) -> datetime | None:
    """``text`` as an aware datetime (no offset means UTC), or None when it is not a date."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        # RFC 3339 allows "t"/"z" in lower case and any number of fraction digits.
        fixed = _LONG_FRACTION_RE.sub(r"\1", text.upper())
        try:
            moment = datetime.fromisoformat(fixed)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _not_a_date(path: str, value: object) -> InvalidFilter:
    return InvalidFilter(
        f"{path!r} is a dateTime attribute; compare it with a date and time such as "
        f'"2011-05-13T04:42:34Z", not {json.dumps(value)}'
    )


# --- evaluation --------------------------------------------------------------------------------
# A filter is compiled once into closures with its definitions resolved, its value lower-cased
# (caseExact false) or parsed (dateTime); the closures then run over every stored record.
_Matcher: TypeAlias = Callable[[dict[str, Any]], bool]
_ValueTest: TypeAlias = Callable[[Any], bool]

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _never(_value: Any) -> bool:
    return False


def _value_test(
    op: str, wanted: str | int | float | bool, t: _Target, path: AttrPath
) -> _ValueTest:
    """A test of one scalar attribute value against the filter value."""
    if t.kind == "dateTime" and isinstance(wanted, str) and op not in _SUBSTRING_OPS:
        # RFC 7644 §3.4.2.2: dateTime values compare chronologically, as instants.
        there = _instant(wanted)
        if there is None:
            raise _not_a_date(str(path), wanted)
        order = _ORDER[op]

        def date_test(value: Any) -> bool:
            if isinstance(value, str):
                here = _instant(value)
                return here is not None and order(here, there)
            if isinstance(value, datetime):
                return order(value if value.tzinfo else value.replace(tzinfo=UTC), there)
            return False

        return date_test
    if isinstance(wanted, str):
        # caseExact false (RFC 7643 §2.2: userName, emails.value, displayName, unknown
        # attributes) folds both sides; id, externalId and meta.* are caseExact.
        fold = not t.case_exact
        w = wanted.lower() if fold else wanted
        if op == "co":

            def pred(v: str) -> bool:
                return w in v

        elif op == "sw":

            def pred(v: str) -> bool:
                return v.startswith(w)

        elif op == "ew":

            def pred(v: str) -> bool:
                return v.endswith(w)

        else:
            order = _ORDER[op]  # gt/ge/lt/le on strings: lexicographic (RFC 7644 §3.4.2.2)

            def pred(v: str) -> bool:
                return order(v, w)

        if fold:
            return lambda v: isinstance(v, str) and pred(v.lower())
        return lambda v: isinstance(v, str) and pred(v)
    if isinstance(wanted, bool):
        # Booleans equal only booleans (True must not equal 1); they have no order.
        return (lambda v: v is wanted) if op == "eq" else _never
    if op in _SUBSTRING_OPS:
        return _never
    order = _ORDER[op]
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and order(v, wanted)


def _compile(node: Filter, scope: _Scope) -> _Matcher:
    if isinstance(node, Compare):
        return _compile_compare(node, _target(node.path, scope))
    if isinstance(node, And):
        left_and, right_and = _compile(node.left, scope), _compile(node.right, scope)
        return lambda obj: left_and(obj) and right_and(obj)
    if isinstance(node, Or):
        left_or, right_or = _compile(node.left, scope), _compile(node.right, scope)
        return lambda obj: left_or(obj) or right_or(obj)
    if isinstance(node, Not):
        inner = _compile(node.expr, scope)
        return lambda obj: not inner(obj)
    if isinstance(node, Present):
        t = _target(node.path, scope)
        return lambda obj: any(_present(v) for v in _collect(obj, t))
    if isinstance(node, ValuePath):
        # The whole inner filter must hold for one and the same element (RFC 7644 §3.4.2.2),
        # and its names are resolved as sub-attributes of the filtered attribute.
        t = _target(node.path, scope)
        element = _compile(node.filter, t.definition)
        return lambda obj: any(isinstance(e, dict) and element(e) for e in _collect(obj, t))
    raise TypeError(f"not a filter node: {node!r}")


def _compile_compare(node: Compare, t: _Target) -> _Matcher:
    op, wanted = node.op, node.value
    if op not in _COMPARE_OPS:  # only reachable with a hand-built Compare
        raise InvalidFilter(f"Unknown filter operator {op!r}; expected {_OPS_TEXT}")
    if wanted is None:
        # "eq null" is "not present", "ne null" is "present"; nothing orders against null.
        if op == "eq":
            return lambda obj: not any(_present(v) for v in _collect(obj, t))
        if op == "ne":
            return lambda obj: any(_present(v) for v in _collect(obj, t))
        return lambda obj: False
    test = _value_test("eq" if op == "ne" else op, wanted, t, node.path)

    def any_value(obj: dict[str, Any]) -> bool:
        # Multi-valued attributes match when any value does (RFC 7644 §3.4.2.2); an element
        # of a complex attribute named without a sub-attribute compares its "value".
        for value in _collect(obj, t):
            if isinstance(value, dict):
                value = ci_get(value, "value")
            # null and "" are unassigned (RFC 7643 §2.5, as for "pr"): they compare with nothing.
            if value is not None and value != "" and test(value):
                return True
        return False

    if op == "ne":
        # True when no value equals, so also when the attribute is missing.
        return lambda obj: not any_value(obj)
    return any_value


_COMPILED: dict[int, tuple[Filter, _Scope, _Matcher]] = {}
_COMPILED_MAX = 256


def _compiled(node: Filter, scope: _Scope) -> _Matcher:
    # Keyed by identity, not equality: Compare(p, "eq", True) == Compare(p, "eq", 1) in Python.
    hit = _COMPILED.get(id(node))
    if hit is not None and hit[0] is node and hit[1] is scope:
        return hit[2]
    matcher = _compile(node, scope)
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    _COMPILED[id(node)] = (node, scope, matcher)  # holding node keeps its id from being reused
    return matcher


def compile_filter(node: Filter, rtype: ResourceType) -> Callable[[dict[str, Any]], bool]:
    """``node`` as a function of one resource; the fastest way to scan many records
    (compiled once per filter tree and kept while it is reused).

    Raises :class:`InvalidFilter` for a dateTime attribute compared with a non-date.
    """
    return _compiled(node, rtype)


def evaluate(node: Filter, resource: dict[str, Any], rtype: ResourceType) -> bool:
    """Whether ``resource`` (a User or Group as JSON data) matches ``node``.

    Raises :class:`InvalidFilter` for a dateTime attribute compared with a non-date (as
    :func:`check` does, which should be called once per request before looking at data).
    """
    return _compiled(node, rtype)(resource)


# --- evaluation in steps (issue 12) -------------------------------------------------------------
#: Value-filter elements x clauses tested between two checkpoints of evaluate_steps.
_ELEMENT_WORK = 1024


def filter_size(node: Filter) -> int:
    """The clauses in ``node`` (attribute tests and value filters): its cost per record."""
    if isinstance(node, And | Or):
        return filter_size(node.left) + filter_size(node.right)
    if isinstance(node, Not):
        return filter_size(node.expr)
    if isinstance(node, ValuePath):
        return 1 + filter_size(node.filter)
    return 1


def resource_bulk(resource: dict[str, Any]) -> int:
    """A rough size of ``resource`` as filter evaluation sees it: the values of its
    multi-valued attributes (also one level down, in extension objects) plus one per 256
    characters of text. About a microsecond for a typical user; with :func:`filter_size` it
    says when a record is worth evaluating with :func:`evaluate_steps`."""
    n = 0
    for value in resource.values():
        cls = value.__class__
        if cls is list:
            n += len(value)
        elif cls is str:
            n += len(value) >> 8
        elif cls is dict:
            for inner in value.values():
                kind = inner.__class__
                if kind is list:
                    n += len(inner)
                elif kind is str:
                    n += len(inner) >> 8
    return n


def evaluate_steps(
    node: Filter, resource: dict[str, Any], rtype: ResourceType
) -> Generator[None, None, bool]:
    """:func:`evaluate` in steps, for one large record (a group with 100,000 members under a
    value filter of many clauses can cost seconds): a generator that yields after every
    attribute test and every few value-filter elements, each a point where the caller may
    pause, and returns the same answer as :func:`evaluate` (the tests are the same compiled
    closures; only the ``and`` / ``or`` / ``not`` / ``[...]`` around them are walked here)."""
    return _steps(node, rtype, resource)


def _steps(node: Filter, scope: _Scope, obj: dict[str, Any]) -> Generator[None, None, bool]:
    if isinstance(node, And):
        if not (yield from _steps(node.left, scope, obj)):
            return False
        return (yield from _steps(node.right, scope, obj))
    if isinstance(node, Or):
        if (yield from _steps(node.left, scope, obj)):
            return True
        return (yield from _steps(node.right, scope, obj))
    if isinstance(node, Not):
        return not (yield from _steps(node.expr, scope, obj))
    if isinstance(node, ValuePath):
        # As _compile's ValuePath: one and the same element must match the whole filter.
        t = _target(node.path, scope)
        element = _compiled(node.filter, t.definition)
        every = max(1, _ELEMENT_WORK // filter_size(node.filter))
        for i, value in enumerate(_collect(obj, t), 1):
            if isinstance(value, dict) and element(value):
                return True
            if i % every == 0:
                yield
        return False
    matched = _compiled(node, scope)(obj)
    yield
    return matched


def evaluate_element(node: Filter, element: dict[str, Any], attribute: Attribute | None) -> bool:
    """Whether one element of a multi-valued complex attribute matches a value filter.

    For PATCH ``members[value eq "..."]`` (RFC 7644 §3.5.2): ``node`` is the bracketed
    filter and ``attribute`` the definition of ``members`` (None when unknown), e.g.
    ``GROUP_TYPE.resolve(path.attr)``.
    """
    return _compiled(node, attribute)(element)


# --- static checks -----------------------------------------------------------------------------
def check(node: Filter, rtype: ResourceType) -> None:
    """Raise :class:`InvalidFilter` for what RFC 7644 §3.4.2.2 forbids whatever the data.

    Unknown attributes are allowed: they match nothing.
    """
    _check(node, rtype)


def _check(node: Filter, scope: _Scope) -> None:
    if isinstance(node, Compare):
        _check_compare(node, _target(node.path, scope))
    elif isinstance(node, (And, Or)):
        _check(node.left, scope)
        _check(node.right, scope)
    elif isinstance(node, Not):
        _check(node.expr, scope)
    elif isinstance(node, ValuePath):
        t = _target(node.path, scope)
        if t.definition is not None and t.definition.type != "complex":
            raise InvalidFilter(
                f"{str(node.path)!r} is not a complex attribute, so it cannot take a value "
                f"filter [...]"
            )
        _check(node.filter, t.definition)


def _check_compare(node: Compare, t: _Target) -> None:
    op, wanted, name = node.op, node.value, str(node.path)
    shown = json.dumps(wanted)
    if op in _ORDERING_OPS:
        # RFC 7644 §3.4.2.2: gt/ge/lt/le on boolean or binary attributes is a 400 invalidFilter.
        if t.kind in ("boolean", "binary"):
            raise InvalidFilter(f"{op!r} cannot be used with the {t.kind} attribute {name!r}")
        if wanted is None or isinstance(wanted, bool):
            raise InvalidFilter(
                f"{op!r} needs a string, number or date to compare {name!r} with, not {shown}"
            )
    if op in _SUBSTRING_OPS:
        if t.kind in ("boolean", "integer", "decimal"):
            raise InvalidFilter(f"{op!r} cannot be used with the {t.kind} attribute {name!r}")
        if not isinstance(wanted, str):
            raise InvalidFilter(f"{op!r} needs a string value for {name!r}, not {shown}")
    if (
        t.kind == "dateTime"
        and op not in _SUBSTRING_OPS
        and wanted is not None
        and (not isinstance(wanted, str) or _instant(wanted) is None)
    ):
        raise _not_a_date(name, wanted)
