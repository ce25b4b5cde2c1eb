"""The Coverage tab (gui/widgets/coverage_view.py) in the whole window with its real server:
Okta's requests over real HTTP tick items live, a fault fails one with the reason, evidence
opens the request in the Requests tab, manual ticks, reset, and the exported reports."""

from __future__ import annotations

import threading
from html.parser import HTMLParser
from pathlib import Path

from PySide6.QtCore import Qt

from scim_desktop.core.coverage import ITEMS
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.gui.models.coverage import NOTE_COL, STATUS_COL
from scim_desktop.gui.widgets.coverage_view import SESSION_NOTE
from scim_desktop.gui.widgets.main_window import MainWindow
from tests.core.test_okta import DEACTIVATE
from tests.gui import test_main_window
from tests.scim_client import ScimClient, filter_query
from tests.server.test_okta_flows import okta_create_body

# The whole window with its real server: test_main_window's fixture (settings: conftest's).
window = test_main_window.window
TOKEN = test_main_window.TOKEN

HOSTILE = '<script>alert("x")</script>&amp;@example.com'


def okta_creates(url: str, user_name: str) -> str:
    """Okta's create flow (OKTA.md, Create steps 1-2) over HTTP; returns the new id."""
    client = ScimClient(url, token=TOKEN)
    try:
        query = filter_query(f'userName eq "{user_name}"') + "&startIndex=1&count=100"
        client.get("/Users?" + query)
        return str(client.post("/Users", okta_create_body(user_name)).body["id"])
    finally:
        client.close()


def run(fn) -> None:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(30)


def status(window: MainWindow, item_id: str) -> str:
    """The item's status as the tab shows it (judged requests are repainted in turns)."""
    model = window.coverage.model
    return model.state(model.row_of(item_id)).status


def test_the_tab_follows_the_request_log(qtbot, window: MainWindow) -> None:
    url = window.controller.server.base_url
    tabs = window.tabs
    assert tabs.tabText(tabs.indexOf(window.coverage)) == "Coverage"
    assert tabs.indexOf(window.coverage) == tabs.indexOf(window.governance) + 1
    view = window.coverage
    assert SESSION_NOTE in view.note.text()  # the data file's old traffic is not counted
    manual = sum(1 for i in ITEMS if i.manual)
    assert view.summary_label.text() == (
        f"0 of {len(ITEMS)} covered · 0 failed · {len(ITEMS) - manual} not seen · {manual} manual"
    )

    ids: list[str] = []
    run(lambda: ids.append(okta_creates(url, "jane@example.com")))
    qtbot.waitUntil(lambda: status(window, "create_user") == "covered", timeout=10000)
    assert status(window, "existence_check") == "covered"
    assert view.summary_label.text().startswith(f"2 of {len(ITEMS)} covered · 0 failed")
    assert view.progress.value() == 2
    window._update_tab_titles()
    assert tabs.tabText(tabs.indexOf(view)) == f"Coverage 2/{len(ITEMS)}"

    # Clicking an item shows its evidence: the POST that created Jane.
    tabs.setCurrentWidget(view)
    row = view.model.row_of("create_user")
    qtbot.mouseClick(
        view.table.viewport(),
        Qt.MouseButton.LeftButton,
        pos=view.table.visualRect(view.model.index(row, 1)).center(),
    )
    assert view.title_label.text() == "Assign a new user: create"
    assert view.evidence.rowCount() == 1
    assert view.evidence.item(0, 1).text() == "POST /scim/v2/Users"
    assert view.evidence.item(0, 2).text() == "201" and view.evidence.item(0, 3).text() == "✔ ok"

    # ... and a double-click opens that request in the Requests tab.
    view._on_evidence_activated(0, 1)
    assert tabs.currentWidget() is window.requests
    record = window.requests.current_record()
    assert record is not None and record.method == "POST" and record.status == 201
    assert record.okta_step == "create_user"

    # The item's evidence follows later requests while it is shown.
    run(lambda: okta_creates(url, "bob@example.com"))
    qtbot.waitUntil(lambda: view.evidence.rowCount() == 2, timeout=10000)
    assert view.model.data(view.model.index(row, 2)) == "2"


