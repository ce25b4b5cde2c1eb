"""Users and Groups: the table models, and the views following a real embedded server.

The models are fed ResourceChanged batches exactly as the event bridge delivers them; the
views run against a real ServerThread on an ephemeral port, driven with real HTTP requests
from a helper thread, and every edit made in the window is checked over HTTP afterwards.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QInputDialog, QMessageBox

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.gui.bridge import QtEventSink
from scim_desktop.gui.controller import ServerController
from scim_desktop.gui.models.resource_table import (
    FADE_ROWS_PER_TICK,
    INSERT_IN_PLACE_UP_TO,
    IdRole,
    ResourceFilterProxy,
    ResourceRole,
    collation_key,
)
from scim_desktop.gui.models.resources import GroupsModel, UsersModel
from scim_desktop.gui.widgets.groups_view import GroupsView
from scim_desktop.gui.widgets.json_editor import JsonEditorDialog
from scim_desktop.gui.widgets.users_view import UsersView
from scim_desktop.server.events import RequestRecord, ResourceChanged
from tests.scim_client import ScimClient

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
BG = Qt.ItemDataRole.BackgroundRole
DISPLAY = Qt.ItemDataRole.DisplayRole


# --- data ------------------------------------------------------------------------------------
def user(
    n: int, *, active: bool = True, name: str | None = None, groups: list | None = None
) -> dict[str, Any]:
    rid = f"u{n:05d}"
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": rid,
        "userName": name or f"user{n}@example.com",
        "name": {"givenName": f"Given{n}", "familyName": f"Family{n}"},
        "emails": [
            {"value": f"other{n}@example.com", "type": "home"},
            {"value": f"user{n}@example.com", "type": "work", "primary": True},
        ],
        "active": active,
        "externalId": f"00u{n:08d}",
        "meta": {
            "resourceType": "User",
            "created": "2026-11-29T10:00:00.000Z",
            "lastModified": "2026-11-29T11:30:00.000Z",
            "version": 'W/"1"',
        },
    }
    if groups:
        body["groups"] = [{"value": g, "display": d, "type": "direct"} for g, d in groups]
    return body


def group(n: int, members: list[str], name: str | None = None) -> dict[str, Any]:
    return {
        "schemas": [GROUP_SCHEMA],
        "id": f"g{n:03d}",
        "displayName": name or f"Group {n}",
        "members": [{"value": m, "display": f"{m}@example.com", "type": "User"} for m in members],
        "meta": {"resourceType": "Group", "lastModified": "2026-11-29T11:30:00.000Z"},
    }


def created(r: dict[str, Any], rtype: str = "User") -> ResourceChanged:
    return ResourceChanged("created", rtype, r["id"], r)


def updated(r: dict[str, Any], rtype: str = "User") -> ResourceChanged:
    return ResourceChanged("updated", rtype, r["id"], r)


def deleted(rid: str, rtype: str = "User") -> ResourceChanged:
    return ResourceChanged("deleted", rtype, rid, None)


class Signals:
    """Counts a model's structural signals."""

    def __init__(self, model: Any) -> None:
        self.inserted: list[tuple[int, int]] = []
        self.removed: list[tuple[int, int]] = []
        self.changed: list[tuple[int, int]] = []
        self.resets = 0
        model.rowsInserted.connect(lambda _p, a, b: self.inserted.append((a, b)))
        model.rowsRemoved.connect(lambda _p, a, b: self.removed.append((a, b)))
        model.dataChanged.connect(lambda a, b, *_: self.changed.append((a.row(), b.row())))
        model.modelReset.connect(self._reset)

    def _reset(self) -> None:
        self.resets += 1


def assert_consistent(model: UsersModel | GroupsModel) -> None:
    """The id -> row map matches the rows exactly."""
    ids = [model.resource_id(r) for r in range(model.rowCount())]
    assert len(set(ids)) == len(ids)
    for row, rid in enumerate(ids):
        assert model.row_of(rid) == row
        assert model.resource(row)["id"] == rid
        assert model.index(row, 0).data(ResourceRole)["id"] == rid


def cell(model: Any, row: int, column: int) -> Any:
    return model.index(row, column).data(DISPLAY)


# --- models ----------------------------------------------------------------------------------
def test_models_pass_the_model_tester(qtmodeltester) -> None:
    users = UsersModel()
    users.load([user(i, active=i % 3 != 0, groups=[("g001", "Sales")]) for i in range(30)])
    qtmodeltester.check(users)
    groups = GroupsModel()
    groups.load([group(i, [f"u{j:05d}" for j in range(i)]) for i in range(8)])
    qtmodeltester.check(groups)
    proxy = ResourceFilterProxy()
    proxy.setSourceModel(users)
    proxy.sort(UsersModel.EMAIL, Qt.SortOrder.DescendingOrder)
    proxy.set_search("user1")
    qtmodeltester.check(proxy)
    # Live changes while the tester watches.
    users.apply_events([created(user(100)), updated(user(3, active=False)), deleted("u00004")])
    users.apply_events([ResourceChanged("cleared", "*", "*", None)])
    assert users.rowCount() == 0


