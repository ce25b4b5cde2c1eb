"""Tools > Check a server: Okta's SCIM tests (``scim_desktop.check``) run against any SCIM
server from the window, with the results live in a table and, for a failure, what the server
answered, what Okta does with it and the fix (issue 15, "The window").

The checker is blocking (``http.client``), so it runs on a plain Python thread; everything it
reports reaches the GUI thread through queued signals of a :class:`CheckRelay`. The GUI thread
never waits for it: Cancel and closing the dialog only set the runner's cancel flag, the runner
cleans up on its own thread, and the dialog closes when the run's end arrives.
"""

from __future__ import annotations

import contextlib
import html
import logging
import threading
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QCloseEvent, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.check import (
    EXPECTED_CHECKS,
    SUITES,
    Check,
    CheckOptions,
    Report,
    RequestLog,
    Runner,
    Unreachable,
)
from scim_desktop.check.report import cleanup_lines, to_html, to_json_bytes, to_junit
from scim_desktop.check.runner import OptionsError, make_options, source_text
from scim_desktop.gui import theme
from scim_desktop.gui.controller import ServerController

log = logging.getLogger("scim_desktop.gui")

#: The credential choices, in the combo box's order.
CREDENTIALS = ("none", "bearer", "basic", "header")
#: What the form says for each OptionsError (whose own text names the command line's options).
FORM_PROBLEMS = {
    "url": "Give the SCIM base URL, e.g. https://app.example.com/scim/v2",
    "suite": "Choose at least one suite.",
    "token": "Give the bearer token (no spaces).",
    "basic": "Give the Basic user name (without ':') and its password.",
    "header": "Give the header's name (no spaces or ':') and its value.",
}
_CREDENTIAL_LABELS = ("None", "Bearer token", "HTTP Basic", "Custom header")
#: What each suite covers, for its check box's tooltip.
_SUITE_TIPS = {
    "spec": "The 12 steps of Okta's Runscope SPEC test",
    "crud": "The user lifecycle Okta drives: create, update, deactivate, password, import",
    "groups": "Group push: lookup, create, members added and removed, rename, delete",
    "entitlements": "Okta's entitlement discovery and grants (skipped without Okta's types)",
}
COLUMNS = ("Result", "Suite", "Check", "Detail")
_LABEL = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}
#: Export formats: file suffix and the file dialog's filter.
_FORMATS = {
    "json": ("json", "JSON (*.json)"),
    "junit": ("xml", "JUnit XML (*.xml)"),
    "html": ("html", "HTML pages (*.html *.htm)"),
}


def status_colour(status: str) -> QColor:
    """PASS green, FAIL red, SKIP amber: the HTTP status colours of the Requests tab."""
    return theme.status_color({"pass": 200, "fail": 500, "skip": 400}[status])


class CheckRelay(QObject):
    """Carries the worker thread's news to the GUI thread (connected queued)."""

    checkDone = Signal(object)  # a finished Check
    finished = Signal(object)  # the Report
    failed = Signal(str, object)  # a message in words, the Report so far


def _emit(signal: Signal, *args: object) -> None:
    # The dialog (and its relay) may be gone when the window closed mid-run: the run still
    # finishes and cleans up on its thread, unheard.
    with contextlib.suppress(RuntimeError):
        signal.emit(*args)  # type: ignore[attr-defined]


def _work(runner: Runner, relay: CheckRelay) -> None:
    """The worker thread: run every check, then say how it ended. Never raises."""
    try:
        report = runner.run()
    except Unreachable as exc:
        _emit(relay.failed, runner.scrub(str(exc)), runner.report)
    except Exception as exc:
        log.exception("The check stopped")
        why = runner.scrub(str(exc)) or type(exc).__name__
        _emit(relay.failed, f"The check stopped: {why}", runner.report)
    else:
        _emit(relay.finished, report)


def _pretty(text: str) -> str:
    """A JSON body indented (a cut one, or not JSON, as it came)."""
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return text


