"""One PATCH operation at a time (RFC 7644 §3.5.2): resolving its path to a target, then add,
replace and remove, value filters on multi-valued attributes, and the helpers they share.

:mod:`scim_desktop.core.patch` is the entry point (:func:`~scim_desktop.core.patch.apply`):
it checks the request, applies runs of like operations in one pass and hands every other
operation here. Nothing here changes its inputs beyond the copy ``apply`` works on.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from scim_desktop.core import filter as scim_filter
from scim_desktop.core.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidValue,
    Mutability,
    NoTarget,
)
from scim_desktop.core.paths import AttrPath, ci_get, ci_key, parse_attr_path
from scim_desktop.core.schemas import Attribute, ResourceType

_MISSING: Any = object()


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
