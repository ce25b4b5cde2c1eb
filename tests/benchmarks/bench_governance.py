"""Governance tab benchmark: the holder index and the tab with 10,000 users and a catalog.

Prints what the Governance tab costs the GUI thread: building the holder index from 10,000
users (a snapshot), a batch of 1,000 Okta grants applied to the Users model (the index follows
its signals), the tab's refresh after that batch, and a catalog of 10,000 values shown in the
tree. No server: the models are fed the way the bridge feeds them.

    python tests/benchmarks/bench_governance.py [--users 10000] [--values 10000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from scim_desktop.gui.bridge import QtEventSink
from scim_desktop.gui.controller import ServerController
from scim_desktop.gui.models.resources import UsersModel
from scim_desktop.gui.widgets.governance_view import GovernanceView
from scim_desktop.server.events import ResourceChanged

ROLE = "urn:okta:scim:schemas:core:1.0:Role"
ENTITLEMENT = "urn:okta:scim:schemas:core:1.0:Entitlement"


def ms(start: float) -> str:
    return f"{(time.perf_counter() - start) * 1000:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--values", type=int, default=10_000)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    users = UsersModel()
    view = GovernanceView(ServerController(QtEventSink()), users)
    view.resize(1400, 800)
    view.show()
    catalog = {
        "resourceTypes": [
            {
                "id": "Role",
                "name": "Role",
                "endpoint": "/Roles",
                "schema": ROLE,
                "resources": [{"id": f"r{i}", "displayName": f"Role {i}"} for i in range(5)],
            },
            {
                "id": "License",
                "name": "License",
                "endpoint": "/Licenses",
                "schema": ENTITLEMENT,
                "resources": [
                    {"id": f"e{i}", "displayName": f"License {i}", "type": "License"}
                    for i in range(args.values)
                ],
            },
        ]
    }
    start = time.perf_counter()
    view.set_catalog_json(catalog)
    app.processEvents()
    print(f"catalog of {args.values + 5:,} values into the tree   {ms(start)}")

    people = [
        {
            "id": f"u{i}",
            "userName": f"user{i}@example.com",
            "roles": [{"value": f"r{i % 5}", "display": f"Role {i % 5}"}],
            "entitlements": [{"value": f"e{i % args.values}", "type": "License"}],
        }
        for i in range(args.users)
    ]
    start = time.perf_counter()
    users.load(people)
    print(f"snapshot of {args.users:,} users (model + holder index)  {ms(start)}")
    start = time.perf_counter()
    view.flush()
    print(f"tab refresh after the snapshot              {ms(start)}")
    view.select_value("Role", "r0")
    app.processEvents()

    grants = [
        ResourceChanged("updated", "User", f"u{i}", {**people[i], "roles": [{"value": "r0"}]})
        for i in range(0, args.users, max(1, args.users // 1000))
    ]
    start = time.perf_counter()
    users.apply_events(grants)
    print(f"batch of {len(grants):,} grants (model + holder index)    {ms(start)}")
    start = time.perf_counter()
    view.flush()
    app.processEvents()
    print(f"tab refresh after the batch (r0 selected)   {ms(start)}")
    print(f"holders of r0: {view.index.count('roles', 'r0'):,}")


if __name__ == "__main__":
    main()
