"""The window in proxy mode (issue 14), on real sockets: the window's server forwards to a real
upstream (our own mock server on an ephemeral port) and shows what the upstream answered."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from scim_desktop.config import AuthConfig, ServerConfig, UpstreamConfig
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.gui.models.requests import COL_UPSTREAM
from scim_desktop.gui.widgets.connection import SettingsDialog
from scim_desktop.gui.widgets.main_window import MainWindow
from scim_desktop.server.events import RequestRecord
from scim_desktop.server.runner import ServerThread
from tests.conftest import RecordingSink
from tests.scim_client import ScimClient
from tests.server.test_okta_flows import okta_create_body

UP_TOKEN = "upstream-token-5b1e"
OWN_TOKEN = "proxy-token-c04d"


def start_upstream(
    tmp_path: Path, name: str = "upstream", port: int = 0, faults: tuple[Any, ...] = ()
) -> tuple[ServerThread, RecordingSink]:
    sink = RecordingSink()
    config = ServerConfig(
        port=port,
        db_path=tmp_path / f"{name}.json",
        auth=AuthConfig("bearer", token=UP_TOKEN),
        faults=faults,
    )
    thread = ServerThread(config, sink)
    thread.start()
    return thread, sink


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[ServerThread, RecordingSink]]:
    thread, sink = start_upstream(tmp_path)
    try:
        yield thread, sink
    finally:
        thread.stop()


@pytest.fixture
def make_window(tmp_path: Path, open_window) -> Callable[..., MainWindow]:
    def make(upstream: UpstreamConfig | None, **kw: Any) -> MainWindow:
        auth = AuthConfig("none") if upstream and not upstream.has_credential else None
        config = ServerConfig(
            port=0,
            db_path=tmp_path / "window.json",
            auth=auth or AuthConfig("bearer", token=OWN_TOKEN),
            upstream=upstream,
            **kw,
        )
        return open_window(config)

    return make


def call(url: str, fn: Callable[[ScimClient], Any], token: str | None = OWN_TOKEN) -> Any:
    """Run ``fn(client)`` on another thread (the window's event loop must keep turning)."""
    out: list[Any] = []

    def run() -> None:
        client = ScimClient(url, token=token)
        try:
            out.append(fn(client))
        finally:
            client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    assert out, "the request did not finish"
    return out[0]


def records(win: MainWindow) -> list[RequestRecord]:
    return win.requests.model.records()


def select_last(win: MainWindow) -> None:
    win.requests.select_row(win.requests.proxy.rowCount() - 1)


def requests_seen(sink: RecordingSink) -> list[RequestRecord]:
    return [e for e in sink.events if isinstance(e, RequestRecord)]


def test_requests_pass_through_and_show_the_upstream(qtbot, upstream, make_window) -> None:
    up, up_sink = upstream
    win = make_window(UpstreamConfig(up.base_url, token=UP_TOKEN))
    url = win.controller.server.base_url
    assert win.connection.mode.text() == "Proxy"
    assert f"Proxy → {up.base_url}" in win.proxy_strip.text.text()
    assert win.proxy_strip.isVisible() and up.base_url in win.windowTitle()
    assert not win.requests.table.isColumnHidden(COL_UPSTREAM)

    created = call(url, lambda c: c.post("/Users", okta_create_body("pass@example.com")))
    assert created.status == 201
    uid = created.body["id"]
    assert call(url, lambda c: c.get(f"/Users/{uid}")).status == 200
    # Our own credential is refused upstream: only the proxy's is accepted here.
    assert call(url, lambda c: c.get(f"/Users/{uid}"), token=UP_TOKEN).status == 401

    qtbot.waitUntil(lambda: len(records(win)) == 3, timeout=10000)
    create, read, refused = records(win)
    assert (create.upstream_status, read.upstream_status) == (201, 200)
    assert refused.upstream_status is None and refused.status == 401
    assert create.upstream_ms is not None and create.upstream_ms <= create.duration_ms
    model = win.requests.model
    assert model.index(0, COL_UPSTREAM).data() == "201"
    assert model.index(1, COL_UPSTREAM).data() == "200"
    # The upstream really served them (and never saw the refused one). A record is
    # published just after its answer: wait for it.
    qtbot.waitUntil(lambda: len(requests_seen(up_sink)) >= 2, timeout=10000)
    assert [r.method for r in requests_seen(up_sink)] == ["POST", "GET"]

    win.requests.select_row(0)
    detail = win.requests.detail
    text = detail.upstream_label.text()
    assert "Your server answered" in text and "201" in text
    assert "ms upstream" in text and "ms in the proxy" in text
    assert detail.upstream_label.isVisible() and not detail.reject_banner.isVisible()
    assert "Upstream" in win.upstream_status.text  # the status bar knows the upstream
    assert not win.upstream_status.insecure.isVisible()


def test_okta_would_reject_an_empty_201(qtbot, tmp_path, make_window) -> None:
    rule = parse_fault_spec("action=empty,path=/Users")
    up, _ = start_upstream(tmp_path, "empty", faults=(rule,))
    try:
        win = make_window(UpstreamConfig(up.base_url, token=UP_TOKEN))
        url = win.controller.server.base_url
        answer = call(url, lambda c: c.post("/Users", okta_create_body("e@example.com")))
        assert answer.status == 201
        qtbot.waitUntil(lambda: len(records(win)) == 1, timeout=10000)
    finally:
        up.stop()
    record = records(win)[0]
    assert record.upstream_status == 201 and record.okta_problems
    assert record.fault is None  # the upstream's fault, not the proxy's
    assert win.requests.model.index(0, COL_UPSTREAM).data() == "201 ⚠"
    select_last(win)
    banner = win.requests.detail.reject_banner
    assert banner.isVisible()
    assert "Okta would reject this answer" in banner.text()
    for problem in record.okta_problems:
        assert problem.replace("'", "&#x27;").replace('"', "&quot;")[:40] in banner.text()
    # The request log's search finds it by the problem's words.
    win.requests.search_edit.setText(record.okta_problems[0][:20])
    win.requests._apply_search()
    assert win.requests.proxy.rowCount() == 1


def test_a_fault_answered_in_the_proxy_never_reaches_the_upstream(
    qtbot, upstream, make_window
) -> None:
    up, up_sink = upstream
    rule = parse_fault_spec("status=429,path=/Users,count=1")
    win = make_window(UpstreamConfig(up.base_url, token=UP_TOKEN), faults=(rule,))
    url = win.controller.server.base_url
    assert call(url, lambda c: c.get("/Users")).status == 429
    assert call(url, lambda c: c.get("/Users")).status == 200
    qtbot.waitUntil(lambda: len(records(win)) == 2, timeout=10000)
    faulted, passed = records(win)
    assert faulted.fault and faulted.upstream_status is None
    assert passed.upstream_status == 200
    qtbot.waitUntil(lambda: len(requests_seen(up_sink)) >= 1, timeout=10000)
    assert len(requests_seen(up_sink)) == 1  # only the second one
    assert win.requests.model.index(0, COL_UPSTREAM).data() == "—"
    win.requests.select_row(0)
    banner = win.requests.detail.fault_banner
    assert "the upstream never saw it" in banner.text() and banner.isVisible()
    assert not win.requests.detail.upstream_label.isVisible()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_upstream_down_shows_in_the_status_bar_until_it_is_back(
    qtbot, tmp_path, make_window
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/scim/v2"
    win = make_window(UpstreamConfig(base))  # transparent: the client's token goes upstream
    url = win.controller.server.base_url
    assert win.connection.auth_label.text() == "Okta's credential goes to your server"
    down = call(url, lambda c: c.get("/Users"), token=UP_TOKEN)
    assert down.status == 502
    qtbot.waitUntil(lambda: win.upstream_status.up is False, timeout=10000)
    assert "Upstream down" in win.upstream_status.text
    assert "unreachable" in win.upstream_status.text
    qtbot.waitUntil(lambda: len(records(win)) == 1, timeout=10000)
    assert win.requests.model.index(0, COL_UPSTREAM).data() == "unreachable"
    select_last(win)
    assert "Your server failed: unreachable" in win.requests.detail.upstream_label.text()

    up, _ = start_upstream(tmp_path, port=port)
    try:
        assert call(url, lambda c: c.get("/Users"), token=UP_TOKEN).status == 200
        qtbot.waitUntil(lambda: win.upstream_status.up is True, timeout=10000)
    finally:
        up.stop()
    assert "Upstream down" not in win.upstream_status.text
    assert base in win.upstream_status.text


def test_insecure_upstream_is_warned_about_in_the_status_bar(qtbot, make_window) -> None:
    port = free_port()
    win = make_window(UpstreamConfig(f"https://127.0.0.1:{port}/scim/v2", insecure=True))
    assert win.upstream_status.isVisible() and win.upstream_status.insecure.isVisible()
    assert "not verified" in win.upstream_status.insecure.text()
    assert "certificate is not verified" in win.proxy_strip.text.text()
    # Demo data would only fill the idle mock: refused with a way out.
    win.load_demo()
    assert "Demo data is for the mock server" in win.notice.text.text()


def test_demo_reset_and_simulation_in_a_transparent_proxy_are_refused(
    qtbot, upstream, make_window, monkeypatch
) -> None:
    up, up_sink = upstream
    win = make_window(UpstreamConfig(up.base_url))  # transparent
    asked: list[str] = []
    monkeypatch.setattr(
        QMessageBox,
        "question",
        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Yes,
    )
    # Reset would only empty the idle mock's data: refused, without asking.
    win.reset_data = lambda: asked.append("reset")  # type: ignore[method-assign]
    win.confirm_reset()
    assert asked == []
    notice = win.notice.text.text()
    assert "Reset demo data is for the mock server" in notice and "never deletes" in notice
    assert win.notice.isVisible()
    # The simulator has none of the upstream's credentials: refused before a request is sent.
    win.simulate_okta()
    assert win._sim_thread is None and asked == []
    assert "transparent proxy needs your server's credential" in win.notice.text.text()
    assert requests_seen(up_sink) == [] and records(win) == []


def test_simulation_in_credential_swap_sends_the_proxys_own_credential(
    qtbot, upstream, make_window, monkeypatch
) -> None:
    up, _ = upstream
    win = make_window(UpstreamConfig(up.base_url, token=UP_TOKEN))
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked: list[str] = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or answers.pop(0)
    )
    win.simulate_okta()  # it would write to the user's server: asked first, and declined
    assert win._sim_thread is None and up.base_url in asked[0] and "stay" in asked[0]
    win.simulate_okta()
    thread = win._sim_thread
    assert thread is not None
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=120000)
    qtbot.waitUntil(lambda: len(records(win)) >= 20, timeout=10000)
    # Through the proxy with its own credential (none refused), on to the upstream with the
    # upstream's: the users were created there.
    seen = records(win)
    refused = [(r.method, r.path, r.upstream_status) for r in seen if r.status == 401]
    # Only Okta's SPEC step that sends a wrong credential on purpose, refused by the proxy.
    assert refused == [("GET", "/scim/v2/Users", None)]
    assert all(r.upstream_status is not None for r in seen if r.status != 401)
    assert any(r.method == "POST" and r.upstream_status == 201 for r in seen)
    created = call(up.base_url, lambda c: c.get("/Users?count=100"), token=UP_TOKEN)
    assert created.body["totalResults"] >= 3


