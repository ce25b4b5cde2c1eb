"""``attributes`` and ``excludedAttributes`` (RFC 7644 §3.4.2.5, §3.9).

Applied to a rendered resource (what a client would otherwise receive). Attributes whose
``returned`` characteristic is ``always`` (``id``; and ``schemas``, which every resource must
carry) survive both parameters; ``never`` attributes (``password``) never appear, which the
renderer already guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim_desktop.core.errors import InvalidPath
from scim_desktop.core.paths import AttrPath, ci_key, parse_attr_path
from scim_desktop.core.schemas import ResourceType

_ALWAYS = frozenset({"id", "schemas"})


@dataclass(frozen=True, slots=True)
class Projection:
    """Parsed ``attributes`` / ``excludedAttributes``: at most one of them is used."""

    include: tuple[AttrPath, ...] = ()
    exclude: tuple[AttrPath, ...] = ()

    @property
    def is_identity(self) -> bool:
        return not self.include and not self.exclude


def parse_attribute_list(text: str | list[str] | None, rtype: ResourceType) -> tuple[AttrPath, ...]:
    """Split a comma-separated list (or a SearchRequest's list) into attribute paths.

    A bare schema URN (``urn:...:enterprise:2.0:User``) names the whole extension; it is kept as
    ``AttrPath(urn=<schema id>, attr="")``.
    """
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[AttrPath] = []
    for raw in items:
        if not isinstance(raw, str):
            raise InvalidPath(f"Attribute names must be strings, got {raw!r}")
        item = raw.strip()
        if not item:
            continue
        schema = rtype.schema_for(item) if item.lower().startswith("urn:") else None
        if schema is not None:
            out.append(AttrPath(schema.id, ""))
            continue
        out.append(parse_attr_path(item))
    return tuple(out)


def make_projection(
    attributes: str | list[str] | None, excluded: str | list[str] | None, rtype: ResourceType
) -> Projection:
    include = parse_attribute_list(attributes, rtype)
    # RFC 7644 §3.4.2.5: when both are given, "attributes" wins (they are mutually exclusive).
    exclude = () if include else parse_attribute_list(excluded, rtype)
    return Projection(include, exclude)


def _container_key(resource: dict[str, Any], path: AttrPath, rtype: ResourceType) -> str | None:
    """Which top-level key holds the path: None for the core schema, else the extension key."""
    if path.urn is None or path.urn.lower() == rtype.schema.id.lower():
        return None
    return ci_key(resource, path.urn) or path.urn


def project(resource: dict[str, Any], proj: Projection, rtype: ResourceType) -> dict[str, Any]:
    """A copy of ``resource`` limited to what ``proj`` asks for. Never modifies the input."""
    if proj.is_identity:
        return resource
    if proj.include:
        return _include(resource, proj.include, rtype)
    return _exclude(resource, proj.exclude, rtype)


def _include(
    resource: dict[str, Any], paths: tuple[AttrPath, ...], rtype: ResourceType
) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in resource.items() if k.lower() in _ALWAYS}
    for path in paths:
        container = _container_key(resource, path, rtype)
        if container is not None and path.attr == "":
            if container in resource:
                out[container] = resource[container]
            continue
        source = resource if container is None else resource.get(container)
        if not isinstance(source, dict):
            continue
        target = out if container is None else out.setdefault(container, {})
        key = ci_key(source, path.attr)
        if key is None:
            continue
        value = source[key]
        if path.sub is None:
            target[key] = value
        elif isinstance(value, dict):
            sub_key = ci_key(value, path.sub)
            if sub_key is not None:
                target.setdefault(key, {})
                if isinstance(target[key], dict):
                    target[key][sub_key] = value[sub_key]
        elif isinstance(value, list):
            # emails.value: keep only that sub-attribute of each element (RFC 7644 §3.4.2.5).
            existing = target.get(key)
            picked = []
            for i, element in enumerate(value):
                merged = dict(existing[i]) if isinstance(existing, list) else {}
                if isinstance(element, dict):
                    sub_key = ci_key(element, path.sub)
                    if sub_key is not None:
                        merged[sub_key] = element[sub_key]
                picked.append(merged)
            target[key] = picked
    # Drop extension containers that ended up empty, and keep "schemas" honest about them.
    for key in [k for k, v in out.items() if k.lower().startswith("urn:") and v == {}]:
        del out[key]
    return out


def _exclude(
    resource: dict[str, Any], paths: tuple[AttrPath, ...], rtype: ResourceType
) -> dict[str, Any]:
    out = dict(resource)
    for path in paths:
        container = _container_key(resource, path, rtype)
        if container is not None and path.attr == "":
            out.pop(container, None)
            continue
        if container is None:
            target = out
        else:
            if not isinstance(out.get(container), dict):
                continue
            target = out[container] = dict(out[container])
        key = ci_key(target, path.attr)
        if key is None or key.lower() in _ALWAYS:
            continue
        if path.sub is None:
            del target[key]
        elif isinstance(target[key], dict):
            inner = dict(target[key])
            sub_key = ci_key(inner, path.sub)
            if sub_key is not None:
                del inner[sub_key]
            target[key] = inner
        elif isinstance(target[key], list):
            elements = []
            for element in target[key]:
                if isinstance(element, dict):
                    element = {k: v for k, v in element.items() if k.lower() != path.sub.lower()}
                elements.append(element)
            target[key] = elements
    return out
