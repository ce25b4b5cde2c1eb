"""The window's side of connecting a real tenant: Share with Okta, the OAuth dialog, and the
process-level behaviour of the gui command (SIGTERM)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from scim_desktop.config import AuthConfig, OAuthConfig, ServerConfig
from scim_desktop.gui.widgets.main_window import MainWindow
from scim_desktop.gui.widgets.oauth_dialog import OAuthDialog
from tests.tunnel.stand_ins import CLOUDFLARED_OUTPUT, write_stand_in


def _window(qtbot, tmp_path: Path, auth: AuthConfig) -> MainWindow:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    config = ServerConfig(port=0, db_path=tmp_path / "w.json", auth=auth)
    win = MainWindow(config, settings=settings)
    qtbot.addWidget(win)
    win.show()
    win.start_server()
    qtbot.waitUntil(lambda: win.controller.state == "listening", timeout=15000)
    return win


@pytest.mark.skipif(os.name != "posix", reason="the stand-in tunnel tool is a POSIX script")
def test_share_with_okta_shows_the_public_url_and_stops_the_tool(qtbot, tmp_path) -> None:
    tool = write_stand_in(tmp_path / "bin", "cloudflared", CLOUDFLARED_OUTPUT, stream="stderr")
    win = _window(qtbot, tmp_path, AuthConfig("none"))
    try:
        win.settings.setValue("tunnel_provider", "cloudflared")
        win.settings.setValue("tunnel_path", str(tool))
        local = win.connection.url.text()
        win.connection.share.click()
        qtbot.waitUntil(lambda: "trycloudflare.com" in win.connection.url.text(), timeout=15000)
        public = win.connection.url.text()
        assert public.startswith("https://") and public.endswith("/scim/v2")
        assert local in win.connection.url.toolTip()
        assert win.connection.share.text() == "Shared ✓"
        win.connection.share.click()  # off again
        qtbot.waitUntil(lambda: win.connection.url.text() == local, timeout=15000)
    finally:
        win.close()


def test_share_with_a_missing_tool_is_explained(qtbot, tmp_path) -> None:
    win = _window(qtbot, tmp_path, AuthConfig("none"))
    try:
        win.settings.setValue("tunnel_provider", "ngrok")
        win.settings.setValue("tunnel_path", str(tmp_path / "nowhere" / "ngrok"))
        win.connection.share.click()
        qtbot.waitUntil(win.notice.isVisible, timeout=15000)
        assert "ngrok" in win.notice.text.text()
        assert not win.connection.share.isChecked()
    finally:
        win.close()


def test_oauth_dialog_lists_and_revokes_tokens(qtbot, tmp_path) -> None:
    oauth = OAuthConfig("okta-client", "s3cret-s3cret", state_path=tmp_path / "oauth.json")
    win = _window(qtbot, tmp_path, AuthConfig("oauth", oauth=oauth))
    try:
        server = win.controller.server
        origin = server.base_url.rsplit("/scim/v2", 1)[0]
        creds = base64.b64encode(b"okta-client:s3cret-s3cret").decode()
        request = urllib.request.Request(
            origin + "/oauth/token",
            data=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
            headers={"Authorization": f"Basic {creds}"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            access = json.loads(reply.read())["access_token"]
        dialog = OAuthDialog(win.controller, win)
        qtbot.addWidget(dialog)
        assert dialog.fields["client_id"].text() == "okta-client"
        assert dialog.fields["token"].text().endswith("/oauth/token")
        qtbot.waitUntil(lambda: dialog.table.rowCount() >= 1, timeout=5000)
        assert "1 active" in dialog.status.text()
        assert access not in "".join(
            dialog.table.item(r, c).text() for r in range(dialog.table.rowCount()) for c in range(6)
        )
        dialog.revoke_all.click()
        qtbot.waitUntil(lambda: "0 active" in dialog.status.text(), timeout=5000)
        # The status cell says why the token was revoked.
        assert dialog.table.item(0, 2).toolTip() == "revoked in the window (Revoke all)"
        scim = urllib.request.Request(
            server.base_url + "/Users", headers={"Authorization": f"Bearer {access}"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(scim, timeout=10)
        assert refused.value.code == 401
    finally:
        win.close()


def test_gui_command_stops_cleanly_on_sigterm(tmp_path) -> None:
    """The real command: SIGTERM closes the window, which stops the server with the data
    saved, and the process exits 0 within about two seconds."""
    import socket

    from tests.scim_client import ScimClient
    from tests.server.test_okta_flows import okta_create_body

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db = tmp_path / "g.json"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    args = ["gui", "--port", str(port), "--db", str(db), "--no-auth"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "scim_desktop", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = ScimClient(f"http://127.0.0.1:{port}/scim/v2", timeout=5)
        deadline = time.monotonic() + 30
        created = None
        while created is None and time.monotonic() < deadline:
            try:
                created = client.post("/Users", okta_create_body("sigterm@example.com"))
            except OSError:
                client.close()
                time.sleep(0.1)
        client.close()
        assert created is not None and created.status == 201
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 2.5
        doc = json.loads(db.read_text())
        assert any(u["userName"] == "sigterm@example.com" for u in doc["Users"].values())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