def test_user_columns() -> None:
    model = UsersModel()
    model.load(
        [
            user(1, groups=[("g2", "Sales"), ("g1", "Engineering")]),
            user(2, active=False),
            {"id": "bare", "userName": "bare@example.com", "displayName": "Bare Bones"},
        ]
    )
    assert cell(model, 0, UsersModel.USERNAME) == "user1@example.com"
    assert cell(model, 0, UsersModel.NAME) == "Given1 Family1"
    assert cell(model, 0, UsersModel.EMAIL) == "user1@example.com"  # the primary one
    assert cell(model, 0, UsersModel.ACTIVE) == "✓"
    assert cell(model, 1, UsersModel.ACTIVE) == "✗"
    assert cell(model, 0, UsersModel.EXTERNAL_ID) == "00u00000001"
    assert cell(model, 0, UsersModel.GROUPS) == "Engineering, Sales"
    assert len(cell(model, 0, UsersModel.CREATED)) == len("2026-11-29 10:00")
    assert cell(model, 2, UsersModel.NAME) == "Bare Bones"
    assert cell(model, 2, UsersModel.EMAIL) == ""
    assert model.index(0, UsersModel.ACTIVE).data(Qt.ItemDataRole.ForegroundRole) is not None


def test_group_columns() -> None:
    model = GroupsModel()
    model.load([group(1, [f"u{j:05d}" for j in range(5)], "Engineering"), group(2, [])])
    assert cell(model, 0, GroupsModel.DISPLAY_NAME) == "Engineering"
    assert cell(model, 0, GroupsModel.MEMBERS) == "5"
    assert cell(model, 0, GroupsModel.MEMBER_NAMES) == (
        "u00000@example.com, u00001@example.com, u00002@example.com, +2 more"
    )
    assert cell(model, 1, GroupsModel.MEMBERS) == "0"
    assert cell(model, 1, GroupsModel.MEMBER_NAMES) == ""
    # The member count sorts as a number.
    model.apply_events([created(group(3, [f"u{j:05d}" for j in range(1200)]), "Group")])
    assert cell(model, 2, GroupsModel.MEMBERS) == "1,200"
    proxy = ResourceFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(GroupsModel.MEMBERS, Qt.SortOrder.DescendingOrder)
    assert [proxy.index(r, GroupsModel.MEMBERS).data() for r in range(3)] == ["1,200", "5", "0"]


def test_a_batch_of_1000_creations_is_one_row_insertion() -> None:
    model = UsersModel()
    model.load([user(i) for i in range(10)])
    seen = Signals(model)
    model.apply_events([created(user(i)) for i in range(10, 1010)])
    assert seen.inserted == [(10, 1009)]
    assert seen.resets == 0 and not seen.removed
    assert model.rowCount() == 1010
    assert model.resource(1009)["id"] == "u01009"  # appended in arrival order
    assert_consistent(model)


def test_changes_are_coalesced_by_id_last_state_wins() -> None:
    model = UsersModel()
    model.load([user(1)])
    seen = Signals(model)
    model.apply_events(
        [
            created(user(2)),
            updated(user(2, name="renamed@example.com")),
            updated(user(1, active=False)),
            updated(user(1, active=True, name="back@example.com")),
            created(user(3)),
            deleted("u00003"),  # created and deleted in one batch: never shown
            RequestRecord(1, "", "GET", "/Users", "", 200, 1.0, "", {}, "", {}, ""),
            created(group(1, []), "Group"),  # another type: ignored here
        ]
    )
    assert model.rowCount() == 2
    assert seen.inserted == [(1, 1)]
    assert cell(model, 1, UsersModel.USERNAME) == "renamed@example.com"
    assert cell(model, 0, UsersModel.USERNAME) == "back@example.com"
    assert seen.changed == [(0, 0)]
    assert_consistent(model)


def test_updates_signal_only_the_changed_rows() -> None:
    model = UsersModel()
    model.load([user(i) for i in range(100)])
    seen = Signals(model)
    model.apply_events([updated(user(i, active=False)) for i in (5, 6, 7, 50, 90)])
    assert seen.changed == [(5, 7), (50, 50), (90, 90)]
    assert not seen.inserted and not seen.removed and seen.resets == 0
    assert cell(model, 6, UsersModel.ACTIVE) == "✗"


def test_updates_of_shown_rows_name_the_changed_columns() -> None:
    """A sorting proxy re-checks the order only when its sort column is in the range."""
    model = UsersModel()
    model.load([user(i) for i in range(10)])
    for row in range(10):
        model.index(row, 0).data()  # painted (or sorted): the model knows what was shown
    got: list[tuple[int, int, int, int, list]] = []
    model.dataChanged.connect(
        lambda a, b, roles=(): got.append((a.row(), a.column(), b.row(), b.column(), list(roles)))
    )
    model.apply_events([updated(user(4, active=False)), updated(user(5, active=False))])
    active = UsersModel.ACTIVE
    assert got[0] == (4, active, 5, active, [])
    # ... and the rest of the rows is repainted for the highlight.
    assert got[1] == (4, 0, 5, len(UsersModel.COLUMNS) - 1, [int(BG)])


