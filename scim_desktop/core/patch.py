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
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from scim_desktop.core import filter as scim_filter
from scim_desktop.core.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    PayloadTooLarge,
    ScimError,
)
from scim_desktop.core.paths import AttrPath, ci_get, ci_key, parse_attr_path
from scim_desktop.core.schemas import Attribute, ResourceType

_OPS = ("add", "remove", "replace")
_MISSING: Any = object()
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


# --- one operation -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Target:
    """Where an operation points: an attribute, maybe a value filter, maybe a sub-attribute."""

    attr: AttrPath  # urn + top-level attribute name, no sub
    filter: scim_filter.Filter | None
    sub: str | None
    defn: Attribute | None  # the top-level attribute's definition, when the schema has one
    sub_defn: Attribute | None

    @property
    def text(self) -> str:
        text = str(self.attr)
        if self.filter is not None:
            text += "[...]"
        return f"{text}.{self.sub}" if self.sub else text


def _target(
    attr: AttrPath, flt: scim_filter.Filter | None, sub: str | None, rtype: ResourceType
) -> _Target:
    top = AttrPath(attr.urn, attr.attr)
    defn = rtype.resolve(top)
    sub_defn = defn.sub(sub) if defn is not None and sub is not None else None
    return _Target(top, flt, sub, defn, sub_defn)


def _apply_one(
    res: dict[str, Any], op: str, path: str | None, value: Any, rtype: ResourceType
) -> None:
    if path is None:
        if op == "remove":
            # RFC 7644 §3.5.2.2: "If "path" is unspecified, the operation fails with HTTP
            # status code 400 and a "scimType" error code of "noTarget"."
            raise NoTarget("'remove' needs a 'path' naming what to remove")
        _apply_pathless(res, op, value, rtype)
        return
    schema = rtype.extension(path.strip())
    if schema is not None:
        # The path names a whole extension ("urn:...:enterprise:2.0:User").
        if op == "remove":
            ext_key = ci_key(res, schema.id)
            if ext_key is not None:
                del res[ext_key]
        else:
            _apply_pathless(res, op, {schema.id: value}, rtype)
        return
    _dispatch(res, op, _resolve(path, op, rtype), value, rtype)


def _resolve(path: str, op: str, rtype: ResourceType) -> _Target:
    """What ``path`` names for ``op``, with the checks every path gets (read-only and
    immutable targets, value filters only on multi-valued attributes, RFC 7644 §3.4.2.2)."""
    pp = scim_filter.parse_path(path)
    sub = pp.sub if pp.sub is not None else pp.attr.sub
    target = _target(pp.attr, pp.filter, sub, rtype)
    # RFC 7644 §3.5.2: "a client MUST NOT modify an attribute that has mutability "readOnly"".
    if (target.defn is not None and target.defn.mutability == "readOnly") or (
        target.sub_defn is not None and target.sub_defn.mutability == "readOnly"
    ):
        raise Mutability(f"Attribute {path!r} is read-only and cannot be modified")
    # RFC 7643 §2.2: an "immutable" value may be added but never changed afterwards, so a
    # path that addresses it inside existing elements (members[...].value) cannot replace it.
    if (
        op == "replace"
        and target.sub_defn is not None
        and target.sub_defn.mutability == "immutable"
    ):
        raise Mutability(f"Attribute {path!r} is immutable: remove and add the element instead")
    if target.filter is not None:
        if target.defn is not None and not target.defn.multi_valued:
            raise InvalidPath(f"{path!r}: a value filter applies only to multi-valued attributes")
        try:
            # What RFC 7644 §3.4.2.2 forbids whatever the data ("gt" on a boolean, ...); in a
            # PATCH path that is an invalid path (RFC 7644 §3.5.2, §3.12).
            scim_filter.check(scim_filter.ValuePath(target.attr, target.filter), rtype)
        except InvalidFilter as exc:
            raise InvalidPath(f"Invalid filter in path {path!r}: {exc.detail}") from exc
    return target


