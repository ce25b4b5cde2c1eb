"""The entitlement catalog: the app's own resource types for Okta Identity Governance.

Okta's guide "Build a SCIM 2.0 server with entitlements" (shared/OKTA.md, "Entitlements,
roles and custom attributes"): the app declares resource types in ``/ResourceTypes`` (Roles,
Licenses, Profiles, ...) with Okta's URNs, serves their values at each type's endpoint, may
define schema extensions in ``/Schemas`` (for values, and for users: custom attributes), and
accepts grants as the user's ``roles`` and ``entitlements`` (RFC 7643 §4.1.2).

This module is pure: it parses and checks the catalog file format (the contract of
``--catalog FILE`` and of the data file's ``_catalog`` table), and answers the lookups the
service needs (which values exist, the User resource type with the catalog's extensions,
each type as a SCIM ResourceType). A bad catalog is one :class:`CatalogError` whose text
names the place, e.g. ``resourceTypes[1].endpoint: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from scim_desktop.core import filter as scim_filter
from scim_desktop.core.errors import InvalidValue, ScimError
from scim_desktop.core.listing import ListQuery, Steps, list_response, paginate_steps
from scim_desktop.core.projection import project
from scim_desktop.core.schemas import (
    _COMMON,
    ENTERPRISE_USER,
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    RESOURCE_TYPE_SCHEMA,
    USER_SCHEMA,
    USER_TYPE,
    Attribute,
    ResourceType,
    Schema,
)
from scim_desktop.core.validation import _check_object

#: Okta's core schema of role types (OKTA.md: Okta knows it; it is not read from /Schemas).
ROLE_URN = "urn:okta:scim:schemas:core:1.0:Role"
#: Okta's core schema of every other entitlement type (Licenses, Profiles, ...).
ENTITLEMENT_URN = "urn:okta:scim:schemas:core:1.0:Entitlement"
TYPE_URNS = (ROLE_URN, ENTITLEMENT_URN)

#: Paths a catalog endpoint may not take: the server's own endpoints (RFC 7644 §3.2, §4).
RESERVED_ENDPOINTS = frozenset(
    e.lower()
    for e in (
        "/Users",
        "/Groups",
        "/Schemas",
        "/ResourceTypes",
        "/ServiceProviderConfig",
        "/ServiceProviderConfigs",
        "/Me",
        "/Bulk",
        "/.search",
    )
)
#: One path segment after the base URL: a letter, then letters, digits, ``-``, ``_``, ``.``.
_ENDPOINT_RE = re.compile(r"/[A-Za-z][A-Za-z0-9._-]{0,63}")
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_$-]{0,127}")
_ATTR_TYPES = ("string", "boolean", "decimal", "integer", "dateTime", "reference", "binary")
_MUTABILITY = ("readOnly", "readWrite", "immutable", "writeOnly")
_RETURNED = ("always", "never", "default", "request")
_UNIQUENESS = ("none", "server", "global")
#: Schema URNs the server defines itself; a catalog may not redefine them.
_BUILT_IN = frozenset(u.lower() for u in (USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA))
#: Most values a catalog may hold in all (a demo's catalog has tens; the benchmark 10,000).
MAX_VALUES = 100_000


class CatalogError(ValueError):
    """A catalog that cannot be used; ``str()`` is one line naming the place."""


def _fail(where: str, message: str) -> CatalogError:
    return CatalogError(f"{where}: {message}" if where else message)


# --- the value types of the served resources --------------------------------------------------
def _s(name: str, description: str, **kw: Any) -> Attribute:
    return Attribute(name, "string", description=description, **kw)


#: The attributes of every value (Okta's guide: id, displayName, optional description, type).
VALUE_ATTRIBUTES: tuple[Attribute, ...] = (
    _s("displayName", "The value's name as the Governance tab shows it.", required=True),
    _s("description", "What the value grants."),
    _s("type", "The kind of value (e.g. the resource type's name)."),
)


def okta_core_schema(urn: str) -> Schema:
    """Okta's Role or Entitlement core schema, as /Schemas describes it."""
    name = "Role" if urn == ROLE_URN else "Entitlement"
    return Schema(urn, name, f"Okta's {name.lower()} values", VALUE_ATTRIBUTES)


