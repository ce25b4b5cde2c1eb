"""The request log: model, filter proxy, bridge batching, the view and its detail pane."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QApplication

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.gui import theme
from scim_desktop.gui.bridge import QtEventSink
from scim_desktop.gui.models.requests import (
    COL_FAULT,
    COL_METHOD,
    COL_PATH,
    COL_STATUS,
    COL_STEP,
    COL_TIME,
    RecordRole,
    RequestFilterProxy,
    RequestLogModel,
    step_title,
)
from scim_desktop.gui.widgets.request_detail import EMPTY_TEXT, JsonHighlighter, pretty_body
from scim_desktop.gui.widgets.requests_view import RequestsView
from scim_desktop.server.events import RequestRecord, ResourceChanged
from scim_desktop.server.runner import ServerThread
from tests.gui.test_export import make_record
from tests.scim_client import ScimClient, filter_query

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def okta_traffic(n: int, start: int = 1) -> list[RequestRecord]:
    """A mix like Okta's: existence checks, creates, a few faults, group pushes, drops."""
    records = []
    for i in range(start, start + n):
        kind = i % 5
        if kind == 0:
            records.append(
                make_record(
                    i,
                    method="GET",
                    query=f"filter=userName%20eq%20%22user{i}%40acme.example%22",
                    status=200,
                    okta_step="create_user_existence_check",
                    okta_label=f"Create user: existence check for user{i}@acme.example",
                )
            )
        elif kind == 1:
            records.append(make_record(i))
        elif kind == 2:
            records.append(
                make_record(
                    i,
                    method="PATCH",
                    path=f"/scim/v2/Groups/g{i}",
                    status=204,
                    request_body='{"Operations":[{"op":"add","path":"members"}]}',
                    response_body="",
                    okta_step="push_group_add_members",
                    okta_label="Push group: add 1 member",
                )
            )
        elif kind == 3:
            records.append(
                make_record(i, status=429, fault="429 Retry-After: 30", extra={"okta_retry": 1})
            )
        else:
            records.append(
                make_record(
                    i,
                    method="DELETE",
                    path=f"/scim/v2/Groups/g{i}",
                    status=0,
                    okta_step="push_group_delete",
                    okta_label="Push group: delete",
                )
            )
    return records


@pytest.fixture
def model(qapp: QApplication) -> RequestLogModel:
    return RequestLogModel()


# --- the model --------------------------------------------------------------------------------
def test_model_passes_the_model_tester(model: RequestLogModel, qtmodeltester: Any) -> None:
    model.add_records(okta_traffic(60))
    qtmodeltester.check(model)
    assert model.rowCount() == 60
    assert model.columnCount() == 8  # the Upstream column (proxy mode) included


def test_proxy_passes_the_model_tester(model: RequestLogModel, qtmodeltester: Any) -> None:
    proxy = RequestFilterProxy()
    proxy.setSourceModel(model)
    model.add_records(okta_traffic(60))
    proxy.set_methods({"POST"})
    qtmodeltester.check(proxy)
    assert 0 < proxy.rowCount() < 60