def test_deletions_keep_the_id_map_consistent() -> None:
    model = UsersModel()
    model.load([user(i) for i in range(500)])
    seen = Signals(model)
    gone = [3, 4, 5, 100, 101, 250, 499]
    model.apply_events([deleted(f"u{i:05d}") for i in gone] + [deleted("unknown")])
    assert model.rowCount() == 493
    assert seen.resets == 0
    assert sorted(seen.removed, reverse=True) == seen.removed  # bottom up, one per run
    assert len(seen.removed) == 4
    assert model.row_of("u00003") is None
    assert model.row_of("u00006") == 3
    assert_consistent(model)
    # Many deletions at once (more than remain): one reset instead of hundreds of removals.
    model.apply_events([deleted(f"u{i:05d}") for i in range(6, 480)])
    assert seen.resets == 1
    assert model.rowCount() == 493 - (480 - 6 - 3)  # 100, 101 and 250 were gone already
    assert_consistent(model)
    # A deletion and a creation in the same batch.
    model.apply_events([deleted("u00000"), created(user(1000)), updated(user(2, active=False))])
    assert model.row_of("u00000") is None and model.row_of("u01000") is not None
    assert_consistent(model)


def test_cleared_empties_and_later_events_in_the_batch_apply() -> None:
    model = UsersModel()
    model.load([user(i) for i in range(20)])
    seen = Signals(model)
    model.apply_events([ResourceChanged("cleared", "*", "*", None)])
    assert model.rowCount() == 0 and seen.resets == 1
    model.load([user(i) for i in range(20)])
    model.apply_events(
        [updated(user(1)), ResourceChanged("cleared", "*", "*", None), created(user(7))]
    )
    assert model.rowCount() == 1 and model.row_of("u00007") == 0
    assert_consistent(model)


def test_events_held_during_a_snapshot_are_applied_on_top_of_it() -> None:
    model = UsersModel()
    model.hold_events()
    # Arrive while the snapshot is on its way: one already in it, one newer, one deleted.
    model.apply_events([created(user(1)), created(user(2, name="new@example.com"))])
    model.apply_events([deleted("u00003")])
    assert model.rowCount() == 0
    model.load([user(1), user(2), user(3)])
    assert [model.resource_id(r) for r in range(model.rowCount())] == ["u00001", "u00002"]
    assert cell(model, 1, UsersModel.USERNAME) == "new@example.com"
    assert_consistent(model)


def test_changed_rows_are_highlighted_then_fade(qtbot) -> None:
    model = UsersModel(fade_ms=250)
    model.load([user(i) for i in range(5)])
    assert model.index(2, 0).data(BG) is None  # loading is not a change
    model.apply_events([updated(user(2, active=False)), created(user(9))])
    assert model.index(2, 0).data(BG) is not None
    assert model.index(5, 3).data(BG) is not None
    assert model.index(1, 0).data(BG) is None
    repaints = Signals(model)
    qtbot.waitUntil(lambda: model.index(2, 0).data(BG) is None, timeout=3000)
    assert model.index(5, 0).data(BG) is None
    qtbot.waitUntil(lambda: not model._fade_timer.isActive(), timeout=3000)
    # The timer repainted only the two fading rows.
    assert repaints.changed and {r for pair in repaints.changed for r in pair} <= {2, 5}


def test_many_fading_rows_take_turns_and_all_clear(qtbot) -> None:
    model = UsersModel(fade_ms=200)
    model.load([user(i) for i in range(3000)])
    ticks: list[set[int]] = []
    model._fade_timer.timeout.connect(lambda: ticks.append(set()))
    model.dataChanged.connect(
        lambda a, b, *_: ticks[-1].update(range(a.row(), b.row() + 1)) if ticks else None
    )
    model.apply_events([updated(user(i, active=False)) for i in range(0, 3000, 2)])
    qtbot.waitUntil(lambda: not model._fade_timer.isActive(), timeout=5000)
    assert all(model.index(r, 0).data(BG) is None for r in range(0, 3000, 2))
    assert max(len(t) for t in ticks) <= FADE_ROWS_PER_TICK  # bounded work per tick
    # Every changed row was repainted (the last time after its highlight ended).
    assert set().union(*ticks) == set(range(0, 3000, 2))


def test_proxy_search_and_sort() -> None:
    model = UsersModel()
    model.load([user(i, groups=[("g1", "Sales")] if i % 2 else None) for i in range(20)])
    proxy = ResourceFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_search("SALES user1")  # every word, any column, any case
    assert sorted(proxy.resource(r)["id"] for r in range(proxy.rowCount())) == [
        "u00001",
        "u00011",
        "u00013",
        "u00015",
        "u00017",
        "u00019",
    ]
    proxy.set_search("")
    proxy.sort(UsersModel.USERNAME, Qt.SortOrder.DescendingOrder)
    assert proxy.index(0, 0).data() == "user9@example.com"
    model.apply_events([created(user(99, name="zzz@example.com"))])
    assert proxy.index(0, 0).data() == "zzz@example.com"  # sorted as it arrives
    proxy.set_exclude_ids(["u00099"])
    assert proxy.rowCount() == 20


def names(model: Any) -> list[str]:
    return [cell(model, r, UsersModel.USERNAME) for r in range(model.rowCount())]


