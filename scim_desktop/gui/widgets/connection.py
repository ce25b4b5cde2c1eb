"""Connection: state, Start/Stop, base URL, credentials, settings and the Okta guide."""

from __future__ import annotations

import html
import secrets
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTextBrowser,
    QToolButton,
    QWidget,
)

from scim_desktop.config import (
    AuthConfig,
    ConfigError,
    OAuthConfig,
    ServerConfig,
    TlsConfig,
    UpstreamConfig,
    load_or_create_oauth_client,
    oauth_path_for,
)
from scim_desktop.gui import theme
from scim_desktop.gui.widgets.upstream import (
    OPEN_PROXY_WARNING,
    UpstreamSection,
    credential_text,
    mock_pill_style,
    proxy_pill_style,
    warning_style,
)
from scim_desktop.tunnel.providers import PROVIDERS

STATE_TEXT = {
    "starting": ("Starting…", "#b45309"),
    "listening": ("Listening", "#15803d"),
    "stopping": ("Stopping…", "#b45309"),
    "stopped": ("Stopped", "#6b7280"),
    "error": ("Error", "#b91c1c"),
}


def _copy(text: str) -> None:
    QGuiApplication.clipboard().setText(text)


class ConnectionBar(QFrame):
    """One row: state pill, base URL (copy), credentials (reveal / copy / regenerate),
    Settings… and Start/Stop."""

    startRequested = Signal()
    stopRequested = Signal()
    settingsRequested = Signal()
    regenerateRequested = Signal()
    #: The "Share with Okta" switch: True to start a tunnel, False to stop it.
    shareToggled = Signal(bool)
    oauthRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("connectionBar")
        self._secret = ""
        self._revealed = False
        row = QHBoxLayout(self)
        row.setContentsMargins(14, 10, 14, 10)
        row.setSpacing(10)

        self.state = QLabel()
        self.state.setObjectName("statePill")
        self.state.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state.setMinimumWidth(96)
        row.addWidget(self.state)
        # Mock server or proxy: which one answers Okta must never be a guess.
        self.mode = QLabel()
        self.mode.setObjectName("modePill")
        self.mode.setAlignment(Qt.AlignmentFlag.AlignCenter)
        row.addWidget(self.mode)
        self._upstream: UpstreamConfig | None = None

        row.addWidget(QLabel("SCIM base URL"))
        self.url = QLineEdit()
        self.url.setReadOnly(True)
        self.url.setFont(theme.mono_font())
        self.url.setMinimumWidth(300)
        row.addWidget(self.url, 3)
        self.copy_url = QToolButton()
        self.copy_url.setText("Copy")
        self.copy_url.setToolTip("Copy the SCIM base URL")
        self.copy_url.clicked.connect(lambda: _copy(self.url.text()))
        row.addWidget(self.copy_url)

        self.share = QPushButton("Share with Okta")
        self.share.setObjectName("shareButton")
        self.share.setCheckable(True)
        self.share.setToolTip(
            "Give this server a public https URL through a tunnel tool (cloudflared, ngrok or "
            "localhost.run; choose in Settings), so that Okta can reach it"
        )
        self.share.toggled.connect(self.shareToggled)
        row.addWidget(self.share)

        row.addSpacing(8)
        self.auth_label = QLabel()
        row.addWidget(self.auth_label)
        self.secret = QLineEdit()
        self.secret.setReadOnly(True)
        self.secret.setFont(theme.mono_font())
        self.secret.setMinimumWidth(110)
        row.addWidget(self.secret, 2)
        self.reveal = QToolButton()
        self.reveal.setText("Show")
        self.reveal.setCheckable(True)
        self.reveal.toggled.connect(self._toggle_reveal)
        row.addWidget(self.reveal)
        self.copy_secret = QToolButton()
        self.copy_secret.setText("Copy")
        self.copy_secret.setToolTip("Copy the token (or password)")
        self.copy_secret.clicked.connect(lambda: _copy(self._secret))
        row.addWidget(self.copy_secret)
        self.regenerate = QToolButton()
        self.regenerate.setText("New token")
        self.regenerate.setToolTip("Generate a new bearer token (Okta must be given the new one)")
        self.regenerate.clicked.connect(self.regenerateRequested)
        row.addWidget(self.regenerate)
        self.oauth = QToolButton()
        self.oauth.setText("OAuth…")
        self.oauth.setToolTip("Client ID, secret, endpoint URLs and the tokens issued")
        self.oauth.clicked.connect(self.oauthRequested)
        row.addWidget(self.oauth)

        row.addSpacing(8)
        self.settings = QPushButton("Settings…")
        self.settings.clicked.connect(self.settingsRequested)
        row.addWidget(self.settings)
        self.start_stop = QPushButton("Stop")
        self.start_stop.setObjectName("startStop")
        self.start_stop.setMinimumWidth(76)
        self.start_stop.clicked.connect(self._start_stop)
        row.addWidget(self.start_stop)
        self._state = "stopped"
        self.set_state("stopped")
        self.set_mode(None)

    def set_mode(self, upstream: UpstreamConfig | None) -> None:
        """Mock server, or proxy to ``upstream`` (the pill says which; its tooltip and the
        window's proxy strip name the upstream)."""
        self._upstream = upstream
        # Short: the bar must fit a 1440-pixel window; the proxy strip below names the URL.
        self.mode.setText("Mock server" if upstream is None else "Proxy")
        self.mode.setStyleSheet(mock_pill_style() if upstream is None else proxy_pill_style())
        self.mode.setToolTip(
            "SCIM Desktop answers from its own data"
            if upstream is None
            else f"Proxy: requests to the URL here are forwarded to {upstream.url}; "
            f"credential: {credential_text(upstream)}"
        )

    def _start_stop(self) -> None:
        if self._state in ("listening", "starting"):
            self.stopRequested.emit()
        else:
            self.startRequested.emit()

    def set_share(self, state: str, public_url: str | None, local_url: str) -> None:
        """Show the tunnel state: while it is up the URL field shows the public base URL."""
        self.share.blockSignals(True)
        self.share.setChecked(state in ("starting", "up"))
        self.share.blockSignals(False)
        self.share.setText({"starting": "Sharing…", "up": "Shared ✓"}.get(state, "Share with Okta"))
        if state == "up" and public_url:
            self.url.setText(public_url)
            self.url.setToolTip(f"Public URL through the tunnel. Local URL: {local_url}")
        else:
            self.url.setText(local_url)
            self.url.setToolTip("")
        self._fit_url()

    def set_state(self, state: str, url: str = "") -> None:
        self._state = state
        text, color = STATE_TEXT.get(state, (state, "#6b7280"))
        self.state.setText(f"● {text}")
        self.state.setStyleSheet(
            f"QLabel#statePill {{ color: white; background: {color}; border-radius: 11px;"
            " padding: 3px 10px; font-weight: 600; }"
        )
        if url:
            self.url.setText(url)
            self._fit_url()
        running = state in ("listening", "starting")
        self.share.setEnabled(state == "listening")
        self.start_stop.setText("Stop" if running else "Start")
        self.start_stop.setEnabled(state not in ("starting", "stopping"))

    def _fit_url(self) -> None:
        """The base URL is what people copy into Okta: never cut it off."""
        width = self.url.fontMetrics().horizontalAdvance(self.url.text()) + 24
        self.url.setMinimumWidth(max(260, width))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._fit_url()

    def set_auth(self, auth: AuthConfig) -> None:
        # Transparent proxy: Okta uses the upstream's own credential, passed through, and
        # this server checks none of its own.
        transparent = self._upstream is not None and not self._upstream.has_credential
        if transparent:
            self.auth_label.setText("Okta's credential goes to your server")
            self._secret = ""
        elif auth.mode == "bearer":
            self.auth_label.setText("Bearer token")
            self._secret = auth.token
        elif auth.mode == "oauth" and auth.oauth is not None:
            self.auth_label.setText("OAuth client secret")
            self._secret = auth.oauth.client_secret
        elif auth.mode == "basic":
            self.auth_label.setText(f"Basic: {auth.username} /")
            self._secret = auth.password
        else:
            self.auth_label.setText("No authentication")
            self._secret = ""
        has_secret = auth.mode != "none" and not transparent
        for w in (self.secret, self.reveal, self.copy_secret):
            w.setVisible(has_secret)
        self.regenerate.setVisible(auth.mode == "bearer" and not transparent)
        self.oauth.setVisible(auth.mode == "oauth" and not transparent)
        self._toggle_reveal(self.reveal.isChecked())

    def _toggle_reveal(self, on: bool) -> None:
        self._revealed = on
        self.reveal.setText("Hide" if on else "Show")
        self.secret.setText(self._secret if on else "•" * min(24, len(self._secret)))


