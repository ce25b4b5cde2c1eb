"""The whole window with its real embedded server, driven over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from orjson import loads as orjson_loads
from PySide6.QtCore import QSettings

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.gui.widgets.main_window import MainWindow
from tests.scim_client import ScimClient
from tests.server.test_okta_flows import okta_create_body

TOKEN = "gui-token"


@pytest.fixture
def window(tmp_path: Path, open_window) -> MainWindow:
    return open_window(
        ServerConfig(port=0, db_path=tmp_path / "gui.json", auth=AuthConfig("bearer", token=TOKEN))
    )


def in_thread(fn) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def test_window_shows_connection_and_follows_requests(qtbot, window: MainWindow) -> None:
    url = window.controller.server.base_url
    assert window.connection.url.text() == url
    assert "Listening" in window.connection.state.text()
    assert TOKEN not in window.connection.secret.text()  # masked until revealed
    window.connection.reveal.setChecked(True)
    assert window.connection.secret.text() == TOKEN

    def traffic() -> None:
        client = ScimClient(url, token=TOKEN)
        for i in range(30):
            client.post("/Users", okta_create_body(f"w{i}@example.com"))
        client.get("/Users?startIndex=1&count=100")
        client.close()

    in_thread(traffic).join(30)
    qtbot.waitUntil(lambda: window.requests.model.rowCount() == 31, timeout=10000)
    qtbot.waitUntil(lambda: window.users.model.rowCount() == 30, timeout=10000)
    window._update_status()
    assert "30 users" in window.status_counts.text()
    assert window.tabs.tabText(1) == "Users (30)"


def test_fault_switch_changes_answers_and_shows_banner(qtbot, window: MainWindow) -> None:
    url = window.controller.server.base_url
    assert window.banner.isHidden()
    window.faults._buttons["500-everything"].click()
    assert window.banner.isVisible() and "FAULTS ACTIVE" in window.banner.text.text()
    statuses: list[int] = []

    def get() -> None:
        client = ScimClient(url, token=TOKEN)
        statuses.append(client.get("/Users").status)
        client.close()

    qtbot.waitUntil(lambda: (in_thread(get).join(10), statuses[-1] == 500)[1], timeout=10000)
    window.banner.off.click()
    assert window.banner.isHidden() and not window.faults.active
    statuses.clear()
    qtbot.waitUntil(lambda: (in_thread(get).join(10), statuses[-1] == 200)[1], timeout=10000)


def test_custom_rule_editor_and_counts(qtbot, window: MainWindow) -> None:
    url = window.controller.server.base_url
    window.faults.f_spec.setText("status=503,path=/Groups*,count=2")
    window.faults.add_button.click()
    assert len(window.faults.active) == 1 and window.faults.f_error.text() == ""
    results: list[int] = []

    def hit() -> None:
        client = ScimClient(url, token=TOKEN)
        results.extend(client.get("/Groups").status for _ in range(3))
        client.close()

    in_thread(hit).join(10)
    assert results == [503, 503, 200]
    window.faults.refresh_states()
    qtbot.waitUntil(lambda: window.faults.table.item(0, 1).text() == "2", timeout=5000)
    assert window.faults.table.item(0, 2).text() == "0"
    # A bad spec is shown in words, and nothing is added.
    window.faults.f_spec.setText("status=99")
    window.faults.add_button.click()
    assert "status" in window.faults.f_error.text() and len(window.faults.active) == 1


def test_demo_data_load_and_reset(qtbot, window: MainWindow, monkeypatch) -> None:
    window.load_demo()
    qtbot.waitUntil(lambda: window.users.model.rowCount() == 60, timeout=15000)
    qtbot.waitUntil(lambda: window.groups.model.rowCount() == 10, timeout=15000)
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.confirm_reset()
    qtbot.waitUntil(lambda: window.users.model.rowCount() == 0, timeout=10000)
    assert window.groups.model.rowCount() == 0


def test_closing_the_window_stops_the_server_and_saves(qtbot, tmp_path, settings) -> None:
    db = tmp_path / "close.json"
    config = ServerConfig(port=0, db_path=db, auth=AuthConfig("none"))
    win = MainWindow(config, settings=settings)
    qtbot.addWidget(win)
    win.show()
    win.start_server()
    qtbot.waitUntil(lambda: win.controller.state == "listening", timeout=15000)
    server = win.controller.server
    port = server.port
    client = ScimClient(server.base_url)
    assert client.post("/Users", okta_create_body("saved@example.com")).status == 201
    client.close()
    win.close()
    assert not server.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    doc = json.loads(db.read_text())
    assert any(u["userName"] == "saved@example.com" for u in doc["Users"].values())
    assert settings.value("db") == str(db)


def test_port_in_use_is_explained_with_a_way_out(qtbot, tmp_path, settings) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    config = ServerConfig(port=port, db_path=tmp_path / "p.json", auth=AuthConfig("none"))
    win = MainWindow(config, settings=settings)
    qtbot.addWidget(win)
    win.show()
    try:
        win.start_server()
        qtbot.waitUntil(lambda: win.controller.state == "error", timeout=15000)
        assert "already in use" in win.notice.text.text()
        buttons = [
            win.notice.actions_row.itemAt(i).widget().text()
            for i in range(win.notice.actions_row.count())
        ]
        assert "Any free port" in buttons
        any_port = next(
            win.notice.actions_row.itemAt(i).widget()
            for i in range(win.notice.actions_row.count())
            if win.notice.actions_row.itemAt(i).widget().text() == "Any free port"
        )
        any_port.click()
        qtbot.waitUntil(lambda: win.controller.state == "listening", timeout=15000)
        assert win.controller.server.port != port
    finally:
        blocker.close()
        win.close()


def test_corrupt_data_file_is_reported(qtbot, tmp_path, settings) -> None:
    db = tmp_path / "bad.json"
    db.write_text("{not json")
    config = ServerConfig(port=0, db_path=db, auth=AuthConfig("none"))
    win = MainWindow(config, settings=settings)
    qtbot.addWidget(win)
    win.show()
    win.start_server()
    qtbot.waitUntil(lambda: win.controller.state == "listening", timeout=15000)
    qtbot.waitUntil(win.notice.isVisible, timeout=5000)
    moved = list(tmp_path.glob("bad.json.corrupt-*"))
    assert moved and str(moved[0]) in win.notice.text.text()
    win.close()


def test_startup_fault_rules_are_shown(qtbot, tmp_path, settings) -> None:
    rule = parse_fault_spec("status=429,retry_after=60")
    config = ServerConfig(
        port=0, db_path=tmp_path / "f.json", auth=AuthConfig("none"), faults=(rule,)
    )
    win = MainWindow(config, settings=settings)
    qtbot.addWidget(win)
    win.show()
    assert win.banner.isVisible() and len(win.faults.active) == 1
    win.close()


def test_unexpected_exception_is_logged_and_shown_as_notice(qtbot, window: MainWindow) -> None:
    import logging
    import sys

    from scim_desktop.gui.app import _install_excepthooks

    saved = (sys.excepthook, threading.excepthook)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("scim_desktop.gui").addHandler(handler)
    try:
        _install_excepthooks([window])
        try:
            raise RuntimeError("kaboom in a slot")
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        qtbot.waitUntil(window.notice.isVisible, timeout=5000)
        assert "kaboom in a slot" in window.notice.text.text()
        assert any("Traceback" in r.getMessage() for r in records)
        # The window keeps working.
        assert window.controller.running
    finally:
        sys.excepthook, threading.excepthook = saved
        logging.getLogger("scim_desktop.gui").removeHandler(handler)


def test_row_cap_setting_is_applied_and_kept(qtbot, window: MainWindow, settings) -> None:
    window.set_row_cap(2_000)
    assert window.requests.model.row_cap == 2_000
    assert int(settings.value("row_cap")) == 2_000


def test_exhausted_rule_drops_the_banner_and_remove_works(qtbot, window: MainWindow) -> None:
    url = window.controller.server.base_url
    window.faults.add_rule(parse_fault_spec("status=503,path=/Groups*,count=1"))
    window.faults.add_rule(parse_fault_spec("status=500,method=DELETE"))
    assert "503" in window.banner.text.text()

    def hit() -> None:
        client = ScimClient(url, token=TOKEN)
        client.get("/Groups")
        client.close()

    in_thread(hit).join(10)
    window.faults.refresh_states()
    # The used-up rule leaves the banner; the other rule keeps it up.
    qtbot.waitUntil(lambda: "503" not in window.banner.text.text(), timeout=5000)
    assert window.banner.isVisible() and "500" in window.banner.text.text()
    window.faults._cell_clicked(1, 3)  # "Remove" on the DELETE rule
    window.faults.refresh_states()
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=5000)
    assert len(window.faults.active) == 1


# --- scim-desktop gui --screenshot, as a user runs it -------------------------------------------
def run_screenshot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``scim-desktop gui ARGS`` in a subprocess, offscreen, with its settings and log folder
    under tmp_path (never the user's)."""
    home = tmp_path / "home"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "scim_desktop", "gui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )


@pytest.mark.parametrize("tab", ["requests", "governance"])
def test_screenshot_with_demo_saves_the_picture_without_qt_noise(tmp_path: Path, tab: str) -> None:
    shot = tmp_path / "window.png"
    done = run_screenshot(tmp_path, "--screenshot", str(shot), "--screenshot-tab", tab, "--demo")
    assert done.returncode == 0, done.stderr
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"Saved a screenshot of the window to {shot}" in done.stdout
    # The offscreen plugin's harmless warning is filtered; nothing reads like an error.
    assert "propagateSizeHints" not in done.stderr
    assert "Traceback" not in done.stderr and "error" not in done.stderr.lower()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (".", "is a folder"),
        ("window", "has no extension"),
        ("missing/window.png", "does not exist (it is not created for you)"),
        ("window.xyz", "Qt cannot write .xyz images"),
    ],
)
def test_unsavable_screenshot_path_is_one_line_and_exit_1(
    tmp_path: Path, name: str, message: str
) -> None:
    target = tmp_path / "shots"
    target.mkdir()
    done = run_screenshot(tmp_path, "--screenshot", str(target / name), "--demo")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and lines[0].startswith("scim-desktop: error: "), lines
    assert message in lines[0]
    assert "Traceback" not in done.stderr
    assert not (target / "missing").exists()  # no folder is made for a typo
    assert sorted(p.name for p in target.iterdir()) == []