def _apply_pathless(res: dict[str, Any], op: str, value: Any, rtype: ResourceType) -> None:
    """RFC 7644 §3.5.2.1 / §3.5.2.3 without "path": the value is a set of attributes."""
    if not isinstance(value, dict):
        raise InvalidValue(f"'{op}' without 'path' needs an object of attributes as 'value'")
    for key, item in value.items():
        if not isinstance(key, str):
            raise InvalidPath(f"Invalid attribute name {key!r}")
        if key.lower() == "schemas":
            continue  # the server keeps "schemas" in step with the extensions present
        schema = rtype.schema_for(key) if key[:4].lower() == "urn:" else None
        if schema is not None:
            if not isinstance(item, dict) and item is not None:
                raise InvalidValue(f"The value of {key!r} must be an object of its attributes")
            # An extension (or core) URN key whose value is an object of its attributes
            # (RFC 7644 §3.5.2.1 figure: "urn:...:enterprise:2.0:User": {...}).
            if item is None:
                if op == "replace" and schema is not rtype.schema:
                    ext_key = ci_key(res, schema.id)
                    if ext_key is not None:
                        del res[ext_key]
                continue
            for sub_key, sub_item in item.items():
                if not isinstance(sub_key, str):
                    raise InvalidPath(f"Invalid attribute name {sub_key!r} in {key!r}")
                inner = parse_attr_path(sub_key)
                if inner.urn is not None:
                    raise InvalidPath(f"Invalid attribute name {sub_key!r} in {key!r}")
                _apply_value_key(
                    res, op, AttrPath(schema.id, inner.attr, inner.sub), sub_item, rtype
                )
            continue
        _apply_value_key(res, op, parse_attr_path(key), item, rtype)


def _apply_value_key(
    res: dict[str, Any], op: str, attr: AttrPath, item: Any, rtype: ResourceType
) -> None:
    target = _target(attr, None, attr.sub, rtype)
    # Read-only attributes inside a path-less value are ignored, not refused: Okta's group
    # rename sends {"id": "<group id>", "displayName": "..."} (OKTA.md); as in a PUT
    # (RFC 7644 §3.5.1: readOnly values "SHALL be ignored"), they are not applied.
    if target.defn is not None and target.defn.mutability == "readOnly":
        return
    if target.sub_defn is not None and target.sub_defn.mutability == "readOnly":
        return
    _dispatch(res, op, target, item, rtype)


def _dispatch(
    res: dict[str, Any], op: str, target: _Target, value: Any, rtype: ResourceType
) -> None:
    if op == "add":
        _add(res, target, value, rtype)
    elif op == "replace":
        _replace(res, target, value, rtype)
    else:
        _remove(res, target, value, rtype)


# --- add (RFC 7644 §3.5.2.1) ---------------------------------------------------------------
def _add(res: dict[str, Any], t: _Target, value: Any, rtype: ResourceType) -> None:
    if value is None:
        return  # nothing to add (RFC 7643 §2.5: null is the same as no value)
    if t.filter is not None:
        _set_in_matches(res, t, value, rtype, create=True)
        return
    container = _container(res, t.attr, rtype, create=True)
    assert container is not None
    key = _key(container, t)
    current = container.get(key, _MISSING)
    if t.sub is not None:
        _set_sub(container, key, current, t, value, merge=True)
        return
    if _is_multi(t, current, value):
        # "If the target location specifies a multi-valued attribute, a new value is added."
        existing = current if isinstance(current, list) else []
        values = _as_list(_coerce(value, t.defn, element=False))
        # A few values: a scan is cheaper than indexing every existing one.
        present: Any = _Present(existing, t) if len(values) > 4 else _Scan(existing, t)
        added: list[Any] = []
        for element in values:
            if element in present:
                continue  # "already contains the value specified, no changes SHOULD be made"
            present.append(element)
            added.append(element)
        container[key] = existing
        _single_primary(existing, added)
    elif _is_complex(t, current, value):
        # "If the target location specifies a complex attribute, a set of sub-attributes
        # SHALL be specified in the "value" parameter" -- merged into the existing value.
        _merge_complex(container, key, current, value, t)
    else:
        # "If the target location specifies a single-valued attribute, the existing value is
        # replaced." / "does not exist ... the attribute is added with the new value."
        container[key] = _coerce(value, t.defn)


# --- replace (RFC 7644 §3.5.2.3) -----------------------------------------------------------
def _replace(res: dict[str, Any], t: _Target, value: Any, rtype: ResourceType) -> None:
    if t.filter is not None:
        _set_in_matches(res, t, value, rtype, create=False)
        return
    if value is None and t.sub is None:
        # RFC 7643 §2.5: null means unassigned, so this is a removal.
        _remove(res, t, _MISSING, rtype)
        return
    container = _container(res, t.attr, rtype, create=True)
    assert container is not None
    key = _key(container, t)
    current = container.get(key, _MISSING)
    if t.sub is not None:
        _set_sub(container, key, current, t, value, merge=False)
        return
    if _is_multi(t, current, value):
        # The whole multi-valued attribute is replaced; "members": [] empties the group.
        elements = _as_list(_coerce(value, t.defn, element=False))
        container[key] = elements
        _single_primary(elements, elements)
    elif _is_complex(t, current, value):
        # "If the target location specifies a complex attribute, a set of sub-attributes SHALL
        # be specified in the "value" parameter, which replaces any existing values or adds
        # where an attribute did not previously exist. Sub-attributes that are not specified
        # in the "value" parameter are left unchanged."
        _merge_complex(container, key, current, value, t)
    else:
        # "If the target location path specifies an attribute that does not exist, the
        # service provider SHALL treat the operation as an "add"."
        container[key] = _coerce(value, t.defn)


# --- remove (RFC 7644 §3.5.2.2) ------------------------------------------------------------
def _remove(res: dict[str, Any], t: _Target, value: Any, rtype: ResourceType) -> None:
    if t.filter is None and t.sub is None and t.defn is not None and t.defn.required:
        # RFC 7644 §3.5.2.2: "If an attribute is removed or becomes unassigned and is defined
        # as a required attribute or a read-only attribute, the server SHALL return ... a
        # "scimType" error code of "mutability"."
        raise Mutability(f"Attribute {t.text!r} is required and cannot be removed")
    container = _container(res, t.attr, rtype, create=False)
    if container is None:
        return  # removing what is not there changes nothing
    key = ci_key(container, t.attr.attr)
    if key is None:
        return
    current = container[key]
    if t.filter is not None:
        if not isinstance(current, list):
            return
        kept: list[Any] = []
        for element in current:
            if not _matches(t, element):
                kept.append(element)
            elif t.sub is not None:
                # "emails[type eq "work"].value": remove that sub-attribute of the matches.
                if isinstance(element, dict) and (sub_key := ci_key(element, t.sub)) is not None:
                    del element[sub_key]
                if element != {}:
                    kept.append(element)
            # else: the matching value itself is removed -- and only it (OKTA.md: a
            # members[value eq "id"] remove must never wipe the other members).
        _store_list(container, key, kept)
        return
    if t.sub is not None:
        if isinstance(current, dict):
            sub_key = ci_key(current, t.sub)
            if sub_key is not None:
                del current[sub_key]
            if not current:
                del container[key]  # a complex attribute with no sub-attributes is unassigned
        elif isinstance(current, list):
            kept = []
            for element in current:
                if isinstance(element, dict):
                    sub_key = ci_key(element, t.sub)
                    if sub_key is not None:
                        del element[sub_key]
                    if not element:
                        continue
                kept.append(element)
            _store_list(container, key, kept)
        return
    if value is not _MISSING and value is not None and isinstance(current, list):
        # Azure: {"op": "Remove", "path": "members", "value": [{"value": "<id>"}]} removes
        # just the listed values, not the whole attribute.
        doomed = _Doomed(_as_list(_coerce(value, t.defn, element=False)), t)
        kept = [e for e in current if not doomed.designates(e)]
        _store_list(container, key, kept)
        return
    del container[key]


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


# --- value filters on multi-valued attributes (RFC 7644 §3.5.2, valuePath) ----------------------
def _matches(t: _Target, element: Any) -> bool:
    """Whether ``element`` of the multi-valued attribute satisfies the target's value filter.

    The filter's paths are sub-attributes of the element ("value", "type"), RFC 7644 §3.4.2.2.
    """
    assert t.filter is not None
    if not isinstance(element, dict):
        # A multi-valued simple attribute: its elements are filtered as "value".
        element = {"value": element}
    return scim_filter.evaluate_element(t.filter, element, t.defn)