def test_model_sorts_itself_and_keeps_its_order(qtmodeltester) -> None:
    """Header clicks reach the model (the proxy keeps its order): text sorts ignoring case
    with accents after their letter, ties keep arrival order, -1 is arrival order again,
    and rows that arrive or change move to their place."""
    model = UsersModel()
    proxy = ResourceFilterProxy()
    proxy.setSourceModel(model)
    spellings = ["bob", "Alice", "\u00c9mile", "alice", "emma", "zed", "Eve"]
    model.load([user(i, name=n) for i, n in enumerate(spellings)])
    proxy.sort(UsersModel.USERNAME)
    assert proxy.sortColumn() == -1 and model.sort_column() == UsersModel.USERNAME
    assert names(model) == ["Alice", "alice", "bob", "\u00c9mile", "emma", "Eve", "zed"]
    assert [proxy.index(r, 0).data() for r in range(proxy.rowCount())] == names(model)
    assert_consistent(model)
    proxy.sort(UsersModel.USERNAME, Qt.SortOrder.DescendingOrder)
    assert names(model) == ["zed", "Eve", "emma", "\u00c9mile", "bob", "Alice", "alice"]
    # Arrivals and changes take their place; a selection-like persistent index follows.
    tracked = QPersistentModelIndex(model.index(names(model).index("bob"), 0))
    arrivals = [created(user(20, name="aaron")), created(user(21, name="yves"))]
    model.apply_events([*arrivals, updated(user(0, name="zz-bob"))])
    assert names(model) == [
        "zz-bob",
        "zed",
        "yves",
        "Eve",
        "emma",
        "\u00c9mile",
        "Alice",
        "alice",
        "aaron",
    ]
    assert tracked.row() == 0 and tracked.data() == "zz-bob"
    model.apply_events([deleted("u00006")])  # Eve
    assert "Eve" not in names(model)
    assert_consistent(model)
    qtmodeltester.check(model)
    # Arrival order again, the two new users last.
    proxy.sort(-1)
    arrival = ["zz-bob", "Alice", "\u00c9mile", "alice", "emma", "zed", "aaron", "yves"]
    assert names(model) == arrival
    # A snapshot load keeps the chosen order.
    proxy.sort(UsersModel.USERNAME)
    model.load([user(i, name=n) for i, n in enumerate(["c", "a", "b"])])
    assert names(model) == ["a", "b", "c"]


@pytest.mark.parametrize("batch", [3, INSERT_IN_PLACE_UP_TO + 1])
def test_sorted_model_places_arrivals_one_by_one_or_with_one_layout_change(
    qtmodeltester, batch: int
) -> None:
    model = UsersModel()
    model.load([user(i, name=f"name{i:03d}") for i in range(0, 200, 2)])
    model.sort(UsersModel.USERNAME, Qt.SortOrder.DescendingOrder)
    layouts: list[int] = []
    model.layoutChanged.connect(lambda *_: layouts.append(1))
    seen = Signals(model)
    tracked = QPersistentModelIndex(model.index(10, 0))
    name = tracked.data()
    odd = [created(user(i, name=f"name{i:03d}")) for i in range(1, 2 * batch, 2)]
    model.apply_events(list(reversed(odd)))
    assert names(model) == sorted(names(model), reverse=True)
    assert tracked.data() == name  # the same user, wherever its row went
    if batch <= INSERT_IN_PLACE_UP_TO:
        assert not layouts and len(seen.inserted) == batch  # each at its place
    else:
        assert len(layouts) == 1 and len(seen.inserted) == 1  # appended, then sorted
    assert_consistent(model)
    qtmodeltester.check(model)
    # A change that keeps the row between its neighbours moves nothing.
    layouts.clear()
    model.apply_events([updated(user(0, name="name000", active=False))])
    assert not layouts and names(model)[-1] == "name000"


def test_sorted_model_survives_a_batch_that_deletes_most_rows_and_creates_many() -> None:
    """Removing most rows rebuilds the model's lists (one reset); the sort keys must follow."""
    model = UsersModel()
    model.load([user(i, name=f"n{i:03d}") for i in range(150)])
    model.sort(UsersModel.USERNAME)
    gone = [deleted(f"u{i:05d}") for i in range(120)]
    arrivals = [created(user(1000 + i, name=f"a{i:02d}")) for i in range(40)]
    model.apply_events(gone + arrivals)
    assert names(model) == sorted(names(model)) and model.rowCount() == 70
    model.apply_events([created(user(5000, name="b")), updated(user(149, name="0-first"))])
    assert names(model)[:2] == ["0-first", "a00"] and names(model) == sorted(names(model))
    assert_consistent(model)


