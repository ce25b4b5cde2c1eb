"""List pages reuse each user's encoded JSON; they must still show every change at once:
the user's own updates, membership changes, group renames, removals and a reset."""

from __future__ import annotations

from typing import Any

import orjson

from scim_desktop.core.listing import parse_list_query
from scim_desktop.core.resources import ScimService
from scim_desktop.core.schemas import RESOURCE_TYPES
from scim_desktop.store.memory import MemoryRepository

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BASE = "http://localhost:8080/scim/v2"


def page(service: ScimService, base: str = BASE) -> dict[str, dict[str, Any]]:
    query = parse_list_query({"count": "100"}, RESOURCE_TYPES["User"])
    body = orjson.loads(orjson.dumps(service.list("User", query, base)))
    return {u["userName"]: u for u in body["Resources"]}


def groups_of(user: dict[str, Any]) -> list[str]:
    return sorted(g["display"] for g in user.get("groups", []))


def test_pages_follow_every_change() -> None:
    service = ScimService(MemoryRepository())
    ids = {}
    for name in ("ann", "bob"):
        body = {"schemas": [USER_SCHEMA], "userName": name, "active": True}
        ids[name] = service.create("User", body, BASE).resource["id"]
    # Each create keeps the encoding it answered with, for the pages that follow.
    assert set(service._fragments) == set(ids.values())
    first = page(service)
    assert groups_of(first["ann"]) == [] and first["ann"]["active"] is True
    assert page(service) == first  # served again from the cache, unchanged

    # The user's own update.
    deactivate = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    service.patch("User", ids["ann"], deactivate, BASE)
    assert page(service)["ann"]["active"] is False

    # Membership: a group with ann, then a rename, then bob added, then ann removed.
    group = service.create(
        "Group",
        {"schemas": [GROUP_SCHEMA], "displayName": "Sales", "members": [{"value": ids["ann"]}]},
        BASE,
    ).resource
    after = page(service)
    assert groups_of(after["ann"]) == ["Sales"] and groups_of(after["bob"]) == []
    assert after["ann"]["meta"]["version"] != first["ann"]["meta"]["version"]
    rename = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "value": {"displayName": "EMEA"}}],
    }
    service.patch("Group", group["id"], rename, BASE)
    assert groups_of(page(service)["ann"]) == ["EMEA"]
    add = {"op": "add", "path": "members", "value": [{"value": ids["bob"]}]}
    service.patch("Group", group["id"], {"schemas": [PATCH], "Operations": [add]}, BASE)
    assert groups_of(page(service)["bob"]) == ["EMEA"]
    remove = {"op": "remove", "path": f'members[value eq "{ids["ann"]}"]'}
    service.patch("Group", group["id"], {"schemas": [PATCH], "Operations": [remove]}, BASE)
    now = page(service)
    assert groups_of(now["ann"]) == [] and groups_of(now["bob"]) == ["EMEA"]

    # Deleting the group; then another base URL (a tunnel) renders other locations.
    service.delete("Group", group["id"])
    assert groups_of(page(service)["bob"]) == []
    tunnel = page(service, "https://demo.example.com/scim/v2")
    assert tunnel["bob"]["meta"]["location"].startswith("https://demo.example.com/scim/v2/")

    # A reset: nothing left to list.
    service.repo.clear()
    assert page(service) == {}
