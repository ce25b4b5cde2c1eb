"""okta_sim against a real server: the OIG discovery sequence, grants and revokes."""

from __future__ import annotations

import time

from scim_desktop.core.catalog import parse_catalog
from scim_desktop.okta_sim import OKTA_USER_AGENT, OktaSimulator
from scim_desktop.server.events import RequestRecord
from scim_desktop.server.runner import ServerThread
from tests.conftest import TOKEN, RecordingSink
from tests.gui.test_governance import CATALOG
from tests.scim_client import ScimClient


def requests_of(sink: RecordingSink) -> list[RequestRecord]:
    return [e for e in sink.events if isinstance(e, RequestRecord)]


def test_demo_with_a_catalog_discovers_grants_and_revokes(
    server: ServerThread, sink: RecordingSink, client: ScimClient
) -> None:
    big = {**CATALOG, "resourceTypes": [dict(t) for t in CATALOG["resourceTypes"]]}
    # 150 licenses: the import takes two pages of 100.
    big["resourceTypes"][1]["resources"] = [
        {"id": f"lic-{i:03d}", "displayName": f"License {i}", "type": "License"} for i in range(150)
    ]
    server.set_catalog(parse_catalog(big)).result(10)
    sim = OktaSimulator(server.base_url, token=TOKEN)
    sim.run_demo()

    records = requests_of(sink)
    assert all(r.status < 500 for r in records)
    assert all(r.request_headers.get("User-Agent") == OKTA_USER_AGENT for r in records)
    calls = [(r.method, r.path.removeprefix("/scim/v2"), r.query) for r in records]
    gets = [(p, q) for m, p, q in calls if m == "GET"]
    at = gets.index(("/ResourceTypes", ""))
    assert gets[at + 1] == ("/Schemas", "")
    # Each endpoint: the Runscope check, then pages of 100 in order.
    assert gets[at + 2 : at + 4] == [
        ("/Roles", "count=1&startIndex=1"),
        ("/Roles", "startIndex=1&count=100"),
    ]
    assert gets[at + 4 : at + 7] == [
        ("/Licenses", "count=1&startIndex=1"),
        ("/Licenses", "startIndex=1&count=100"),
        ("/Licenses", "startIndex=101&count=100"),
    ]
    assert ("/Profiles", "count=1&startIndex=1") in gets
    check = next(r for r in records if r.query == "count=1&startIndex=1")
    assert check.status == 200 and '"itemsPerPage":1' in check.response_body.replace(" ", "")

    patches = [
        r
        for r in records
        if r.method == "PATCH" and '"path":"roles' in r.request_body.replace(" ", "")
    ]
    assert patches and all(r.status in (200, 204) for r in patches)
    assert any('roles[value eq \\"role-admin\\"]' in r.request_body for r in patches)
    puts = [r for r in records if r.method == "PUT" and '"entitlements"' in r.request_body]
    assert puts and puts[-1].status == 200

    # What the server holds afterwards: the first user lost the role it was granted, the
    # second holds one, the third got its grants by PUT.
    users = client.get("/Users?startIndex=1&count=100").body["Resources"]
    by_name = {u["userName"]: u for u in users}
    first, second, third = (
        by_name[n]
        for n in ("jane.doe@example.com", "ravi.patel@example.com", "sofia.garcia@example.com")
    )
    assert "role-admin" not in [g["value"] for g in first.get("roles", [])]
    assert [g["value"] for g in second["roles"]] == ["role-admin"]
    assert third["roles"] and third["entitlements"][0]["type"] == "License"


def test_demo_without_a_catalog_sends_no_oig_requests(
    server: ServerThread, sink: RecordingSink
) -> None:
    OktaSimulator(server.base_url, token=TOKEN, governance=False).run_demo()
    paths = [r.path for r in requests_of(sink)]
    assert paths and not any(p.endswith(("/ResourceTypes", "/Schemas")) for p in paths)
    # Detecting (the default) asks /ResourceTypes once and stops there.
    sink.events.clear()
    assert OktaSimulator(server.base_url, token=TOKEN).run_governance([{"id": "x"}]) is False

    # A record is published after its answer is sent: wait for it. (The demo's last /Users
    # record may also land after the clear: not counted.)
    def oig_paths() -> list[str]:
        paths = [r.path.removeprefix("/scim/v2") for r in requests_of(sink)]
        return [p for p in paths if not p.startswith("/Users")]

    deadline = time.monotonic() + 10
    while not oig_paths() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # anything sent after it would be published by now
    assert oig_paths() == ["/ResourceTypes"]
