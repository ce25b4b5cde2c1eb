"""core/catalog.py: the catalog file format, its one-line errors, lookups, grant checks and
value listings; core/demo.py's catalog."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from scim_desktop.core.catalog import (
    ENTITLEMENT_URN,
    ROLE_URN,
    CatalogError,
    list_values_steps,
    parse_catalog,
    parse_catalog_bytes,
)
from scim_desktop.core.demo import load_dataset
from scim_desktop.core.errors import InvalidValue
from scim_desktop.core.filter import parse as parse_filter
from scim_desktop.core.listing import ListQuery, run_steps
from scim_desktop.core.resources import ScimService
from scim_desktop.core.schemas import USER_SCHEMA
from scim_desktop.store import MemoryRepository

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def example() -> dict[str, Any]:
    return json.loads((RESOURCES / "catalog-example.json").read_text())


def error_of(doc: Any) -> str:
    with pytest.raises(CatalogError) as info:
        parse_catalog(doc)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_example_parses_and_round_trips() -> None:
    catalog = parse_catalog(example())
    assert [t.id for t in catalog.resource_types] == ["Role", "License", "Profile"]
    assert catalog.resource_types[0].is_role and not catalog.resource_types[1].is_role
    assert parse_catalog(catalog.to_json()) == catalog
    assert parse_catalog_bytes(json.dumps(catalog.to_json()).encode()) == catalog
    assert catalog.endpoints() == {"/Roles": "Role", "/Licenses": "License", "/Profiles": "Profile"}
    assert catalog.type_for_endpoint("/roles") is catalog.resource_types[0]
    assert [rt.id for rt, _ in catalog.values_by_id()["lic-pro"]] == ["License"]


@pytest.mark.parametrize(
    ("change", "place"),
    [
        (lambda d: d["resourceTypes"][1].update(endpoint="/Users"), "resourceTypes[1].endpoint"),
        (lambda d: d["resourceTypes"][1].update(endpoint="/groups"), "resourceTypes[1].endpoint"),
        (lambda d: d["resourceTypes"][2].update(endpoint="/Schemas"), "resourceTypes[2].endpoint"),
        (lambda d: d["resourceTypes"][1].update(endpoint="/ROLES"), "resourceTypes[1].endpoint"),
        (lambda d: d["resourceTypes"][1].update(endpoint="Licenses"), "resourceTypes[1].endpoint"),
        (lambda d: d["resourceTypes"][1].update(endpoint="/a/b"), "resourceTypes[1].endpoint"),
        (lambda d: d["resourceTypes"][1].update(id="role"), "resourceTypes[1].id"),
        (lambda d: d["resourceTypes"][1].update(id="User"), "resourceTypes[1].id"),
        (lambda d: d["resourceTypes"][0].update(schema="urn:x"), "resourceTypes[0].schema"),
        (lambda d: d["resourceTypes"][0].pop("name"), "resourceTypes[0].name"),
        (
            lambda d: d["resourceTypes"][0]["resources"].append(
                {"id": "role-admin", "displayName": "x"}
            ),
            "resourceTypes[0].resources[3].id",
        ),
        (
            lambda d: d["resourceTypes"][0]["resources"][1].pop("displayName"),
            "resourceTypes[0].resources[1].displayName",
        ),
        (
            lambda d: d["resourceTypes"][0]["resources"][0].update(colour="red"),
            "resourceTypes[0].resources[0].colour",
        ),
        (
            lambda d: d["resourceTypes"][2]["resources"][1].pop(
                "urn:example:scim:schemas:extension:app:1.0:Profile"
            ),
            "resourceTypes[2].resources[1]",
        ),
        (
            lambda d: d["resourceTypes"][2]["resources"][0][
                "urn:example:scim:schemas:extension:app:1.0:Profile"
            ].update(customProfileProperty=7),
            "resourceTypes[2].resources[0].urn:example:scim:schemas:extension:app:1.0:Profile",
        ),
        (
            lambda d: d["userSchemaExtensions"][0].update(schema="urn:nowhere"),
            "userSchemaExtensions[0].schema",
        ),
        (
            lambda d: d["schemas"][0]["attributes"][1].update(type="int"),
            "schemas[0].attributes[1].type",
        ),
        (lambda d: d["schemas"][1].update(id=USER_SCHEMA), "schemas[1].id"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d.update(resourceTypes={}), "resourceTypes"),
    ],
)
def test_bad_catalogs_name_the_place(change: Any, place: str) -> None:
    doc = example()
    change(doc)
    assert error_of(doc).startswith(place + ": ")


def test_not_an_object_and_not_json() -> None:
    assert "must be a JSON object" in error_of([])
    with pytest.raises(CatalogError, match="not valid JSON"):
        parse_catalog_bytes(b"{nope")


def test_grant_checks_are_lookups_and_keep_what_was_held() -> None:
    catalog = parse_catalog(example())
    catalog.check_grants({"roles": [{"value": "role-admin"}]}, None)
    catalog.check_grants({"entitlements": [{"value": "lic-pro", "type": "license"}]}, None)
    with pytest.raises(InvalidValue, match="'gone'"):
        catalog.check_grants({"roles": [{"value": "gone"}]}, None)
    with pytest.raises(InvalidValue, match="of type 'Role'"):
        catalog.check_grants({"entitlements": [{"value": "lic-pro", "type": "Role"}]}, None)
    # Held before (a value a catalog change removed): still accepted on the next PUT.
    previous = {"roles": [{"value": "gone"}]}
    catalog.check_grants({"roles": [{"value": "gone"}, {"value": "role-viewer"}]}, previous)
    assert catalog.unknown_grants(previous) == [("roles", "gone")]


def test_value_listing_filters_pages_and_cursors() -> None:
    doc = example()
    doc["resourceTypes"][1]["resources"] = [
        {"id": f"l{i:03d}", "displayName": f"Seat {i}", "type": "License"} for i in range(250)
    ]
    catalog = parse_catalog(doc)
    rt = catalog.resource_types[1]
    base = "https://h/scim/v2"
    page = run_steps(list_values_steps(catalog, rt, ListQuery(start_index=3, count=2), base))
    assert page["totalResults"] == 250 and page["itemsPerPage"] == 2
    assert [r["id"] for r in page["Resources"]] == ["l002", "l003"]
    assert page["Resources"][0]["schemas"] == [ENTITLEMENT_URN]
    assert page["Resources"][0]["meta"]["location"] == f"{base}/Licenses/l002"
    found = run_steps(
        list_values_steps(
            catalog, rt, ListQuery(filter=parse_filter('displayName sw "Seat 24"')), base
        )
    )
    assert [r["id"] for r in found["Resources"]] == [
        "l024",
        "l240",
        "l241",
        "l242",
        "l243",
        "l244",
        "l245",
        "l246",
        "l247",
        "l248",
        "l249",
    ]
    first = run_steps(list_values_steps(catalog, rt, ListQuery(cursor="", count=100), base))
    second = run_steps(
        list_values_steps(catalog, rt, ListQuery(cursor=first["nextCursor"], count=100), base)
    )
    assert second["Resources"][0]["id"] == "l100"


def test_service_with_and_without_catalog() -> None:
    service = ScimService(MemoryRepository())
    body = {"schemas": [USER_SCHEMA], "userName": "a@x", "roles": [{"value": "any"}]}
    assert service.create("User", body, "").resource["roles"] == [{"value": "any"}]  # type: ignore[index]
    catalog = parse_catalog(example())
    outcome = service.set_catalog(catalog)
    assert [(c.kind, c.rtype, c.id) for c in outcome.changes] == [("updated", "Catalog", "*")]
    assert service.types["User"] is catalog.user_type
    with pytest.raises(InvalidValue):
        service.create("User", {**body, "userName": "b@x"}, "")
    assert service.repo.count("User") == 1
    assert [(c.kind, c.rtype) for c in service.set_catalog(None).changes] == [
        ("deleted", "Catalog")
    ]
    assert service.types["User"].extensions[1:] == ()


def test_demo_data_set_has_a_catalog_and_grants() -> None:
    data = json.loads((RESOURCES / "demo" / "acme.json").read_text())
    service = ScimService(MemoryRepository())
    outcome = load_dataset(service, data, "")
    assert outcome.changes[0].rtype == "Catalog"
    catalog = service.catalog
    assert catalog is not None
    assert {rt.schema for rt in catalog.resource_types} == {ROLE_URN, ENTITLEMENT_URN}
    assert any(rt.schema_extensions for rt in catalog.resource_types)
    assert catalog.user_schema_extensions
    users = service.repo.ordered("User")
    assert len(users) == len(data["users"])  # no user was refused
    roles = {r["value"] for u in users for r in u.get("roles", [])}
    assert len(roles) >= 4
    assert sum(1 for u in users if u.get("entitlements")) > len(users) // 2
    ext = catalog.user_schema_extensions[0]["schema"]
    assert all("costCenterCode" in u.get(ext, {}) for u in users)
    # Loading again into a served catalog merges nothing new and refuses nothing.
    again = load_dataset(service, data, "")
    assert again.changes == [] and service.catalog is catalog


def test_demo_catalog_merges_into_a_served_one() -> None:
    service = ScimService(MemoryRepository())
    mine = example()
    service.set_catalog(parse_catalog(mine))
    data = json.loads((RESOURCES / "demo" / "acme.json").read_text())
    load_dataset(service, copy.deepcopy(data), "")
    catalog = service.catalog
    assert catalog is not None
    # My Role and License types stay as they were (same ids / endpoints as the demo's); the
    # demo's Profile type also collides, so nothing of mine is replaced.
    assert [t.id for t in catalog.resource_types] == ["Role", "License", "Profile"]
    assert catalog.resource_types[0].record("role-admin") is not None
    # The demo's users were created even though my catalog lacks their values.
    assert service.repo.count("User") == len(data["users"])