@pytest.mark.parametrize("seed", range(2))
def test_sorted_model_stays_consistent_under_random_batches(seed: int, qtlog) -> None:
    """Random batches (creates, updates, deletes, mass deletions, "cleared"), sort changes
    and snapshot loads: after every step the rows are in the expected order (computed
    independently), the model's lists agree, and Qt's model tester (watching every signal
    of the model and of a proxy over it) has nothing to say."""
    rnd = random.Random(seed)
    model = UsersModel()
    proxy = ResourceFilterProxy()
    proxy.setSourceModel(model)
    testers = [
        QAbstractItemModelTester(m, QAbstractItemModelTester.FailureReportingMode.Warning)
        for m in (model, proxy)
    ]
    spellings = ["a", "A", "b", "\u00e9", "e", "E", "", "z", "Zed", "\u00e9mile", "emile"]
    arrival: dict[str, int] = {}  # id -> arrival number, as the model numbers rows
    state: dict[str, dict[str, Any]] = {}
    counter = iter(range(1, 10**6))
    column, descending = -1, False

    def make(n: int) -> dict[str, Any]:
        return user(n, name=rnd.choice(spellings) + rnd.choice("xy "), active=rnd.random() < 0.5)

    for _step in range(50):
        roll = rnd.random()
        if roll < 0.15:
            column = rnd.randrange(-1, len(UsersModel.COLUMNS))
            descending = column >= 0 and rnd.random() < 0.5
            proxy.sort(
                column, Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
            )
        elif roll < 0.2:
            loaded = [make(next(counter)) for _ in range(rnd.randrange(0, 60))]
            model.load(loaded)
            state = {r["id"]: r for r in loaded}
            arrival = {rid: next(counter) for rid in state}
        else:
            events: list[ResourceChanged] = []
            # A purge: 150 arrive, then most rows go at once (the model's reset path) while
            # more arrive; otherwise a random mix.
            purge = roll < 0.3
            for _ in range(150 if purge else rnd.choice([3, 8, 40])):
                ids = list(state)
                kind = 0.0 if purge else rnd.random()
                if kind < 0.4 or not ids:
                    r = make(next(counter))
                    events.append(created(r))
                    state[r["id"]] = r
                    arrival[r["id"]] = next(counter)
                elif kind < 0.75:
                    r = make(int(rnd.choice(ids)[1:]))
                    events.append(updated(r))
                    state[r["id"]] = r
                elif kind < 0.98:
                    rid = rnd.choice(ids)
                    events.append(deleted(rid))
                    del state[rid]
                else:
                    events.append(ResourceChanged("cleared", "*", "*", None))
                    state.clear()
            if purge:
                model.apply_events(events)
                events = []
                for rid in list(state)[5:]:
                    events.append(deleted(rid))
                    del state[rid]
                for _ in range(40):
                    r = make(next(counter))
                    events.append(created(r))
                    state[r["id"]] = r
                    arrival[r["id"]] = next(counter)
            cleared = [i for i, e in enumerate(events) if e.kind == "cleared"]
            if cleared:  # after a "cleared" the survivors arrive in event order
                survivors = {e.id for e in events[cleared[-1] :] if e.kind != "deleted"}
                arrival = {rid: n for rid, n in arrival.items() if rid in survivors}
            model.apply_events(events)
        expected = sorted(state, key=arrival.__getitem__)
        if column >= 0:
            expected.sort(
                key=lambda rid: collation_key(model._cells_for(state[rid])[column]),
                reverse=descending,
            )
        assert [model.resource_id(r) for r in range(model.rowCount())] == expected
        assert [proxy.index(r, 0).data(IdRole) for r in range(proxy.rowCount())] == expected
        assert_consistent(model)
    assert not [r for r in qtlog.records if "FAIL" in r.message.upper()], qtlog.records[:3]
    del testers


def test_groups_sort_by_member_count_as_a_number() -> None:
    model = GroupsModel()
    model.load([group(1, ["a"] * 9), group(2, ["a"] * 10), group(3, [])])
    model.sort(GroupsModel.MEMBERS, Qt.SortOrder.DescendingOrder)
    assert [model.resource(r)["id"] for r in range(3)] == ["g002", "g001", "g003"]


def test_a_proxy_that_sorts_itself_leaves_the_model_order() -> None:
    """The member picker sorts its own view of the Users model, not the Users tab."""
    model = UsersModel()
    model.load([user(i, name=n) for i, n in enumerate(["b", "c", "a"])])
    picker = ResourceFilterProxy(sort_source=False)
    picker.setSourceModel(model)
    picker.sort(UsersModel.USERNAME)
    assert [picker.index(r, 0).data() for r in range(3)] == ["a", "b", "c"]
    assert names(model) == ["b", "c", "a"] and model.sort_column() == -1


def test_ten_thousand_users_and_a_batch_of_1000_updates() -> None:
    """The model stays consistent through large batches. How long they take is measured by
    tests/benchmarks/bench_gui_models.py, which prints it: the suite asserts no timings and
    prints no figures into pytest's progress line."""
    users = [user(i, groups=[("g1", "Sales")]) for i in range(10_000)]
    model = UsersModel()
    proxy = ResourceFilterProxy()
    proxy.setSourceModel(model)
    model.load(users)
    proxy.sort(UsersModel.USERNAME)
    seen = Signals(model)
    batch = [updated(user(i, active=False)) for i in range(0, 10_000, 10)]
    model.apply_events(batch)
    model.apply_events([created(user(i)) for i in range(10_000, 11_000)])
    model.apply_events([deleted(f"u{i:05d}") for i in range(0, 10_000, 100)])
    assert model.rowCount() == 10_900
    assert seen.inserted == [(10_000, 10_999)]
    assert_consistent(model)


# --- views with a real server -----------------------------------------------------------------
@pytest.fixture
def controller(qtbot, tmp_path: Path) -> Iterator[ServerController]:
    sink = QtEventSink()
    ctl = ServerController(sink)
    config = ServerConfig(port=0, db_path=tmp_path / "d.json", auth=AuthConfig("none"))
    ctl.start(config, wait=True)
    qtbot.waitUntil(lambda: ctl.running, timeout=15000)
    try:
        yield ctl
    finally:
        ctl.stop()


def http(controller: ServerController, fn: Callable[[ScimClient], Any]) -> Any:
    """Run ``fn(client)`` on a helper thread with a real HTTP client; return its result."""
    assert controller.server is not None
    url = controller.server.base_url
    box: dict[str, Any] = {}

    def run() -> None:
        client = ScimClient(url)
        try:
            box["result"] = fn(client)
        except BaseException as exc:  # re-raised on the test thread
            box["error"] = exc
        finally:
            client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    if "error" in box:
        raise box["error"]
    return box.get("result")


def post_user(controller: ServerController, email: str, given: str = "Jane") -> dict[str, Any]:
    body = {
        "schemas": [USER_SCHEMA],
        "userName": email,
        "name": {"givenName": given, "familyName": "Doe"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "active": True,
    }
    resp = http(controller, lambda c: c.post("/Users", body))
    assert resp.status == 201, resp.raw
    return resp.body


def get(controller: ServerController, path: str) -> Any:
    return http(controller, lambda c: c.get(path))


@pytest.fixture
def users_view(qtbot, controller: ServerController) -> UsersView:
    view = UsersView(controller, fade_ms=300)
    qtbot.addWidget(view)
    controller.sink.batch.connect(view.apply_events)
    view.resize(1200, 600)
    view.show()
    view.load_snapshot()
    return view


def shown_user_names(view: UsersView) -> list[str]:
    return [view.proxy.index(r, 0).data() for r in range(view.proxy.rowCount())]


def test_users_view_loads_existing_users_and_follows_http(
    qtbot, controller: ServerController
) -> None:
    post_user(controller, "early@example.com")  # before the window looks
    view = UsersView(controller, fade_ms=300)
    qtbot.addWidget(view)
    controller.sink.batch.connect(view.apply_events)
    view.load_snapshot()
    qtbot.waitUntil(lambda: shown_user_names(view) == ["early@example.com"], timeout=5000)

    http(
        controller,
        lambda c: [
            c.post(
                "/Users",
                {"schemas": [USER_SCHEMA], "userName": f"okta{i}@example.com", "active": True},
            )
            for i in range(25)
        ],
    )
    qtbot.waitUntil(lambda: view.model.rowCount() == 26, timeout=5000)
    qtbot.waitUntil(lambda: view.count_label.text() == "26 users", timeout=3000)
    view.set_search("OKTA2")
    assert set(shown_user_names(view)) == {
        "okta2@example.com",
        "okta20@example.com",
        "okta21@example.com",
        "okta22@example.com",
        "okta23@example.com",
        "okta24@example.com",
    }
    assert view.count_label.text() == "6 of 26 users"


def test_json_editor_goes_through_the_servers_rules(
    qtbot, controller: ServerController, users_view: UsersView
) -> None:
    jane = post_user(controller, "jane@example.com")
    qtbot.waitUntil(lambda: users_view.model.row_of(jane["id"]) is not None, timeout=5000)
    assert users_view.select_id(jane["id"])
    dialog = users_view.edit_json()
    assert isinstance(dialog, JsonEditorDialog) and dialog.isVisible()
    assert orjson.loads(dialog.editor.toPlainText())["userName"] == "jane@example.com"

    # A syntax error is caught as you type, before anything is sent.
    dialog.editor.setPlainText('{"userName": ')
    assert not dialog.check()
    assert "Line 1" in dialog.syntax.text()
    assert not dialog.save_button.isEnabled()

    # A value the server refuses: shown in words, the dialog stays open, nothing changes.
    bad = dict(jane, active="yes")
    dialog.editor.setPlainText(orjson.dumps(bad, option=orjson.OPT_INDENT_2).decode())
    assert dialog.check()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error_text() != "", timeout=5000)
    assert "invalidValue" in dialog.error_text() and "active" in dialog.error_text()
    assert dialog.isVisible()
    assert get(controller, f"/Users/{jane['id']}").body["active"] is True
    assert users_view.model.resource_by_id(jane["id"])["active"] is True

    # A valid change: saved, dialog closed, the table follows the server's event.
    good = dict(jane, name={"givenName": "Janet", "familyName": "Doe"}, title="CFO")
    dialog.editor.setPlainText(orjson.dumps(good).decode())
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
    row = users_view.model.row_of(jane["id"])
    qtbot.waitUntil(
        lambda: cell(users_view.model, row, UsersModel.NAME) == "Janet Doe", timeout=5000
    )
    assert get(controller, f"/Users/{jane['id']}").body["title"] == "CFO"


def test_json_editor_refuses_a_stale_version(
    qtbot, controller: ServerController, users_view: UsersView
) -> None:
    bob = post_user(controller, "bob@example.com")
    qtbot.waitUntil(lambda: users_view.model.row_of(bob["id"]) is not None, timeout=5000)
    dialog = users_view.edit_json(bob["id"])
    assert dialog is not None
    # Okta changes the user while the editor is open.
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"title": "Okta's change"}}],
    }
    assert http(controller, lambda c: c.patch(f"/Users/{bob['id']}", patch)).status == 200
    dialog.editor.setPlainText(orjson.dumps(dict(bob, title="Mine")).decode())
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error_text() != "", timeout=5000)
    assert "changed on the server" in dialog.error_text()
    assert get(controller, f"/Users/{bob['id']}").body["title"] == "Okta's change"