def _set_in_matches(
    res: dict[str, Any], t: _Target, value: Any, rtype: ResourceType, *, create: bool
) -> None:
    """add / replace at ``attr[filter]`` or ``attr[filter].sub``."""
    container = _container(res, t.attr, rtype, create=create)
    key = _key(container, t) if container is not None else t.attr.attr
    current = container.get(key) if container is not None else None
    elements = current if isinstance(current, list) else []
    matches = [e for e in elements if _matches(t, e)]
    if not matches:
        if not create:
            # RFC 7644 §3.5.2.3: "If the target location is a multi-valued attribute for
            # which a value selection filter ("valuePath") has been supplied and no record
            # match was made, the service provider SHALL indicate failure by returning HTTP
            # status code 400 and a "scimType" error code of "noTarget"."
            raise NoTarget(f"No value of {t.attr.attr!r} matches the filter in the path")
        # add: Azure sends emails[type eq "work"].value for a user without a work email; the
        # element the filter describes is created (only for filters made of "eq" tests).
        seed = _element_from_filter(t.filter)
        if seed is None:
            raise NoTarget(
                f"No value of {t.attr.attr!r} matches the filter in the path, and the filter "
                "does not describe a value to create"
            )
        assert container is not None
        new = _coerce(seed, t.defn, element=True)
        elements.append(new)
        container[key] = elements
        matches = [new]
    assert container is not None
    if value is None:
        # replace with null (RFC 7643 §2.5: unassigned) removes the matching values, or
        # their sub-attribute.
        kept: list[Any] = []
        for element in elements:
            if any(element is m for m in matches):
                if t.sub is None:
                    continue
                if isinstance(element, dict) and (sub_key := ci_key(element, t.sub)) is not None:
                    del element[sub_key]
                if element == {}:
                    continue
            kept.append(element)
        _store_list(container, key, kept)
        return
    touched: list[Any] = []
    for element in matches:
        index = _index_of(elements, element)
        if t.sub is not None:
            if not isinstance(element, dict):
                raise InvalidPath(f"Values of {t.attr.attr!r} have no sub-attributes")
            element[ci_key(element, t.sub) or _sub_name(t)] = _coerce(value, t.sub_defn)
            touched.append(element)
        elif create:
            if not isinstance(value, dict):
                raise InvalidValue(f"The value added at a {t.attr.attr!r} filter must be an object")
            if isinstance(element, dict):
                _merge_into(element, value, t.defn)
            touched.append(element)
        else:
            # RFC 7644 §3.5.2.3 (addresses[type eq "work"] example): the matching values are
            # replaced by the given value.
            if not isinstance(value, dict):
                raise InvalidValue(f"The value replacing {t.attr.attr!r} values must be an object")
            replacement = _coerce(value, t.defn, element=True)
            elements[index] = replacement
            touched.append(replacement)
    container[key] = elements
    _single_primary(elements, touched)


def _element_from_filter(node: scim_filter.Filter) -> dict[str, Any] | None:
    """The sub-attributes an ``a eq x [and b eq y]`` filter pins down, or None."""
    if isinstance(node, scim_filter.And):
        left = _element_from_filter(node.left)
        right = _element_from_filter(node.right)
        if left is None or right is None:
            return None
        return {**left, **right}
    if isinstance(node, scim_filter.Compare) and node.op.lower() == "eq":
        path = node.path
        if path.urn is None and path.sub is None:
            return {path.attr: node.value}
    return None


# --- helpers -----------------------------------------------------------------------------------
def _container(
    res: dict[str, Any], attr: AttrPath, rtype: ResourceType, *, create: bool
) -> dict[str, Any] | None:
    """The dict that holds ``attr``: the resource, or its extension object for a URN path."""
    schema = rtype.schema_for(attr.urn)
    if attr.urn is None or schema is rtype.schema:
        return res
    urn = schema.id if schema is not None else attr.urn
    key = ci_key(res, urn)
    if key is not None and isinstance(res[key], dict):
        return res[key]
    if not create:
        return None
    # Extension attributes live in an object keyed by the extension URN (RFC 7643 §3.3);
    # _tidy_extensions adds the URN to "schemas".
    obj: dict[str, Any] = {}
    res[key or urn] = obj
    return obj


def _key(container: dict[str, Any], t: _Target) -> str:
    """The key to write: the existing one whatever its case, else the schema's spelling."""
    existing = ci_key(container, t.attr.attr)
    if existing is not None:
        return existing
    return t.defn.name if t.defn is not None else t.attr.attr


def _sub_name(t: _Target) -> str:
    assert t.sub is not None
    return t.sub_defn.name if t.sub_defn is not None else t.sub


def _is_multi(t: _Target, current: Any, value: Any) -> bool:
    if t.defn is not None:
        return t.defn.multi_valued
    return isinstance(current, list) or isinstance(value, list)


def _is_complex(t: _Target, current: Any, value: Any) -> bool:
    if t.defn is not None:
        return t.defn.type == "complex" and isinstance(value, dict)
    return isinstance(value, dict) and isinstance(current, dict)


