"""Editing resources through the server's rules, and the JSON editor shared by Users and Groups.

Every edit made in the window runs as ``ServerThread.apply(op)`` on the server thread: the same
validation as a PUT or PATCH from Okta, made durable, published as ResourceChanged events (so
the tables update the same way as for Okta's requests). The GUI never waits for it:
:func:`run_on_server` delivers the outcome back on the GUI thread through a queued signal.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any

import orjson
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.core.errors import NotFound, PreconditionFailed, ScimError
from scim_desktop.core.resources import Outcome, ScimService
from scim_desktop.gui import theme
from scim_desktop.gui.controller import ServerController
from scim_desktop.gui.widgets.request_detail import JsonHighlighter

log = logging.getLogger("scim_desktop.gui")

Op = Callable[[ScimService], Outcome]
Then = Callable[[Any], None]
OnError = Callable[[BaseException], None]

#: Documents larger than this are not syntax-coloured (a 5,000-member group is ~1 MB).
MAX_HIGHLIGHTED_CHARS = 400_000
NOT_RUNNING = "The server is not running. Start it, then try again."


class _Deliverer(QObject):
    """Lives on the GUI thread (a child of the controller); its queued signal carries a
    finished future from whatever thread resolved it to the GUI thread."""

    finished = Signal(object, object)

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.finished.connect(self._finish, Qt.ConnectionType.QueuedConnection)

    def _finish(self, future: concurrent.futures.Future, callbacks: tuple) -> None:
        then, error = callbacks
        try:
            exc = future.exception()
            if exc is not None:
                if error is not None:
                    error(exc)
                else:
                    log.error("A server operation failed: %s", describe_error(exc))
                return
            if then is not None:
                then(future.result())
        except Exception:
            log.exception("A GUI callback failed")


def deliver(
    controller: ServerController,
    future: concurrent.futures.Future,
    then: Then | None = None,
    error: OnError | None = None,
) -> concurrent.futures.Future:
    """Call ``then(result)`` or ``error(exc)`` on the GUI thread once ``future`` is done —
    always later, from the event loop, never from inside this call. Call on the GUI thread."""
    deliverer = controller.findChild(_Deliverer)
    if deliverer is None:
        deliverer = _Deliverer(controller)
    future.add_done_callback(lambda f: deliverer.finished.emit(f, (then, error)))
    return future


def run_on_server(
    controller: ServerController,
    op: Op,
    then: Then | None = None,
    error: OnError | None = None,
) -> concurrent.futures.Future:
    """Run ``op(service)`` on the server thread with the server's rules and durability
    (``ServerThread.apply``); ``then(outcome)`` / ``error(exc)`` follow on the GUI thread.
    Without a running server ``error`` gets a RuntimeError saying so."""
    server = controller.server
    if server is None or not server.running:
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_exception(RuntimeError(NOT_RUNNING))
    else:
        future = server.apply(op)
    return deliver(controller, future, then, error)


def base_url(controller: ServerController) -> str:
    """The server's base URL (for ``meta.location`` in the outcome); "" when stopped — the
    operation then fails with "not running" anyway."""
    server = controller.server
    return server.base_url if server is not None else ""


def describe_error(exc: BaseException) -> str:
    """An error as a sentence for the window (never a traceback)."""
    if isinstance(exc, PreconditionFailed):
        return (
            "It changed on the server since you opened it (Okta may have updated it). "
            f"Close and open it again to edit the current version. ({exc.status}: {exc.detail})"
        )
    if isinstance(exc, NotFound):
        return f"It no longer exists on the server: {exc.detail} ({exc.status})"
    if isinstance(exc, ScimError):
        kind = f"{exc.status} {exc.scim_type}" if exc.scim_type else str(exc.status)
        return f"The server refused the change ({kind}): {exc.detail}"
    if isinstance(exc, RuntimeError) and "not running" in str(exc):
        return NOT_RUNNING
    log.error("Unexpected error from a server operation", exc_info=exc)
    return f"Something went wrong: {exc or type(exc).__name__}"


def message_style(kind: str) -> str:
    """Stylesheet for an inline message label: "error", "ok" or "muted"."""
    if kind == "error":
        return (
            f"color: {theme.status_color(500).name()}; padding: 6px 8px; border-radius: 4px;"
            " background: rgba(220, 38, 38, 0.10);"
        )
    if kind == "ok":
        return f"color: {theme.status_color(200).name()};"
    return f"color: {theme.muted_color().name()};"


def resource_title(rtype: str, resource: dict[str, Any]) -> str:
    name = resource.get("userName") if rtype == "User" else resource.get("displayName")
    return str(name or resource.get("id") or "")


class JsonEditorDialog(QDialog):
    """The resource as JSON, editable; Save sends it as a PUT through the server's rules.

    The text is checked as you type (the line under the editor). A change the server refuses
    is explained in words and the dialog stays open; a saved change closes it, and the table
    follows from the server's events. Save uses the version the editor was opened with as
    If-Match, so a change Okta made in between is not silently overwritten."""

    #: The outcome's resource, after a successful save.
    saved = Signal(dict)

    def __init__(
        self,
        controller: ServerController,
        rtype: str,
        resource: dict[str, Any],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.rtype = rtype
        self.resource = resource
        self.resource_id = str(resource.get("id", ""))
        meta = resource.get("meta")
        self.version: str | None = meta.get("version") if isinstance(meta, dict) else None
        self.saved_resource: dict[str, Any] | None = None
        self._busy = False
        self.setWindowTitle(f"Edit {rtype} — {resource_title(rtype, resource)}")
        self.setSizeGripEnabled(True)
        self.resize(720, 640)

        layout = QVBoxLayout(self)
        intro = QLabel(
            f"Saved as <b>PUT /{rtype}s/{self.resource_id}</b>, validated by the same rules as "
            "Okta's requests. <i>id</i>, <i>meta</i>"
            + (" and <i>groups</i>" if rtype == "User" else "")
            + " are read-only and ignored."
        )
        intro.setWordWrap(True)
        intro.setStyleSheet(message_style("muted"))
        layout.addWidget(intro)

        self.editor = QPlainTextEdit()
        self.editor.setFont(theme.mono_font())
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.editor.setTabStopDistance(2 * self.editor.fontMetrics().horizontalAdvance(" "))
        text = orjson.dumps(resource, option=orjson.OPT_INDENT_2).decode()
        self.highlighter = JsonHighlighter(self.editor.document())
        self.highlighter.enabled = len(text) <= MAX_HIGHLIGHTED_CHARS
        self.editor.setPlainText(text)
        layout.addWidget(self.editor, 1)

        self.syntax = QLabel()
        self.syntax.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.syntax)
        self.server_error = QLabel()
        self.server_error.setWordWrap(True)
        self.server_error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.server_error.setStyleSheet(message_style("error"))
        self.server_error.hide()
        layout.addWidget(self.server_error)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button: QPushButton = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.reformat_button = self.buttons.addButton(
            "Reformat", QDialogButtonBox.ButtonRole.ResetRole
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self.reformat_button.clicked.connect(self.reformat)
        layout.addWidget(self.buttons)
        QShortcut(QKeySequence.StandardKey.Save, self, activated=self.save)

        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(150)
        self._check_timer.timeout.connect(self.check)
        self.editor.textChanged.connect(self._check_timer.start)
        self.check()

    # --- checking ------------------------------------------------------------------------
    def parse(self) -> tuple[dict[str, Any] | None, str]:
        """The edited body, or None and why it is not a JSON object."""
        text = self.editor.toPlainText()
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return None, f"Line {exc.lineno}, column {exc.colno}: {exc.msg}"
        if not isinstance(value, dict):
            return None, "The body must be a JSON object ({ … })"
        return value, ""

    def check(self) -> bool:
        body, problem = self.parse()
        if body is None:
            self.syntax.setText(f"✗ {problem}")
            self.syntax.setStyleSheet(message_style("error"))
        else:
            self.syntax.setText("✓ Valid JSON")
            self.syntax.setStyleSheet(message_style("ok"))
        self.save_button.setEnabled(body is not None and not self._busy)
        return body is not None

    def reformat(self) -> None:
        body, _ = self.parse()
        if body is not None:
            self.editor.setPlainText(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())

    # --- saving --------------------------------------------------------------------------
    def save(self) -> None:
        if self._busy:
            return
        body, problem = self.parse()
        if body is None:
            self.show_error(f"Not saved: {problem}")
            return
        rtype, rid, version = self.rtype, self.resource_id, self.version
        url = base_url(self.controller)

        def op(svc: ScimService) -> Outcome:
            return svc.replace(rtype, rid, body, url, if_match=version)

        self._set_busy(True)
        run_on_server(self.controller, op, self._saved, self._failed)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.save_button.setText("Saving…" if busy else "Save")
        self.check()

    def _saved(self, outcome: Outcome) -> None:
        self._set_busy(False)
        self.saved_resource = outcome.resource
        self.server_error.hide()
        if outcome.resource is not None:
            self.saved.emit(outcome.resource)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self._set_busy(False)
        self.show_error(describe_error(exc))

    def show_error(self, text: str) -> None:
        self.server_error.setText(text)
        self.server_error.show()

    def error_text(self) -> str:
        """The error shown under the editor ("" when none)."""
        return self.server_error.text() if not self.server_error.isHidden() else ""