def test_cells_show_the_record(model: RequestLogModel) -> None:
    record = make_record(
        7,
        method="GET",
        query="filter=userName%20eq%20%22a%40b.c%22",
        status=429,
        fault="429 for the demo",
    )
    model.add_records([record])

    def cell(col: int, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        return model.data(model.index(0, col), role)

    assert len(cell(COL_TIME)) == len("13:20:20.123") and cell(COL_TIME).endswith(".123")
    assert cell(COL_METHOD) == "GET"
    assert cell(COL_PATH) == '/scim/v2/Users?filter=userName eq "a@b.c"'
    assert cell(COL_PATH, Qt.ItemDataRole.ToolTipRole) == f"/scim/v2/Users?{record.query}"
    assert cell(COL_STATUS) == "429"
    assert cell(COL_STEP) == "Create user jane.doe@example.com"
    assert "Okta creates the user" in cell(COL_STEP, Qt.ItemDataRole.ToolTipRole)
    assert cell(COL_FAULT) == "⚡"
    assert cell(COL_FAULT, Qt.ItemDataRole.ToolTipRole) == "Fault: 429 for the demo"
    assert cell(COL_STATUS, Qt.ItemDataRole.ForegroundRole) == theme.status_color(429)
    assert cell(COL_METHOD, Qt.ItemDataRole.ForegroundRole) == theme.method_color("GET")
    assert cell(COL_STATUS, Qt.ItemDataRole.TextAlignmentRole) & Qt.AlignmentFlag.AlignRight
    assert cell(COL_PATH, Qt.ItemDataRole.FontRole).fixedPitch() == theme.mono_font().fixedPitch()
    assert cell(COL_TIME, RecordRole) is record
    assert model.record(0) is record


def test_a_batch_is_one_insertion(model: RequestLogModel) -> None:
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    model.add_records(okta_traffic(1000))
    assert inserted == [(0, 999)]
    model.add_records(okta_traffic(1000, start=1001))
    assert inserted == [(0, 999), (1000, 1999)]
    assert model.rowCount() == 2000


def test_the_row_cap_drops_the_oldest(model: RequestLogModel) -> None:
    cap = 500
    model.set_row_cap(cap)
    removed: list[tuple[int, int]] = []
    model.rowsRemoved.connect(lambda _parent, first, last: removed.append((first, last)))
    for batch in range(3):
        model.add_records(okta_traffic(cap, start=1 + batch * cap))
    assert model.rowCount() == cap
    assert len(model.records()) == cap  # memory is bounded by the cap, not by the traffic
    assert model.record(0).id == 2 * cap + 1  # the oldest two batches are gone
    assert model.record(cap - 1).id == 3 * cap
    assert removed == [(0, cap - 1), (0, cap - 1)]  # one removal per batch beyond the cap

    # A batch bigger than the cap keeps only its newest records.
    model.add_records(okta_traffic(2 * cap, start=10_001))
    assert model.rowCount() == cap
    assert model.record(0).id == 10_001 + cap

    model.set_row_cap(100)
    assert model.rowCount() == 100
    assert model.record(99).id == 10_000 + 2 * cap


def test_pause_holds_back_and_resume_flushes(model: RequestLogModel) -> None:
    model.add_records(okta_traffic(10))
    inserted: list[int] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append(last - first + 1))
    model.pause()
    assert model.paused
    model.add_records(okta_traffic(30, start=11))
    model.add_records(okta_traffic(30, start=41))
    assert model.rowCount() == 10
    assert model.pending_count == 60
    model.resume()
    assert not model.paused
    assert inserted == [60]  # everything held back arrives as one batch
    assert model.rowCount() == 70
    assert [r.id for r in model.records()] == list(range(1, 71))


def test_the_pause_buffer_is_bounded_by_the_cap(model: RequestLogModel) -> None:
    model.set_row_cap(50)
    model.pause()
    model.add_records(okta_traffic(200))
    assert model.pending_count == 50
    model.resume()
    assert [r.id for r in model.records()] == list(range(151, 201))


def test_clear_empties_the_log(model: RequestLogModel) -> None:
    model.add_records(okta_traffic(20))
    model.clear()
    assert model.rowCount() == 0
    model.add_records(okta_traffic(3))
    assert model.rowCount() == 3


def test_new_steps_are_announced_once(model: RequestLogModel) -> None:
    seen: list[list[tuple[str, str]]] = []
    model.stepsSeen.connect(seen.append)
    model.add_records(okta_traffic(10))
    model.add_records(okta_traffic(10, start=11))
    assert len(seen) == 1
    ids = {step for step, _title in seen[0]}
    assert ids == {
        "create_user_existence_check",
        "create_user",
        "push_group_add_members",
        "push_group_delete",
    }
    assert dict(seen[0])["create_user_existence_check"] == "Create user: existence check"
    assert step_title("create_user") == "Create user"
    assert step_title("push_group_create") == "Push group: create"
    assert step_title("import_users") == "Import users"


# --- the filter proxy -------------------------------------------------------------------------
@pytest.fixture
def proxy(model: RequestLogModel) -> RequestFilterProxy:
    proxy = RequestFilterProxy()
    proxy.setSourceModel(model)
    model.add_records(okta_traffic(100))
    model.add_records(
        [make_record(1000, response_body='{"id":"x","userName":"Needle.In.Body@acme.example"}')]
    )
    return proxy


def shown_ids(proxy: RequestFilterProxy) -> list[int]:
    return [proxy.record(row).id for row in range(proxy.rowCount())]


def test_text_search_looks_in_bodies_case_insensitively(proxy: RequestFilterProxy) -> None:
    proxy.set_text("needle.in.BODY")
    assert shown_ids(proxy) == [1000]
    proxy.set_text("user15@acme")  # the decoded query of one existence check
    assert shown_ids(proxy) == [15]
    proxy.set_text("user15%40acme")  # the raw query works as well
    assert shown_ids(proxy) == [15]
    proxy.set_text("push group: add")  # the Okta label
    assert len(shown_ids(proxy)) == 20
    proxy.set_text("")
    assert proxy.rowCount() == 101


def test_method_status_step_and_fault_filters(proxy: RequestFilterProxy) -> None:
    proxy.set_methods({"PATCH"})
    assert proxy.rowCount() == 20
    assert all(proxy.record(r).method == "PATCH" for r in range(proxy.rowCount()))
    proxy.set_methods({"POST", "DELETE"})
    assert proxy.rowCount() == 61
    proxy.set_methods(None)

    proxy.set_status_classes({"2xx"})
    assert proxy.rowCount() == 61  # 200, 201 and 204
    proxy.set_status_classes({"4xx"})
    assert {proxy.record(r).status for r in range(proxy.rowCount())} == {429}
    proxy.set_status_classes({"dropped"})
    assert proxy.rowCount() == 20
    assert {proxy.record(r).status for r in range(proxy.rowCount())} == {0}
    proxy.set_status_classes(None)

    proxy.set_step("create_user_existence_check")
    assert proxy.rowCount() == 20
    proxy.set_step(None)

    proxy.set_faults_only(True)
    assert proxy.rowCount() == 20
    assert all(proxy.record(r).fault for r in range(proxy.rowCount()))
    proxy.set_methods({"GET"})
    assert proxy.rowCount() == 0  # filters combine
    proxy.set_faults_only(False)
    proxy.set_methods(None)
    assert proxy.rowCount() == 101
    assert not proxy.is_filtering()


def test_new_rows_are_filtered_as_they_arrive(
    model: RequestLogModel, proxy: RequestFilterProxy
) -> None:
    proxy.set_faults_only(True)
    before = proxy.rowCount()
    model.add_records(okta_traffic(10, start=2000))
    assert proxy.rowCount() == before + 2


# --- the event bridge -------------------------------------------------------------------------
def test_the_bridge_turns_1000_events_into_a_few_batches(qtbot: Any) -> None:
    sink = QtEventSink()
    view = RequestsView()
    qtbot.addWidget(view)
    batches: list[int] = []
    sink.batch.connect(lambda events: batches.append(len(events)))
    sink.batch.connect(view.add_events)
    inserted: list[int] = []
    view.model.rowsInserted.connect(lambda _parent, first, last: inserted.append(last - first + 1))
    events: list[Any] = okta_traffic(1000)
    events.insert(500, ResourceChanged("created", "User", "u1", {"id": "u1"}))  # ignored

    publisher = threading.Thread(target=lambda: [sink.publish(e) for e in events])
    publisher.start()
    publisher.join()
    qtbot.waitUntil(lambda: view.model.rowCount() == 1000, timeout=5000)

    assert 1 <= len(batches) <= 5
    assert sum(batches) == 1001
    assert len(inserted) == len(batches)  # one row insertion per batch
    assert [r.id for r in view.model.records()] == list(range(1, 1001))


# --- the view ---------------------------------------------------------------------------------
@pytest.fixture
def view(qtbot: Any) -> RequestsView:
    view = RequestsView()
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_selecting_a_row_shows_its_detail(view: RequestsView) -> None:
    assert view.detail.stack.currentIndex() == 0
    assert view.detail.empty_label.text() == EMPTY_TEXT
    view.add_events(okta_traffic(20))
    view.select_row(0)  # record 1: a POST /Users answered 201
    detail = view.detail
    assert detail.stack.currentIndex() == 1
    assert detail.record is not None and detail.record.id == 1
    header = detail.header_label.text()
    assert "/scim/v2/Users" in header and "POST" in header and "201" in header
    assert "Created" in header
    assert detail.step_label.text() == "Create user jane.doe@example.com"
    assert "expects 201" in detail.explanation_label.text()
    request_body = detail.request_pane.body.toPlainText()
    assert '\n  "userName": "jane.doe@example.com",' in request_body  # pretty-printed
    assert "Content-Type: application/scim+json" in detail.request_pane.headers.toPlainText()
    assert '"id": "id-1"' in detail.response_pane.body.toPlainText()
    assert detail.fault_banner.isHidden()
    assert detail.retry_label.isHidden()
    assert view.curl_button.isEnabled()

    view.clear()
    assert view.model.rowCount() == 0
    assert detail.stack.currentIndex() == 0


def test_the_detail_explains_faults_and_retries(view: RequestsView) -> None:
    retried = make_record(
        5,
        status=429,
        fault="Throttle creates: 429 Retry-After: 30",
        extra={"okta_retry": 2, "okta_next_retry_in_s": 120.0},
    )
    given_up = make_record(
        6, status=429, fault="x", extra={"okta_retry": 9, "okta_retry_gives_up": True}
    )
    succeeded = make_record(7, status=201, extra={"okta_retry": 3})
    view.add_events([retried, given_up, succeeded])
    detail = view.detail

    view.select_row(0)
    assert not detail.fault_banner.isHidden()
    assert "Throttle creates" in detail.fault_banner.text()
    timeline = detail.retry_label.text()
    assert not detail.retry_label.isHidden()
    assert "attempt 3 of 10" in timeline
    assert "Okta retries in 2 min" in timeline
    assert "integer Retry-After is honoured" in timeline  # the documented rule

    view.select_row(1)
    assert "gives up after 10 attempts" in detail.retry_label.text()

    view.select_row(2)
    assert "Retry 3 was answered 201" in detail.retry_label.text()


def test_toolbar_filters_and_count_label(view: RequestsView, qtbot: Any) -> None:
    view.add_events(okta_traffic(100))
    qtbot.waitUntil(lambda: view.count_label.text() == "100 requests")
    view.method_combo.setCurrentIndex(view.method_combo.findData("PATCH"))
    qtbot.waitUntil(lambda: view.count_label.text() == "100 requests, 20 shown")
    view.method_combo.setCurrentIndex(0)
    view.status_combo.setCurrentIndex(view.status_combo.findData("dropped"))
    assert view.proxy.rowCount() == 20
    view.status_combo.setCurrentIndex(0)
    step_index = view.step_combo.findData("push_group_add_members")
    assert step_index > 0  # the steps seen so far, by title
    assert view.step_combo.itemText(step_index) == "Push group: add members"
    view.step_combo.setCurrentIndex(step_index)
    assert view.proxy.rowCount() == 20
    view.step_combo.setCurrentIndex(0)
    view.faults_button.setChecked(True)
    assert view.proxy.rowCount() == 20
    view.faults_button.setChecked(False)
    view.search_edit.setText("user15@")
    qtbot.waitUntil(lambda: view.proxy.rowCount() == 1)  # after the typing pause
    qtbot.waitUntil(lambda: view.count_label.text() == "100 requests, 1 shown")
    view.search_edit.clear()
    qtbot.waitUntil(lambda: view.proxy.rowCount() == 100)


def test_pause_button_holds_rows_back(view: RequestsView, qtbot: Any) -> None:
    view.add_events(okta_traffic(5))
    view.pause_button.click()
    assert view.pause_button.text() == "Resume"
    view.add_events(okta_traffic(7, start=6))
    assert view.model.rowCount() == 5
    qtbot.waitUntil(lambda: view.paused_label.text() == "Paused: 7 new requests waiting")
    view.pause_button.click()
    assert view.model.rowCount() == 12
    assert view.pause_button.text() == "Pause"