def _set_sub(
    container: dict[str, Any], key: str, current: Any, t: _Target, value: Any, *, merge: bool
) -> None:
    """add / replace at ``attr.sub`` (no filter)."""
    sub_value = _coerce(value, t.sub_defn)
    if isinstance(current, list):
        # A sub-attribute of every value of a multi-valued attribute.
        if not current:
            if value is not None:
                current.append({_sub_name(t): sub_value})
            return
        for element in current:
            if not isinstance(element, dict):
                raise InvalidPath(f"Values of {t.attr.attr!r} have no sub-attributes")
            _put_sub(element, t, sub_value, value is None)
        return
    if current is _MISSING or current is None:
        if value is None:
            return
        if t.defn is not None and t.defn.multi_valued:
            container[key] = [{_sub_name(t): sub_value}]
        else:
            container[key] = {_sub_name(t): sub_value}
        return
    if not isinstance(current, dict):
        raise InvalidPath(f"Attribute {t.attr.attr!r} has no sub-attributes")
    if merge and isinstance(sub_value, dict):
        existing_key = ci_key(current, t.sub or "")
        if existing_key is not None and isinstance(current[existing_key], dict):
            current[existing_key].update(sub_value)
            return
    _put_sub(current, t, sub_value, value is None)
    if not current:
        del container[key]


def _put_sub(element: dict[str, Any], t: _Target, sub_value: Any, unassign: bool) -> None:
    assert t.sub is not None
    existing = ci_key(element, t.sub)
    if unassign:
        if existing is not None:
            del element[existing]
        return
    element[existing or _sub_name(t)] = sub_value


def _merge_complex(
    container: dict[str, Any], key: str, current: Any, value: dict[str, Any], t: _Target
) -> None:
    target = current if isinstance(current, dict) else {}
    _merge_into(target, value, t.defn)
    if target:
        container[key] = target
    elif key in container:
        del container[key]


def _merge_into(target: dict[str, Any], value: dict[str, Any], defn: Attribute | None) -> None:
    """Merge sub-attributes case-insensitively; a null sub-attribute is removed."""
    for name, item in value.items():
        existing = ci_key(target, name)
        sub_defn = defn.sub(name) if defn is not None else None
        if item is None:
            if existing is not None:
                del target[existing]
            continue
        write = existing or (sub_defn.name if sub_defn is not None else name)
        target[write] = _coerce(item, sub_defn)


