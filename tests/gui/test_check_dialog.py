"""Tools > Check a server (issue 15, the window), in the whole window with its real server: the
checker's requests go over real sockets to the window's own server thread while the GUI thread
keeps turning (no deadlock), the results arrive live, a fault rule's failure shows Okta's effect
and the fix, Cancel and closing mid-run clean up, and the exports parse."""

from __future__ import annotations

import json
import os
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from scim_desktop.check import EXPECTED_CHECKS, SUITES
from scim_desktop.check.runner import PREFIX
from scim_desktop.config import AuthConfig, ServerConfig, TlsConfig, UpstreamConfig
from scim_desktop.core.catalog import parse_catalog
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.gui.widgets.check_dialog import CREDENTIALS, CheckDialog, status_colour
from scim_desktop.gui.widgets.main_window import MainWindow
from scim_desktop.server.runner import ServerThread
from tests.conftest import RecordingSink
from tests.gui.test_governance import CATALOG
from tests.scim_client import ScimClient

TOKEN = "check-dialog-token-7d1f"
UP_TOKEN = "check-upstream-token-93ab"
RUN_TIMEOUT_MS = 120_000


@pytest.fixture
def make_window(tmp_path: Path, open_window) -> Callable[..., MainWindow]:
    opened = 0

    def make(*faults: str, upstream: UpstreamConfig | None = None, tls: bool = False) -> MainWindow:
        nonlocal opened
        db_path = tmp_path / f"window{opened}.json"
        opened += 1
        config = ServerConfig(
            port=0,
            db_path=db_path,
            auth=AuthConfig("bearer", token=TOKEN),
            tls=TlsConfig.generated_for(db_path) if tls else None,
            faults=tuple(parse_fault_spec(f) for f in faults),
            upstream=upstream,
        )
        return open_window(config, persist=False)

    return make


def open_dialog(win: MainWindow) -> CheckDialog:
    """Through the Tools menu, as a user does."""
    tools = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Tools")
    action = next(a for a in tools.actions() if a.text() == "Check a server…")
    action.trigger()
    dialog = win.findChild(CheckDialog)
    assert dialog is not None and dialog.isVisible()
    return dialog