def test_auto_scroll_follows_only_at_the_bottom(view: RequestsView, qtbot: Any) -> None:
    bar = view.table.verticalScrollBar()
    view.add_events(okta_traffic(200))
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    view.add_events(okta_traffic(50, start=201))
    qtbot.waitUntil(lambda: bar.value() == bar.maximum())  # still following the newest row
    bar.setValue(10)  # the user scrolls up to read
    view.add_events(okta_traffic(50, start=251))
    assert bar.value() == 10


def test_trimming_keeps_the_users_reading_position(view: RequestsView) -> None:
    view.set_row_cap(300)
    view.add_events(okta_traffic(300))
    bar = view.table.verticalScrollBar()
    bar.setValue(100)
    top = view.proxy.record(view.table.rowAt(1)).id
    view.add_events(okta_traffic(40, start=301))  # drops the 40 oldest rows
    assert view.model.rowCount() == 300
    assert view.proxy.record(view.table.rowAt(1)).id == top


def test_export_buttons_write_files(view: RequestsView, qtbot: Any, tmp_path: Path) -> None:
    view.add_events(okta_traffic(30))
    view.faults_button.setChecked(True)  # exports what is shown
    target = tmp_path / "log.jsonl"
    with qtbot.waitSignal(view.exported, timeout=5000) as blocker:
        view.export_to(target, "jsonl")
    assert blocker.args == [str(target)]
    lines = target.read_text().splitlines()
    assert len(lines) == 6
    assert all(orjson.loads(line)["fault"] for line in lines)

    view.faults_button.setChecked(False)
    har_path = tmp_path / "log.har"
    with qtbot.waitSignal(view.exported, timeout=5000):
        view.export_to(har_path, "har")
    har = orjson.loads(har_path.read_bytes())
    assert har["log"]["version"] == "1.2"
    assert len(har["log"]["entries"]) == 30


def _colours(block: Any) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for fmt in block.layout().formats():
        piece = block.text()[fmt.start : fmt.start + fmt.length]
        found.setdefault(fmt.format.foreground().color().name(), set()).add(piece)
    return found


def test_json_highlighter_colours_keys_strings_and_literals(view: RequestsView) -> None:
    body = '{"userName":"a@b.c","active":true,"n":12,"x":null}'
    view.add_events([make_record(1, method="GET", status=200, response_body=body)])
    view.select_row(0)
    pane = view.detail.response_pane
    assert isinstance(pane.highlighter, JsonHighlighter) and pane.highlighter.enabled
    colours: dict[str, set[str]] = {}
    block = pane.body.document().begin()
    while block.isValid():
        for colour, pieces in _colours(block).items():
            colours.setdefault(colour, set()).update(pieces)
        block = block.next()
    assert '"userName"' in colours[theme.json_color("key").name()]
    assert '"a@b.c"' in colours[theme.json_color("string").name()]
    assert {"true", "null"} <= colours[theme.json_color("literal").name()]
    assert "12" in colours[theme.json_color("number").name()]
    assert pretty_body("not json") == ("not json", False)


def test_a_big_body_loads_without_stalling(view: RequestsView, qtbot: Any) -> None:
    users = [{"id": f"{i:06d}", "userName": f"user{i}@acme.example"} for i in range(5000)]
    body = orjson.dumps({"Resources": users}).decode()
    record = make_record(1, method="GET", status=200, response_body=body)
    view.add_events([record])
    view.select_row(0)
    pane = view.detail.response_pane
    assert pane.loading  # added in slices, not in one go
    qtbot.waitUntil(lambda: not pane.loading, timeout=10_000)
    assert pane.body.toPlainText() == pane.body_text == pretty_body(body)[0]
    document = pane.body.document()
    last_user = document.findBlockByNumber(document.blockCount() - 4)
    assert last_user.text().strip() == '"userName": "user4999@acme.example"'
    assert '"userName"' in _colours(last_user)[theme.json_color("key").name()]