def test_deactivate_activate_and_delete_from_the_view(
    qtbot, controller: ServerController, users_view: UsersView, monkeypatch
) -> None:
    jane = post_user(controller, "jane@example.com")
    other = post_user(controller, "other@example.com")
    qtbot.waitUntil(lambda: users_view.model.rowCount() == 2, timeout=5000)
    users_view.select_id(jane["id"])
    assert users_view.deactivate_button.isEnabled()
    assert not users_view.activate_button.isEnabled()

    qtbot.mouseClick(users_view.deactivate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not users_view.model.is_active(0), timeout=5000)
    assert get(controller, f"/Users/{jane['id']}").body["active"] is False
    assert cell(users_view.model, 0, UsersModel.ACTIVE) == "✗"
    # The changed row is highlighted, then fades.
    assert users_view.model.index(0, 0).data(BG) is not None
    qtbot.waitUntil(lambda: users_view.model.index(0, 0).data(BG) is None, timeout=3000)
    assert users_view.activate_button.isEnabled()

    qtbot.mouseClick(users_view.activate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: users_view.model.is_active(0), timeout=5000)
    assert get(controller, f"/Users/{jane['id']}").body["active"] is True

    asked: list[str] = []

    def yes(parent: Any, title: str, text: str, *args: Any) -> QMessageBox.StandardButton:
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", yes)
    users_view.select_id(jane["id"])
    qtbot.mouseClick(users_view.delete_button, Qt.MouseButton.LeftButton)
    assert asked == [
        "Delete jane@example.com? Okta never deletes users; this is for cleaning up demos."
    ]
    qtbot.waitUntil(lambda: users_view.model.row_of(jane["id"]) is None, timeout=5000)
    assert get(controller, f"/Users/{jane['id']}").status == 404
    assert get(controller, f"/Users/{other['id']}").status == 200
    qtbot.waitUntil(lambda: users_view.count_label.text() == "1 user", timeout=3000)


def test_declined_delete_changes_nothing(
    qtbot, controller: ServerController, users_view: UsersView, monkeypatch
) -> None:
    jane = post_user(controller, "jane@example.com")
    qtbot.waitUntil(lambda: users_view.model.rowCount() == 1, timeout=5000)
    users_view.select_id(jane["id"])
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.No)
    assert users_view.delete_selected() is False
    assert get(controller, f"/Users/{jane['id']}").status == 200


def test_add_user_form(qtbot, controller: ServerController, users_view: UsersView) -> None:
    post_user(controller, "taken@example.com")
    qtbot.waitUntil(lambda: users_view.model.rowCount() == 1, timeout=5000)
    dialog = users_view.add_user()
    assert not dialog.create_button.isEnabled()  # a userName is required
    dialog.user_name.setText("taken@example.com")
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=5000)
    assert "409" in dialog.error.text() and "uniqueness" in dialog.error.text()
    assert dialog.isVisible()

    dialog.user_name.setText("new.person@example.com")
    dialog.given.setText("New")
    dialog.family.setText("Person")
    dialog.active.setChecked(False)
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
    qtbot.waitUntil(lambda: users_view.model.rowCount() == 2, timeout=5000)
    query = "filter=userName%20eq%20%22new.person%40example.com%22"
    found = get(controller, f"/Users?{query}").body["Resources"]
    assert len(found) == 1
    person = found[0]
    assert person["name"]["formatted"] == "New Person"
    assert person["emails"] == [
        {"value": "new.person@example.com", "type": "work", "primary": True}
    ]
    assert person["active"] is False
    assert cell(users_view.model, 1, UsersModel.NAME) == "New Person"


def test_errors_without_a_server_are_shown_in_words(qtbot) -> None:
    controller = ServerController(QtEventSink())
    view = UsersView(controller)
    qtbot.addWidget(view)
    view.model.load([user(1)])
    view.select_id("u00001")
    view.set_active(False)
    qtbot.waitUntil(lambda: view.message.text() != "", timeout=3000)
    assert "not running" in view.message.text()
    view.load_snapshot()  # no server: nothing to load, and no error