def off_thread(qtbot, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on another thread while the window's event loop keeps turning."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    qtbot.waitUntil(lambda: bool(out), timeout=30000)
    return out[0]


def leftovers(qtbot, url: str) -> list[str]:
    """Names of the users and groups check runs left on the server."""

    def names() -> list[str]:
        client = ScimClient(url, token=TOKEN)
        try:
            found = []
            for endpoint, attr in (("/Users", "userName"), ("/Groups", "displayName")):
                page = client.get(f"{endpoint}?startIndex=1&count=1000")
                assert page.status == 200
                found += [r[attr] for r in page.body.get("Resources", [])]
            return [n for n in found if n.startswith(PREFIX)]
        finally:
            client.close()

    return off_thread(qtbot, names)


def run_to_end(qtbot, dialog: CheckDialog) -> None:
    dialog.run_button.click()
    assert dialog.running
    qtbot.waitUntil(lambda: not dialog.running, timeout=RUN_TIMEOUT_MS)


def rows(dialog: CheckDialog) -> list[tuple[str, str, str, str]]:
    t = dialog.table
    return [
        tuple(t.item(r, c).text() for c in range(t.columnCount()))  # type: ignore[misc]
        for r in range(t.rowCount())
    ]


def select_check(dialog: CheckDialog, name: str) -> str:
    """Click the check's row; the detail pane's text."""
    row = next(i for i, r in enumerate(rows(dialog)) if r[2] == name)
    dialog.table.selectRow(row)
    return dialog.detail.toPlainText()


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.cells: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "td":
            self.cells.append(dict(attrs).get("class") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_own_server_in_one_click_passes_every_check_live(
    qtbot, make_window: Callable[..., MainWindow], tmp_path: Path
) -> None:
    win = make_window()
    server = win.controller.server
    assert server is not None
    off_thread(qtbot, lambda: server.set_catalog(parse_catalog(CATALOG)).result(10))
    dialog = open_dialog(win)
    assert dialog.url.text() == "" and not dialog.upstream_button.isVisible()

    dialog.own_button.click()
    assert dialog.url.text() == server.base_url
    assert CREDENTIALS[dialog.credential.currentIndex()] == "bearer"
    assert dialog.token.text() == TOKEN
    assert dialog.token.echoMode() == dialog.token.EchoMode.Password
    assert not dialog.insecure.isChecked()

    seen: list[int] = []
    dialog.relay.checkDone.connect(lambda _check: seen.append(dialog.table.rowCount()))
    run_to_end(qtbot, dialog)
    report = dialog.report
    assert report is not None and not report.interrupted
    # The rows arrived one by one (each check as it finished), not all at the end.
    assert len(seen) == len(report.checks) and seen == sorted(seen)
    assert dialog.table.rowCount() == len(report.checks) > sum(EXPECTED_CHECKS.values()) - 1
    assert {r[0] for r in rows(dialog)} == {"PASS"}
    assert [r[1] for r in rows(dialog)][:12] == ["spec"] * 12
    assert {r[1] for r in rows(dialog)} == set(SUITES)
    # The bar reaches its end; the summary line and the cleanup are shown.
    assert dialog.progress.value() == dialog.progress.maximum() == len(report.checks)
    summary = dialog.summary.text()
    assert f"check: {len(report.checks)} passed, 0 failed, 0 skipped" in summary
    assert "cleanup: deleted " in summary
    assert leftovers(qtbot, server.base_url) == []
    assert dialog.run_button.isEnabled() and dialog.export_buttons["json"].isEnabled()

    # A passing check's pane: its requests and answers, the credential redacted.
    text = select_check(dialog, "duplicate create -> 409")
    assert "PASS" in text and "POST " in text and "→ 409 Conflict in " in text and "Answer" in text
    assert TOKEN not in text and "Bearer ***" in text

    # Exports: written by check.report, parsed back, no secret in any.
    out = {fmt: tmp_path / f"report.{fmt}" for fmt in ("json", "junit", "html")}
    for fmt, path in out.items():
        assert dialog.export_to(path, fmt)
        assert TOKEN not in path.read_text(encoding="utf-8")
    doc = json.loads(out["json"].read_text(encoding="utf-8"))
    assert doc["url"] == server.base_url and doc["failed"] == 0
    assert [c["name"] for c in doc["checks"]] == [r[2] for r in rows(dialog)]
    root = ET.parse(out["junit"]).getroot()
    assert root.tag == "testsuites" and root.get("tests") == str(len(report.checks))
    assert root.get("failures") == "0"
    assert [s.get("name") for s in root] == list(SUITES)
    page = _Text()
    page.feed(out["html"].read_text(encoding="utf-8"))
    assert report.summary() in "".join(page.text)
    assert page.cells.count("pass") == len(report.checks)


def test_a_501_to_patch_fails_with_oktas_effect_and_the_fix(
    qtbot, make_window: Callable[..., MainWindow], tmp_path: Path
) -> None:
    win = make_window("action=not_implemented,method=PATCH")
    dialog = open_dialog(win)
    dialog.own_button.click()
    for suite, box in dialog.suite_boxes.items():
        box.setChecked(suite == "crud")
    run_to_end(qtbot, dialog)
    assert dialog.progress.maximum() == EXPECTED_CHECKS["crud"]
    by_name = {r[2]: r for r in rows(dialog)}
    assert by_name["deactivate (PATCH, no path)"][0] == "FAIL"
    assert "PATCH answered 501" in by_name["deactivate (PATCH, no path)"][3]
    assert by_name["deactivate (AIW: GET, then PUT)"][0] == "PASS"
    # PASS green, FAIL red.
    names = [r[2] for r in rows(dialog)]
    colour = {
        r[0]: dialog.table.item(names.index(r[2]), 0).foreground().color() for r in rows(dialog)
    }
    assert colour["FAIL"] == status_colour("fail") != colour["PASS"] == status_colour("pass")

    # The first failure is selected when the run ends; clicking another shows its own.
    assert dialog.detail.toPlainText().startswith("FAIL")
    text = select_check(dialog, "deactivate (PATCH, no path)")
    assert "FAIL" in text and "crud · deactivate (PATCH, no path)" in text
    assert "Okta does not fall back to PUT" in text
    assert "Implement PATCH (RFC 7644 §3.5.2)" in text
    assert "PATCH " in text and "→ 501 Not Implemented in " in text  # the request, the answer
    assert TOKEN not in text
    summary = dialog.summary.text()
    assert " failed, " in summary and " 0 failed" not in summary

    assert dialog.export_to(tmp_path / "r.xml", "junit")
    failures = ET.parse(tmp_path / "r.xml").getroot().findall(".//failure")
    assert any("Okta does not fall back to PUT" in (f.text or "") for f in failures)
    assert leftovers(qtbot, win.controller.server.base_url) == []


def test_a_refused_token_is_one_failure_naming_the_credential(
    qtbot, make_window: Callable[..., MainWindow], tmp_path: Path
) -> None:
    """A mistyped token: the first row fails saying the server refused the credential, the
    rows after it are skipped for that reason (SPEC 11, a 401 on purpose, still passes), and
    the failure selected at the end shows Okta's effect and the fix."""
    win = make_window()
    dialog = open_dialog(win)
    dialog.own_button.click()
    wrong = "mistyped-dialog-token-5c"
    dialog.token.setText(wrong)
    run_to_end(qtbot, dialog)
    report = dialog.report
    assert report is not None and report.refused.startswith("401: ")
    table = rows(dialog)
    assert [r[0] for r in table].count("FAIL") == 1 and table[0][0] == "FAIL"
    assert table[0][2] == "SPEC  1: list users"
    assert table[0][3].startswith("the server refused the credential (401: ")
    assert [r[2][:7] for r in table if r[0] == "PASS"] == ["SPEC 11"]
    assert {r[3] for r in table if r[0] == "SKIP"} == {"the server refused the credential"}
    assert len(table) == len(report.checks) and report.skipped == len(table) - 2
    assert dialog.progress.value() == dialog.progress.maximum() == len(table)
    # The failure is selected: the pane says what to do about it.
    assert [i.row() for i in dialog.table.selectionModel().selectedRows()] == [0]
    text = dialog.detail.toPlainText()
    assert text.startswith("FAIL") and "the server refused the credential (401: " in text
    assert "Test API Credentials fails" in text and "Authorization: Bearer <token>" in text
    assert "→ 401 Unauthorized in " in text and wrong not in text
    assert "check: 1 passed, 1 failed, " in dialog.summary.text()
    # The line under the form points at the fields to fix.
    assert dialog.message.isVisible()
    assert dialog.message.text().startswith("The server refused the credential (401: ")
    assert "Credential fields" in dialog.message.text()
    assert dialog.export_to(tmp_path / "r.json", "json")
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert doc["failed"] == 1 and doc["credential_refused"] == report.refused
    if (shot := os.environ.get("CHECK_DIALOG_SHOT")) is not None:
        dialog.grab().save(shot)  # to look at it: CHECK_DIALOG_SHOT=/tmp/x.png pytest -k ...


def test_cancel_mid_run_cleans_up(qtbot, make_window: Callable[..., MainWindow]) -> None:
    # Slow PATCH answers: the crud suite is still running when Cancel is clicked.
    win = make_window("latency_ms=300,method=PATCH")
    dialog = open_dialog(win)
    dialog.own_button.click()
    dialog.relay.checkDone.connect(
        lambda _c: dialog.table.rowCount() == 14 and dialog.cancel_button.click()
    )
    run_to_end(qtbot, dialog)
    report = dialog.report
    assert report is not None and report.interrupted
    assert len(report.checks) < sum(EXPECTED_CHECKS.values())
    assert report.checks[-1].status == "skip" and report.checks[-1].detail == "cancelled"
    assert any(line.startswith("deleted user ") for line in report.cleanup)
    assert "Cancelled" in dialog.message.text() and dialog.message.isVisible()
    assert leftovers(qtbot, win.controller.server.base_url) == []
    # The dialog can run again.
    assert dialog.run_button.isEnabled() and not dialog.cancel_button.isEnabled()


def start_slow_run(qtbot, make_window: Callable[..., MainWindow]) -> tuple[MainWindow, CheckDialog]:
    """A run against the window's own server, its PATCHes slowed down, past its 14th check
    (mid-run: the lifecycle's PATCHes are still to come)."""
    win = make_window("latency_ms=300,method=PATCH")
    dialog = open_dialog(win)
    dialog.own_button.click()
    dialog.run_button.click()
    qtbot.waitUntil(lambda: dialog.table.rowCount() >= 14, timeout=RUN_TIMEOUT_MS)
    return win, dialog


def test_closing_mid_run_waits_for_cleanup_without_freezing(
    qtbot, make_window: Callable[..., MainWindow]
) -> None:
    win, dialog = start_slow_run(qtbot, make_window)
    dialog.close()
    # close() returned at once (no wait on the GUI thread): the dialog is still open and the
    # run still going while the runner cleans up on its thread.
    assert dialog.isVisible() and dialog.running
    assert "Cleaning up" in dialog.message.text()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=RUN_TIMEOUT_MS)
    assert not dialog.running and dialog.report is not None and dialog.report.interrupted
    assert leftovers(qtbot, win.controller.server.base_url) == []


def test_closing_the_window_mid_run_cancels_the_check(
    qtbot, make_window: Callable[..., MainWindow]
) -> None:
    win, dialog = start_slow_run(qtbot, make_window)
    thread, cancel = dialog._thread, dialog._cancel
    assert thread is not None and not cancel.is_set()
    win.close()  # stops the server too: what is left of the run ends quickly
    assert cancel.is_set()
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=RUN_TIMEOUT_MS)


