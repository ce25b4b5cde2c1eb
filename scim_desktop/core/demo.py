"""Demo data sets: load a directory of users and groups through the normal SCIM rules."""

from __future__ import annotations

from typing import Any

from scim_desktop.core.errors import ScimError
from scim_desktop.core.paths import ci_get
from scim_desktop.core.resources import Outcome, ScimService
from scim_desktop.core.schemas import GROUP_TYPE, PATCH_OP_SCHEMA, USER_TYPE


def load_dataset(service: ScimService, data: dict[str, Any], base_url: str) -> Outcome:
    """Create the data set's users (skipping userNames that exist) and groups (members given
    by userName; an existing group of the same name gets those members added). Everything
    goes through the same validation as a request. Returns every change in one Outcome."""
    result = Outcome()
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
            outcome = service.create("User", body, base_url)
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
