"""The main window: connection bar, fault banner, tabs, demo controls and status bar."""

from __future__ import annotations

import collections
import logging
import secrets
import sys
import threading
import time
from dataclasses import replace
from importlib.resources import files
from typing import Any

import orjson
from PySide6.QtCore import QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QFont, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from scim_desktop import __version__
from scim_desktop.config import AuthConfig, ServerConfig, token_path_for
from scim_desktop.core.demo import load_dataset
from scim_desktop.gui import theme
from scim_desktop.gui.bridge import QtEventSink
from scim_desktop.gui.controller import ServerController
from scim_desktop.gui.widgets.connection import ConnectGuide, ConnectionBar, SettingsDialog
from scim_desktop.gui.widgets.coverage_view import CoverageView
from scim_desktop.gui.widgets.faults_panel import FaultsPanel
from scim_desktop.gui.widgets.governance_view import GovernanceView
from scim_desktop.gui.widgets.groups_view import GroupsView
from scim_desktop.gui.widgets.json_editor import deliver
from scim_desktop.gui.widgets.oauth_dialog import OAuthDialog
from scim_desktop.gui.widgets.requests_view import RequestsView
from scim_desktop.gui.widgets.upstream import ProxyStrip, UpstreamIndicator, window_title
from scim_desktop.gui.widgets.users_view import UsersView
from scim_desktop.okta_sim import OktaSimulator
from scim_desktop.server.events import RequestRecord, UpstreamStatus

log = logging.getLogger("scim_desktop.gui")

STYLE = """
QFrame#connectionBar { border-bottom: 1px solid palette(mid); }
QFrame#faultBanner { background: #dc2626; }
QFrame#faultBanner QLabel { color: white; font-weight: 700; }
QFrame#faultBanner QPushButton { color: #dc2626; background: white; border: none;
    border-radius: 4px; padding: 4px 12px; font-weight: 700; }
QFrame#noticeBar { background: palette(alternate-base); border-bottom: 1px solid palette(mid); }
QPushButton#presetCard { text-align: left; border: 1px solid palette(mid); border-radius: 8px;
    background: palette(base); }
QPushButton#presetCard:checked { border: 2px solid #dc2626; background: rgba(220,38,38,0.10); }
QPushButton#allFaultsOff { font-weight: 700; padding: 6px 14px; }
QTabWidget::pane { border: none; }
QTabBar::tab { padding: 7px 16px; }
"""


def load_demo_data() -> dict[str, Any]:
    raw = files("scim_desktop.resources").joinpath("demo/acme.json").read_bytes()
    data: dict[str, Any] = orjson.loads(raw)
    return data


class NoticeBar(QFrame):
    """A non-blocking notice with optional action buttons and a close button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("noticeBar")
        row = QHBoxLayout(self)
        row.setContentsMargins(14, 6, 8, 6)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.text, 1)
        self.actions_row = QHBoxLayout()
        row.addLayout(self.actions_row)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        row.addWidget(close)
        self.hide()

    def show_notice(self, text: str, actions: list[tuple[str, Any]] | None = None) -> None:
        while self.actions_row.count():
            item = self.actions_row.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        for label, callback in actions or []:
            button = QPushButton(label)
            button.clicked.connect(callback)
            button.clicked.connect(self.hide)
            self.actions_row.addWidget(button)
        self.text.setText(text)
        self.show()


class FaultBanner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("faultBanner")
        row = QHBoxLayout(self)
        row.setContentsMargins(14, 8, 14, 8)
        self.text = QLabel()
        self.text.setWordWrap(True)
        row.addWidget(self.text, 1)
        self.off = QPushButton("All faults off")
        row.addWidget(self.off)
        self.hide()

    def set_active(self, active: bool, summary: str) -> None:
        self.text.setText(f"⚡ FAULTS ACTIVE: {summary}")
        self.setVisible(active)


class MainWindow(QMainWindow):
    simulationProgress = Signal(str)
    #: A tunnel status change, forwarded from the server thread (queued).
    tunnelChanged = Signal(object)

    def __init__(
        self,
        config: ServerConfig,
        *,
        settings: QSettings | None = None,
        persist: bool = True,
        row_cap: int = 10_000,
    ) -> None:
        super().__init__()
        # The server thread shares the interpreter, and PySide releases the GIL around every
        # call between Qt and Python, so the GUI thread may wait for the server thread's time
        # slice at each one. Paints keep the server out altogether (see event()); short
        # slices keep the rest of the GUI's waits short. bench_gui_burst.py, 5,000 requests:
        # longest event-loop stall 0.3-1 s before, ~20-35 ms with both.
        sys.setswitchinterval(0.00002)
        self.config = config
        self.settings = settings
        self.persist = persist
        self.setWindowTitle("SCIM Desktop")
        icon_path = files("scim_desktop.resources").joinpath("icons/scim-desktop.svg")
        self.setWindowIcon(QIcon(str(icon_path)))
        self.sink = QtEventSink(parent=self)
        self.controller = ServerController(self.sink, self)
        self._rate_window: collections.deque[tuple[float, int]] = collections.deque()
        self._sim_thread: threading.Thread | None = None
        self._sim_stop = threading.Event()
        self._base_font = QApplication.font()

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.connection = ConnectionBar()
        layout.addWidget(self.connection)
        self.proxy_strip = ProxyStrip()  # proxy mode: where Okta's requests go
        layout.addWidget(self.proxy_strip)
        self.notice = NoticeBar()
        layout.addWidget(self.notice)
        self.banner = FaultBanner()
        layout.addWidget(self.banner)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.requests = RequestsView(row_cap=row_cap)
        self.requests.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.users = UsersView(self.controller)
        self.groups = GroupsView(self.controller, users_model=self.users.model)
        self.governance = GovernanceView(self.controller, self.users.model)
        self.governance.customAttributesChanged.connect(self.users.set_custom_attributes)
        self.coverage = CoverageView(self.requests)
        self.coverage.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.coverage.requestShown.connect(lambda: self.tabs.setCurrentWidget(self.requests))
        self.faults = FaultsPanel(self.controller)
        self.guide = ConnectGuide()
        self.tabs.addTab(self.requests, "Requests")
        self.tabs.addTab(self.users, "Users")
        self.tabs.addTab(self.groups, "Groups")
        self.tabs.addTab(self.governance, "Governance")
        self.tabs.addTab(self.coverage, "Coverage")
        self.tabs.addTab(self.faults, "Faults")
        self.tabs.addTab(self.guide, "Connect to Okta")
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.setStyleSheet(STYLE)

        self.status_url = QLabel()
        self.status_db = QLabel()
        self.status_counts = QLabel()
        self.status_rate = QLabel()
        for widget in (self.status_url, self.status_db):
            self.statusBar().addWidget(widget)
        self.upstream_status = UpstreamIndicator()  # proxy mode: the upstream's health
        self.statusBar().addPermanentWidget(self.upstream_status)
        self.statusBar().addPermanentWidget(self.status_counts)
        self.statusBar().addPermanentWidget(self.status_rate)
        self._build_menus()

        # Wiring.
        self.sink.batch.connect(self._on_batch)
        self.controller.stateChanged.connect(self._on_state)
        self.controller.started.connect(self._on_started)
        self.controller.failed.connect(self._on_failed)
        self.connection.startRequested.connect(self.start_server)
        self.connection.stopRequested.connect(self.stop_server)
        self.connection.settingsRequested.connect(self.open_settings)
        self.connection.regenerateRequested.connect(self.regenerate_token)
        self.connection.shareToggled.connect(self.set_sharing)
        self.connection.oauthRequested.connect(self.open_oauth)
        self.tunnelChanged.connect(self._on_tunnel, Qt.ConnectionType.QueuedConnection)
        self.faults.activeChanged.connect(self.banner.set_active)
        self.faults.activeChanged.connect(self._update_tab_titles)
        self.banner.off.clicked.connect(self.faults.clear_all)
        self.simulationProgress.connect(self._on_sim_progress)
        self.faults.set_rules(config.faults)

        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._update_status)
        self._tick.start()
        self._keep_mode_memory(settings)
        self._show_mode()
        self._update_status()

    # --- menus ---------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        export = QAction("Export requests as JSON Lines…", self)
        export.triggered.connect(lambda: self.requests._ask_export("jsonl"))
        file_menu.addAction(export)
        export_har = QAction("Export requests as HAR…", self)
        export_har.triggered.connect(lambda: self.requests._ask_export("har"))
        file_menu.addAction(export_har)
        file_menu.addSeparator()
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        demo = bar.addMenu("&Demo")
        self.simulate_action = QAction("Simulate Okta provisioning", self)
        self.simulate_action.setToolTip("Replay Okta's requests against this server")
        self.simulate_action.triggered.connect(self.simulate_okta)
        demo.addAction(self.simulate_action)
        load = QAction("Load demo data", self)
        load.triggered.connect(self.load_demo)
        demo.addAction(load)
        reset = QAction("Reset demo data…", self)
        reset.triggered.connect(self.confirm_reset)
        demo.addAction(reset)
        demo.addSeparator()
        self.presentation_action = QAction("Presentation mode", self)
        self.presentation_action.setCheckable(True)
        self.presentation_action.setShortcut(QKeySequence("Ctrl+Shift+P"))
        self.presentation_action.toggled.connect(self.set_presentation_mode)
        demo.addAction(self.presentation_action)

        tools = bar.addMenu("&Tools")
        self.check_action = QAction("Check a server…", self)
        self.check_action.setToolTip("Run Okta's SCIM tests against this server or any other")

        def open_check() -> None:
            # Imported on first use: the checker is not needed to start the window.
            from scim_desktop.gui.widgets.check_dialog import CheckDialog

            CheckDialog.open_for(self, self.controller)

        self.check_action.triggered.connect(open_check)
        tools.addAction(self.check_action)

        help_menu = bar.addMenu("&Help")
        guide = QAction("Connect to Okta", self)
        guide.triggered.connect(lambda: self.tabs.setCurrentWidget(self.guide))
        help_menu.addAction(guide)
        about = QAction("About SCIM Desktop", self)
        about.triggered.connect(
            lambda: QMessageBox.about(
                self,
                "About SCIM Desktop",
                f"<b>SCIM Desktop {__version__}</b><br>A mock SCIM 2.0 server for demoing and "
                "exploring Okta user provisioning.",
            )
        )
        help_menu.addAction(about)

    # --- server lifecycle ------------------------------------------------------------------------
    def start_server(self, *, wait: bool = False) -> None:
        self.notice.hide()
        self.controller.start(self.config, wait=wait)

    def stop_server(self) -> None:
        self._sim_stop.set()
        self.controller.stop()

    def _on_state(self, state: str) -> None:
        if state == "listening" and self.config.catalog is not None:
            # --catalog is applied once: the start that listens has stored it in the data
            # file, so later restarts (Start, Settings) serve the stored catalog with the
            # Governance tab's edits instead of the file's.
            self.config = replace(self.config, catalog=None)
        url = self.controller.server.base_url if self.controller.server else ""
        self.connection.set_state(state, url)
        self.governance.server_stopped()
        self._update_status()

    # --- sharing with Okta (tunnel) -------------------------------------------------------------
    def tunnel_settings(self) -> tuple[str, str | None]:
        provider, path = "cloudflared", None
        if self.settings is not None:
            provider = str(self.settings.value("tunnel_provider", "cloudflared"))
            path = str(self.settings.value("tunnel_path", "")) or None
        return provider, path

    def set_sharing(self, on: bool) -> None:
        """Start or stop the tunnel that gives this server a public https URL."""
        server = self.controller.server
        if server is None:
            return
        if not on:
            server.stop_tunnel()
            return
        provider, path = self.tunnel_settings()
        future = server.start_tunnel(provider, path)
        deliver(self.controller, future, lambda url: None, self._tunnel_failed)

    def _tunnel_failed(self, exc: BaseException) -> None:
        self.notice.show_notice(
            f"⚠ Could not share with Okta: {exc}", [("Settings…", self.open_settings)]
        )

    def _on_tunnel(self, status: Any) -> None:
        server = self.controller.server
        local = server.base_url if server is not None else ""
        self.connection.set_share(status.state, status.public_base_url, local)
        if server is not None:
            shown = status.public_base_url if status.state == "up" else local
            self.guide.update_for(replace(self.config, port=server.port), shown or local)
        if status.state == "up":
            self.statusBar().showMessage(
                f"Shared with Okta: {status.public_base_url} (through {status.provider})", 8000
            )
        elif status.state == "failed" and status.error:
            self.notice.show_notice(f"⚠ The tunnel stopped: {status.error}")

    def open_oauth(self) -> None:
        OAuthDialog(self.controller, self).exec()

    def _on_started(self, url: str) -> None:
        server = self.controller.server
        assert server is not None
        server.add_tunnel_listener(self.tunnelChanged.emit)
        self.connection.set_state("listening", url)
        self.connection.set_auth(self.config.auth)
        self.guide.update_for(replace(self.config, port=server.port), url)
        self.faults.server_started()
        self.users.load_snapshot()
        self.groups.load_snapshot()
        self.governance.server_started()
        if server.warnings:
            self.notice.show_notice("⚠ " + " ".join(server.warnings))
        self._update_status()

    def _on_failed(self, message: str) -> None:
        actions: list[tuple[str, Any]] = []
        if "already in use" in message and self.config.port:
            port = self.config.port
            actions = [
                (f"Use port {port + 1}", lambda: self._restart_on_port(port + 1)),
                ("Any free port", lambda: self._restart_on_port(0)),
                ("Settings…", self.open_settings),
            ]
        elif self.controller.state == "error":
            actions = [("Settings…", self.open_settings)]
        self.notice.show_notice(f"⚠ {message}", actions)

    def _restart_on_port(self, port: int) -> None:
        self.apply_config(replace(self.config, port=port))

    def apply_config(self, config: ServerConfig) -> None:
        """Use new settings: restart the server with them and remember them."""
        self.controller.stop()
        self.config = config
        self._show_mode()
        self.save_settings()
        self.start_server()

    def _keep_mode_memory(self, settings: QSettings | None) -> None:
        """What Settings fills in for the mode that is off: the last upstream, and the
        server's own authentication while a transparent proxy uses none."""
        from scim_desktop.gui.app import saved_auth, saved_upstream

        upstream, db = self.config.upstream, self.config.db_path
        kept = upstream or (saved_upstream(settings, db) if settings is not None else None)
        self.kept_upstream = kept
        transparent = upstream is not None and not upstream.has_credential
        own = saved_auth(settings, db) if transparent and settings is not None else None
        self.kept_auth = own if transparent else self.config.auth

    def _show_mode(self) -> None:
        """Mock server or proxy: the connection bar's pill, the title and the status bar."""
        upstream = self.config.upstream
        self.connection.set_mode(upstream)
        self.proxy_strip.set_upstream(upstream)
        self.connection.set_auth(self.config.auth)
        self.setWindowTitle(window_title(upstream))
        self.upstream_status.set_upstream(upstream)
        self.requests.set_proxy_mode(upstream is not None)
        # Proxy mode: the users and groups are the upstream's; these tabs hold the idle mock's.
        for view in (self.users, self.groups, self.governance):
            index = self.tabs.indexOf(view)
            self.tabs.setTabEnabled(index, upstream is None)
            self.tabs.setTabToolTip(
                index, "" if upstream is None else "The mock server's data (not used by the proxy)"
            )
        self.status_counts.setVisible(upstream is None)  # the mock's counts, idle meanwhile
        if upstream is not None:
            self.kept_upstream = upstream
        if upstream is None or upstream.has_credential:
            self.kept_auth = self.config.auth

    def open_settings(self) -> None:
        provider, path = self.tunnel_settings()
        dialog = SettingsDialog(
            self.config,
            self,
            row_cap=self.requests.model.row_cap,
            tunnel_provider=provider,
            tunnel_path=path,
            kept_upstream=self.kept_upstream,
            kept_auth=self.kept_auth,
        )
        if dialog.exec() and dialog.result_config is not None:
            self.set_row_cap(dialog.row_cap.value())
            if self.settings is not None and self.persist:
                self.settings.setValue("tunnel_provider", dialog.tunnel_provider.currentData())
                self.settings.setValue("tunnel_path", dialog.tunnel_path.text().strip())
            if dialog.result_config != self.config:
                self.apply_config(dialog.result_config)

    def set_row_cap(self, cap: int) -> None:
        self.requests.set_row_cap(cap)
        if self.settings is not None and self.persist:
            self.settings.setValue("row_cap", cap)

    def regenerate_token(self) -> None:
        if self.config.auth.mode != "bearer":
            return
        answer = QMessageBox.question(
            self,
            "New token",
            "Generate a new bearer token? Okta keeps using the old one until you paste the "
            "new token into the app's provisioning settings.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        token = secrets.token_urlsafe(32)
        try:
            path = token_path_for(self.config.db_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(token + "\n", encoding="utf-8")
            path.chmod(0o600)
        except OSError as exc:
            self.notice.show_notice(f"⚠ Could not save the new token: {exc}")
            return
        self.apply_config(replace(self.config, auth=AuthConfig("bearer", token=token)))

    # --- events --------------------------------------------------------------------------------
    def _on_batch(self, events: list) -> None:
        for event in events:
            if isinstance(event, UpstreamStatus):
                self.upstream_status.apply(event)
        self.requests.add_events(events)
        self.users.apply_events(events)
        self.groups.apply_events(events)
        self.governance.apply_events(events)
        self.coverage.apply_events(events)
        n = sum(1 for e in events if isinstance(e, RequestRecord))
        if n:
            self._rate_window.append((time.monotonic(), n))

    def _update_status(self) -> None:
        server = self.controller.server
        self.status_url.setText(f"  {server.base_url}" if server else "  not listening")
        self.status_db.setText(f"   Data: {self.config.db_path}")
        users = self.users.model.rowCount()
        groups = self.groups.model.rowCount()
        self.status_counts.setText(f"{users:,} users · {groups:,} groups")
        now = time.monotonic()
        while self._rate_window and now - self._rate_window[0][0] > 5:
            self._rate_window.popleft()
        rate = sum(n for _, n in self._rate_window) / 5
        self.status_rate.setText(f"   {rate:,.1f} req/s  ")
        self._update_tab_titles()

    def _update_tab_titles(self, *args: Any) -> None:
        tab = self.tabs.indexOf
        self.tabs.setTabText(tab(self.users), f"Users ({self.users.model.rowCount():,})")
        self.tabs.setTabText(tab(self.groups), f"Groups ({self.groups.model.rowCount():,})")
        active = len(self.faults.active)
        self.tabs.setTabText(tab(self.faults), f"Faults ⚡{active}" if active else "Faults")
        self.tabs.setTabText(tab(self.coverage), self.coverage.tab_title())

    # --- demo controls ---------------------------------------------------------------------------
    def load_demo(self) -> None:
        server = self.controller.server
        if server is None:
            self.notice.show_notice("⚠ Start the server first: demo data is loaded through it.")
            return
        if self.config.upstream is not None:
            # It would go into the idle mock's data file, not to the user's own server.
            self.notice.show_notice(
                "⚠ Demo data is for the mock server; the proxy forwards to your own server. "
                "Switch to the mock server in Settings first.",
                [("Settings…", self.open_settings)],
            )
            return
        data = load_demo_data()
        url = server.base_url
        future = server.apply(lambda svc: load_dataset(svc, data, url))
        future.add_done_callback(lambda f: None)

    def confirm_reset(self) -> None:
        if self.config.upstream is not None:
            # As Load demo data: the reset would empty the idle mock's data file, which the
            # proxy does not use; it never deletes anything on the user's own server.
            self.notice.show_notice(
                "⚠ Reset demo data is for the mock server; the proxy forwards to your own "
                "server and never deletes anything there. Switch to the mock server in "
                "Settings first.",
                [("Settings…", self.open_settings)],
            )
            return
        answer = QMessageBox.question(
            self,
            "Reset demo data",
            "Delete every user and group on this server? This cannot be undone.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.reset_data()

    def reset_data(self) -> None:
        server = self.controller.server
        if server is not None:
            server.reset_data()

    def simulate_okta(self) -> None:
        server = self.controller.server
        if server is None or (self._sim_thread and self._sim_thread.is_alive()):
            return
        upstream, auth = self.config.upstream, self.config.auth
        if upstream is not None and not upstream.has_credential:
            # A transparent proxy passes the client's credential through, and the simulator
            # has none of the user's server: every request would be answered 401 upstream.
            self.notice.show_notice(
                "⚠ Simulating Okta through a transparent proxy needs your server's credential, "
                "which SCIM Desktop does not have. Set an upstream credential in Settings (the "
                "simulator then uses the proxy's own), or switch to the mock server.",
                [("Settings…", self.open_settings)],
            )
            return
        if upstream is not None:
            # Credential swap: the simulator authenticates to the proxy as Okta would (the
            # proxy's own credential below) and the proxy sends the upstream's. It writes to
            # the user's own server, so it asks first.
            answer = QMessageBox.question(
                self,
                "Simulate Okta provisioning",
                f"Send Okta's provisioning requests through the proxy to {upstream.url}? They "
                "create, update and deactivate demo users and push demo groups on your "
                "server, as Okta would; the users stay there afterwards.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self._sim_stop.clear()
        sim = OktaSimulator(
            server.base_url,
            token=auth.token if auth.mode == "bearer" else None,
            basic=(auth.username, auth.password) if auth.mode == "basic" else None,
            pause_s=0.15,
            stop=self._sim_stop,
            # Okta reads entitlements only when the app has them (OIG on, a catalog here).
            governance=self.governance.catalog is not None,
        )
        self._sim_thread = threading.Thread(
            target=sim.run_demo, args=(self.simulationProgress.emit,), daemon=True
        )
        self._sim_thread.start()
        self.tabs.setCurrentWidget(self.requests)

    def _on_sim_progress(self, text: str) -> None:
        self.statusBar().showMessage(f"Simulating Okta: {text}", 4000)

    def set_presentation_mode(self, on: bool) -> None:
        """Larger text everywhere, for a projector. A style sheet rule, because widgets under
        a style sheet do not follow QApplication.setFont()."""
        base = self._base_font.pointSizeF() if self._base_font.pointSizeF() > 0 else 10.0
        size = base * 1.4 if on else base
        font = QFont(self._base_font)
        font.setPointSizeF(size)
        QApplication.setFont(font)  # dialogs and the mono fonts derive from it
        extra = f"\nQWidget {{ font-size: {size:.1f}pt; }}\n" if on else ""
        self.setStyleSheet(STYLE + extra)
        self.requests.set_mono_font(theme.mono_font())
        if self.settings is not None and self.persist:
            self.settings.setValue("presentation", on)

    # --- settings and closing --------------------------------------------------------------------
    def save_settings(self) -> None:
        if self.settings is None or not self.persist:
            return
        s = self.settings
        s.setValue("host", self.config.host)
        s.setValue("port", self.config.port)
        s.setValue("db", str(self.config.db_path))
        auth = self.kept_auth or self.config.auth  # a transparent proxy's "none" is not kept
        s.setValue("auth_mode", auth.mode)
        s.setValue("basic_user", auth.username)
        from scim_desktop.gui.app import save_basic_password, save_upstream

        # Secrets go to private files beside the database, never into QSettings.
        save_basic_password(self.config.db_path, auth.password if auth.mode == "basic" else "")
        save_upstream(s, self.config, self.kept_upstream)
        s.setValue("tls", self.config.tls is not None)
        if self.config.auth.oauth is not None:
            s.setValue("oauth_token_ttl", self.config.auth.oauth.token_ttl)
        s.setValue("geometry", self.saveGeometry())

    def event(self, event: QEvent) -> bool:
        # The whole window is painted in one UpdateRequest: keep the server thread out of
        # the GIL meanwhile (QtEventSink.hold explains why).
        if event.type() == QEvent.Type.UpdateRequest:
            self.sink.hold()
            try:
                return super().event(event)
            finally:
                self.sink.release()
        return super().event(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._sim_stop.set()
        self.save_settings()
        self.controller.stop()
        event.accept()