def oauth_auth(db_path: Path, token_ttl: int = 3600) -> AuthConfig:
    """OAuth mode with the client kept beside the database (created on first use)."""
    state = oauth_path_for(db_path)
    try:
        client_id, secret = load_or_create_oauth_client(state)
    except OSError as exc:
        raise ConfigError(f"cannot keep the OAuth client beside {db_path}: {exc}") from None
    oauth = OAuthConfig(client_id, secret, token_ttl=token_ttl, state_path=state)
    return AuthConfig("oauth", oauth=oauth)


class SettingsDialog(QDialog):
    """Mock server or proxy (and the upstream), host, port, data file and authentication.
    Returns a validated ServerConfig.

    ``kept_upstream``: the upstream last used, filled in while the mock is on so that
    switching back to the proxy finds it; ``kept_auth``: the server's own authentication
    while a transparent proxy has none, so switching to the mock gets it back."""

    def __init__(
        self,
        config: ServerConfig,
        parent: QWidget | None = None,
        *,
        row_cap: int = 10_000,
        tunnel_provider: str = "cloudflared",
        tunnel_path: str | None = None,
        kept_upstream: UpstreamConfig | None = None,
        kept_auth: AuthConfig | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(680)
        self._base = config
        form = QFormLayout(self)
        self.upstream = UpstreamSection(config.upstream or kept_upstream, self)
        if config.upstream is None:
            self.upstream.set_proxy(False)
        form.addRow("Mode", self.upstream)
        transparent = config.upstream is not None and not config.upstream.has_credential
        auth = kept_auth if transparent and kept_auth is not None else config.auth
        self.host = QLineEdit(config.host)
        self.host.setToolTip("127.0.0.1 keeps the server private to this computer")
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setValue(config.port)
        self.port.setSpecialValueText("any free port")
        self.db = QLineEdit(str(config.db_path))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        db_row = QHBoxLayout()
        db_row.addWidget(self.db, 1)
        db_row.addWidget(browse)
        self.mode = QComboBox()
        self.mode.addItem("Bearer token (Okta: HTTP Header)", "bearer")
        self.mode.addItem("HTTP Basic (Okta: Basic Auth)", "basic")
        self.mode.addItem("OAuth 2.0 (Okta: OAuth2, authorization code)", "oauth")
        self.mode.addItem("None", "none")
        self.mode.setCurrentIndex(["bearer", "basic", "oauth", "none"].index(auth.mode))
        self.token = QLineEdit(auth.token)
        self.user = QLineEdit(auth.username or "okta")
        self.password = QLineEdit(auth.password or secrets.token_urlsafe(12))
        form.addRow("Host", self.host)
        form.addRow("Port", self.port)
        form.addRow("Data file", db_row)
        form.addRow("Authentication", self.mode)
        self.open_proxy_warning = QLabel(OPEN_PROXY_WARNING)
        self.open_proxy_warning.setStyleSheet(warning_style())
        form.addRow("", self.open_proxy_warning)
        form.addRow("Token", self.token)
        form.addRow("User", self.user)
        form.addRow("Password", self.password)
        self.token_ttl = QSpinBox()
        self.token_ttl.setRange(10, 366 * 86400)
        self.token_ttl.setValue(auth.oauth.token_ttl if auth.oauth else 3600)
        self.token_ttl.setSuffix(" s")
        self.token_ttl.setToolTip("Short lifetimes make Okta's token refresh visible in a demo")
        form.addRow("OAuth access tokens live", self.token_ttl)
        self.tls = QCheckBox("Serve https with a self-signed certificate (kept in the data folder)")
        self.tls.setChecked(config.tls is not None)
        form.addRow("TLS", self.tls)
        self.tunnel_provider = QComboBox()
        for name in PROVIDERS:
            self.tunnel_provider.addItem(name, name)
        index = self.tunnel_provider.findData(tunnel_provider)
        self.tunnel_provider.setCurrentIndex(max(0, index))
        self.tunnel_path = QLineEdit(tunnel_path or "")
        self.tunnel_path.setPlaceholderText("found on PATH")
        tunnel_row = QHBoxLayout()
        tunnel_row.addWidget(self.tunnel_provider)
        tunnel_row.addWidget(self.tunnel_path, 1)
        form.addRow("Share with Okta using", tunnel_row)
        self.row_cap = QSpinBox()
        self.row_cap.setRange(1_000, 1_000_000)
        self.row_cap.setSingleStep(1_000)
        self.row_cap.setGroupSeparatorShown(True)
        self.row_cap.setValue(row_cap)
        self.row_cap.setSuffix(" requests")
        self.row_cap.setToolTip("The request log drops the oldest requests beyond this")
        form.addRow("Request log keeps", self.row_cap)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #dc2626;")
        self.error.setWordWrap(True)
        form.addRow(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Apply and restart")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.upstream.proxy_radio.toggled.connect(self._mode_changed)
        self.upstream.kind.currentIndexChanged.connect(self._mode_changed)
        self._mode_changed()
        self.result_config: ServerConfig | None = None

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Data file",
            self.db.text(),
            "JSON (*.json)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.db.setText(path)

    def _mode_changed(self) -> None:
        mode = self.mode.currentData()
        # A transparent proxy checks no credential of its own: the upstream does.
        own = not self.upstream.transparent
        self.mode.setEnabled(own)
        self.mode.setToolTip("" if own else "Not used: your server checks Okta's credential")
        self.token.setEnabled(own and mode == "bearer")
        self.user.setEnabled(own and mode == "basic")
        self.password.setEnabled(own and mode == "basic")
        self.token_ttl.setEnabled(own and mode == "oauth")
        # A proxy that checks nobody but swaps in the upstream's credential hands that
        # credential to anyone who reaches the port.
        swap = self.upstream.proxy and not self.upstream.transparent
        self.open_proxy_warning.setVisible(swap and mode == "none")

    def build(self) -> ServerConfig:
        mode = self.mode.currentData()
        db_path = Path(self.db.text().strip()).expanduser()
        host = self.host.text().strip()
        upstream = self.upstream.build(host, self.port.value())
        if upstream is not None and not upstream.has_credential:
            auth = AuthConfig("none")  # transparent: the upstream decides
        elif mode == "bearer":
            auth = AuthConfig(
                "bearer", token=self.token.text().strip() or secrets.token_urlsafe(32)
            )
        elif mode == "basic":
            auth = AuthConfig("basic", username=self.user.text(), password=self.password.text())
        elif mode == "oauth":
            auth = oauth_auth(db_path, self.token_ttl.value())
        else:
            auth = AuthConfig("none")
        return replace(
            self._base,
            upstream=upstream,
            host=host,
            port=self.port.value(),
            db_path=db_path,
            auth=auth,
            tls=TlsConfig.generated_for(db_path) if self.tls.isChecked() else None,
        )

    def _accept(self) -> None:
        try:
            self.result_config = self.build()
        except ConfigError as exc:
            self.error.setText(str(exc))
            return
        self.accept()


GUIDE = """
<h2>Connect Okta to SCIM Desktop</h2>
<p><b>Okta calls SCIM servers from the cloud, and only over https.</b> A server on this
computer needs a public https address first: press <b>Share with Okta</b> at the top, which
starts a tunnel with a tool you already have (cloudflared needs no account; ngrok uses your
authtoken; localhost.run needs only ssh; pick one in Settings) and shows the public
<code>https://…/scim/v2</code> URL to copy. By hand: <code>cloudflared tunnel --url
http://127.0.0.1:{port}</code>, and add <code>/scim/v2</code> to the URL it prints.</p>

<h3>1. Add the app in Okta</h3>
<p><b>Catalog app:</b> Admin Console → Applications → Browse App Catalog → search
<i>SCIM 2.0 Test App</i> and pick <b>{variant}</b> → Add Integration → name it → sign-on
method (SWA or SAML) → Done.<br>
<b>Or your own app (App Integration Wizard):</b> create a SWA or SAML app, then General →
Provisioning: <b>SCIM</b>.</p>

<h3>2. Enter the connection</h3>
<table cellpadding="4">
<tr><td>SCIM base URL</td><td><code>https://&lt;your tunnel host&gt;/scim/v2</code>
&nbsp;(here: <code>{url}</code>)</td></tr>
<tr><td>Unique identifier field for users</td><td><code>userName</code></td></tr>
<tr><td>Authentication mode</td><td>{auth_mode}</td></tr>
{auth_rows}
</table>
<p>Catalog app: Provisioning tab → Configure API Integration → Enable API Integration → fill in
→ <b>Test API Credentials</b> → Save.<br>
Wizard app: Provisioning tab → Integration → Edit → tick Import New Users and Profile Updates,
Push New Users, Push Profile Updates, Push Groups → <b>Test Connector Configuration</b> →
Save.</p>
<p>The test shows up here right away as <i>Test API credentials</i> in the Requests tab.</p>

<h3>3. Turn provisioning on</h3>
<p>Provisioning → To App: enable <b>Create Users</b>, <b>Update User Attributes</b>,
<b>Deactivate Users</b> (and Sync Password if you want it). Then assign users or groups on the
Assignments tab, and push groups on the Push Groups tab. Each request Okta makes appears in
the Requests tab with the lifecycle step it belongs to.</p>
<p>Okta reports failures under Dashboard → Tasks and in the System Log. Try the Faults tab to
see how Okta handles 429s, 5xx errors and slow answers.</p>

<h3>4. Entitlements, roles and custom attributes (optional)</h3>
<p>Okta grants an app's own roles, licenses and other entitlements only with <b>Okta Identity
Governance</b> (OIG) and <b>entitlement management</b> turned on for the app. Okta discovers
them through SCIM <i>user-schema discovery</i>, which <b>Okta Support switches on</b> for your
org on request; without it Okta never reads <code>/ResourceTypes</code>.</p>
<p>Give this server a catalog first (the Governance tab: <b>Import catalog…</b>, or
<b>Demo → Load demo data</b>, or <code>--catalog FILE</code>). Then turn on entitlement
management for the app in Okta and enable provisioning: Okta calls
<code>GET /ResourceTypes</code>, then <code>GET /Schemas</code> for the extension URNs it does
not know, then reads every value of each type page by page, like a user import. All of it
shows up in the Requests tab.</p>
<p>The admin then sees each type (for example Roles, Licenses, Profiles) with its values on the
app's <b>Governance</b> tab in Okta. The catalog's custom user attributes become the app's user
profile (with discovery on, admins no longer add attributes in the Profile Editor).
Assigning a value to a user sends a PATCH (or a PUT of the whole user) with
<code>roles</code> or <code>entitlements</code>; this window's Governance tab shows who holds
each value as those requests arrive.</p>
"""


class ConnectGuide(QTextBrowser):
    """The "Connect to Okta" guide, filled in with this server's URL and credentials."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.document().setDocumentMargin(24)

    def update_for(self, config: ServerConfig, url: str) -> None:
        esc = html.escape
        upstream = config.upstream
        if upstream is not None and not upstream.has_credential:
            variant = "SCIM 2.0 Test App (Header Auth or Basic Auth, as your server wants)"
            mode = (
                "whatever your own server expects: SCIM Desktop passes Okta's credential "
                "through to it unchanged (proxy mode, no upstream credential set)"
            )
            rows = ""
        elif config.auth.mode == "bearer":
            variant = "SCIM 2.0 Test App (Header Auth)"
            mode = "HTTP Header (Bearer token)"
            rows = (
                "<tr><td>Authorization / API token</td>"
                f"<td><code>{esc(config.auth.token)}</code></td></tr>"
            )
        elif config.auth.mode == "basic":
            variant = "SCIM 2.0 Test App (Basic Auth)"
            mode = "Basic Auth"
            rows = (
                f"<tr><td>Username</td><td><code>{esc(config.auth.username)}</code></td></tr>"
                f"<tr><td>Password</td><td><code>{esc(config.auth.password)}</code></td></tr>"
            )
        elif config.auth.mode == "oauth" and config.auth.oauth is not None:
            variant = "SCIM 2.0 Test App (OAuth Bearer Token)"
            mode = "OAuth 2.0"
            base = url.rsplit("/scim/v2", 1)[0]
            rows = (
                "<tr><td>Client ID</td><td><code>"
                f"{esc(config.auth.oauth.client_id)}</code></td></tr>"
                "<tr><td>Client secret</td><td><code>"
                f"{esc(config.auth.oauth.client_secret)}</code></td></tr>"
                "<tr><td>Authorize endpoint</td>"
                f"<td><code>{esc(base)}/oauth/authorize</code></td></tr>"
                f"<tr><td>Token endpoint</td><td><code>{esc(base)}/oauth/token</code></td></tr>"
            )
        else:
            variant = "SCIM 2.0 Test App (Header Auth)"
            mode = "HTTP Header with any token (authentication is off here; turn it on in Settings)"
            rows = ""
        proxy_note = ""
        if upstream is not None:
            proxy_note = (
                "<p style='background:#ede9fe; color:#3b0764; padding:6px'><b>Proxy mode:</b> "
                f"Okta's requests to this URL are forwarded to <code>{esc(upstream.url)}</code>"
                " and shown in the Requests tab; the Faults tab works in between.</p>"
            )
        self.setHtml(
            proxy_note
            + GUIDE.format(
                port=config.port if config.port else "&lt;port&gt;",
                url=esc(url or "not running"),
                variant=variant,
                auth_mode=mode,
                auth_rows=rows,
            )
        )
        self.document().setDocumentMargin(24)
