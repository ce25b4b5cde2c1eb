"""OAuth 2.0: what to paste into Okta, and the tokens this server issued (revocable)."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.core.oauth import TokenInfo
from scim_desktop.gui import theme
from scim_desktop.gui.controller import ServerController
from scim_desktop.gui.widgets.json_editor import deliver


def _when(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    delta = ts - now
    if abs(delta) < 60:
        text = f"{abs(delta):.0f} s"
    elif abs(delta) < 7200:
        text = f"{abs(delta) / 60:.0f} min"
    else:
        text = f"{abs(delta) / 3600:.1f} h"
    return f"in {text}" if delta > 0 else f"{text} ago"


class OAuthDialog(QDialog):
    """Client id / secret and endpoint URLs with copy buttons, and the token list."""

    def __init__(self, controller: ServerController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("OAuth 2.0 for Okta")
        self.resize(860, 520)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "In Okta choose <b>OAuth 2.0</b> as the provisioning authentication mode and paste "
            "these values. Okta signs in through the authorize URL (you approve it in your "
            "browser), then uses and refreshes access tokens on its own."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.fields: dict[str, QLineEdit] = {}
        for key, label in (
            ("client_id", "Client ID"),
            ("client_secret", "Client secret"),
            ("authorize", "Authorize endpoint"),
            ("token", "Token endpoint"),
        ):
            edit = QLineEdit()
            edit.setReadOnly(True)
            edit.setFont(theme.mono_font())
            copy = QToolButton()
            copy.setText("Copy")
            copy.clicked.connect(
                lambda _=False, e=edit: QGuiApplication.clipboard().setText(e.text())
            )
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(copy)
            form.addRow(label, row)
            self.fields[key] = edit
        layout.addLayout(form)

        layout.addWidget(QLabel("<b>Tokens issued</b> (values are never shown)"))
        self.table = QTableWidget(0, 7)
        self.table.setHorizontalHeaderLabels(
            ["Kind", "Grant", "Status", "Issued", "Expires", "Last used", ""]
        )
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        for col in range(7):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)
        self.status = QLabel("")
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.revoke_all = QPushButton("Revoke all")
        self.revoke_all.setToolTip("Okta's next request gets 401 invalid_token")
        self.revoke_all.clicked.connect(self._revoke_all)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        for b in (refresh, self.revoke_all, close):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.refresh()

    def refresh(self) -> None:
        server = self.controller.server
        if server is None:
            self.status.setText("The server is not running.")
            return
        self.fields["client_id"].setText(server.oauth_client_id or "")
        self.fields["client_secret"].setText(server.oauth_client_secret or "")
        self.fields["authorize"].setText(server.oauth_authorize_url or "")
        self.fields["token"].setText(server.oauth_token_url or "")
        deliver(self.controller, server.oauth_tokens(), self._show, self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(f"Could not list the tokens: {exc}")

    def _show(self, tokens: list[TokenInfo]) -> None:
        now = time.time()
        self.table.setRowCount(len(tokens))
        for row, tok in enumerate(tokens):
            cells = [
                tok.kind,
                tok.grant,
                tok.status,
                _when(tok.issued_at, now),
                _when(tok.expires_at, now) if tok.expires_at else "does not expire",
                _when(tok.last_used_at, now),
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 2 and tok.status != "active":
                    item.setForeground(theme.muted_color())
                    if tok.reason:  # why it was revoked (e.g. a replayed refresh token)
                        item.setToolTip(tok.reason)
                self.table.setItem(row, col, item)
            revoke = QPushButton("Revoke")
            revoke.setEnabled(tok.status == "active")
            revoke.clicked.connect(lambda _=False, t=tok.id: self._revoke(t))
            self.table.setCellWidget(row, 6, revoke)
        active = sum(1 for t in tokens if t.status == "active")
        self.status.setText(f"{active} active of {len(tokens)}")
        self.revoke_all.setEnabled(active > 0)

    def _revoke(self, token_id: str) -> None:
        server = self.controller.server
        if server is not None:
            deliver(self.controller, server.revoke_token(token_id), self._after, self._failed)

    def _revoke_all(self) -> None:
        server = self.controller.server
        if server is not None:
            deliver(self.controller, server.revoke_all_tokens(), self._after, self._failed)

    def _after(self, _result: Any) -> None:
        self.refresh()


__all__ = ["OAuthDialog", "Qt"]