def _target(url: str) -> str:
    """The path and query of a request's URL (the server is the dialog's)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _answer(r: RequestLog) -> str:
    if not r.status:
        return f"no answer: {r.error}"
    try:
        phrase = " " + HTTPStatus(r.status).phrase
    except ValueError:
        phrase = ""
    took = f"{r.duration_ms:.0f} ms" if r.duration_ms >= 1 else "<1 ms"
    return f"{r.status}{phrase} in {took}"


def check_html(check: Check) -> str:
    """The detail pane for one check: what was seen, each finding (what the server did, what
    Okta does, the fix), then every request and answer (already redacted by the runner)."""
    e = html.escape
    colour = status_colour(check.status).name()
    out = [
        f'<h3 style="margin:0"><span style="color:{colour}">{_LABEL[check.status]}</span> '
        f"&nbsp;{e(check.suite)} · {e(check.name)}</h3>"
    ]
    if check.status != "fail" and check.detail:
        out.append(f"<p>{e(check.detail)}</p>")
    for f in check.findings:
        at = f" (request {f.request + 1})" if f.request is not None else ""
        out.append(
            '<table cellpadding="3" style="margin-top:6px">'
            f"<tr><td><b>Server{at}</b></td><td>{e(f.what)}</td></tr>"
            f"<tr><td><b>Okta</b></td><td>{e(f.okta_effect)}"
            f' <i style="color:{theme.muted_color().name()}">({e(source_text(f))})</i></td></tr>'
            f"<tr><td><b>Fix</b></td><td>{e(f.fix)}</td></tr></table>"
        )
    if check.status == "fail" and not check.findings:
        out.append(
            f"<p><b>Server:</b> {e(check.detail)}<br><b>Okta:</b> {e(check.okta_effect)}"
            f"<br><b>Fix:</b> {e(check.fix)}</p>"
        )
    if check.requests:
        out.append(f"<h4>Requests and answers ({len(check.requests)})</h4>")
    for i, r in enumerate(check.requests, 1):
        head = [f"{r.method} {r.url}"] + [f"{k}: {v}" for k, v in r.headers.items()]
        sent = "\n".join(head) + ("\n\n" + _pretty(r.body) if r.body else "")
        out.append(
            f"<p style='margin-bottom:0'><b>{i}. {e(r.method)} {e(_target(r.url))}</b> → "
            f"<b style='color:{theme.status_color(r.status).name()}'>{e(_answer(r))}</b></p>"
            f"<pre>{e(sent)}</pre>"
        )
        if r.status:
            body = _pretty(r.response_body) if r.response_body else "(empty body)"
            out.append(f"<p style='margin:0'><i>Answer</i></p><pre>{e(body)}</pre>")
    return "".join(out)


class CheckDialog(QDialog):
    """URL, credential and suites; Run on a worker thread; the results as they come."""

    def __init__(
        self, controller: ServerController | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Check a server")
        self.resize(1240, 800)
        self.report: Report | None = None
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._close_when_done = False
        self.relay = CheckRelay(self)
        queued = Qt.ConnectionType.QueuedConnection
        self.relay.checkDone.connect(self._on_check, queued)
        self.relay.finished.connect(self._on_finished, queued)
        self.relay.failed.connect(self._on_failed, queued)

        layout = QVBoxLayout(self)
        intro = QLabel(
            "Runs Okta's tests (its SPEC suite, the user lifecycle, group push, entitlements) "
            "against a SCIM server and says what Okta does with each wrong answer. The checks "
            "create users and groups named "
            # Non-breaking hyphens: Qt's labels wrap at "-" even inside nowrap.
            "<code>scim&#8209;desktop&#8209;check&#8209;…</code> and delete them at "
            "the end."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(self._build_form())

        run_row = QHBoxLayout()
        self.run_button = QPushButton("Run checks")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        run_row.addWidget(self.run_button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        run_row.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setFormat("%v of %m checks")
        self._reset_progress()
        run_row.addWidget(self.progress, 1)
        layout.addLayout(run_row)
        self.message = QLabel()  # the run's state, or why it could not run
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        layout.addWidget(self.message)

        split = QSplitter(Qt.Orientation.Horizontal)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        head.setStretchLastSection(True)
        self.table.setColumnWidth(2, 320)
        self.table.itemSelectionChanged.connect(self._show_selected)
        split.addWidget(self.table)
        self.detail = QTextBrowser()
        self.detail.setOpenLinks(False)
        self.detail.document().setDefaultStyleSheet(
            # pre-wrap: a long URL or body wraps instead of scrolling sideways.
            "pre { font-family: monospace; font-size: small; white-space: pre-wrap; }"
            " h4 { margin-bottom: 2px; }"
        )
        self.detail.setPlaceholderText("Click a check to see its requests and answers.")
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([680, 540])
        layout.addWidget(split, 1)

        bottom = QHBoxLayout()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bottom.addWidget(self.summary, 1)
        self.export_buttons: dict[str, QPushButton] = {}
        for fmt, label in (("json", "JSON…"), ("junit", "JUnit…"), ("html", "HTML…")):
            button = QPushButton(f"Export {label}")
            button.setEnabled(False)
            button.clicked.connect(lambda _=False, f=fmt: self._ask_export(f))
            bottom.addWidget(button)
            self.export_buttons[fmt] = button
        close = QPushButton("Close")
        close.setAutoDefault(False)
        close.clicked.connect(self.close)
        bottom.addWidget(close)
        layout.addLayout(bottom)

        if parent is not None:
            # The window closing mid-run (it stops the server) cancels the run.
            parent.installEventFilter(self)
        if controller is not None:
            controller.stateChanged.connect(self._update_own_buttons)
        self._update_own_buttons()

    # --- the form --------------------------------------------------------------------------------
    def _build_form(self) -> QWidget:
        box = QGroupBox("Server")
        form = QFormLayout(box)
        url_row = QHBoxLayout()
        self.url = QLineEdit()
        self.url.setPlaceholderText("https://app.example.com/scim/v2")
        url_row.addWidget(self.url, 1)
        self.own_button = QPushButton("This app's server")
        self.own_button.setToolTip("Fill in this window's own server and its credential")
        self.own_button.clicked.connect(self.fill_own_server)
        url_row.addWidget(self.own_button)
        self.upstream_button = QPushButton("Check my upstream")
        self.upstream_button.setToolTip(
            "Proxy mode: fill in the upstream server and the credential the proxy sends it"
        )
        self.upstream_button.clicked.connect(self.fill_upstream)
        url_row.addWidget(self.upstream_button)
        form.addRow("SCIM base URL", url_row)

        cred_row = QHBoxLayout()
        self.credential = QComboBox()
        self.credential.addItems(_CREDENTIAL_LABELS)
        cred_row.addWidget(self.credential)
        self.cred_pages = QStackedWidget()
        self.cred_pages.addWidget(QLabel("Requests are sent without a credential."))
        self.token = self._secret_field("The bearer token")
        self.cred_pages.addWidget(self.token)
        basic = QWidget()
        basic_row = QHBoxLayout(basic)
        basic_row.setContentsMargins(0, 0, 0, 0)
        self.basic_user = QLineEdit()
        self.basic_user.setPlaceholderText("User name")
        self.basic_password = self._secret_field("Password")
        basic_row.addWidget(self.basic_user)
        basic_row.addWidget(self.basic_password)
        self.cred_pages.addWidget(basic)
        header = QWidget()
        header_row = QHBoxLayout(header)
        header_row.setContentsMargins(0, 0, 0, 0)
        self.header_name = QLineEdit()
        self.header_name.setPlaceholderText("Header name, e.g. X-API-Key")
        self.header_value = self._secret_field("Value")
        header_row.addWidget(self.header_name)
        header_row.addWidget(self.header_value, 2)
        self.cred_pages.addWidget(header)
        self.credential.currentIndexChanged.connect(self.cred_pages.setCurrentIndex)
        self.credential.currentIndexChanged.connect(lambda i: self.show_secrets.setVisible(i > 0))
        cred_row.addWidget(self.cred_pages, 1)
        self.show_secrets = QCheckBox("Show")
        self.show_secrets.toggled.connect(self._set_secrets_shown)
        self.show_secrets.hide()  # "None" has no secret
        cred_row.addWidget(self.show_secrets)
        form.addRow("Credential", cred_row)

        suites_row = QHBoxLayout()
        self.suite_boxes: dict[str, QCheckBox] = {}
        for suite in SUITES:
            box_ = QCheckBox(suite)
            box_.setChecked(True)
            box_.setToolTip(_SUITE_TIPS[suite])
            box_.toggled.connect(self._reset_progress)
            suites_row.addWidget(box_)
            self.suite_boxes[suite] = box_
        suites_row.addStretch(1)
        self.keep = QCheckBox("Keep what the checks create")
        self.keep.setToolTip("Leave the scim-desktop-check-… users and groups on the server")
        suites_row.addWidget(self.keep)
        form.addRow("Suites", suites_row)

        insecure_row = QHBoxLayout()
        self.insecure = QCheckBox("Don't verify the certificate")
        self.insecure.setToolTip("https only: accept any certificate (a self-signed one)")
        insecure_row.addWidget(self.insecure)
        self.insecure_warning = QLabel(
            "⚠ Anyone between you and the server could read the credential: use this only "
            "for a server you run yourself."
        )
        self.insecure_warning.setStyleSheet(f"color: {theme.status_color(400).name()};")
        self.insecure_warning.setWordWrap(True)
        self.insecure_warning.hide()
        self.insecure.toggled.connect(self.insecure_warning.setVisible)
        insecure_row.addWidget(self.insecure_warning, 1)
        form.addRow("TLS", insecure_row)
        return box

    def _reset_progress(self, *_: object) -> None:
        """Between runs the bar shows how many checks the chosen suites hold."""
        if self.running:
            return
        expected = sum(EXPECTED_CHECKS[s] for s, box in self.suite_boxes.items() if box.isChecked())
        self.progress.setRange(0, max(1, expected))
        self.progress.setValue(0)

    def _secret_field(self, placeholder: str) -> QLineEdit:
        field = QLineEdit()
        field.setPlaceholderText(placeholder)
        field.setEchoMode(QLineEdit.EchoMode.Password)
        return field

    def _set_secrets_shown(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        for field in (self.token, self.basic_password, self.header_value):
            field.setEchoMode(mode)

    def set_credential(self, kind: str) -> None:
        self.credential.setCurrentIndex(CREDENTIALS.index(kind))

    def _update_own_buttons(self, *_: object) -> None:
        server = self.controller.server if self.controller is not None else None
        self.own_button.setEnabled(server is not None and not self.running)
        config = server.config if server is not None else None
        self.upstream_button.setVisible(config is not None and config.upstream is not None)
        self.upstream_button.setEnabled(not self.running)

    def fill_own_server(self) -> bool:
        """This window's server and the credential it asks for, in one click."""
        server = self.controller.server if self.controller is not None else None
        if server is None or not server.running:
            self.say("This app's server is not running: start it first.", error=True)
            return False
        auth = server.config.auth
        self.url.setText(server.base_url)
        self.token.clear()
        self.basic_user.clear()
        self.basic_password.clear()
        self.header_name.clear()
        self.header_value.clear()
        note = ""
        if auth.mode == "bearer":
            self.set_credential("bearer")
            self.token.setText(auth.token)
        elif auth.mode == "basic":
            self.set_credential("basic")
            self.basic_user.setText(auth.username)
            self.basic_password.setText(auth.password)
        elif auth.mode == "oauth":
            # Its access tokens are issued to Okta through the browser sign-in; none to reuse.
            self.set_credential("bearer")
            note = "This server uses OAuth 2.0: paste an access token it issued."
        else:
            self.set_credential("none")
            if server.proxy_mode:
                note = "A transparent proxy: the upstream decides; give its credential."
        # Our own https certificate is usually the self-signed one the window generated.
        self.insecure.setChecked(server.config.tls is not None)
        if note:
            self.say(note)
        else:
            self.message.hide()
        return True

    def fill_upstream(self) -> bool:
        """Proxy mode: the upstream itself, with the credential the proxy sends it."""
        server = self.controller.server if self.controller is not None else None
        upstream = server.config.upstream if server is not None else None
        if upstream is None:
            self.say("This app is not in proxy mode: there is no upstream.", error=True)
            return False
        self.url.setText(upstream.url)
        self.token.clear()
        self.basic_password.clear()
        self.header_value.clear()
        if upstream.token is not None:
            self.set_credential("bearer")
            self.token.setText(upstream.token)
        elif upstream.basic is not None:
            self.set_credential("basic")
            self.basic_user.setText(upstream.basic[0])
            self.basic_password.setText(upstream.basic[1])
        elif upstream.header is not None:
            self.set_credential("header")
            self.header_name.setText(upstream.header[0])
            self.header_value.setText(upstream.header[1])
        else:
            self.set_credential("none")
        self.insecure.setChecked(upstream.insecure)
        self.message.hide()
        return True

    def options(self) -> CheckOptions:
        """What the form asks for (validated by ``make_options``, as the command line is);
        ValueError with a sentence in the form's words when something is wrong."""
        kind = CREDENTIALS[self.credential.currentIndex()]
        try:
            return make_options(
                self.url.text(),
                token=self.token.text().strip() if kind == "bearer" else None,
                basic=(self.basic_user.text(), self.basic_password.text())
                if kind == "basic"
                else None,
                header=[(self.header_name.text(), self.header_value.text())]
                if kind == "header"
                else (),
                suites=[s for s in SUITES if self.suite_boxes[s].isChecked()],
                insecure=self.insecure.isChecked(),
                keep=self.keep.isChecked(),
            )
        except OptionsError as exc:
            raise ValueError(FORM_PROBLEMS.get(exc.option, str(exc))) from None

    # --- running -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None

    def say(self, text: str, *, error: bool = False) -> None:
        colour = theme.status_color(500).name() if error else theme.muted_color().name()
        self.message.setStyleSheet(f"color: {colour};" + (" font-weight: 600;" if error else ""))
        self.message.setText(text)
        self.message.show()

    def start(self) -> bool:
        """Run the checks on a worker thread (False: the form is not complete, or running)."""
        if self.running:
            return False
        try:
            options = self.options()
        except ValueError as exc:
            self.say(str(exc), error=True)
            return False
        self.table.setRowCount(0)
        self.detail.clear()
        self.report = None
        self._reset_progress()
        self.summary.setText("")
        self._cancel = threading.Event()
        relay = self.relay
        runner = Runner(
            options, on_check=lambda check: _emit(relay.checkDone, check), cancel=self._cancel
        )
        self._thread = threading.Thread(
            target=_work, args=(runner, self.relay), name="scim-check", daemon=True
        )
        self._set_running(True)
        self.say(f"Checking {options.url}…")
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Stop at the next request; the runner removes what it created, then reports."""
        if not self.running:
            return
        self._cancel.set()
        self.cancel_button.setEnabled(False)
        self.say("Cancelling: cleaning up what the checks created…")

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in (self.url, self.credential, self.cred_pages, *self.suite_boxes.values()):
            widget.setEnabled(not running)
        for widget in (self.insecure, self.keep):
            widget.setEnabled(not running)
        for button in self.export_buttons.values():
            button.setEnabled(not running and self.report is not None)
        self._update_own_buttons()

    def _on_check(self, check: Check) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        status = QTableWidgetItem(_LABEL[check.status])
        status.setForeground(status_colour(check.status))
        bold = QFont(status.font())
        bold.setBold(True)
        status.setFont(bold)
        status.setData(Qt.ItemDataRole.UserRole, check)
        detail = " ".join(check.detail.split())
        items = [status, QTableWidgetItem(check.suite), QTableWidgetItem(check.name)]
        items.append(QTableWidgetItem(detail))
        for column, item in enumerate(items):
            item.setToolTip(check.detail if column == 3 else check.name)
            self.table.setItem(row, column, item)
        done = self.table.rowCount()
        # Entitlements add two checks per further endpoint: the bar never runs backwards.
        if done > self.progress.maximum():
            self.progress.setMaximum(done)
        self.progress.setValue(done)
        if not self.table.selectionModel().hasSelection():
            self.table.scrollToBottom()

    def _on_finished(self, report: Report) -> None:
        self._end(report)
        if report.interrupted:
            # What cleanup did (or could not do) is in the summary's cleanup lines.
            self.say("Cancelled: the checks left were not run.")
        elif report.refused:
            # The one failure says it too, but the form is where the fix is typed.
            self.say(
                f"The server refused the credential ({report.refused}): check the Credential"
                " fields above, then run the checks again.",
                error=True,
            )
        else:
            self.message.hide()
        # A whole run reaches the end of the bar (a server without Okta's entitlement types
        # answers that suite with one SKIP instead of six checks).
        if not report.interrupted:
            self.progress.setMaximum(max(1, len(report.checks)))
            self.progress.setValue(max(1, len(report.checks)))
        first_fail = next((i for i, c in enumerate(report.checks) if c.status == "fail"), None)
        if first_fail is not None and not self.table.selectionModel().hasSelection():
            self.table.selectRow(first_fail)
            # Centred: the checks around it (what passed before it) stay in view.
            self.table.scrollTo(
                self.table.model().index(first_fail, 0),
                QAbstractItemView.ScrollHint.PositionAtCenter,
            )

    def _on_failed(self, message: str, report: Report) -> None:
        self._end(report if report.checks else None)
        self.say(message, error=True)

    def _end(self, report: Report | None) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)  # it has returned (this is its last word); joined for tidiness
        self.report = report
        if report is not None:
            colour = status_colour("fail" if report.failed else "pass").name()
            lines = [
                f"<b style='color:{colour}'>{html.escape(report.summary())}</b>"
                f" in {report.duration_s:.1f} s"
            ]
            lines += [html.escape(line) for line in cleanup_lines(report)]
            self.summary.setText("<br>".join(lines))
        self._set_running(False)
        if self._close_when_done:
            self._close_when_done = False
            self.close()

    # --- results ---------------------------------------------------------------------------------
    def check_at(self, row: int) -> Check | None:
        item = self.table.item(row, 0)
        value = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return value if isinstance(value, Check) else None

    def _show_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        check = self.check_at(rows[0].row()) if rows else None
        if check is None:
            self.detail.clear()
            return
        self.detail.setHtml(check_html(check))

    def _ask_export(self, fmt: str) -> None:
        if self.report is None:
            return
        suffix, pattern = _FORMATS[fmt]
        start = str(Path.home() / f"scim-check.{suffix}")
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the check report", start, f"{pattern};;All files (*)"
        )
        if path:
            self.export_to(Path(path), fmt)

    def export_to(self, path: Path, fmt: str) -> bool:
        """Write the last run's report (``check.report`` renders it); says how it went."""
        if self.report is None:
            return False
        if fmt == "json":
            data = to_json_bytes(self.report)
        elif fmt == "junit":
            data = to_junit(self.report)
        else:
            data = to_html(self.report).encode("utf-8")
        try:
            path.write_bytes(data)
        except OSError as exc:
            self.say(f"Could not write {path}: {exc.strerror or exc}", error=True)
            return False
        self.say(f"Wrote {path}")
        return True

    # --- closing ---------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing mid-run cancels and closes once the runner has cleaned up (on its thread:
        the window stays responsive meanwhile)."""
        if self.running:
            self._close_when_done = True
            self.cancel()
            self.say("Cleaning up… (the dialog closes when the checks' resources are removed)")
            event.ignore()
            return
        event.accept()

    def reject(self) -> None:
        # Esc: the same as closing (never leaves a run behind a hidden dialog).
        self.close()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Close and self.running:
            self._cancel.set()
        return False

    @classmethod
    def open_for(cls, window: QWidget, controller: ServerController | None) -> CheckDialog:
        """The window's one Check dialog (made on first use), shown and raised."""
        dialog = window.findChild(cls)
        if dialog is None:
            dialog = cls(controller, window)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog
