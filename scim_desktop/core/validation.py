"""Validation of a resource body against its schema: the input of a POST, a PUT or a patched
resource, type-checked attribute by attribute (RFC 7643 §2), before :class:`ScimService`
(``core/resources.py``) stores it.

Pure: plain data in, plain data out, :class:`ScimError` on bad input. The catalog checks an
entitlement value's extension object with the same :func:`_check_object`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scim_desktop.core.errors import InvalidSyntax, InvalidValue, ScimError
from scim_desktop.core.paths import ci_get, parse_attr_path
from scim_desktop.core.schemas import Attribute, ResourceType


# --- validation against the schema ----------------------------------------------------------
def _is_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def _check_single(attr: Attribute, value: Any, where: str) -> Any:
    """``value`` if it has the attribute's type (RFC 7643 §2.3), else InvalidValue."""
    kind = attr.type
    if kind == "complex":
        if not isinstance(value, dict):
            raise InvalidValue(f"Attribute '{where}' must be a JSON object")
        out: dict[str, Any] = {}
        for key, sub_value in value.items():
            sub = attr.sub(key)
            if sub is None:
                # Sub-attributes the schema does not define are ignored, so that what is
                # stored is what /Schemas describes.
                continue
            checked = _check_value(sub, sub_value, f"{where}.{sub.name}")
            if checked is not None:
                out[sub.name] = checked
        return out
    ok: bool
    if kind in ("string", "reference", "binary"):
        ok = isinstance(value, str)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "decimal":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "dateTime":
        ok = isinstance(value, str) and _is_datetime(value)
    else:  # pragma: no cover - every schema type is listed above
        ok = True
    if not ok:
        article = "an" if kind[0] in "aeiou" else "a"
        raise InvalidValue(f"Attribute '{where}' must be {article} {kind}, got {value!r}")
    return value


def _check_value(attr: Attribute, value: Any, where: str) -> Any:
    """Type-check a value; None for "unassigned" (null, or an empty array; RFC 7643 §2.5)."""
    if value is None:
        return None
    if attr.multi_valued:
        if not isinstance(value, list):
            raise InvalidValue(f"Attribute '{where}' is multi-valued and must be a JSON array")
        items = [
            _check_single(attr, v, f"{where}[{i}]") for i, v in enumerate(value) if v is not None
        ]
        # RFC 7643 §2.4: the primary attribute value "true" MUST appear no more than once.
        if sum(1 for v in items if isinstance(v, dict) and v.get("primary") is True) > 1:
            raise InvalidValue(f"Attribute '{where}' has more than one primary value")
        return items or None
    return _check_single(attr, value, where)


def _check_attribute(
    attr: Attribute | None, value: Any, prefix: str, out: dict[str, Any]
) -> str | None:
    """Validate one attribute's value into ``out``; returns the password when ``attr`` is
    the password (which is never stored as given)."""
    if attr is None:
        # Attributes the schema does not define are ignored (what is stored is what
        # /Schemas describes); data of other schemas belongs under their URN.
        return None
    if attr.mutability == "readOnly":
        return None  # RFC 7644 §3.3: read-only attributes in input are ignored
    if attr.name == "password":
        if value is not None and not isinstance(value, str):
            raise InvalidValue("Attribute 'password' must be a string")
        return value or None
    checked = _check_value(attr, value, prefix + attr.name)
    if checked is not None:
        out[attr.name] = checked
    return None


def _check_object(
    schema_attrs: Callable[[str], Attribute | None], data: dict[str, Any], prefix: str
) -> tuple[dict[str, Any], str | None]:
    """Validate the attributes of one schema; returns (attributes, password or None)."""
    out: dict[str, Any] = {}
    password: str | None = None
    for key, value in data.items():
        password = _check_attribute(schema_attrs(key), value, prefix, out) or password
    return out, password


@dataclass(slots=True)
class _Input:
    attributes: dict[str, Any]
    schemas: list[str]
    password: str | None


def require_schemas(body: Any, urn: str, what: str, section: str) -> dict[str, Any]:
    """``body`` as a JSON object that has ``schemas``, else 400 ``invalidSyntax`` naming
    ``urn``.

    RFC 7644 §3.3 (POST), §3.5.1 (PUT) and §3.5.2 (PATCH): the body MUST be the resource (or
    PatchOp message) whose "schemas" attribute lists its schema URNs; RFC 7643 §3: "schemas"
    is REQUIRED. A body without it does not conform to the request schema, which §3.12 calls
    invalidSyntax. Whether the list holds the right URN is checked by the caller.
    """
    if not isinstance(body, dict):
        raise InvalidSyntax("The request body must be a JSON object")
    if ci_get(body, "schemas") is None:
        raise InvalidSyntax(
            f"The request body has no 'schemas'; a {what} must list {urn} "
            f'(RFC 7644 §{section}), e.g. "schemas": ["{urn}"]'
        )
    return body


def _parse_input(rt: ResourceType, body: Any) -> _Input:
    """Validate a POST / PUT body (or a patched resource) for resource type ``rt``."""
    if not isinstance(body, dict):
        raise InvalidSyntax("The request body must be a JSON object")
    raw_schemas = ci_get(body, "schemas")
    listed: list[str] = []
    if raw_schemas is not None:
        if not isinstance(raw_schemas, list) or not all(isinstance(s, str) for s in raw_schemas):
            raise InvalidValue("'schemas' must be an array of schema URNs")
        if not any(s.lower() == rt.schema.id.lower() for s in raw_schemas):
            raise InvalidValue(f"'schemas' must include {rt.schema.id} for a {rt.name}")
        listed = [s for s in raw_schemas if s.lower() != rt.schema.id.lower()]
    core: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    password: str | None = None
    for key, value in body.items():
        lowered = key.lower()
        if lowered == "schemas":
            continue
        if lowered.startswith("urn:"):
            if lowered == rt.schema.id.lower() and isinstance(value, dict):
                attrs, pw = _check_object(rt.schema.attribute, value, "")
                core.update(attrs)
                password = pw or password
                continue
            ext = rt.extension(key)
            if ext is not None:
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise InvalidValue(f"Extension '{ext.id}' must be a JSON object")
                attrs, _ = _check_object(ext.attribute, value, f"{ext.id}:")
                if attrs:
                    extensions[ext.id] = {**extensions.get(ext.id, {}), **attrs}
                continue
            # "urn:...:User:attr" written as one flat key (some clients do this).
            try:
                path = parse_attr_path(key)
            except ScimError:
                path = None
            schema = rt.schema_for(path.urn) if path is not None and path.sub is None else None
            if path is not None and schema is not None:
                attrs, pw = _check_object(schema.attribute, {path.attr: value}, "")
                if schema is rt.schema:
                    core.update(attrs)
                    password = pw or password
                elif attrs:
                    extensions[schema.id] = {**extensions.get(schema.id, {}), **attrs}
                continue
            if value is not None:
                extensions[key] = value  # another extension: stored and returned as sent
            continue
        password = _check_attribute(rt.schema.attribute(key), value, "", core) or password
    for attr in rt.schema.attributes:
        if attr.required and attr.mutability != "readOnly":
            value = core.get(attr.name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidValue(f"Attribute '{attr.name}' is required for a {rt.name}")
    schemas = [rt.schema.id]
    for urn in [*listed, *extensions]:
        if urn not in schemas:
            schemas.append(urn)
    return _Input({**core, **extensions}, schemas, password)