def _coerce(value: Any, defn: Attribute | None, *, element: bool = True) -> Any:
    """A fresh copy of ``value``, with booleans given as strings turned into booleans.

    ``element`` False means ``value`` is the whole multi-valued attribute (normally a list).
    Azure sends ``"value": "False"`` for boolean attributes; other type errors are left for
    the caller's schema validation.
    """
    if defn is None:
        return copy.deepcopy(value)
    if defn.multi_valued and not element:
        if isinstance(value, list):
            return [_coerce(v, defn) for v in value]
        return _coerce(value, defn)
    if (
        defn.type == "boolean"
        and isinstance(value, str)
        and value.strip().lower()
        in (
            "true",
            "false",
        )
    ):
        return value.strip().lower() == "true"
    if defn.type == "complex" and isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            sub_defn = defn.sub(name)
            out[sub_defn.name if sub_defn is not None else name] = _coerce(item, sub_defn)
        return out
    return copy.deepcopy(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _contains(existing: list[Any], element: Any, t: _Target) -> bool:
    """Whether adding ``element`` would duplicate a value already present."""
    if _is_members(t):
        return any(_same_value(e, element, t) for e in existing)
    return any(e == element for e in existing)


def _is_members(t: _Target) -> bool:
    return t.defn is not None and t.defn.name == "members"


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a JSON value, equal to another's exactly when the values are
    equal (dicts as sets of pairs, lists as tuples; 1 == 1.0 == True as in Python): values
    compared with == can be looked up in a set instead of scanned. Raises TypeError for what
    is not JSON and RecursionError for the deepest nestings (callers then scan)."""
    if isinstance(value, dict):
        return frozenset((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    hash(value)
    return value


class _Present:
    """The values of a multi-valued attribute, for ``in`` as :func:`_contains` decides it
    (members by their ``value``, other values by equality), each lookup one set lookup:
    adding n values to m by scanning cost n x m comparisons (a 1 MB add of 6,000 members to
    a 1,000-member group held the event loop 1.2 s)."""

    def __init__(self, existing: list[Any], t: _Target) -> None:
        self.existing = existing
        self.t = t
        self.members = _is_members(t)
        self.values: set[Any] = set()  # the frozen "value" of each dict element
        self.equal: set[Any] = set()  # each element, frozen
        self.exact = True  # False once an element could not be frozen: scan instead
        for element in existing:
            self._index(element)

    def _index(self, element: Any) -> None:
        if not self.exact:
            return
        try:
            self.equal.add(_frozen(element))
            if isinstance(element, dict):
                value = ci_get(element, "value", _MISSING)
                if value is not _MISSING:
                    self.values.add(_frozen(value))
        except (TypeError, RecursionError):
            self.exact = False

    def __contains__(self, element: Any) -> bool:
        if self.exact:
            try:
                if self.members and isinstance(element, dict):
                    value = ci_get(element, "value", _MISSING)
                    if value is not _MISSING:  # _same_value: equal "value"s
                        return _frozen(value) in self.values
                return _frozen(element) in self.equal
            except (TypeError, RecursionError):
                pass
        return _contains(self.existing, element, self.t)

    def append(self, element: Any) -> None:
        self.existing.append(element)
        self._index(element)


class _Scan:
    """:class:`_Present`'s interface over a plain scan (for a few values)."""

    def __init__(self, existing: list[Any], t: _Target) -> None:
        self.existing = existing
        self.t = t

    def __contains__(self, element: Any) -> bool:
        return _contains(self.existing, element, self.t)

    def append(self, element: Any) -> None:
        self.existing.append(element)


class _Doomed:
    """The values a remove's value list designates (:func:`_same_value`), each existing value
    looked up in a set rather than compared with every listed one (20,000 listed against a
    1,000-member group took 7.5 s)."""

    def __init__(self, given: list[Any], t: _Target) -> None:
        self.given = given
        self.t = t
        self.values: set[Any] = set()  # listed dicts with a "value": they designate by it
        self.equal: set[Any] = set()  # the other listed values: they designate by equality
        self.exact = True
        try:
            for item in given:
                value = ci_get(item, "value", _MISSING)
                if isinstance(item, dict) and value is not _MISSING:
                    self.values.add(_frozen(value))
                else:
                    self.equal.add(_frozen(item))
        except (TypeError, RecursionError):
            self.exact = False

    def designates(self, existing: Any) -> bool:
        if self.exact:
            try:
                if isinstance(existing, dict) and self.values:
                    value = ci_get(existing, "value", _MISSING)
                    if value is not _MISSING and _frozen(value) in self.values:
                        return True
                return bool(self.equal) and _frozen(existing) in self.equal
            except (TypeError, RecursionError):
                pass
        return any(_same_value(existing, d, self.t) for d in self.given)


def _same_value(existing: Any, given: Any, t: _Target) -> bool:
    """Whether ``given`` (from a value list) designates ``existing``: equal ``value``s for
    complex values that have one (members are identified by ``value``), else equality."""
    if isinstance(existing, dict) and isinstance(given, dict):
        given_value = ci_get(given, "value", _MISSING)
        if given_value is not _MISSING:
            return ci_get(existing, "value", _MISSING) == given_value
    return existing == given


def _single_primary(elements: list[Any], touched: list[Any]) -> None:
    """RFC 7643 §2.4: "primary" true appears at most once. When a PATCH sets it on a value,
    the others lose it (RFC 7644 §3.5.2: the server SHALL set "primary" to false for any
    other values in the array)."""
    chosen = [e for e in touched if isinstance(e, dict) and ci_get(e, "primary") is True]
    if not chosen:
        return
    keep = chosen[-1]
    for element in elements:
        if element is keep or not isinstance(element, dict):
            continue
        key = ci_key(element, "primary")
        if key is not None and element[key] is True:
            element[key] = False


def _index_of(elements: list[Any], element: Any) -> int:
    for index, candidate in enumerate(elements):
        if candidate is element:
            return index
    raise ValueError("element not in list")  # pragma: no cover - callers pass members


def _store_list(container: dict[str, Any], key: str, elements: list[Any]) -> None:
    # RFC 7644 §3.5.2.2: with no values left, the attribute "SHALL be considered unassigned".
    if elements:
        container[key] = elements
    else:
        del container[key]


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
