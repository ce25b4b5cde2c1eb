"""Issue 13: the entitlement catalog over real sockets (Okta's discovery sequence, value
endpoints, grants on users, read-only values, faults, persistence across restarts)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.core.catalog import ENTITLEMENT_URN, ROLE_URN, Catalog, parse_catalog_bytes
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.core.schemas import PATCH_OP_SCHEMA, USER_SCHEMA
from scim_desktop.server.events import ResourceChanged
from scim_desktop.server.runner import ServerThread
from tests.conftest import TOKEN, RecordingSink
from tests.scim_client import ScimClient, filter_query

EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "catalog-example.json"
APP_USER = "urn:example:scim:schemas:extension:app:1.0:User"
PROFILE_EXT = "urn:example:scim:schemas:extension:app:1.0:Profile"


def example() -> Catalog:
    return parse_catalog_bytes(EXAMPLE.read_bytes())


def start(db_path: Path, sink: RecordingSink | None = None, **kw: Any) -> ServerThread:
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        db_path=db_path,
        auth=AuthConfig("bearer", token=TOKEN),
        **kw,
    )
    thread = ServerThread(config, sink)
    thread.start()
    return thread


@pytest.fixture
def served(db_path: Path, sink: RecordingSink) -> Iterator[tuple[ServerThread, ScimClient]]:
    thread = start(db_path, sink, catalog=example())
    client = ScimClient(thread.base_url, token=TOKEN)
    try:
        yield thread, client
    finally:
        client.close()
        thread.stop()


def new_user(client: ScimClient, name: str = "ann@example.com", **extra: Any) -> dict[str, Any]:
    body = {"schemas": [USER_SCHEMA], "userName": name, "active": True, **extra}
    resp = client.post("/Users", body)
    assert resp.status == 201, resp.body
    return resp.body


def patch(client: ScimClient, uid: str, *ops: dict[str, Any]) -> Any:
    return client.patch(f"/Users/{uid}", {"schemas": [PATCH_OP_SCHEMA], "Operations": list(ops)})


# --- discovery ----------------------------------------------------------------------------------
def test_discovery_sequence_as_okta_runs_it(served: tuple[ServerThread, ScimClient]) -> None:
    _, client = served
    types = client.get("/ResourceTypes")
    assert types.status == 200
    by_id = {t["id"]: t for t in types.body["Resources"]}
    assert types.body["totalResults"] == len(by_id) == 5
    assert by_id["Role"]["schema"] == ROLE_URN and by_id["Role"]["endpoint"] == "/Roles"
    assert by_id["License"]["schema"] == ENTITLEMENT_URN
    assert by_id["Profile"]["schemaExtensions"] == [{"schema": PROFILE_EXT, "required": True}]
    user_ext = [e["schema"] for e in by_id["User"]["schemaExtensions"]]
    assert user_ext == ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", APP_USER]
    assert client.get("/ResourceTypes/role").body["endpoint"] == "/Roles"

    schemas = client.get("/Schemas")
    ids = {s["id"] for s in schemas.body["Resources"]}
    assert {APP_USER, PROFILE_EXT, ROLE_URN, ENTITLEMENT_URN} <= ids
    one = client.get(f"/Schemas/{APP_USER}").body
    assert [a["name"] for a in one["attributes"]] == ["costCenterCode", "seatCount"]

    for endpoint, count in (("/Roles", 3), ("/Licenses", 2), ("/Profiles", 2)):
        page = client.get(f"{endpoint}?startIndex=1&count=100")
        assert page.status == 200
        assert page.body["totalResults"] == count
        assert page.body["itemsPerPage"] == count
        assert page.body["startIndex"] == 1
        # Okta's Runscope entitlements test: count=1 gives itemsPerPage 1.
        first = client.get(f"{endpoint}?count=1&startIndex=1").body
        assert first["itemsPerPage"] == 1 and first["totalResults"] == count
        assert first["Resources"][0] == page.body["Resources"][0]
        second = client.get(f"{endpoint}?count=1&startIndex=2").body
        assert second["Resources"][0] == page.body["Resources"][1]


def test_values_carry_schemas_and_extensions(served: tuple[ServerThread, ScimClient]) -> None:
    _, client = served
    profile = client.get("/Profiles/profile-sales")
    assert profile.status == 200
    assert profile.body["schemas"] == [ENTITLEMENT_URN, PROFILE_EXT]
    assert profile.body[PROFILE_EXT] == {"customProfileProperty": "crm"}
    assert profile.body["meta"]["location"].endswith("/Profiles/profile-sales")
    role = client.get("/Roles/role-admin").body
    assert role["schemas"] == [ROLE_URN]
    assert role["displayName"] == "Administrator"


def test_value_filters_and_404s(served: tuple[ServerThread, ScimClient]) -> None:
    _, client = served
    found = client.get("/Roles?" + filter_query('displayName eq "editor"')).body
    assert [r["id"] for r in found["Resources"]] == ["role-editor"]
    by_id = client.get("/Licenses?" + filter_query('id eq "lic-basic"')).body
    assert by_id["totalResults"] == 1
    by_type = client.get("/Profiles?" + filter_query('type eq "Profile"')).body
    assert by_type["totalResults"] == 2
    missing = client.get("/Roles/nope")
    assert missing.status == 404
    assert missing.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert client.get("/Widgets").status == 404


def test_values_need_authentication(served: tuple[ServerThread, ScimClient]) -> None:
    thread, _ = served
    anonymous = ScimClient(thread.base_url)
    try:
        assert anonymous.get("/Roles").status == 401
        assert anonymous.get("/Roles/role-admin").status == 401
    finally:
        anonymous.close()


def test_writes_to_values_are_405_saying_where_to_edit(
    served: tuple[ServerThread, ScimClient],
) -> None:
    _, client = served
    for resp in (
        client.post("/Roles", {"id": "x", "displayName": "X"}),
        client.put("/Roles/role-admin", {"displayName": "X"}),
        client.patch("/Roles/role-admin", {"schemas": [PATCH_OP_SCHEMA], "Operations": []}),
        client.delete("/Roles/role-admin"),
    ):
        assert resp.status == 405
        assert "Governance tab" in resp.body["detail"]
        assert resp.header("Allow") == "GET, HEAD"
    assert client.get("/Roles").body["totalResults"] == 3


# --- grants ---------------------------------------------------------------------------------------
def test_grants_by_put_and_patch(served: tuple[ServerThread, ScimClient]) -> None:
    _, client = served
    user = new_user(client, roles=[{"value": "role-viewer", "display": "Viewer"}])
    uid = user["id"]
    assert user["roles"] == [{"value": "role-viewer", "display": "Viewer"}]
    put = client.put(
        f"/Users/{uid}",
        {
            **{k: v for k, v in user.items() if k not in ("meta", "id")},
            "roles": [{"value": "role-admin", "display": "Administrator"}],
            "entitlements": [{"value": "lic-pro", "display": "Pro seat", "type": "License"}],
        },
    )
    assert put.status == 200, put.body
    assert put.body["entitlements"] == [
        {"value": "lic-pro", "display": "Pro seat", "type": "License"}
    ]
    added = patch(
        client,
        uid,
        {"op": "add", "path": "roles", "value": [{"value": "role-editor", "display": "Editor"}]},
        {
            "op": "add",
            "path": "entitlements",
            "value": [{"value": "profile-sales", "type": "Profile"}],
        },
    )
    assert added.status == 200, added.body
    assert [r["value"] for r in added.body["roles"]] == ["role-admin", "role-editor"]
    removed = patch(
        client,
        uid,
        {"op": "remove", "path": 'roles[value eq "role-admin"]'},
        {"op": "remove", "path": 'entitlements[value eq "lic-pro" and type eq "License"]'},
    )
    assert removed.status == 200, removed.body
    assert [r["value"] for r in removed.body["roles"]] == ["role-editor"]
    assert [e["value"] for e in removed.body["entitlements"]] == ["profile-sales"]
    # Import pages carry the grants as stored.
    page = client.get("/Users?startIndex=1&count=100").body
    assert page["Resources"][0]["roles"] == [{"value": "role-editor", "display": "Editor"}]


def test_unknown_values_are_refused_and_nothing_changes(
    served: tuple[ServerThread, ScimClient],
) -> None:
    _, client = served
    refused = client.post(
        "/Users",
        {"schemas": [USER_SCHEMA], "userName": "x@example.com", "roles": [{"value": "god"}]},
    )
    assert refused.status == 400
    assert refused.body["scimType"] == "invalidValue"
    assert "'god'" in refused.body["detail"]
    assert client.get("/Users").body["totalResults"] == 0
    user = new_user(client)
    before = client.get(f"/Users/{user['id']}").body
    bad = patch(
        client, user["id"], {"op": "add", "path": "entitlements", "value": [{"value": "lic-gold"}]}
    )
    assert bad.status == 400 and "'lic-gold'" in bad.body["detail"]
    # A role id is not an entitlement, and the type must match when given.
    wrong_kind = patch(
        client,
        user["id"],
        {"op": "add", "path": "entitlements", "value": [{"value": "role-admin"}]},
    )
    assert wrong_kind.status == 400
    wrong_type = patch(
        client,
        user["id"],
        {"op": "add", "path": "entitlements", "value": [{"value": "lic-pro", "type": "Profile"}]},
    )
    assert wrong_type.status == 400
    assert client.get(f"/Users/{user['id']}").body == before


def test_custom_user_attributes_are_typed(served: tuple[ServerThread, ScimClient]) -> None:
    _, client = served
    user = new_user(client, **{APP_USER: {"costCenterCode": "CC-7", "seatCount": 3}})
    assert user[APP_USER] == {"costCenterCode": "CC-7", "seatCount": 3}
    assert APP_USER in user["schemas"]
    wrong = client.post(
        "/Users",
        {"schemas": [USER_SCHEMA], "userName": "y@example.com", APP_USER: {"seatCount": "three"}},
    )
    assert wrong.status == 400 and wrong.body["scimType"] == "invalidValue"
    changed = patch(
        client, user["id"], {"op": "replace", "path": f"{APP_USER}:costCenterCode", "value": "CC-9"}
    )
    assert changed.status == 200, changed.body
    assert changed.body[APP_USER]["costCenterCode"] == "CC-9"
    found = client.get("/Users?" + filter_query(f'{APP_USER}:costCenterCode eq "CC-9"')).body
    assert found["totalResults"] == 1
    # An extension the catalog does not declare is kept as sent (as before catalogs).
    other = "urn:other:ext:1.0:User"
    kept = new_user(client, "z@example.com", **{other: {"anything": ["goes"]}})
    assert kept[other] == {"anything": ["goes"]}


def test_without_a_catalog_anything_goes(client: ScimClient) -> None:
    user = new_user(
        client, roles=[{"value": "whatever"}], entitlements=[{"value": "x", "type": "y"}]
    )
    assert user["roles"] == [{"value": "whatever"}]
    types = client.get("/ResourceTypes").body
    assert [t["id"] for t in types["Resources"]] == ["User", "Group"]
    assert client.get("/Roles").status == 404


# --- the catalog's life -------------------------------------------------------------------------
def test_restart_without_catalog_serves_the_same_catalog(db_path: Path) -> None:
    first = start(db_path, catalog=example())
    try:
        client = ScimClient(first.base_url, token=TOKEN)
        assert client.get("/Roles").body["totalResults"] == 3
        client.close()
    finally:
        first.stop()
    again = start(db_path)
    try:
        client = ScimClient(again.base_url, token=TOKEN)
        assert client.get("/Roles").body["totalResults"] == 3
        assert client.get("/Profiles/profile-support").status == 200
        assert again.catalog().result(5) == example()
        client.close()
    finally:
        again.stop()
    # The data file itself holds it (a fold on stop wrote the snapshot).
    doc = json.loads(db_path.read_text())
    assert doc["_catalog"]["1"]["resourceTypes"][0]["endpoint"] == "/Roles"


def test_set_catalog_while_serving(db_path: Path, sink: RecordingSink) -> None:
    thread = start(db_path, sink)
    client = ScimClient(thread.base_url, token=TOKEN)
    try:
        assert thread.catalog().result(5) is None
        user = new_user(client, roles=[{"value": "legacy"}])
        thread.set_catalog(example()).result(5)
        assert client.get("/Roles").body["totalResults"] == 3
        changes = [
            e for e in sink.events if isinstance(e, ResourceChanged) and e.rtype == "Catalog"
        ]
        assert changes[-1].kind == "updated" and changes[-1].id == "*"
        assert changes[-1].resource == example().to_json()
        # The classifier knows the endpoints (G2's OktaClassifier.set_catalog).
        okta = thread.context.okta  # type: ignore[union-attr]
        assert okta.catalog == {"/Roles": "Role", "/Licenses": "License", "/Profiles": "Profile"}
        # A grant the catalog lacks stays stored; a PUT that keeps it is accepted.
        kept = client.get(f"/Users/{user['id']}").body
        assert kept["roles"] == [{"value": "legacy"}]
        assert example().unknown_grants(kept) == [("roles", "legacy")]
        body = {k: v for k, v in kept.items() if k not in ("meta", "id")}
        assert client.put(f"/Users/{user['id']}", body).status == 200
        thread.set_catalog(None).result(5)
        assert client.get("/Roles").status == 404
        assert sink.events[-1] == ResourceChanged("deleted", "Catalog", "*", None) or any(
            isinstance(e, ResourceChanged) and e.kind == "deleted" and e.rtype == "Catalog"
            for e in sink.events
        )
    finally:
        client.close()
        thread.stop()
    again = start(db_path)
    try:
        assert again.catalog().result(5) is None
    finally:
        again.stop()


def test_faults_on_value_endpoints(db_path: Path) -> None:
    rule = parse_fault_spec("status=429,retry_after=5,path=/Roles*,count=1")
    thread = start(db_path, catalog=example(), faults=(rule,))
    client = ScimClient(thread.base_url, token=TOKEN)
    try:
        limited = client.get("/Roles?count=1&startIndex=1")
        assert limited.status == 429
        assert limited.header("Retry-After") == "5"
        assert client.get("/Roles?count=1&startIndex=1").status == 200
    finally:
        client.close()
        thread.stop()


def test_value_pages_are_stable_and_total(db_path: Path) -> None:
    many = example().to_json()
    many["resourceTypes"][1]["resources"] = [
        {"id": f"lic-{i:05d}", "displayName": f"Seat {i}", "type": "License"} for i in range(2500)
    ]
    catalog = parse_catalog_bytes(json.dumps(many).encode())
    thread = start(db_path, catalog=catalog)
    client = ScimClient(thread.base_url, token=TOKEN)
    try:
        seen: list[str] = []
        start_index = 1
        while True:
            page = client.get(f"/Licenses?startIndex={start_index}&count=1000").body
            assert isinstance(page["totalResults"], int) and page["totalResults"] == 2500
            seen += [r["id"] for r in page["Resources"]]
            if not page["Resources"]:
                break
            assert page["itemsPerPage"] == len(page["Resources"])
            start_index += page["itemsPerPage"]
        assert seen == [f"lic-{i:05d}" for i in range(2500)]
    finally:
        client.close()
        thread.stop()


def test_an_unusable_stored_catalog_is_a_warning_and_stays_in_the_file(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    bad = {"resourceTypes": [{"id": "Role"}]}
    db_path.write_text(
        json.dumps({"_meta": {"1": {"format": 1, "next_seq": 1}}, "_catalog": {"1": bad}})
    )
    thread = start(db_path)
    try:
        assert thread.catalog().result(5) is None
        assert any("resourceTypes[0].name: is missing" in w for w in thread.warnings)
    finally:
        thread.stop()
    assert json.loads(db_path.read_text())["_catalog"] == {"1": bad}


def test_value_search_head_sort_and_attributes(served: tuple[ServerThread, ScimClient]) -> None:
    _, client = served
    search = client.post(
        "/Roles/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'id eq "role-viewer"',
        },
    )
    assert search.status == 200 and [r["id"] for r in search.body["Resources"]] == ["role-viewer"]
    head = client.request("HEAD", "/Roles")
    assert head.status == 200 and head.raw == b""
    ordered = client.get("/Roles?sortBy=displayName&sortOrder=descending").body
    assert [r["id"] for r in ordered["Resources"]] == ["role-viewer", "role-editor", "role-admin"]
    slim = client.get("/Roles?attributes=displayName&count=1").body["Resources"][0]
    assert set(slim) == {"schemas", "id", "displayName"}
    by_ext = client.get(
        "/Profiles?" + filter_query(f'{PROFILE_EXT}:customProfileProperty eq "helpdesk"')
    ).body
    assert [r["id"] for r in by_ext["Resources"]] == ["profile-support"]
    # Discovery stays unfilterable (RFC 7644 §4), catalog or not.
    assert client.get("/ResourceTypes?" + filter_query('id eq "Role"')).status == 403