def run_settings(qtbot, win: MainWindow, act: Callable[[SettingsDialog], None]) -> None:
    """Open Settings the way the button does, let ``act`` fill it in and press Apply."""
    seen: list[SettingsDialog] = []

    def drive() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, SettingsDialog):
            QTimer.singleShot(20, drive)
            return
        seen.append(dialog)
        act(dialog)
        dialog._accept()

    QTimer.singleShot(0, drive)
    win.connection.settings.click()
    assert seen, "Settings did not open"
    qtbot.waitUntil(lambda: win.controller.state == "listening", timeout=15000)


def test_switching_mock_proxy_mock_in_settings_without_restarting(
    qtbot, upstream, make_window, settings
) -> None:
    up, up_sink = upstream
    win = make_window(None)
    assert win.connection.mode.text() == "Mock server" and not win.proxy_strip.isVisible()
    assert win.requests.table.isColumnHidden(COL_UPSTREAM)
    assert not win.upstream_status.isVisible()
    mock_url = win.controller.server.base_url
    call(mock_url, lambda c: c.post("/Users", okta_create_body("mock@example.com")))

    def to_proxy(dialog: SettingsDialog) -> None:
        section = dialog.upstream
        section.proxy_radio.setChecked(True)
        section.url.setText(up.base_url)
        section.kind.setCurrentIndex(section.kind.findData("bearer"))
        section.secret.setText(UP_TOKEN)

    run_settings(qtbot, win, to_proxy)
    assert win.config.upstream == UpstreamConfig(up.base_url, token=UP_TOKEN)
    assert win.connection.mode.text() == "Proxy" and win.proxy_strip.isVisible()
    assert not win.tabs.isTabEnabled(win.tabs.indexOf(win.users))  # the mock's, unused
    assert not win.requests.table.isColumnHidden(COL_UPSTREAM)
    url = win.controller.server.base_url
    listed = call(url, lambda c: c.get("/Users?filter=userName%20eq%20%22mock%40example.com%22"))
    assert listed.status == 200 and listed.body["totalResults"] == 0  # the upstream's data
    qtbot.waitUntil(lambda: len(requests_seen(up_sink)) == 1, timeout=10000)
    assert settings.value("server_mode") == "proxy"

    def to_mock(dialog: SettingsDialog) -> None:
        section = dialog.upstream
        # The proxy's settings are all there when Settings opens again.
        assert section.proxy_radio.isChecked() and section.url.text() == up.base_url
        assert section.kind.currentData() == "bearer" and section.secret.text() == UP_TOKEN
        section.mock_radio.setChecked(True)

    run_settings(qtbot, win, to_mock)
    assert win.config.upstream is None and win.connection.mode.text() == "Mock server"
    assert not win.proxy_strip.isVisible()
    assert win.tabs.isTabEnabled(win.tabs.indexOf(win.users))
    assert win.windowTitle() == "SCIM Desktop"
    url = win.controller.server.base_url
    mine = call(url, lambda c: c.get("/Users?filter=userName%20eq%20%22mock%40example.com%22"))
    assert mine.body["totalResults"] == 1  # the mock's data is intact
    assert settings.value("server_mode") == "mock"

    def check_kept(dialog: SettingsDialog) -> None:
        section = dialog.upstream
        assert section.mock_radio.isChecked()
        assert section.url.text() == up.base_url and section.secret.text() == UP_TOKEN

    run_settings(qtbot, win, check_kept)
    assert win.config.upstream is None


def test_exports_carry_the_upstream_and_no_secret(qtbot, upstream, make_window, tmp_path) -> None:
    up, _ = upstream
    win = make_window(UpstreamConfig(up.base_url, token=UP_TOKEN))
    url = win.controller.server.base_url
    call(url, lambda c: c.post("/Users", okta_create_body("har@example.com")))
    qtbot.waitUntil(lambda: len(records(win)) == 1, timeout=10000)
    har_path, jsonl_path = tmp_path / "p.har", tmp_path / "p.jsonl"
    win.requests.export_to(har_path, "har").join(10)
    win.requests.export_to(jsonl_path, "jsonl").join(10)
    entry = json.loads(har_path.read_text())["log"]["entries"][0]
    assert entry["_upstreamStatus"] == 201 and entry["_oktaProblems"] == []
    timings = entry["timings"]
    assert timings["wait"] == entry["_upstreamTime"]
    assert abs(timings["blocked"] + timings["wait"] - entry["time"]) < 1e-6
    line = json.loads(jsonl_path.read_text().splitlines()[0])
    assert line["upstream_status"] == 201
    for path in (har_path, jsonl_path):
        text = path.read_text()
        assert UP_TOKEN not in text and OWN_TOKEN not in text
