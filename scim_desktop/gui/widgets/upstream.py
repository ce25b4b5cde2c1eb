"""Proxy mode in the window (issue 14): the Settings section that picks "Mock server" or
"Proxy to my server" and the upstream, and the status-bar indicator of the upstream's health.

The server side (forwarding, records, :class:`UpstreamStatus` events) lives in
``scim_desktop/server``; these widgets only edit an :class:`UpstreamConfig` and show events.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.config import ConfigError, UpstreamConfig
from scim_desktop.server.events import UpstreamStatus

__all__ = [
    "CREDENTIAL_KINDS",
    "INSECURE_WARNING",
    "OPEN_PROXY_WARNING",
    "ProxyStrip",
    "UpstreamIndicator",
    "UpstreamSection",
    "credential_text",
    "mode_text",
    "warning_style",
    "window_title",
]

#: Credential kinds: data, combo text, the name field's label (None: no name), the secret's.
CREDENTIAL_KINDS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("passthrough", "Pass Okta's credential through (your server checks it)", None, None),
    ("bearer", "Bearer token", None, "Token"),
    ("basic", "HTTP Basic", "User", "Password"),
    ("header", "Custom header (an API key)", "Header name", "Header value"),
)
INSECURE_WARNING = (
    "⚠ The upstream's certificate is not checked: anyone on the way to\n"
    "your server could read and change the traffic, credentials included.\n"
    "Only for a test server with a self-signed certificate."
)
_PROXY_PILL = "#6d28d9"
_DOWN = "#b91c1c"
_UP = "#15803d"
_WARN = "#b45309"
#: Settings, proxy with an upstream credential and no authentication of its own (the command
#: line's banner says the same of --no-auth with an upstream credential).
OPEN_PROXY_WARNING = (
    "⚠ No authentication with an upstream credential: anyone who can reach\n"
    "this port acts on your server with that credential. Choose a bearer\n"
    "token, Basic or OAuth for Okta unless only you can reach the port."
)


def warning_style() -> str:
    """The section's warnings (an unverified certificate, an open proxy)."""
    return f"color: {_WARN}; font-weight: 600"


def mode_text(upstream: UpstreamConfig | None) -> str:
    """What the connection bar and the title say about the mode."""
    return "Mock server" if upstream is None else f"Proxy → {upstream.url}"


def credential_text(upstream: UpstreamConfig) -> str:
    """How the proxy authenticates to the upstream, in the window's words (never the secret)."""
    if upstream.token is not None:
        return "a bearer token of its own (Okta's stays here)"
    if upstream.basic is not None:
        return f"HTTP Basic as {upstream.basic[0]!r} (Okta's credential stays here)"
    if upstream.header is not None:
        return f"a {upstream.header[0]} header (Okta's credential stays here)"
    return "Okta's own, passed through unchanged"


def window_title(upstream: UpstreamConfig | None) -> str:
    return "SCIM Desktop" if upstream is None else f"SCIM Desktop — Proxy → {upstream.url}"


def url_problem(text: str, own_host: str, own_port: int) -> str | None:
    """Why ``text`` cannot be the upstream's base URL, in words for the Settings dialog
    (UpstreamConfig checks it again; its messages name the command-line options)."""
    url = text.strip()
    if not url:
        return "Enter your SCIM server's base URL, e.g. https://app.example.com/scim/v2"
    if "://" not in url:
        return f"{url!r} is not a URL: it must start with https:// (or http://)"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return f"The upstream URL must start with https:// or http://, not {parts.scheme}://"
    if "@" in parts.netloc:
        return "Put no user:password in the URL: choose HTTP Basic as the credential instead"
    if not parts.hostname:
        return f"{url!r} has no host name"
    try:
        port = parts.port
    except ValueError:
        return "The port in the upstream URL must be a number from 1 to 65535"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "The upstream URL must not have a query (?…) or a fragment (#…)"
    port = port or (443 if parts.scheme.lower() == "https" else 80)
    local = {"127.0.0.1", "localhost", "::1", "0.0.0.0", own_host.lower()}
    if own_port and port == own_port and parts.hostname.lower() in local:
        return (
            f"That is this proxy's own address (port {own_port}): every request would "
            "loop back to it. Enter your own SCIM server's URL."
        )
    return None