def test_a_failing_answer_shows_failed_with_the_reason(qtbot, window: MainWindow) -> None:
    url = window.controller.server.base_url
    # A server without PATCH (OKTA.md: "If PATCH is answered with 501, the task fails").
    window.faults.add_rule(parse_fault_spec("status=501,step=deactivate_user_patch"), "custom")
    uid: list[str] = []
    run(lambda: uid.append(okta_creates(url, "jane@example.com")))

    def deactivate() -> None:
        client = ScimClient(url, token=TOKEN)
        client.patch(f"/Users/{uid[0]}", DEACTIVATE)
        client.close()

    run(deactivate)
    qtbot.waitUntil(lambda: status(window, "deactivate_user") == "failed", timeout=10000)
    view = window.coverage
    model = view.model
    row = model.row_of("deactivate_user")
    assert model.data(model.index(row, STATUS_COL)) == "Failed"
    assert model.data(model.index(row, NOTE_COL)).startswith("PATCH answered 501")
    assert "1 failed" in view.summary_label.text()
    assert view.tab_title().endswith(" ✘1")
    window.tabs.setCurrentWidget(view)
    view.select_item("deactivate_user")
    assert view.failure_label.isVisible()
    text = view.failure_label.text()
    assert "PATCH answered 501" in text and "does not fall back to PUT" in text
    assert "Implement PATCH" in text  # the fix
    assert view.evidence.item(0, 2).text() == "501"


def test_manual_ticks_and_reset(qtbot, window: MainWindow) -> None:
    url = window.controller.server.base_url
    view = window.coverage
    model = view.model
    row = model.row_of("suspend_user")
    index = model.index(row, STATUS_COL)
    assert model.data(index) == "Manual"
    assert model.flags(index) & Qt.ItemFlag.ItemIsUserCheckable
    assert model.data(index, Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
    # Ticked in the table (the checkbox) ...
    assert model.setData(index, Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    assert model.data(index) == "Ticked" and status(window, "suspend_user") == "covered"
    # ... or in the detail pane.
    window.tabs.setCurrentWidget(view)
    view.select_item("push_by_rule")
    assert view.tick_box.isVisible() and not view.tick_box.isChecked()
    view.tick_box.setChecked(True)
    assert status(window, "push_by_rule") == "covered"
    assert view.summary_label.text().startswith(f"2 of {len(ITEMS)} covered")
    # An item proved by traffic has no checkbox.
    create = model.index(model.row_of("create_user"), STATUS_COL)
    assert not model.flags(create) & Qt.ItemFlag.ItemIsUserCheckable
    assert not model.setData(create, Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)

    run(lambda: okta_creates(url, "jane@example.com"))
    qtbot.waitUntil(lambda: status(window, "create_user") == "covered", timeout=10000)
    view.reset()
    assert status(window, "create_user") == "not_seen"
    assert status(window, "suspend_user") == "manual"
    assert view.title_label.text().startswith("Select a step")
    # The request log is not cleared, and new traffic counts again.
    assert window.requests.model.rowCount() >= 2
    run(lambda: okta_creates(url, "bob@example.com"))
    qtbot.waitUntil(lambda: status(window, "create_user") == "covered", timeout=10000)
    assert model.coverage.state("create_user").count == 1


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_exported_reports(qtbot, window: MainWindow, tmp_path: Path) -> None:
    url = window.controller.server.base_url
    window.faults.add_rule(parse_fault_spec("status=500,method=GET,path=/Groups,count=1"), "custom")
    run(lambda: okta_creates(url, HOSTILE))

    def lookup() -> None:
        client = ScimClient(url, token=TOKEN)
        client.get("/Groups?" + filter_query('displayName eq "Sales"') + "&startIndex=1&count=100")
        client.close()

    run(lookup)
    qtbot.waitUntil(lambda: status(window, "push_group_lookup") == "failed", timeout=10000)
    qtbot.waitUntil(lambda: status(window, "create_user") == "covered", timeout=10000)
    window.coverage.model.tick("suspend_user", True)
    view = window.coverage

    html_path, md_path = tmp_path / "report.html", tmp_path / "report.md"
    messages: list[str] = []
    view.message.connect(messages.append)
    assert view.export_to(html_path, "html") and view.export_to(md_path, "md")
    assert messages[-1] == f"Exported the coverage report to {md_path}"

    page = html_path.read_text(encoding="utf-8")
    parser = _Page()
    parser.feed(page)
    text = "".join(parser.text)
    # The hostile userName (in the create's Okta label) is text, never markup.
    assert "script" not in parser.tags
    assert f"Create user {HOSTILE}" in text
    assert "Okta lifecycle coverage" in text and "Generated 20" in text
    summary = view.model.summary()
    assert summary in text and "1 failed" in summary
    assert "answered 500 instead of 200" in text and "Fix: " in text
    assert "☑ ticked" in text

    md = md_path.read_text(encoding="utf-8")
    assert md.startswith("# Okta lifecycle coverage\n")
    assert "| ❌ failed | Group push: look up / link an existing group (answered 500" in md
    assert "| ✅ covered | Assign a new user: create | 1 |" in md
    assert "| ☑ ticked | Suspend and unsuspend in Okta | 0 |" in md
    # Unwritable: a message, no exception.
    assert not view.export_to(tmp_path / "missing" / "r.html", "html")
    assert messages[-1].startswith("Could not write")
