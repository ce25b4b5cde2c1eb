"""PATCH operations on one resource (RFC 7644 §3.5.2).

:func:`apply` takes the stored resource as a plain dict and the raw ``Operations`` value of a
PatchOp request, and returns a new dict with every operation applied in order. It never
changes its inputs, so an error in any operation leaves nothing half-applied: the caller
simply does not store the result (RFC 7644 §3.5.2: "the operations are applied atomically").

What this module enforces is the PATCH rules themselves (op names, paths, targets,
mutability, required attributes). It does not type-check the result: the caller validates it
exactly as it validates a PUT body, hashes a ``password`` it finds, and refreshes ``meta``.

Okta and Azure quirks handled here (see OKTA.md): path-less ``replace`` of ``active`` and of
``{"id": ..., "displayName": ...}``, ``members[value eq "..."]`` removing only that member,
``replace members []`` emptying the group, capitalised op names ("Replace") and boolean
attributes sent as the strings "True" / "False".

This module is the request as a whole: checking ``Operations``, the limits, and runs of like
operations applied in one pass. One operation at a time (targets, add, replace, remove, value
filters and their helpers) is :mod:`scim_desktop.core.patch_ops`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from scim_desktop.core import filter as scim_filter
from scim_desktop.core.errors import (
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    PayloadTooLarge,
    ScimError,
)
from scim_desktop.core.patch_ops import (
    _MISSING,
    _apply_one,
    _as_list,
    _coerce,
    _container,
    _dispatch,
    _Doomed,
    _key,
    _matches,
    _Present,
    _remove,
    _resolve,
    _single_primary,
    _store_list,
    _Target,
)
from scim_desktop.core.paths import ci_get, ci_key
from scim_desktop.core.schemas import ResourceType

_OPS = ("add", "remove", "replace")
#: Operations one PATCH may carry. Okta sends one or two (a group push lists its members in
#: one operation's value, or one remove per member of a batch); the cap keeps one request's
#: work on the event loop bounded (issue 12). RFC 7644 §3.7.4 answers a Bulk request over
#: its maxOperations with 413; a PATCH over this gets the same.
MAX_OPERATIONS = 1000
#: Values of multi-valued attributes that operations applied one at a time may visit in one
#: PATCH (each such operation passes over its attribute's values, for duplicates and
#: "primary"): about 70 ms of event loop here. Runs of like operations (apply) do not count;
#: one replace of 100,000 members is 100,000. Over it: 413, split the request.
MAX_PATCH_WORK = 300_000


def apply(resource: dict[str, Any], operations: Any, rtype: ResourceType) -> dict[str, Any]:
    """Apply the PatchOp ``Operations`` to ``resource`` and return the patched copy.

    Raises a :class:`~scim_desktop.core.errors.ScimError` subclass whose detail names the
    failing operation by its index in ``Operations``.
    """
    ops = _check_operations(operations)
    result = copy.deepcopy(resource)
    # Consecutive operations of one kind on one multi-valued attribute (Okta's
    # members[value eq "id"] removes, one per member; adds or removes listing values) are
    # applied together, in one pass over the values: one at a time, each a pass over every
    # value, 1 MB of them on a 1,000-member group held the event loop for 5 to 100 s.
    run: list[_Step] = []
    work = 0  # values visited by operations applied alone (MAX_PATCH_WORK)
    for index, (op, path, value) in enumerate(ops):
        try:
            target = None
            if path is not None and rtype.extension(path.strip()) is None:
                target = _resolve(path, op, rtype)
                step = _step(op, target, value)
                if step is not None:
                    if run and not _same_run(run[0], step):
                        _apply_run(result, run, rtype)
                        run = []
                    run.append(step)
                    continue
            if run:
                _apply_run(result, run, rtype)
                run = []
            if target is not None:
                if target.defn is not None and target.defn.multi_valued:
                    work += _values_visited(result, target, rtype)
                    if work > MAX_PATCH_WORK:
                        raise PayloadTooLarge(
                            f"This PATCH would pass over {work:,} values of multi-valued "
                            f"attributes one operation at a time; the limit is "
                            f"{MAX_PATCH_WORK:,} (send fewer operations per request)"
                        )
                _dispatch(result, op, target, value, rtype)
            else:
                _apply_one(result, op, path, value, rtype)
        except ScimError as exc:
            raise type(exc)(
                f"Operations[{index}] ({op}): {exc.detail}", headers=exc.headers
            ) from exc
    if run:
        # (Never raises: what could was checked when each step was made.)
        _apply_run(result, run, rtype)
    _tidy_extensions(result, rtype)
    return result


def _values_visited(res: dict[str, Any], t: _Target, rtype: ResourceType) -> int:
    """How many values an operation on the multi-valued ``t`` passes over: its current ones."""
    container = _container(res, t.attr, rtype, create=False)
    if container is None:
        return 0
    current = container.get(_key(container, t))
    return len(current) if isinstance(current, list) else 0


# --- request structure (RFC 7644 §3.5.2) -------------------------------------------------------
def _check_operations(operations: Any) -> list[tuple[str, str | None, Any]]:
    """Validate the ``Operations`` array: (op lower-cased, path or None, value or _MISSING)."""
    # RFC 7644 §3.5.2: "The body of an HTTP PATCH request MUST contain the attribute
    # "Operations", whose value is an array of one or more PATCH operations."
    if operations is None:
        raise InvalidSyntax("The PATCH request has no 'Operations' array")
    if not isinstance(operations, list):
        raise InvalidSyntax("'Operations' must be an array of PATCH operations")
    if not operations:
        raise InvalidSyntax("'Operations' must contain at least one operation")
    if len(operations) > MAX_OPERATIONS:
        raise PayloadTooLarge(
            f"The PATCH request has {len(operations):,} operations; the limit is "
            f"{MAX_OPERATIONS:,} (send the rest in another request)"
        )
    out: list[tuple[str, str | None, Any]] = []
    for index, raw in enumerate(operations):
        where = f"Operations[{index}]"
        if not isinstance(raw, dict):
            raise InvalidSyntax(f"{where} must be an object with 'op', 'path' and 'value'")
        op = ci_get(raw, "op")
        if op is None:
            raise InvalidSyntax(f"{where} has no 'op' (one of add, remove, replace)")
        # Op names are matched case-insensitively: Azure sends "Replace" and "Add".
        if not isinstance(op, str) or op.strip().lower() not in _OPS:
            raise InvalidSyntax(
                f"{where} has an unsupported op {op!r}: expected add, remove or replace"
            )
        op = op.strip().lower()
        path = ci_get(raw, "path")
        if path is not None and not isinstance(path, str):
            raise InvalidPath(f"{where} ({op}): 'path' must be a string, not {path!r}")
        if path is not None and not path.strip():
            path = None  # an empty path means no path
        key = ci_key(raw, "value")
        value = _MISSING if key is None else raw[key]
        if op in ("add", "replace") and value is _MISSING:
            # RFC 7644 §3.5.2.1 / §3.5.2.3: the operation MUST contain a "value" member;
            # §3.12 invalidValue: "A required value was missing".
            raise InvalidValue(f"{where} ({op}) has no 'value'")
        if op == "add" and value is None:
            # RFC 7644 §3.5.2.1: "The operation MUST contain a "value" member whose content
            # specifies the value to be added"; null is no value (RFC 7643 §2.5: unassigned),
            # so there is nothing to add. Unassigning is "remove" (or "replace" with null).
            raise InvalidValue(
                f"{where} (add) has a null 'value': there is nothing to add; use 'remove' "
                "to unassign an attribute"
            )
        out.append((op, path, value))
    return out


# --- removes by "eq" value filters, in one pass ---------------------------------------------------
def _eq_literal(t: _Target) -> str | None:
    """The string of a ``attr[sub eq "text"]`` target (no sub-attribute after the filter),
    else None."""
    node = t.filter
    if (
        t.sub is None
        and isinstance(node, scim_filter.Compare)
        and node.op.lower() == "eq"
        and isinstance(node.value, str)
        and node.path.urn is None
        and node.path.sub is None
    ):
        return node.value
    return None


@dataclass(frozen=True, slots=True)
class _Step:
    """One operation that may join a run (see :func:`apply`): ``kind`` is "eq" (remove by
    ``attr[sub eq "text"]``), "add" or "drop" (remove listing values), on a multi-valued
    attribute named without a filter (but "eq") or a sub-attribute."""

    kind: str
    target: _Target
    value: Any  # the raw value (for one operation alone)
    values: list[Any]  # add / drop: the values, coerced as _add and _remove coerce them


def _step(op: str, t: _Target, value: Any) -> _Step | None:
    """``op`` on ``t`` as a step of a run, or None when it must be applied alone. Whatever
    would make it fail (a value that cannot be coerced, removing a required attribute) is
    raised now, at its own index."""
    if op == "remove" and _eq_literal(t) is not None:
        return _Step("eq", t, value, [])
    if t.filter is not None or t.sub is not None or t.defn is None or not t.defn.multi_valued:
        return None
    if op == "add" and value is not None:
        values = _as_list(_coerce(value, t.defn, element=False))
        # A value made primary changes the others' "primary" (_single_primary), which the
        # next add's duplicate test sees: such an add is applied alone.
        if any(isinstance(v, dict) and ci_get(v, "primary") is True for v in values):
            return None
        return _Step("add", t, value, values)
    if op == "remove" and value is not _MISSING and value is not None and not t.defn.required:
        return _Step("drop", t, value, _as_list(_coerce(value, t.defn, element=False)))
    return None


def _same_run(first: _Step, step: _Step) -> bool:
    """Whether ``step`` joins ``first``'s run: the same kind on the same attribute, and for
    "eq" the same sub-attribute spelled the same (one lookup per value serves every filter)."""
    if step.kind != first.kind or step.target.attr != first.target.attr:
        return False
    if first.kind != "eq":
        return True
    assert isinstance(first.target.filter, scim_filter.Compare)
    assert isinstance(step.target.filter, scim_filter.Compare)
    return step.target.filter.path.attr == first.target.filter.path.attr


def _apply_run(res: dict[str, Any], run: list[_Step], rtype: ResourceType) -> None:
    """The steps of a run, with the result of applying them one after the other."""
    first = run[0]
    if len(run) > 1:
        if first.kind == "eq":
            _remove_all(res, [step.target for step in run], rtype)
            return
        if first.kind == "add":
            _add_all(res, run, rtype)
            return
        container = _container(res, first.target.attr, rtype, create=False)
        key = ci_key(container, first.target.attr.attr) if container is not None else None
        if container is None or key is None:
            return  # removing what is not there changes nothing
        if isinstance(container[key], list):
            # Removing one list after the other removes what any of them designates.
            doomed = _Doomed([v for step in run for v in step.values], first.target)
            _store_list(container, key, [e for e in container[key] if not doomed.designates(e)])
            return
    for step in run:  # alone, or what the one pass does not cover: one at a time
        op = "add" if step.kind == "add" else "remove"
        _dispatch(res, op, step.target, step.value, rtype)


def _add_all(res: dict[str, Any], run: list[_Step], rtype: ResourceType) -> None:
    """Adds of values to one multi-valued attribute, as one add of all their values: each
    skips what is already there or was added before it, and "primary" ends on the last
    value that had it (as :func:`_single_primary` after each add leaves it)."""
    t = run[0].target
    container = _container(res, t.attr, rtype, create=True)
    assert container is not None
    key = _key(container, t)
    current = container.get(key, _MISSING)
    existing = current if isinstance(current, list) else []
    present = _Present(existing, t)
    added: list[Any] = []
    for step in run:
        for element in step.values:
            if element in present:
                continue
            present.append(element)
            added.append(element)
    container[key] = existing
    _single_primary(existing, added)


def _remove_all(res: dict[str, Any], targets: list[_Target], rtype: ResourceType) -> None:
    """Apply the removes of a run (see :func:`_same_run`) as one pass over the values: what
    they remove one after the other, since whether a value matches depends on it alone.
    A value can match ``sub eq "text"`` only if its ``sub`` folds to "text".lower() (caseExact
    or not), so each value is tested only against the filters with that folded literal, by
    the filter engine itself; a value whose ``sub`` is not a string is tested against all."""
    first = targets[0]
    if len(targets) == 1:
        _remove(res, first, _MISSING, rtype)
        return
    container = _container(res, first.attr, rtype, create=False)
    key = ci_key(container, first.attr.attr) if container is not None else None
    if container is None or key is None or not isinstance(container[key], list):
        return  # removing what is not there changes nothing
    assert isinstance(first.filter, scim_filter.Compare)
    name = first.filter.path.attr
    by_folded: dict[str, list[_Target]] = {}
    for t in targets:
        literal = _eq_literal(t)
        assert literal is not None
        by_folded.setdefault(literal.lower(), []).append(t)
    kept: list[Any] = []
    for element in container[key]:
        # As _matches sees it: an element of a multi-valued simple attribute is its "value".
        found = ci_get(element if isinstance(element, dict) else {"value": element}, name)
        candidates = by_folded.get(found.lower(), ()) if isinstance(found, str) else targets
        if not any(_matches(t, element) for t in candidates):
            kept.append(element)
    _store_list(container, key, kept)


def _tidy_extensions(res: dict[str, Any], rtype: ResourceType) -> None:
    """Keep "schemas" in step with the extension objects present (RFC 7643 §3).

    An extension attribute that was added brings its URN into "schemas"; an extension object
    left empty by removals is dropped together with its URN.
    """
    schemas_key = ci_key(res, "schemas")
    schemas = res.get(schemas_key) if schemas_key is not None else None
    if not isinstance(schemas, list):
        schemas = [rtype.schema.id]
    core = rtype.schema.id.lower()
    for key in list(res):
        if key[:4].lower() != "urn:" or key.lower() == core:
            continue
        obj = res[key]
        listed = [s for s in schemas if isinstance(s, str) and s.lower() == key.lower()]
        if obj is None or obj == {}:
            del res[key]
            schemas = [s for s in schemas if s not in listed]
        elif isinstance(obj, dict) and not listed:
            schemas = [*schemas, key]
    for ext, _required in rtype.extensions:
        if ci_key(res, ext.id) is None:
            schemas = [
                s for s in schemas if not (isinstance(s, str) and s.lower() == ext.id.lower())
            ]
    res[schemas_key or "schemas"] = schemas