@dataclass(frozen=True)
class EntitlementType:
    """One catalog resource type and its values (read-only over SCIM)."""

    id: str
    name: str
    endpoint: str
    description: str
    schema: str
    schema_extensions: tuple[dict[str, Any], ...]
    resources: tuple[dict[str, Any], ...]
    #: The values as records (``_seq`` = position, for stable paging), by id.
    _records: tuple[dict[str, Any], ...] = field(init=False, repr=False, compare=False)
    _by_id: dict[str, dict[str, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # ``meta.resourceType`` too, so a filter on it matches what is served.
        meta = {"resourceType": self.id}
        records = tuple({**v, "meta": meta, "_seq": i + 1} for i, v in enumerate(self.resources))
        object.__setattr__(self, "_records", records)
        object.__setattr__(self, "_by_id", {r["id"]: r for r in records})

    @property
    def is_role(self) -> bool:
        return self.schema == ROLE_URN

    def records(self) -> tuple[dict[str, Any], ...]:
        """The values in catalog order, each with ``_seq`` (never change them)."""
        return self._records

    def record(self, value_id: str) -> dict[str, Any] | None:
        return self._by_id.get(value_id)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema,
        }
        if self.schema_extensions:
            out["schemaExtensions"] = [dict(e) for e in self.schema_extensions]
        out["resources"] = [dict(v) for v in self.resources]
        return out

    def to_scim(self, base_url: str = "") -> dict[str, Any]:
        """This type as a ResourceType resource (RFC 7643 §6)."""
        return {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema,
            "schemaExtensions": [
                {"schema": e["schema"], "required": bool(e.get("required", False))}
                for e in self.schema_extensions
            ],
            "meta": {
                "resourceType": "ResourceType",
                "location": f"{base_url}/ResourceTypes/{self.id}",
            },
        }

    def render(self, record: Mapping[str, Any], base_url: str) -> dict[str, Any]:
        """A value as clients see it: ``schemas`` (the type's URN and the extensions it
        carries), its attributes, and ``meta``."""
        schemas = [self.schema]
        for ext in self.schema_extensions:
            if ext["schema"] in record:
                schemas.append(ext["schema"])
        out: dict[str, Any] = {"schemas": schemas}
        out.update(
            (k, v) for k, v in record.items() if k[:1] != "_" and k != "schemas" and k != "meta"
        )
        out["meta"] = {
            "resourceType": self.id,
            "location": f"{base_url}{self.endpoint}/{record['id']}",
        }
        return out


@dataclass(frozen=True)
class Catalog:
    """The whole catalog: the file format's three lists, parsed and checked."""

    resource_types: tuple[EntitlementType, ...]
    user_schema_extensions: tuple[dict[str, Any], ...] = ()
    schemas: tuple[dict[str, Any], ...] = ()
    #: Lookups built once (see __post_init__).
    _roles: frozenset[str] = field(init=False, repr=False, compare=False)
    _entitlements: dict[str, tuple[EntitlementType, ...]] = field(
        init=False, repr=False, compare=False
    )
    _by_endpoint: dict[str, EntitlementType] = field(init=False, repr=False, compare=False)
    _schema_objects: dict[str, Schema] = field(init=False, repr=False, compare=False)
    _user_type: ResourceType = field(init=False, repr=False, compare=False)
    _scim_types: dict[str, ResourceType] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        roles: set[str] = set()
        entitlements: dict[str, list[EntitlementType]] = {}
        for rt in self.resource_types:
            for value in rt.resources:
                if rt.is_role:
                    roles.add(value["id"])
                else:
                    entitlements.setdefault(value["id"], []).append(rt)
        object.__setattr__(self, "_roles", frozenset(roles))
        object.__setattr__(self, "_entitlements", {k: tuple(v) for k, v in entitlements.items()})
        object.__setattr__(
            self, "_by_endpoint", {rt.endpoint.lower(): rt for rt in self.resource_types}
        )
        objects = {s["id"]: _schema_object(s, "") for s in self.schemas}
        object.__setattr__(self, "_schema_objects", objects)
        extensions = [(ENTERPRISE_USER, False)] + [
            (objects[e["schema"]], bool(e.get("required", False)))
            for e in self.user_schema_extensions
        ]
        scim_types = {
            rt.id: ResourceType(
                rt.id,
                rt.name,
                rt.endpoint,
                rt.description,
                Schema(rt.schema, rt.name, rt.description, _COMMON + VALUE_ATTRIBUTES),
                tuple((objects[e["schema"]], bool(e["required"])) for e in rt.schema_extensions),
            )
            for rt in self.resource_types
        }
        object.__setattr__(self, "_scim_types", scim_types)
        object.__setattr__(
            self,
            "_user_type",
            ResourceType(
                USER_TYPE.id,
                USER_TYPE.name,
                USER_TYPE.endpoint,
                USER_TYPE.description,
                USER_TYPE.schema,
                tuple(extensions),
            ),
        )

    # --- lookups ---------------------------------------------------------------------------
    def type_for_endpoint(self, endpoint: str) -> EntitlementType | None:
        """The type served at ``endpoint`` ("/Roles", ignoring case), or None."""
        return self._by_endpoint.get(endpoint.lower())

    def type_by_id(self, type_id: str) -> EntitlementType | None:
        lowered = type_id.lower()
        return next((t for t in self.resource_types if t.id.lower() == lowered), None)

    def endpoints(self) -> dict[str, str]:
        """endpoint -> type name, what ``OktaClassifier.set_catalog`` takes."""
        return {rt.endpoint: rt.name for rt in self.resource_types}

    def values_by_id(self) -> dict[str, list[tuple[EntitlementType, dict[str, Any]]]]:
        """value id -> every (type, value) with that id (ids are unique within a type)."""
        out: dict[str, list[tuple[EntitlementType, dict[str, Any]]]] = {}
        for rt in self.resource_types:
            for value in rt.resources:
                out.setdefault(value["id"], []).append((rt, value))
        return out

    def is_role(self, value: str) -> bool:
        return value in self._roles

    def is_entitlement(self, value: str, kind: str | None = None) -> bool:
        """Whether an entitlement type holds ``value`` (of type ``kind`` when given: a type's
        id or name, ignoring case)."""
        types = self._entitlements.get(value)
        if types is None:
            return False
        if kind is None:
            return True
        lowered = kind.lower()
        return any(t.id.lower() == lowered or t.name.lower() == lowered for t in types)

    @property
    def user_type(self) -> ResourceType:
        """The User resource type with the enterprise extension and the catalog's user
        schema extensions (validated like core attributes, RFC 7643 §3.3)."""
        return self._user_type

    def scim_type(self, type_id: str) -> ResourceType:
        """A catalog type as a core ResourceType (filters, sorting, projections)."""
        return self._scim_types[type_id]

    def schema_objects(self) -> dict[str, Schema]:
        """The catalog's schemas by URN, as core Schema objects (for /Schemas)."""
        return self._schema_objects

    def discovery_schemas(self) -> list[Schema]:
        """What /Schemas adds: Okta's Role / Entitlement schemas the catalog uses (Okta knows
        them, other clients may look them up) and the catalog's own schemas."""
        used = {rt.schema for rt in self.resource_types}
        out = [okta_core_schema(urn) for urn in TYPE_URNS if urn in used]
        return out + list(self._schema_objects.values())

    def value_count(self) -> int:
        return sum(len(rt.resources) for rt in self.resource_types)

    # --- grants ----------------------------------------------------------------------------
    def check_grants(
        self, attributes: Mapping[str, Any], previous: Mapping[str, Any] | None
    ) -> None:
        """400 invalidValue naming the first role or entitlement of ``attributes`` that the
        catalog does not hold. Values the user already held (``previous``) are not checked
        again: a catalog edit that removed a value must not make every later PUT of that user
        fail; the grant stays stored until a client or the window revokes it."""
        roles = attributes.get("roles")
        if roles:
            held = _held(previous, "roles")
            for i, item in enumerate(roles):
                value = item.get("value") if isinstance(item, dict) else None
                if value is None or (value, None) in held or value in self._roles:
                    continue
                raise InvalidValue(
                    f"roles[{i}].value {value!r} is not a role in the catalog (GET the "
                    "role endpoints for the values this app offers)"
                )
        entitlements = attributes.get("entitlements")
        if entitlements:
            held = _held(previous, "entitlements")
            for i, item in enumerate(entitlements):
                if not isinstance(item, dict):
                    continue
                value = item.get("value")
                kind = item.get("type")
                if value is None or (value, kind) in held:
                    continue
                if self.is_entitlement(value, kind if isinstance(kind, str) else None):
                    continue
                of_type = f" of type {kind!r}" if isinstance(kind, str) else ""
                raise InvalidValue(
                    f"entitlements[{i}].value {value!r}{of_type} is not an entitlement in "
                    "the catalog (GET the entitlement endpoints for the values this app offers)"
                )

    def unknown_grants(self, record: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(attribute, value) of a user's grants the catalog does not hold (kept after a
        catalog change removed them; the window flags them)."""
        out: list[tuple[str, str]] = []
        for item in record.get("roles") or ():
            value = item.get("value") if isinstance(item, dict) else None
            if isinstance(value, str) and value not in self._roles:
                out.append(("roles", value))
        for item in record.get("entitlements") or ():
            value = item.get("value") if isinstance(item, dict) else None
            if isinstance(value, str) and value not in self._entitlements:
                out.append(("entitlements", value))
        return out

    # --- the file format -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The catalog in the file format (what ``parse_catalog`` reads back)."""
        return {
            "resourceTypes": [rt.to_json() for rt in self.resource_types],
            "userSchemaExtensions": [dict(e) for e in self.user_schema_extensions],
            "schemas": [dict(s) for s in self.schemas],
        }


#: Values filtered between two points where a sliced listing may pause (see
#: ``ScimService.list_steps``: about a millisecond).
SCAN_CHUNK = 2048


def list_values_steps(
    catalog: Catalog, rt: EntitlementType, query: ListQuery, base_url: str
) -> Steps[dict[str, Any]]:
    """``GET {endpoint}``: the ListResponse of a type's values (filter, sort, index or cursor
    paging, attributes; RFC 7644 §3.4.2), in steps like ``ScimService.list_steps``: it yields
    where a caller sharing a loop may pause. Catalog order (``_seq``) is the stable order."""
    scim_rt = catalog.scim_type(rt.id)
    records: list[dict[str, Any]] | tuple[dict[str, Any], ...] = rt.records()
    if query.filter is not None:
        match = scim_filter.compile_filter(query.filter, scim_rt)
        chunk = max(1, SCAN_CHUNK // scim_filter.filter_size(query.filter))
        found: list[dict[str, Any]] = []
        for start in range(0, len(records), chunk):
            found.extend(r for r in records[start : start + chunk] if match(r))
            yield
        records = found
    page = yield from paginate_steps(records, query, scim_rt, presorted=query.sort_by is None)
    resources = [rt.render(r, base_url) for r in page.records]
    if not query.projection.is_identity:
        resources = [project(r, query.projection, scim_rt) for r in resources]
    return list_response(
        page.total,
        resources,
        page.start_index,
        next_cursor=page.next_cursor,
        previous_cursor=page.previous_cursor,
    )


def _held(previous: Mapping[str, Any] | None, attr: str) -> set[tuple[Any, Any]]:
    """(value, type) and (value, None) of what a user held before this write."""
    out: set[tuple[Any, Any]] = set()
    for item in (previous or {}).get(attr) or ():
        if isinstance(item, dict) and "value" in item:
            out.add((item["value"], None))
            out.add((item["value"], item.get("type")))
    return out


# --- parsing -----------------------------------------------------------------------------------
def _text(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        what = "is missing" if value is None else f"must be a non-empty string, got {value!r}"
        raise _fail(f"{where}.{key}", what)
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"must be a JSON object, got {type(value).__name__}")
    return value


def _list(obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise _fail(f"{where}{key}", f"must be a JSON array, got {type(value).__name__}")
    return value


def _flag(obj: Mapping[str, Any], key: str, where: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise _fail(f"{where}.{key}", f"must be true or false, got {value!r}")
    return value


def _choice(obj: Mapping[str, Any], key: str, where: str, allowed: tuple[str, ...]) -> str:
    value = obj.get(key, allowed[0] if key == "type" else None)
    if value is None:
        return {"mutability": "readWrite", "returned": "default", "uniqueness": "none"}[key]
    if value not in allowed:
        raise _fail(f"{where}.{key}", f"must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _attribute(raw: Any, where: str, *, sub: bool = False) -> Attribute:
    """An attribute definition of RFC 7643 §7."""
    obj = _object(raw, where)
    name = _text(obj, "name", where)
    if not _NAME_RE.fullmatch(name):
        raise _fail(f"{where}.name", f"{name!r} is not an attribute name (RFC 7643 §2.1)")
    types = _ATTR_TYPES if sub else (*_ATTR_TYPES, "complex")
    kind = _choice(obj, "type", where, types)
    subs: tuple[Attribute, ...] = ()
    if kind == "complex":
        raw_subs = _list(obj, "subAttributes", f"{where}.")
        if not raw_subs:
            raise _fail(f"{where}.subAttributes", "a complex attribute needs sub-attributes")
        subs = tuple(
            _attribute(s, f"{where}.subAttributes[{i}]", sub=True) for i, s in enumerate(raw_subs)
        )
    canonical = _list(obj, "canonicalValues", f"{where}.")
    refs = _list(obj, "referenceTypes", f"{where}.")
    for key, values in (("canonicalValues", canonical), ("referenceTypes", refs)):
        if not all(isinstance(v, str) for v in values):
            raise _fail(f"{where}.{key}", "must be an array of strings")
    description = obj.get("description", "")
    if not isinstance(description, str):
        raise _fail(f"{where}.description", "must be a string")
    return Attribute(
        name,
        kind,
        multi_valued=_flag(obj, "multiValued", where),
        required=_flag(obj, "required", where),
        case_exact=_flag(obj, "caseExact", where),
        mutability=_choice(obj, "mutability", where, _MUTABILITY),
        returned=_choice(obj, "returned", where, _RETURNED),
        uniqueness=_choice(obj, "uniqueness", where, _UNIQUENESS),
        description=description,
        sub_attributes=subs,
        canonical_values=tuple(canonical),
        reference_types=tuple(refs),
    )


def _schema_object(obj: Mapping[str, Any], where: str) -> Schema:
    attrs = _list(obj, "attributes", f"{where}." if where else "")
    parsed = tuple(_attribute(a, f"{where}.attributes[{i}]") for i, a in enumerate(attrs))
    seen: set[str] = set()
    for i, attr in enumerate(parsed):
        if attr.name.lower() in seen:
            raise _fail(f"{where}.attributes[{i}].name", f"{attr.name!r} is defined twice")
        seen.add(attr.name.lower())
    return Schema(
        str(obj["id"]), str(obj.get("name") or ""), str(obj.get("description") or ""), parsed
    )


def _schema_ref(raw: Any, where: str, defined: Mapping[str, Any]) -> dict[str, Any]:
    obj = _object(raw, where)
    urn = _text(obj, "schema", where)
    if urn not in defined:
        raise _fail(
            f"{where}.schema",
            f"{urn!r} is not defined in 'schemas' (Okta reads unknown URNs from /Schemas)",
        )
    return {"schema": urn, "required": _flag(obj, "required", where)}


def _check_extension_value(value: Any, schema: Schema, where: str) -> dict[str, Any]:
    """A value's extension object, type-checked like a user's (core/validation.py)."""
    obj = _object(value, where)
    try:
        checked, _ = _check_object(schema.attribute, obj, f"{schema.id}:")
    except ScimError as exc:
        raise _fail(where, exc.detail) from None
    return checked


def _resource_type(raw: Any, where: str, defined: Mapping[str, Schema]) -> EntitlementType:
    obj = _object(raw, where)
    type_id = _text(obj, "id", where)
    name = _text(obj, "name", where)
    endpoint = _text(obj, "endpoint", where)
    if not _ENDPOINT_RE.fullmatch(endpoint):
        raise _fail(
            f"{where}.endpoint",
            f'{endpoint!r} must be one path segment after the base URL, like "/Roles"',
        )
    if endpoint.lower() in RESERVED_ENDPOINTS:
        raise _fail(f"{where}.endpoint", f"{endpoint!r} is one of the server's own endpoints")
    description = _text(obj, "description", where, required=False)
    schema = _text(obj, "schema", where)
    if schema not in TYPE_URNS:
        raise _fail(
            f"{where}.schema",
            f"must be {ROLE_URN} (roles) or {ENTITLEMENT_URN} (any other kind), got {schema!r}",
        )
    extensions = tuple(
        _schema_ref(e, f"{where}.schemaExtensions[{i}]", defined)
        for i, e in enumerate(_list(obj, "schemaExtensions", f"{where}."))
    )
    values: list[dict[str, Any]] = []
    ids: set[str] = set()
    for i, raw_value in enumerate(_list(obj, "resources", f"{where}.")):
        at = f"{where}.resources[{i}]"
        value = _object(raw_value, at)
        value_id = _text(value, "id", at)
        if len(value_id) > 256 or any(ord(c) < 32 for c in value_id):
            raise _fail(f"{at}.id", "must be at most 256 characters without control characters")
        if value_id in ids:
            raise _fail(f"{at}.id", f"{value_id!r} appears twice in this resource type")
        ids.add(value_id)
        out: dict[str, Any] = {"id": value_id, "displayName": _text(value, "displayName", at)}
        for key in ("description", "type"):
            if key in value and value[key] is not None:
                out[key] = _text(value, key, at)
        for ext in extensions:
            urn = ext["schema"]
            if urn in value and value[urn] is not None:
                out[urn] = _check_extension_value(value[urn], defined[urn], f"{at}.{urn}")
            elif ext["required"]:
                raise _fail(at, f"the extension {urn} is required for this resource type")
        for key in value:
            if key not in out and key != "schemas" and key != "meta":
                raise _fail(
                    f"{at}.{key}",
                    "is not an attribute of a value (id, displayName, description, type, "
                    "or a schema extension of the type)",
                )
        values.append(out)
    return EntitlementType(type_id, name, endpoint, description, schema, extensions, tuple(values))


def parse_catalog(obj: Any) -> Catalog:
    """The catalog in ``obj`` (the file format), checked; :class:`CatalogError` naming the
    place otherwise."""
    root = _object(obj, "the catalog")
    for key in root:
        if key not in ("resourceTypes", "userSchemaExtensions", "schemas"):
            raise _fail(
                key, "is not part of a catalog (resourceTypes, userSchemaExtensions, schemas)"
            )
    schemas: list[dict[str, Any]] = []
    defined: dict[str, Schema] = {}
    for i, raw in enumerate(_list(root, "schemas", "")):
        where = f"schemas[{i}]"
        obj_s = _object(raw, where)
        urn = _text(obj_s, "id", where)
        if not urn.lower().startswith("urn:"):
            raise _fail(f"{where}.id", f"{urn!r} must be a URN (urn:...)")
        if urn.lower() in _BUILT_IN or urn in TYPE_URNS:
            raise _fail(f"{where}.id", f"{urn!r} is defined by the server itself")
        if urn in defined:
            raise _fail(f"{where}.id", f"{urn!r} is defined twice")
        defined[urn] = _schema_object(obj_s, where)
        schemas.append(
            {
                "id": urn,
                "name": obj_s.get("name") or urn.rsplit(":", 1)[-1],
                "description": obj_s.get("description") or "",
                "attributes": [a.to_scim() for a in defined[urn].attributes],
            }
        )
    user_extensions = tuple(
        _schema_ref(e, f"userSchemaExtensions[{i}]", defined)
        for i, e in enumerate(_list(root, "userSchemaExtensions", ""))
    )
    types: list[EntitlementType] = []
    ids: dict[str, int] = {}
    endpoints: dict[str, int] = {}
    total = 0
    for i, raw in enumerate(_list(root, "resourceTypes", "")):
        where = f"resourceTypes[{i}]"
        rt = _resource_type(raw, where, defined)
        if rt.id.lower() in ("user", "group"):
            raise _fail(f"{where}.id", f"{rt.id!r} is one of the server's own resource types")
        if rt.id.lower() in ids:
            raise _fail(
                f"{where}.id", f"{rt.id!r} is already used by resourceTypes[{ids[rt.id.lower()]}]"
            )
        if rt.endpoint.lower() in endpoints:
            other = endpoints[rt.endpoint.lower()]
            raise _fail(
                f"{where}.endpoint", f"{rt.endpoint!r} is already used by resourceTypes[{other}]"
            )
        ids[rt.id.lower()] = i
        endpoints[rt.endpoint.lower()] = i
        total += len(rt.resources)
        if total > MAX_VALUES:
            raise _fail(f"{where}.resources", f"a catalog holds at most {MAX_VALUES:,} values")
        types.append(rt)
    return Catalog(tuple(types), user_extensions, tuple(schemas))


def parse_catalog_bytes(data: bytes) -> Catalog:
    """:func:`parse_catalog` of a file's bytes (JSON, UTF-8)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CatalogError(f"not valid JSON: {exc}") from None
    return parse_catalog(obj)


__all__ = [
    "ENTITLEMENT_URN",
    "ROLE_URN",
    "Catalog",
    "CatalogError",
    "EntitlementType",
    "parse_catalog",
    "parse_catalog_bytes",
]
