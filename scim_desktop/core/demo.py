"""Demo data sets: load a directory of users and groups (and an entitlement catalog) through
the normal SCIM rules."""

from __future__ import annotations

from typing import Any

from scim_desktop.core.catalog import Catalog, CatalogError, parse_catalog
from scim_desktop.core.errors import InvalidValue, ScimError
from scim_desktop.core.paths import ci_get
from scim_desktop.core.resources import Outcome, ScimService
from scim_desktop.core.schemas import GROUP_TYPE, PATCH_OP_SCHEMA, USER_TYPE


def load_dataset(service: ScimService, data: dict[str, Any], base_url: str) -> Outcome:
    """Create the data set's users (skipping userNames that exist) and groups (members given
    by userName; an existing group of the same name gets those members added). Everything
    goes through the same validation as a request. Returns every change in one Outcome.

    A data set's ``catalog`` (the ``--catalog`` file format) is loaded first, merged into the
    one being served: its types, schemas and user extensions are added unless one with the
    same id, endpoint or URN exists (what is served is never replaced or lost). A user whose
    grants the resulting catalog refuses is still created, without them."""
    result = Outcome()
    catalog = _merged_catalog(service.catalog, data.get("catalog"))
    if catalog is not None:
        result.changes += service.set_catalog(catalog).changes
    ids: dict[str, str] = {}
    for body in data.get("users", []):
        existing = service.repo.find_user_by_username(body.get("userName", ""))
        if existing is not None:
            ids[existing["userName"].lower()] = existing["id"]
            continue
        if isinstance(body, dict) and ci_get(body, "schemas") is None:
            # Requests must list their schemas (RFC 7644 §3.3); a hand-written data set may
            # leave them out, and is still loaded.
            body = {"schemas": [USER_TYPE.schema.id], **body}
        try:
            try:
                outcome = service.create("User", body, base_url)
            except InvalidValue:
                if not any(k in body for k in ("roles", "entitlements")):
                    raise
                bare = {k: v for k, v in body.items() if k not in ("roles", "entitlements")}
                outcome = service.create("User", bare, base_url)
        except ScimError:
            continue  # a bad entry in a data set must not stop the rest
        result.changes += outcome.changes
        assert outcome.resource is not None
        ids[outcome.resource["userName"].lower()] = outcome.resource["id"]
    for group in data.get("groups", []):
        members = [
            {"value": ids[name.lower()], "type": "User"}
            for name in group.get("members", [])
            if name.lower() in ids
        ]
        name = group.get("displayName", "")
        found = service.repo.find_groups_by_display_name(name)
        try:
            if found:
                gid = found[0]["id"]
                ops = [{"op": "add", "path": "members", "value": members}]
                body = {"schemas": [PATCH_OP_SCHEMA]}
                outcome = service.patch("Group", gid, {**body, "Operations": ops}, base_url)
            else:
                body = {
                    "schemas": [GROUP_TYPE.schema.id],
                    "displayName": name,
                    "members": members,
                }
                outcome = service.create("Group", body, base_url)
        except ScimError:
            continue
        result.changes += outcome.changes
    return result


def _merged_catalog(current: Catalog | None, raw: Any) -> Catalog | None:
    """``current`` with the data set's catalog added (see :func:`load_dataset`); None when
    nothing changes or the data set's catalog is unusable."""
    if not isinstance(raw, dict):
        return None
    if current is None:
        try:
            return parse_catalog(raw)
        except CatalogError:
            return None
    merged = current.to_json()
    ids = {t["id"].lower() for t in merged["resourceTypes"]}
    endpoints = {t["endpoint"].lower() for t in merged["resourceTypes"]}
    urns = {s["id"] for s in merged["schemas"]}
    user_urns = {e["schema"] for e in merged["userSchemaExtensions"]}
    changed = False
    for schema in raw.get("schemas") or []:
        if isinstance(schema, dict) and schema.get("id") not in urns:
            merged["schemas"].append(schema)
            changed = True
    for ext in raw.get("userSchemaExtensions") or []:
        if isinstance(ext, dict) and ext.get("schema") not in user_urns:
            merged["userSchemaExtensions"].append(ext)
            changed = True
    for rt in raw.get("resourceTypes") or []:
        if not isinstance(rt, dict):
            continue
        if str(rt.get("id", "")).lower() in ids or str(rt.get("endpoint", "")).lower() in endpoints:
            continue
        merged["resourceTypes"].append(rt)
        changed = True
    if not changed:
        return None
    try:
        return parse_catalog(merged)
    except CatalogError:
        return None