class UpstreamSection(QWidget):
    """The mode choice and, for the proxy, the upstream URL, its credential and the
    certificate switch. Values stay in the fields when the mode is switched back and forth
    (and per credential kind), so nothing typed is lost."""

    def __init__(self, upstream: UpstreamConfig | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.mock_radio = QRadioButton("Mock server")
        self.mock_radio.setToolTip("SCIM Desktop answers Okta itself, from its own data file")
        self.proxy_radio = QRadioButton("Proxy to my server")
        self.proxy_radio.setToolTip(
            "SCIM Desktop forwards Okta's requests to your own SCIM server and shows every "
            "request and answer, with the fault switches in between"
        )
        self._modes = QButtonGroup(self)
        self._modes.addButton(self.mock_radio)
        self._modes.addButton(self.proxy_radio)
        row.addWidget(self.mock_radio)
        row.addWidget(self.proxy_radio)
        row.addStretch(1)
        outer.addLayout(row)

        self.group = QGroupBox("Your SCIM server (upstream)")
        form = self._form = QFormLayout(self.group)
        self.url = QLineEdit(upstream.url if upstream else "")
        self.url.setPlaceholderText("https://app.example.com/scim/v2")
        self.url.setToolTip("/scim/v2/<rest> here is forwarded to <this URL>/<rest>")
        form.addRow("Base URL", self.url)
        self.kind = QComboBox()
        for data, text, _name, _secret in CREDENTIAL_KINDS:
            self.kind.addItem(text, data)
        form.addRow("Credential", self.kind)
        self.name_label = QLabel("User")
        self.name = QLineEdit()
        form.addRow(self.name_label, self.name)
        self.secret_label = QLabel("Token")
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.reveal = QToolButton()
        self.reveal.setText("Show")
        self.reveal.setCheckable(True)
        self.reveal.toggled.connect(self._reveal)
        secret_row = QHBoxLayout()
        secret_row.addWidget(self.secret, 1)
        secret_row.addWidget(self.reveal)
        form.addRow(self.secret_label, secret_row)
        self._secret_row = secret_row
        # Lines broken by hand: word-wrapped labels in a nested form get cut off.
        self.credential_note = QLabel()
        self.credential_note.setStyleSheet("color: palette(placeholder-text)")
        form.addRow(self.credential_note)
        self.insecure = QCheckBox("Don't verify the upstream's certificate")
        self.insecure.setChecked(bool(upstream and upstream.insecure))
        form.addRow(self.insecure)
        self.insecure_warning = QLabel(INSECURE_WARNING)
        self.insecure_warning.setStyleSheet(warning_style())
        form.addRow(self.insecure_warning)
        outer.addWidget(self.group)

        # Each kind keeps its own (name, secret) while the dialog is open.
        self._values: dict[str, tuple[str, str]] = {}
        kind = "passthrough"
        if upstream is not None:
            if upstream.token is not None:
                kind, self._values["bearer"] = "bearer", ("", upstream.token)
            elif upstream.basic is not None:
                kind, self._values["basic"] = "basic", upstream.basic
            elif upstream.header is not None:
                kind, self._values["header"] = "header", upstream.header
        self._kind = kind
        self.kind.setCurrentIndex(self.kind.findData(kind))
        self._load_kind(kind)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.insecure.toggled.connect(self._update)
        self.url.textChanged.connect(self._update)
        self._modes.buttonToggled.connect(lambda *_: self._update())
        (self.proxy_radio if upstream is not None else self.mock_radio).setChecked(True)
        self._update()

    # --- state -----------------------------------------------------------------------------------
    @property
    def proxy(self) -> bool:
        return self.proxy_radio.isChecked()

    @property
    def transparent(self) -> bool:
        """The proxy passes the client's own credential through (ours is not used)."""
        return self.proxy and self.kind.currentData() == "passthrough"

    def set_proxy(self, on: bool) -> None:
        (self.proxy_radio if on else self.mock_radio).setChecked(True)

    def _reveal(self, on: bool) -> None:
        self.reveal.setText("Hide" if on else "Show")
        mode = QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password
        self.secret.setEchoMode(mode)

    def _kind_changed(self) -> None:
        self._values[self._kind] = (self.name.text(), self.secret.text())
        self._kind = self.kind.currentData()
        self._load_kind(self._kind)
        self._update()

    def _load_kind(self, kind: str) -> None:
        name, secret = self._values.get(kind, ("", ""))
        self.name.setText(name)
        self.secret.setText(secret)
        spec = next(k for k in CREDENTIAL_KINDS if k[0] == kind)
        self.name_label.setText(spec[2] or "")
        self.secret_label.setText(spec[3] or "")
        self.name.setPlaceholderText("X-Api-Key" if kind == "header" else "")

    def _update(self) -> None:
        on = self.proxy
        self.group.setEnabled(on)
        spec = next(k for k in CREDENTIAL_KINDS if k[0] == self.kind.currentData())
        self._form.setRowVisible(self.name, spec[2] is not None)
        self._form.setRowVisible(self._secret_row, spec[3] is not None)
        if spec[0] == "passthrough":
            note = (
                "Okta is set up with your server's own credential; SCIM Desktop\n"
                "passes it through unchanged and your server decides.\n"
                "The Authentication setting below is not used."
            )
        else:
            note = (
                "Okta authenticates to SCIM Desktop with the Authentication below;\n"
                "SCIM Desktop sends this credential to your server instead: Okta's\n"
                "never reaches it, and this one never reaches Okta or a log."
            )
        self.credential_note.setText(note)
        is_http = self.url.text().strip().lower().startswith("http://")
        self.insecure.setEnabled(on and not is_http)
        self.insecure_warning.setVisible(self.insecure.isChecked() and not is_http)

    # --- result ----------------------------------------------------------------------------------
    def build(self, own_host: str, own_port: int) -> UpstreamConfig | None:
        """The upstream chosen (None: the mock server); ConfigError in words when a field
        is wrong."""
        if not self.proxy:
            return None
        problem = url_problem(self.url.text(), own_host, own_port)
        if problem:
            raise ConfigError(problem)
        url = self.url.text().strip()
        kind = self.kind.currentData()
        name, secret = self.name.text().strip(), self.secret.text()
        insecure = self.insecure.isChecked() and url.lower().startswith("https://")
        if kind == "bearer":
            if not secret.strip() or any(c.isspace() for c in secret.strip()):
                raise ConfigError("Enter the bearer token your server expects (no spaces)")
            return UpstreamConfig(url, token=secret.strip(), insecure=insecure)
        if kind == "basic":
            if not name or ":" in name or not secret:
                raise ConfigError(
                    "HTTP Basic needs your server's user name (without ':') and password"
                )
            return UpstreamConfig(url, basic=(name, secret), insecure=insecure)
        if kind == "header":
            if not name or not secret.strip():
                raise ConfigError(
                    "A custom header needs its name (e.g. X-Api-Key) and the value your "
                    "server expects"
                )
            try:
                return UpstreamConfig(url, header=(name, secret.strip()), insecure=insecure)
            except ConfigError as exc:
                raise ConfigError(str(exc).replace("--upstream-header", "The header")) from None
        return UpstreamConfig(url, insecure=insecure)


class ProxyStrip(QFrame):
    """A strip under the connection bar while the proxy is on: where Okta's requests go and
    with which credential, so that proxy mode is never mistaken for the mock."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("proxyStrip")
        self.setStyleSheet(
            f"QFrame#proxyStrip {{ background: {_PROXY_PILL}; }}"
            " QFrame#proxyStrip QLabel { color: white; }"
        )
        row = QHBoxLayout(self)
        row.setContentsMargins(14, 5, 14, 5)
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.text, 1)
        self.set_upstream(None)

    def set_upstream(self, upstream: UpstreamConfig | None) -> None:
        self.setVisible(upstream is not None)
        if upstream is None:
            self.text.setText("")
            return
        self.text.setText(
            f"<b>{html.escape(mode_text(upstream))}</b>&nbsp;&nbsp;·&nbsp;&nbsp;Okta's "
            "requests to the base URL above are forwarded to your server with "
            f"{html.escape(credential_text(upstream))}"
            + (
                "&nbsp;&nbsp;·&nbsp;&nbsp;<b>⚠ its certificate is not verified</b>"
                if upstream.insecure
                else ""
            )
        )


class UpstreamIndicator(QWidget):
    """Status-bar pieces of proxy mode: the upstream's health (red with the detail while it
    is down) and a standing warning when its certificate is not verified. Hidden for the
    mock server."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 6, 0)
        row.setSpacing(8)
        self.insecure = QLabel("⚠ Upstream certificate not verified")
        self.insecure.setToolTip(INSECURE_WARNING)
        self.insecure.setStyleSheet(warning_style())
        self.state = QLabel()
        self.state.setTextFormat(Qt.TextFormat.RichText)
        row.addWidget(self.insecure)
        row.addWidget(self.state)
        self.upstream: UpstreamConfig | None = None
        self.up: bool | None = None  # None: nothing heard yet
        self.detail = ""
        self.set_upstream(None)

    def set_upstream(self, upstream: UpstreamConfig | None) -> None:
        """A new mode: nothing is known about the (new) upstream yet."""
        self.upstream = upstream
        self.up = None
        self.detail = ""
        self.setVisible(upstream is not None)
        self.insecure.setVisible(bool(upstream and upstream.insecure))
        self._show()

    def apply(self, event: UpstreamStatus) -> None:
        if self.upstream is None or event.url.rstrip("/") != self.upstream.url.rstrip("/"):
            return  # from a server already stopped (a mode switch)
        self.up = event.up
        self.detail = event.detail
        self._show()

    @property
    def text(self) -> str:
        return self.state.text()

    def _show(self) -> None:
        if self.upstream is None:
            self.state.setText("")
            return
        if self.up is False:
            detail = html.escape(self.detail)
            self.state.setText(
                f'<span style="background:{_DOWN}; color:white; font-weight:700">'
                f"&nbsp;● Upstream down&nbsp;</span> {detail}"
            )
            self.state.setToolTip(f"{self.upstream.url}: {self.detail}")
        else:
            color = _UP if self.up else "#6b7280"
            self.state.setText(
                f'<span style="color:{color}; font-weight:600">● Upstream</span> '
                f"{html.escape(self.upstream.url)}"
            )
            self.state.setToolTip(
                "Your server answers" if self.up else "Waiting for the first forwarded request"
            )


def proxy_pill_style() -> str:
    return (
        f"QLabel#modePill {{ color: white; background: {_PROXY_PILL}; border-radius: 11px;"
        " padding: 3px 10px; font-weight: 600; }"
    )


def mock_pill_style() -> str:
    return (
        "QLabel#modePill { color: palette(text); border: 1px solid palette(mid);"
        " border-radius: 11px; padding: 2px 10px; }"
    )