def test_groups_view_members_rename_and_delete(
    qtbot, controller: ServerController, users_view: UsersView, monkeypatch
) -> None:
    ids = [post_user(controller, f"member{i}@example.com", f"M{i}")["id"] for i in range(4)]
    body = {"schemas": [GROUP_SCHEMA], "displayName": "Engineering", "members": [{"value": ids[0]}]}
    eng = http(controller, lambda c: c.post("/Groups", body)).body
    qtbot.waitUntil(lambda: users_view.model.rowCount() == 4, timeout=5000)
    view = GroupsView(controller, users_model=users_view.model, fade_ms=300)
    qtbot.addWidget(view)
    controller.sink.batch.connect(view.apply_events)
    view.resize(1300, 600)
    view.show()
    view.load_snapshot()
    qtbot.waitUntil(lambda: view.model.rowCount() == 1, timeout=5000)
    assert cell(view.model, 0, GroupsModel.MEMBERS) == "1"
    assert view.select_id(eng["id"])
    assert view.members_model.rowCount() == 1
    assert view.members_title.text() == "Engineering"
    assert view.members_proxy.index(0, 1).data() == "M0 Doe"  # from the users table

    # Add members: the picker lists current users who are not members yet.
    view.open_member_picker()
    picker = view.picker
    assert picker is not None and picker.isVisible()
    assert picker.proxy.rowCount() == 3
    picker.search.setText("member2")
    picker.proxy.set_search("member2")
    assert picker.proxy.rowCount() == 1
    picker.proxy.set_search("")
    picker.select_ids([ids[1], ids[2], ids[3]])
    assert picker.ok_button.text() == "Add 3 members"
    qtbot.mouseClick(picker.ok_button, Qt.MouseButton.LeftButton)

    def member_ids() -> set[str]:
        group = get(controller, f"/Groups/{eng['id']}").body
        return {m["value"] for m in group.get("members", [])}

    qtbot.waitUntil(lambda: view.members_model.rowCount() == 4, timeout=5000)
    assert member_ids() == set(ids)
    assert cell(view.model, 0, GroupsModel.MEMBERS) == "4"
    # The users table follows too (the server publishes the members' new groups).
    row = users_view.model.row_of(ids[2])
    qtbot.waitUntil(
        lambda: cell(users_view.model, row, UsersModel.GROUPS) == "Engineering", timeout=5000
    )

    # Remove one member.
    view.select_members([ids[1]])
    assert view.remove_member_button.isEnabled()
    qtbot.mouseClick(view.remove_member_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.members_model.rowCount() == 3, timeout=5000)
    assert member_ids() == {ids[0], ids[2], ids[3]}

    # Rename.
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Platform Engineering", True))
    qtbot.mouseClick(view.rename_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: cell(view.model, 0, GroupsModel.DISPLAY_NAME) == "Platform Engineering",
        timeout=5000,
    )
    assert get(controller, f"/Groups/{eng['id']}").body["displayName"] == "Platform Engineering"
    assert view.members_title.text() == "Platform Engineering"
    qtbot.waitUntil(
        lambda: cell(users_view.model, row, UsersModel.GROUPS) == "Platform Engineering",
        timeout=5000,
    )

    # Add a group, then delete the first one (confirmed).
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Sales", True))
    qtbot.mouseClick(view.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.model.rowCount() == 2, timeout=5000)
    asked: list[str] = []
    monkeypatch.setattr(
        QMessageBox,
        "question",
        lambda parent, title, text, *a: asked.append(text) or QMessageBox.StandardButton.Yes,
    )
    view.select_id(eng["id"])
    qtbot.mouseClick(view.delete_button, Qt.MouseButton.LeftButton)
    assert asked == ["Delete group Platform Engineering? Its 3 members are not deleted."]
    qtbot.waitUntil(lambda: view.model.rowCount() == 1, timeout=5000)
    assert get(controller, f"/Groups/{eng['id']}").status == 404
    assert all(get(controller, f"/Users/{i}").status == 200 for i in ids)
    groups = get(controller, "/Groups").body["Resources"]
    assert [g["displayName"] for g in groups] == ["Sales"]
    qtbot.waitUntil(lambda: cell(users_view.model, row, UsersModel.GROUPS) == "", timeout=5000)


def test_group_json_editor_and_picker_without_a_users_table(
    qtbot, controller: ServerController
) -> None:
    uid = post_user(controller, "solo@example.com")["id"]
    gid = http(
        controller, lambda c: c.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops"})
    ).body["id"]
    view = GroupsView(controller)
    qtbot.addWidget(view)
    controller.sink.batch.connect(view.apply_events)
    view.load_snapshot()
    qtbot.waitUntil(lambda: view.model.rowCount() == 1, timeout=5000)
    view.select_id(gid)
    # The picker fetches the users from the server first.
    view.open_member_picker()
    qtbot.waitUntil(lambda: view.picker is not None and view.picker.isVisible(), timeout=5000)
    assert view.picker is not None
    view.picker.select_ids([uid])
    view.picker.accept()
    qtbot.waitUntil(lambda: view.members_model.rowCount() == 1, timeout=5000)
    assert view.members_proxy.index(0, 0).data() == "solo@example.com"
    assert view.members_table.isColumnHidden(1)  # no users table: no names to show

    dialog = view.edit_json(gid)
    assert dialog is not None
    resource = orjson.loads(dialog.editor.toPlainText())
    resource["members"] = [{"value": "does-not-exist"}]
    dialog.editor.setPlainText(orjson.dumps(resource).decode())
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error_text() != "", timeout=5000)
    assert "does-not-exist" in dialog.error_text()
    resource["members"] = []
    resource["displayName"] = "Operations"
    dialog.editor.setPlainText(orjson.dumps(resource).decode())
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
    body = get(controller, f"/Groups/{gid}").body
    assert body["displayName"] == "Operations" and not body.get("members")
    qtbot.waitUntil(lambda: view.members_model.rowCount() == 0, timeout=5000)


def test_views_pass_the_model_tester_on_their_proxies(qtmodeltester, qtbot) -> None:
    controller = ServerController(QtEventSink())
    view = UsersView(controller)
    qtbot.addWidget(view)
    view.model.load([user(i) for i in range(40)])
    view.table.sortByColumn(UsersModel.EMAIL, Qt.SortOrder.AscendingOrder)
    view.set_search("user1")
    qtmodeltester.check(view.proxy)
    assert view.proxy.mapToSource(view.proxy.index(0, 0)) != QModelIndex()