def test_demo_without_screenshot_is_a_usage_error(tmp_path: Path) -> None:
    done = run_screenshot(tmp_path, "--demo")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: scim-desktop gui")
    assert "--demo is only for --screenshot PATH" in done.stderr
    assert not (tmp_path / "home" / "data").exists()  # refused before anything started


def test_qt_message_filter_drops_only_the_known_noise() -> None:
    """Real warnings still reach stderr; only the offscreen size-hints line is dropped."""
    script = (
        "from PySide6.QtCore import qWarning\n"
        "from scim_desktop.gui.app import install_qt_message_filter\n"
        "install_qt_message_filter()\n"
        "qWarning('This plugin does not support propagateSizeHints()')\n"
        "qWarning('a real problem worth reading')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "a real problem worth reading" in done.stderr
    assert "propagateSizeHints" not in done.stderr


BASIC_PW = "basic-pw-61c2e8"


def get_status(url: str, **auth: object) -> int:
    """GET /Users with these credentials, on another thread (the window's loop keeps turning)."""
    out: list[int] = []

    def run() -> None:
        client = ScimClient(url, **auth)  # type: ignore[arg-type]
        try:
            out.append(client.get("/Users").status)
        finally:
            client.close()

    in_thread(run).join(30)
    assert out, "the request did not finish"
    return out[0]


def test_basic_password_is_kept_in_a_private_file_not_the_settings(
    qtbot, tmp_path: Path, settings: QSettings, open_window
) -> None:
    from scim_desktop.gui.app import basic_password_path_for, config_from
    from tests.gui.test_proxy_settings import gui_args

    db = tmp_path / "basic.json"
    auth = AuthConfig("basic", username="okta", password=BASIC_PW)
    win = open_window(ServerConfig(port=0, db_path=db, auth=auth))
    win.close()  # saves the settings
    settings.sync()
    ini = (tmp_path / "settings.ini").read_text()
    assert "okta" in ini and BASIC_PW not in ini and "basic_password=" not in ini
    kept = basic_password_path_for(db)
    assert BASIC_PW in kept.read_text()
    if os.name == "posix":
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    # A restart of the window (the app reads its settings again): the same credential works.
    config = config_from(gui_args("--port", "0"), settings)
    assert config.auth == auth
    again = open_window(config)
    url = again.controller.server.base_url
    assert get_status(url, basic=("okta", BASIC_PW)) == 200
    assert get_status(url, basic=("okta", "wrong")) == 401
    # Another kind of authentication: the file goes, no old secret lingers.
    again.apply_config(ServerConfig(port=0, db_path=db, auth=AuthConfig("bearer", token=TOKEN)))
    assert not kept.exists()


def test_a_basic_password_in_the_settings_is_moved_to_the_file_once(
    tmp_path: Path, settings: QSettings
) -> None:
    from scim_desktop.gui.app import basic_password_path_for, config_from
    from tests.gui.test_proxy_settings import gui_args

    db = tmp_path / "old.json"
    # What an older version saved.
    for key, value in {
        "db": str(db),
        "auth_mode": "basic",
        "basic_user": "okta",
        "basic_password": BASIC_PW,
    }.items():
        settings.setValue(key, value)
    settings.sync()
    assert BASIC_PW in (tmp_path / "settings.ini").read_text()

    config = config_from(gui_args(), settings)
    assert config.auth == AuthConfig("basic", username="okta", password=BASIC_PW)
    assert not settings.contains("basic_password")
    assert BASIC_PW not in (tmp_path / "settings.ini").read_text()  # synced at once
    kept = basic_password_path_for(db)
    assert orjson_loads(kept.read_bytes())["password"] == BASIC_PW
    if os.name == "posix":
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    # Once: read again, from the file now.
    assert config_from(gui_args(), settings).auth == config.auth


def test_an_empty_basic_password_setting_of_another_mode_is_just_removed(
    tmp_path: Path, settings: QSettings
) -> None:
    from scim_desktop.gui.app import basic_password_path_for, config_from
    from tests.gui.test_proxy_settings import gui_args

    db = tmp_path / "bearer.json"
    settings.setValue("db", str(db))
    settings.setValue("auth_mode", "bearer")
    settings.setValue("basic_password", "")  # older versions saved it for every mode
    assert config_from(gui_args(), settings).auth.mode == "bearer"
    assert not settings.contains("basic_password")
    assert not basic_password_path_for(db).exists()