# --- against a real server --------------------------------------------------------------------
def test_the_view_follows_a_real_server(qtbot: Any, tmp_path: Path) -> None:
    sink = QtEventSink()
    view = RequestsView()
    qtbot.addWidget(view)
    sink.batch.connect(view.add_events)
    config = ServerConfig(port=0, db_path=tmp_path / "d.json", auth=AuthConfig("none"))
    server = ServerThread(config, sink)
    server.start()
    failures: list[BaseException] = []

    def okta() -> None:
        try:
            client = ScimClient(server.base_url)
            name = "grace.hopper@acme.example"
            query = filter_query(f'userName eq "{name}"')
            assert client.get(f"/Users?{query}&startIndex=1&count=100").status == 200
            body = {
                "schemas": [USER_SCHEMA],
                "userName": name,
                "name": {"givenName": "Grace", "familyName": "Hopper"},
                "emails": [{"primary": True, "value": name, "type": "work"}],
                "active": True,
            }
            created = client.post("/Users", body)
            assert created.status == 201
            patch = {
                "schemas": [PATCH_SCHEMA],
                "Operations": [{"op": "replace", "value": {"active": False}}],
            }
            assert client.patch(f"/Users/{created.body['id']}", patch).status == 200
            assert client.get("/Users/does-not-exist").status == 404
            client.close()
        except BaseException as exc:  # reported on the test thread
            failures.append(exc)

    driver = threading.Thread(target=okta)
    try:
        driver.start()
        qtbot.waitUntil(lambda: view.model.rowCount() >= 4, timeout=10_000)
        driver.join(10)
    finally:
        server.stop()
    assert not failures, failures
    model = view.model
    rows = [
        [model.data(model.index(r, c)) for c in (COL_METHOD, COL_STATUS)]
        for r in range(model.rowCount())
    ]
    assert rows == [["GET", "200"], ["POST", "201"], ["PATCH", "200"], ["GET", "404"]]
    labels = [model.data(model.index(r, COL_STEP)) for r in range(model.rowCount())]
    assert all(labels), labels
    assert labels[0].startswith("Create user: existence check")
    assert labels[1] == "Create user grace.hopper@acme.example"
    assert labels[2] == "Deactivate (PATCH)"
    assert model.data(model.index(1, COL_PATH)) == "/scim/v2/Users"

    view.select_row(1)
    assert "/scim/v2/Users" in view.detail.header_label.text()
    assert '"userName": "grace.hopper@acme.example"' in view.detail.request_pane.body_text
    assert view.step_combo.findData("deactivate_user_patch") > 0
    assert model.index(0, 0, QModelIndex()).isValid()


def test_server_thread_pauses_while_the_window_paints(qtbot) -> None:
    """QtEventSink.hold(): a publish from the server thread waits for release() (bounded),
    so a paint's many calls into Python do not compete with the server for the GIL."""
    import threading
    import time

    from scim_desktop.gui.bridge import PAINT_WAIT_S, QtEventSink

    sink = QtEventSink()
    sink.hold()
    done = threading.Event()
    started = time.monotonic()

    def server_side() -> None:
        sink.publish(object())  # type: ignore[arg-type]
        done.set()

    thread = threading.Thread(target=server_side)
    thread.start()
    assert not done.wait(0.01)  # held while "painting"
    sink.release()
    assert done.wait(2)
    thread.join(2)
    assert time.monotonic() - started < 1
    # Never longer than the safety net, even if release() never came.
    sink.hold()
    t0 = time.monotonic()
    sink.publish(object())  # type: ignore[arg-type]
    assert time.monotonic() - t0 < PAINT_WAIT_S + 0.5
    sink.release()


def test_server_thread_pauses_while_a_batch_is_applied(qtbot) -> None:
    """Applying a batch (a re-sort of a sorted table, say) is Python work on the GUI thread:
    the server thread is held meanwhile, as during a paint, and released afterwards."""
    sink = QtEventSink(interval_ms=1)
    held: list[bool] = []
    sink.batch.connect(lambda events: held.append(sink._painting.is_set()))
    sink.publish(ResourceChanged("created", "User", "u1", {"id": "u1"}))
    qtbot.waitUntil(lambda: held == [True], timeout=2000)
    assert not sink._painting.is_set() and sink._painted.is_set()
