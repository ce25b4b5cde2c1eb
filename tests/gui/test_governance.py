"""The Governance tab with the real window and its real server, driven over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.core.catalog import parse_catalog
from scim_desktop.gui.models.resources import UsersModel
from scim_desktop.gui.widgets.governance_view import ID_COL, NAME_COL
from scim_desktop.gui.widgets.main_window import MainWindow
from tests.scim_client import ScimClient
from tests.server.test_okta_flows import okta_create_body

TOKEN = "gov-token"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PROFILE_EXT = "urn:acme:scim:schemas:extension:app:1.0:Profile"
USER_EXT = "urn:acme:scim:schemas:extension:app:1.0:User"

CATALOG: dict[str, Any] = {
    "resourceTypes": [
        {
            "id": "Role",
            "name": "Role",
            "endpoint": "/Roles",
            "description": "App roles",
            "schema": "urn:okta:scim:schemas:core:1.0:Role",
            "resources": [
                {"id": "role-admin", "displayName": "Administrator"},
                {"id": "role-viewer", "displayName": "Viewer"},
            ],
        },
        {
            "id": "License",
            "name": "License",
            "endpoint": "/Licenses",
            "schema": "urn:okta:scim:schemas:core:1.0:Entitlement",
            "resources": [{"id": "lic-pro", "displayName": "Pro", "type": "License"}],
        },
        {
            "id": "Profile",
            "name": "Profile",
            "endpoint": "/Profiles",
            "schema": "urn:okta:scim:schemas:core:1.0:Entitlement",
            "schemaExtensions": [{"schema": PROFILE_EXT, "required": True}],
            "resources": [
                {
                    "id": "p-1",
                    "displayName": "Profile 1",
                    "type": "Profile",
                    PROFILE_EXT: {"customProfileProperty": "north"},
                }
            ],
        },
    ],
    "userSchemaExtensions": [{"schema": USER_EXT, "required": False}],
    "schemas": [
        {
            "id": PROFILE_EXT,
            "name": "Profile",
            "attributes": [{"name": "customProfileProperty", "type": "string"}],
        },
        {
            "id": USER_EXT,
            "name": "AppUser",
            "attributes": [{"name": "costCenterCode", "type": "string"}],
        },
    ],
}


@pytest.fixture
def window(qtbot, tmp_path: Path, open_window) -> MainWindow:
    win = open_window(
        ServerConfig(port=0, db_path=tmp_path / "gov.json", auth=AuthConfig("bearer", token=TOKEN))
    )
    win.controller.server.set_catalog(parse_catalog(CATALOG)).result(10)
    qtbot.waitUntil(lambda: win.governance.catalog is not None, timeout=10000)
    return win


@pytest.fixture
def http(window: MainWindow):
    c = ScimClient(window.controller.server.base_url, token=TOKEN)
    yield c
    c.close()


def tree_texts(window: MainWindow) -> list[tuple[str, ...]]:
    """Every row of the catalog tree (depth-first) as its column texts."""
    tree = window.governance.tree
    rows: list[tuple[str, ...]] = []

    def walk(item) -> None:
        rows.append(tuple(item.text(c) for c in range(tree.columnCount())))
        for i in range(item.childCount()):
            walk(item.child(i))

    for i in range(tree.topLevelItemCount()):
        walk(tree.topLevelItem(i))
    return rows


def test_tab_shows_the_servers_catalog(qtbot, window: MainWindow) -> None:
    view = window.governance
    assert window.tabs.tabText(window.tabs.indexOf(view)) == "Governance"
    assert view.stack.currentIndex() == 1  # the tree, not the empty state
    rows = tree_texts(window)
    names = [r[NAME_COL] for r in rows]
    assert names[:3] == ["Role", "Administrator", "Viewer"]
    assert rows[names.index("Pro")][:2] == ("Pro", "lic-pro")
    # The Profile type's extension attribute, and the value's extension object.
    assert "customProfileProperty: north" in rows[names.index("Profile 1")][3]
    assert "customProfileProperty" in names
    assert "User profile attributes" in names and "costCenterCode" in names
    assert "3 types · 4 values" in view.summary.text()

    # A window opened later reads the catalog from the server (not only from events).
    view.set_catalog_json(None)
    assert view.stack.currentIndex() == 0 and view.catalog is None
    view.load()
    qtbot.waitUntil(lambda: view.catalog is not None, timeout=10000)
    assert [t["id"] for t in view.types()] == ["Role", "License", "Profile"]


def test_add_rename_delete_reach_the_server(qtbot, window: MainWindow, http) -> None:
    view = window.governance
    assert view.add_value("Role", "Auditor", "role-auditor", "Reads everything")
    qtbot.waitUntil(lambda: view.value_item("Role", "role-auditor") is not None, timeout=10000)
    listed = http.get("/Roles?startIndex=1&count=100").body
    assert {"role-auditor": "Auditor"}.items() <= {
        r["id"]: r["displayName"] for r in listed["Resources"]
    }.items()
    assert listed["totalResults"] == 3

    # Rename in place, as the tree's editor does (itemChanged).
    item = view.value_item("Role", "role-auditor")
    item.setText(NAME_COL, "Compliance Auditor")
    qtbot.waitUntil(
        lambda: http.get("/Roles/role-auditor").body.get("displayName") == "Compliance Auditor",
        timeout=10000,
    )
    assert view.value_item("Role", "role-auditor").text(NAME_COL) == "Compliance Auditor"

    # A value of a type with a required extension gets one (the server's parser insists).
    assert view.add_value("Profile", "Profile 2")
    qtbot.waitUntil(lambda: http.get("/Profiles/profile-2").status == 200, timeout=10000)

    assert view.delete_value("Role", "role-auditor")
    qtbot.waitUntil(lambda: http.get("/Roles/role-auditor").status == 404, timeout=10000)
    qtbot.waitUntil(lambda: view.value_item("Role", "role-auditor") is None, timeout=10000)

    assert view.add_type("Feature flag", "urn:okta:scim:schemas:core:1.0:Entitlement")
    qtbot.waitUntil(lambda: view.find_type("FeatureFlag") is not None, timeout=10000)
    types = http.get("/ResourceTypes").body["Resources"]
    assert "/FeatureFlags" in [t["endpoint"] for t in types]
    # Added values start with no holders.
    assert view.value_item("Role", "role-admin").text(ID_COL) == "role-admin"


def test_holders_follow_grants_and_revokes_over_http(qtbot, window: MainWindow, http) -> None:
    view = window.governance
    ids = []
    for i in range(3):
        created = http.post("/Users", okta_create_body(f"h{i}@example.com"))
        assert created.status == 201
        ids.append(created.body["id"])
    qtbot.waitUntil(lambda: window.users.model.rowCount() == 3, timeout=10000)
    assert view.select_value("Role", "role-admin")
    assert view.holders_model.ids() == []

    role = {"value": "role-admin", "display": "Administrator"}
    lic = {"value": "lic-pro", "display": "Pro", "type": "License"}
    for uid in ids[:2]:
        body = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "roles", "value": [role]}]}
        assert http.patch(f"/Users/{uid}", body).status == 200
    body = {
        "schemas": [PATCH],
        "Operations": [{"op": "add", "path": "entitlements", "value": [lic]}],
    }
    assert http.patch(f"/Users/{ids[0]}", body).status == 200
    qtbot.waitUntil(lambda: sorted(view.holders_model.ids()) == sorted(ids[:2]), timeout=10000)
    assert view.value_item("Role", "role-admin").text(2) == "2"
    assert view.holders_subtitle.text().endswith("2 holders")

    # Click a holder: its grants, roles and entitlements.
    assert view.select_holder(ids[0])
    assert sorted(view.grant_texts()) == ["Administrator", "Pro"]

    # The Users tab shows them too.
    row = window.users.model.row_of(ids[0])
    cell = window.users.model.index(row, UsersModel.ROLES).data(Qt.ItemDataRole.DisplayRole)
    assert cell == "Administrator"
    cell = window.users.model.index(row, UsersModel.ENTITLEMENTS).data()
    assert cell == "Pro"

    # A custom user attribute shows beside the grants and in the Users tab.
    custom = {
        "schemas": [PATCH],
        "Operations": [{"op": "add", "value": {f"{USER_EXT}:costCenterCode": "CC-7"}}],
    }
    assert http.patch(f"/Users/{ids[0]}", custom).status == 200
    qtbot.waitUntil(lambda: "costCenterCode: CC-7" in view.user_attributes.text(), timeout=10000)
    row = window.users.model.row_of(ids[0])
    assert window.users.model.index(row, UsersModel.CUSTOM).data() == "costCenterCode: CC-7"
    # A value removed from the catalog stays granted, flagged.
    assert view.delete_value("License", "lic-pro")
    qtbot.waitUntil(lambda: view.value_item("License", "lic-pro") is None, timeout=10000)
    assert view.select_value("Role", "role-admin") and view.select_holder(ids[0])
    assert "Pro  (not in the catalog)" in view.grant_texts()

    # Okta revokes with a value filter.
    remove = {
        "schemas": [PATCH],
        "Operations": [{"op": "remove", "path": 'roles[value eq "role-admin"]'}],
    }
    assert http.patch(f"/Users/{ids[1]}", remove).status == 200
    qtbot.waitUntil(lambda: view.holders_model.ids() == [ids[0]], timeout=10000)
    # Deleting a holder removes it from the lists.
    assert http.delete(f"/Users/{ids[0]}").status == 204
    qtbot.waitUntil(lambda: view.holders_model.ids() == [], timeout=10000)
    assert view.value_item("Role", "role-admin").text(2) == "0"


def test_import_of_a_bad_file_is_one_line_and_changes_nothing(
    qtbot, window: MainWindow, http, tmp_path: Path
) -> None:
    view = window.governance
    bad = json.loads(json.dumps(CATALOG))
    bad["resourceTypes"][1]["endpoint"] = "/Users"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert not view.import_file(path)
    text = view.message.text()
    assert "resourceTypes[1].endpoint" in text and "bad.json" in text and "\n" not in text
    assert http.get("/Licenses?startIndex=1&count=1").status == 200  # still served

    (tmp_path / "broken.json").write_text("{not json")
    assert not view.import_file(tmp_path / "broken.json")
    assert "not valid JSON" in view.message.text() and "\n" not in view.message.text()


def test_export_then_import_round_trips(qtbot, window: MainWindow, http, tmp_path: Path) -> None:
    view = window.governance
    path = tmp_path / "out.json"
    assert view.export_file(path)
    exported = json.loads(path.read_text())
    assert [t["id"] for t in exported["resourceTypes"]] == ["Role", "License", "Profile"]

    exported["resourceTypes"] = exported["resourceTypes"][:1]
    path.write_text(json.dumps(exported))
    assert view.import_file(path)
    qtbot.waitUntil(lambda: len(view.types()) == 1, timeout=10000)
    assert http.get("/Licenses?startIndex=1&count=1").status == 404


def test_add_user_form_has_the_catalogs_custom_attributes(qtbot, window: MainWindow, http) -> None:
    users = window.users
    assert users.custom_attributes == [(USER_EXT, "costCenterCode", "string", "")]
    dialog = users.add_user()
    field = dialog.custom_fields[(USER_EXT, "costCenterCode")]
    dialog.user_name.setText("custom@example.com")
    field.setText("CC-42")
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10000)
    query = "filter=userName%20eq%20%22custom%40example.com%22"
    person = http.get(f"/Users?{query}").body["Resources"][0]
    assert person[USER_EXT] == {"costCenterCode": "CC-42"}
    assert USER_EXT in person["schemas"]
    # The detail pane beside the table shows the custom attribute of the selected user.
    qtbot.waitUntil(lambda: users.select_id(person["id"]), timeout=10000)
    text = users.detail.toPlainText()
    assert "costCenterCode" in text and "CC-42" in text and USER_EXT in text
    assert "Roles (0)" in text


def test_simulate_okta_tells_the_oig_story(qtbot, window: MainWindow) -> None:
    window.simulate_okta()
    qtbot.waitUntil(lambda: not window._sim_thread.is_alive(), timeout=60000)
    qtbot.waitUntil(
        lambda: any(r.path.endswith("/Roles") for r in window.requests.shown_records()),
        timeout=10000,
    )
    paths = [r.path.removeprefix("/scim/v2") for r in window.requests.shown_records()]
    assert paths.index("/ResourceTypes") < paths.index("/Schemas") < paths.index("/Roles")
    view = window.governance
    view.flush()
    # The simulator granted Administrator to Jane, then revoked it; Ravi keeps it.
    qtbot.waitUntil(lambda: view.index.count("roles", "role-admin") == 1, timeout=10000)
    assert view.select_value("Role", "role-admin")
    holder = window.users.model.resource_by_id(view.holders_model.ids()[0])
    assert holder["userName"] == "ravi.patel@example.com"


def test_a_restart_keeps_the_tabs_edits_over_the_catalog_option(qtbot, tmp_path: Path) -> None:
    """``gui --catalog FILE`` stores the file's catalog once; a restart from the window (Start,
    Settings) serves the stored catalog with the Governance tab's edits, not the file again."""
    config = ServerConfig(
        port=0,
        db_path=tmp_path / "gov.json",
        auth=AuthConfig("bearer", token=TOKEN),
        catalog=parse_catalog(CATALOG),
    )
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(config, settings=settings)
    qtbot.addWidget(win)
    try:
        win.start_server()
        qtbot.waitUntil(lambda: win.governance.catalog is not None, timeout=15000)
        assert win.config.catalog is None  # applied once
        assert win.governance.add_value("Role", "Auditor", "role-auditor")
        qtbot.waitUntil(
            lambda: win.governance.value_item("Role", "role-auditor") is not None, timeout=10000
        )
        win.stop_server()
        qtbot.waitUntil(lambda: win.controller.state == "stopped", timeout=15000)
        win.start_server()
        qtbot.waitUntil(lambda: win.controller.state == "listening", timeout=15000)
        http = ScimClient(win.controller.server.base_url, token=TOKEN)
        try:
            assert http.get("/Roles/role-auditor").status == 200
        finally:
            http.close()
    finally:
        win.close()
