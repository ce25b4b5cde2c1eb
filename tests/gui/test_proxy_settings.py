"""Proxy mode's settings in the window: the Settings dialog's mode section and how the app
keeps the mode, the upstream URL and its credential (no server here: see test_proxy_mode)."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from scim_desktop.cli import build_parser
from scim_desktop.config import AuthConfig, ConfigError, ServerConfig, UpstreamConfig
from scim_desktop.gui.app import config_from, save_upstream, upstream_credential_path_for
from scim_desktop.gui.widgets.connection import SettingsDialog

UP_TOKEN = "upstream-secret-7f3a9c"


def gui_args(*words: str) -> argparse.Namespace:
    return build_parser().parse_args(["gui", *words])


def mock_config(tmp_path: Path) -> ServerConfig:
    return ServerConfig(
        port=8123, db_path=tmp_path / "d.json", auth=AuthConfig("bearer", token="own-token")
    )


def test_dialog_switches_modes_and_keeps_what_was_typed(qtbot, tmp_path: Path) -> None:
    dialog = SettingsDialog(mock_config(tmp_path))
    qtbot.addWidget(dialog)
    section = dialog.upstream
    assert section.mock_radio.isChecked() and not section.group.isEnabled()
    assert dialog.build().upstream is None

    section.proxy_radio.setChecked(True)
    assert section.group.isEnabled()
    section.url.setText("https://app.example.com/scim/v2/")
    section.kind.setCurrentIndex(section.kind.findData("bearer"))
    section.secret.setText(UP_TOKEN)
    assert section.secret.echoMode() == section.secret.EchoMode.Password
    # Another kind and back: each kind keeps its own value.
    section.kind.setCurrentIndex(section.kind.findData("header"))
    assert section.secret.text() == "" and section.name_label.text() == "Header name"
    section.name.setText("X-Api-Key")
    section.secret.setText("key-1")
    section.kind.setCurrentIndex(section.kind.findData("bearer"))
    assert section.secret.text() == UP_TOKEN
    # Mock and back: nothing typed is lost.
    section.mock_radio.setChecked(True)
    assert dialog.build().upstream is None
    section.proxy_radio.setChecked(True)
    config = dialog.build()
    assert config.upstream == UpstreamConfig("https://app.example.com/scim/v2", token=UP_TOKEN)
    assert config.auth == AuthConfig("bearer", token="own-token")  # the proxy's own, kept


def test_dialog_transparent_proxy_uses_no_own_auth_and_gives_it_back(qtbot, tmp_path) -> None:
    dialog = SettingsDialog(mock_config(tmp_path))
    qtbot.addWidget(dialog)
    dialog.upstream.proxy_radio.setChecked(True)
    dialog.upstream.url.setText("http://127.0.0.1:9/scim/v2")
    assert dialog.upstream.kind.currentData() == "passthrough"
    assert not dialog.mode.isEnabled()  # the upstream checks Okta's credential
    assert "passes it through" in dialog.upstream.credential_note.text()
    config = dialog.build()
    assert config.upstream is not None and not config.upstream.has_credential
    assert config.auth.mode == "none"
    # Reopened on that config, with the window's memory of its own auth: back to the mock
    # gives the bearer token again.
    again = SettingsDialog(config, kept_auth=AuthConfig("bearer", token="own-token"))
    qtbot.addWidget(again)
    assert again.upstream.proxy_radio.isChecked()
    again.upstream.mock_radio.setChecked(True)
    assert again.mode.isEnabled()
    assert again.build().auth == AuthConfig("bearer", token="own-token")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "Enter your SCIM server's base URL"),
        ("app.example.com/scim/v2", "must start with https://"),
        ("ftp://app.example.com/scim", "not ftp://"),
        ("https://user:pw@app.example.com/scim/v2", "HTTP Basic"),
        ("https:///scim/v2", "no host name"),
        ("https://app.example.com:99999/scim", "port"),
        ("https://app.example.com/scim/v2?x=1", "query"),
        ("http://127.0.0.1:8123/scim/v2", "this proxy's own address"),
    ],
)
def test_dialog_refuses_a_bad_upstream_in_words(qtbot, tmp_path, url: str, words: str) -> None:
    dialog = SettingsDialog(mock_config(tmp_path))
    qtbot.addWidget(dialog)
    dialog.upstream.proxy_radio.setChecked(True)
    dialog.upstream.url.setText(url)
    dialog._accept()
    assert words in dialog.error.text()
    assert dialog.result_config is None and dialog.result() == 0


def test_dialog_refuses_an_incomplete_credential(qtbot, tmp_path) -> None:
    dialog = SettingsDialog(mock_config(tmp_path))
    qtbot.addWidget(dialog)
    section = dialog.upstream
    section.proxy_radio.setChecked(True)
    section.url.setText("https://app.example.com/scim/v2")
    for kind, name, secret, words in [
        ("bearer", "", "", "bearer token"),
        ("basic", "a:b", "pw", "without ':'"),
        ("header", "", "v", "header needs its name"),
        ("header", "Host", "v", "The header cannot set Host"),
    ]:
        section.kind.setCurrentIndex(section.kind.findData(kind))
        section.name.setText(name)
        section.secret.setText(secret)
        dialog._accept()
        assert words in dialog.error.text(), kind
        assert dialog.result_config is None


def test_insecure_switch_warns_and_only_for_https(qtbot, tmp_path) -> None:
    upstream = UpstreamConfig("https://localhost:8443/scim/v2", insecure=True)
    dialog = SettingsDialog(replace_upstream(mock_config(tmp_path), upstream))
    qtbot.addWidget(dialog)
    dialog.show()
    section = dialog.upstream
    assert section.insecure.isChecked() and section.insecure_warning.isVisible()
    assert "not checked" in section.insecure_warning.text()
    section.insecure.setChecked(False)
    assert not section.insecure_warning.isVisible()
    section.insecure.setChecked(True)
    section.url.setText("http://localhost:8080/scim/v2")  # nothing to verify over http
    assert not section.insecure.isEnabled() and not section.insecure_warning.isVisible()
    assert dialog.build().upstream == UpstreamConfig("http://localhost:8080/scim/v2")


def test_no_authentication_with_an_upstream_credential_is_warned_about(qtbot, tmp_path) -> None:
    dialog = SettingsDialog(mock_config(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    warning = dialog.open_proxy_warning
    dialog.mode.setCurrentIndex(dialog.mode.findData("none"))
    assert not warning.isVisible()  # the mock with no authentication: its own business
    section = dialog.upstream
    section.proxy_radio.setChecked(True)
    section.url.setText("https://app.example.com/scim/v2")
    assert not warning.isVisible()  # transparent: the upstream checks Okta's credential
    section.kind.setCurrentIndex(section.kind.findData("bearer"))
    section.secret.setText(UP_TOKEN)
    assert warning.isVisible() and "anyone who can reach" in warning.text()
    assert UP_TOKEN not in warning.text()
    dialog.mode.setCurrentIndex(dialog.mode.findData("bearer"))
    assert not warning.isVisible()
    dialog.mode.setCurrentIndex(dialog.mode.findData("none"))
    section.mock_radio.setChecked(True)
    assert not warning.isVisible()
    # Warned, not refused (a proxy only this computer reaches may want no authentication).
    section.proxy_radio.setChecked(True)
    config = dialog.build()
    assert config.auth.mode == "none" and config.upstream is not None
    assert config.upstream.token == UP_TOKEN


def replace_upstream(config: ServerConfig, upstream: UpstreamConfig) -> ServerConfig:
    from dataclasses import replace

    return replace(config, upstream=upstream)


def test_mode_upstream_and_credential_are_kept_but_not_in_qsettings(
    tmp_path: Path, settings: QSettings
) -> None:
    db = tmp_path / "data" / "scim.json"
    upstream = UpstreamConfig("https://app.example.com/scim/v2", basic=("okta", UP_TOKEN))
    config = ServerConfig(
        db_path=db, auth=AuthConfig("bearer", token="own-token"), upstream=upstream
    )
    settings.setValue("db", str(db))
    save_upstream(settings, config, None)
    settings.sync()
    assert UP_TOKEN not in (tmp_path / "settings.ini").read_text()
    kept = upstream_credential_path_for(db)
    assert UP_TOKEN in kept.read_text()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    again = config_from(gui_args(), settings)
    assert again.upstream == upstream
    assert again.auth.mode == "bearer"  # credential swap: the proxy checks its own

    # The mock is on: the upstream is still remembered for the next switch, not used.
    save_upstream(settings, ServerConfig(db_path=db), upstream)
    assert config_from(gui_args(), settings).upstream is None
    settings.setValue("server_mode", "proxy")
    assert config_from(gui_args(), settings).upstream == upstream

    # Switched to passing the credential through: the old secret is written over.
    transparent = UpstreamConfig("https://app.example.com/scim/v2")
    save_upstream(settings, ServerConfig(db_path=db, upstream=transparent), None)
    assert UP_TOKEN not in kept.read_text()
    passed = config_from(gui_args(), settings)
    assert passed.upstream == transparent and passed.auth.mode == "none"


def test_command_line_upstream_wins_over_the_saved_mode(tmp_path: Path, settings) -> None:
    db = tmp_path / "scim.json"
    settings.setValue("db", str(db))
    saved = UpstreamConfig("https://saved.example.com/scim/v2", token=UP_TOKEN)
    save_upstream(settings, ServerConfig(db_path=db, upstream=saved), None)
    config = config_from(
        gui_args("--upstream", "http://127.0.0.1:9000/scim/v2", "--upstream-header", "X-K: v"),
        settings,
    )
    assert config.upstream == UpstreamConfig("http://127.0.0.1:9000/scim/v2", header=("X-K", "v"))
    # Without --upstream the saved proxy is used; a bad saved URL falls back to the mock.
    assert config_from(gui_args(), settings).upstream == saved
    # The demo screenshot never sends its simulated Okta to the saved server.
    assert config_from(gui_args(), settings, saved_proxy=False).upstream is None
    settings.setValue("upstream_url", "not a url")
    assert config_from(gui_args(), settings).upstream is None
    with pytest.raises(ConfigError, match="need --upstream"):
        config_from(gui_args("--upstream-token", "x"), settings)