def test_own_https_server_is_checked_without_verifying_its_certificate(
    qtbot, make_window: Callable[..., MainWindow]
) -> None:
    win = make_window(tls=True)
    dialog = open_dialog(win)
    assert dialog.insecure_warning.isHidden()
    dialog.own_button.click()
    assert dialog.url.text().startswith("https://127.0.0.1:")
    # The window's certificate is self-signed: one click turns verification off, warned.
    assert dialog.insecure.isChecked() and not dialog.insecure_warning.isHidden()
    for suite, box in dialog.suite_boxes.items():
        box.setChecked(suite == "spec")
    run_to_end(qtbot, dialog)
    assert [r[0] for r in rows(dialog)] == ["PASS"] * EXPECTED_CHECKS["spec"]
    # Verified against the system store, the same certificate is refused: one clear line.
    dialog.insecure.setChecked(False)
    run_to_end(qtbot, dialog)
    assert "CERTIFICATE_VERIFY_FAILED" in dialog.message.text()
    assert dialog.table.rowCount() == 0


def test_an_unreachable_server_is_a_clear_message(qtbot, make_window) -> None:
    win = make_window()
    dialog = open_dialog(win)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dialog.url.setText(f"http://127.0.0.1:{port}/scim/v2")
    dialog.set_credential("header")
    dialog.header_name.setText("X-Api-Key")
    dialog.header_value.setText("secret-key-value-1")
    run_to_end(qtbot, dialog)
    text = dialog.message.text()
    assert dialog.message.isVisible() and text.startswith("cannot reach http://127.0.0.1:")
    assert "Traceback" not in text and "secret-key-value-1" not in text
    assert dialog.table.rowCount() == 0 and dialog.report is None
    assert not dialog.export_buttons["json"].isEnabled() and dialog.run_button.isEnabled()

    # A form that is not complete says what is missing and runs nothing.
    dialog.url.setText("app.example.com/scim/v2")
    assert not dialog.start()
    assert "SCIM base URL" in dialog.message.text() and not dialog.running
    dialog.url.setText("http://127.0.0.1:9/scim/v2")
    dialog.set_credential("bearer")
    dialog.token.clear()
    assert not dialog.start() and "bearer token" in dialog.message.text()
    for box in dialog.suite_boxes.values():
        box.setChecked(False)
    dialog.token.setText("t0k3n")
    assert not dialog.start() and "at least one suite" in dialog.message.text()
    dialog.suite_boxes["spec"].setChecked(True)
    # The command line's validation (make_options), in the form's words.
    dialog.token.setText("Bearer t0k3n")
    assert not dialog.start() and "bearer token (no spaces)" in dialog.message.text()
    dialog.set_credential("basic")
    dialog.basic_user.setText("ok:ta")
    assert not dialog.start() and "without ':'" in dialog.message.text()
    dialog.set_credential("header")
    dialog.header_name.setText("X Api Key")
    assert not dialog.start() and "header's name" in dialog.message.text()
    assert "--" not in dialog.message.text() and not dialog.running


def test_proxy_mode_checks_the_upstream_in_one_click(
    qtbot, make_window: Callable[..., MainWindow], tmp_path: Path
) -> None:
    up = ServerThread(
        ServerConfig(
            port=0, db_path=tmp_path / "up.json", auth=AuthConfig("bearer", token=UP_TOKEN)
        ),
        RecordingSink(),
    )
    up.start()
    try:
        win = make_window(upstream=UpstreamConfig(up.base_url, token=UP_TOKEN))
        dialog = open_dialog(win)
        assert dialog.upstream_button.isVisible()
        dialog.upstream_button.click()
        assert dialog.url.text() == up.base_url and dialog.token.text() == UP_TOKEN
        for suite, box in dialog.suite_boxes.items():
            box.setChecked(suite == "spec")
        run_to_end(qtbot, dialog)
        assert dialog.report is not None and dialog.report.url == up.base_url
        assert [r[0] for r in rows(dialog)] == ["PASS"] * EXPECTED_CHECKS["spec"]
        # Through the proxy itself: the window's own server and its own credential.
        dialog.own_button.click()
        assert dialog.url.text() == win.controller.server.base_url
        assert dialog.token.text() == TOKEN
    finally:
        up.stop()
