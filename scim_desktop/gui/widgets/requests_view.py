"""The live request log: filters, the table and the detail of the selected request.

The main window connects the event bridge to :meth:`RequestsView.add_events`
(``sink.batch.connect(view.add_events)``); everything else is self-contained. Each batch is
one model insertion, and nothing here does per-row work over the whole log per batch: the
count label reads two row counts, auto-scroll reads the scroll bar.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QItemSelection,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QFont, QFontMetrics, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from scim_desktop import __version__
from scim_desktop.gui import theme
from scim_desktop.gui.export import har_bytes, to_jsonl
from scim_desktop.gui.models.requests import (
    COL_DURATION,
    COL_FAULT,
    COL_METHOD,
    COL_PATH,
    COL_STATUS,
    COL_STEP,
    COL_TIME,
    COL_UPSTREAM,
    DEFAULT_ROW_CAP,
    METHODS,
    ProxiedRole,
    RecordRole,
    RequestFilterProxy,
    RequestLogModel,
)
from scim_desktop.gui.widgets.request_detail import RequestDetail
from scim_desktop.server.events import RequestRecord

__all__ = ["RequestsView"]

#: Status filter entries: shown text -> status class.
_STATUS_ITEMS = (("2xx", "2xx"), ("3xx", "3xx"), ("4xx", "4xx"), ("5xx", "5xx"))
_SEARCH_DELAY_MS = 180


class RequestsView(QWidget):
    """Toolbar, request table and detail pane (in a vertical splitter)."""

    #: A short message for the status bar ("Exported 1,234 requests to ...").
    message = Signal(str)
    #: (requests in the log, requests shown after filters), whenever either changes.
    countsChanged = Signal(int, int)
    #: An export finished: the file written (or failed: empty path and a message).
    exported = Signal(str)
    _export_done = Signal(str, str)

    def __init__(self, parent: QWidget | None = None, row_cap: int = DEFAULT_ROW_CAP) -> None:
        super().__init__(parent)
        self.model = RequestLogModel(self, row_cap=row_cap)
        self.proxy = RequestFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._exports: list[threading.Thread] = []

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(self._build_toolbar())

        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setChildrenCollapsible(False)
        self.table = self._build_table()
        self.splitter.addWidget(self.table)
        self.detail = RequestDetail(self.splitter)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([560, 380])
        layout.addWidget(self.splitter, 1)

        footer = QHBoxLayout()
        footer.setContentsMargins(4, 0, 4, 2)
        self.count_label = QLabel(self)
        self.count_label.setToolTip(
            f"The log keeps the newest {row_cap:,} requests; older ones are dropped."
        )
        self.paused_label = QLabel(self)
        self.paused_label.hide()
        footer.addWidget(self.count_label)
        footer.addStretch(1)
        footer.addWidget(self.paused_label)
        layout.addLayout(footer)

        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(0)
        self._count_timer.timeout.connect(self._update_counts)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(_SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._apply_search)

        self._connect()
        self._apply_colors()
        self._update_counts()

    # --- construction ----------------------------------------------------------------------------
    def _build_toolbar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(6)

        self.search_edit = QLineEdit(self)
        self.search_edit.setPlaceholderText("Search requests…")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setToolTip(
            "Search method, path and query, status, Okta step, fault and the request and "
            "response bodies (case-insensitive)"
        )
        self.search_edit.setMinimumWidth(200)
        bar.addWidget(self.search_edit, 1)

        self.method_combo = QComboBox(self)
        self.method_combo.addItem("All methods", None)
        for method in METHODS:
            self.method_combo.addItem(method, method)
        self.method_combo.setToolTip("Show one HTTP method only")
        bar.addWidget(self.method_combo)

        self.status_combo = QComboBox(self)
        self.status_combo.addItem("All statuses", None)
        for text, cls in _STATUS_ITEMS:
            self.status_combo.addItem(text, cls)
        self.status_combo.addItem("Dropped", "dropped")
        self.status_combo.setToolTip("Show one status class only (Dropped: connection closed)")
        bar.addWidget(self.status_combo)

        self.step_combo = QComboBox(self)
        self.step_combo.addItem("All Okta steps", None)
        self.step_combo.setToolTip("Show one Okta provisioning step only")
        self.step_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.step_combo.setMinimumContentsLength(16)
        bar.addWidget(self.step_combo)

        self.faults_button = QPushButton("⚡ Faults only", self)
        self.faults_button.setCheckable(True)
        self.faults_button.setToolTip("Show only requests a fault rule answered")
        bar.addWidget(self.faults_button)

        self.rejected_button = QPushButton("⚠ Okta would reject", self)
        self.rejected_button.setCheckable(True)
        self.rejected_button.setToolTip(
            "Proxy mode: show only your server's answers that Okta would not accept, and "
            "requests your server did not answer"
        )
        self.rejected_button.hide()  # shown with the Upstream column
        bar.addWidget(self.rejected_button)

        bar.addSpacing(8)
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Hold new requests back (they are shown on Resume)")
        bar.addWidget(self.pause_button)

        self.clear_button = QPushButton("Clear", self)
        self.clear_button.setToolTip("Remove every request from the log")
        bar.addWidget(self.clear_button)

        self.export_button = QPushButton("Export", self)
        self.export_menu = QMenu(self.export_button)
        self.export_jsonl_action = self.export_menu.addAction("JSON Lines…")
        self.export_har_action = self.export_menu.addAction("HAR 1.2…")
        self.export_button.setMenu(self.export_menu)
        self.export_button.setToolTip(
            "Save the requests shown (after filters) as JSON Lines or HAR 1.2; secrets stay "
            "redacted"
        )
        bar.addWidget(self.export_button)

        self.curl_button = QPushButton("Copy as curl", self)
        self.curl_button.setToolTip("Copy the selected request as a curl command")
        self.curl_button.setEnabled(False)
        bar.addWidget(self.curl_button)
        return bar

    def _build_table(self) -> QTableView:
        table = QTableView(self)
        table.setModel(self.proxy)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        table.setSortingEnabled(False)  # log order: newest last
        table.setWordWrap(False)
        table.setCornerButtonEnabled(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        vertical = table.verticalHeader()
        vertical.hide()
        # Fixed, uniform row heights: the view never measures rows (fast at 10,000 rows).
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_PATH, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_FAULT, QHeaderView.ResizeMode.Fixed)
        header.setMinimumSectionSize(36)
        table.setColumnHidden(COL_UPSTREAM, True)  # shown in proxy mode (set_proxy_mode)
        self._size_columns(table)
        return table

    def _size_columns(self, table: QTableView) -> None:
        metrics = table.fontMetrics()
        pad = 22
        vertical = table.verticalHeader()
        row_height = max(metrics.height(), QFontMetrics(self.model.mono_font).height()) + 8
        vertical.setMinimumSectionSize(row_height)
        vertical.setDefaultSectionSize(row_height)
        widths = {
            COL_TIME: metrics.horizontalAdvance("00:00:00.000") + pad,
            COL_METHOD: metrics.horizontalAdvance("DELETE") + pad,
            COL_STATUS: metrics.horizontalAdvance("dropped") + pad,
            COL_UPSTREAM: metrics.horizontalAdvance("unreachable ⚠") + pad,
            COL_DURATION: metrics.horizontalAdvance("99,999.9 ms") + pad,
            COL_STEP: metrics.horizontalAdvance(
                "Create user: existence check for jane.doe@example.com"
            )
            + pad,
            COL_FAULT: max(metrics.horizontalAdvance("Fault") + pad, 48),
        }
        for column, width in widths.items():
            table.setColumnWidth(column, width)

    def _connect(self) -> None:
        self.search_edit.textChanged.connect(lambda _text: self._search_timer.start())
        self.search_edit.returnPressed.connect(self._apply_search)
        self.method_combo.currentIndexChanged.connect(self._apply_method)
        self.status_combo.currentIndexChanged.connect(self._apply_status)
        self.step_combo.currentIndexChanged.connect(self._apply_step)
        self.faults_button.toggled.connect(self.proxy.set_faults_only)
        self.rejected_button.toggled.connect(self.proxy.set_rejected_only)
        self.pause_button.toggled.connect(self._set_paused)
        self.clear_button.clicked.connect(self.clear)
        self.export_jsonl_action.triggered.connect(lambda: self._ask_export("jsonl"))
        self.export_har_action.triggered.connect(lambda: self._ask_export("har"))
        self.curl_button.clicked.connect(self.detail.copy_curl)
        self.detail.message.connect(self.message)
        self._export_done.connect(self._on_export_done)

        self.model.stepsSeen.connect(self._add_steps)
        self.model.pauseChanged.connect(lambda *_: self._schedule_counts())
        for signal in (
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.modelReset,
            self.proxy.layoutChanged,
        ):
            signal.connect(self._schedule_counts)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)

        find = QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.activated.connect(self.focus_search)

    # --- feeding ---------------------------------------------------------------------------------
    def add_events(self, events: Iterable[Any]) -> None:
        """Take a batch from the event bridge (``QtEventSink.batch``); other events are
        ignored. Keeps following the newest row while the table is scrolled to the bottom."""
        records = [e for e in events if isinstance(e, RequestRecord)]
        if not records:
            return
        model = self.model
        if model.paused:
            model.add_records(records)
            return
        follow = self._at_bottom()
        will_trim = model.rowCount() + len(records) > model.row_cap
        anchor = None if follow or not will_trim else self._top_serial()
        model.add_records(records)
        if model.has_upstream:
            self._show_upstream_column()
        if follow:
            self.table.scrollToBottom()
        elif anchor is not None:
            self._restore_top(anchor)

    def _at_bottom(self) -> bool:
        bar = self.table.verticalScrollBar()
        return bar.value() >= bar.maximum() - 1

    def _top_serial(self) -> int | None:
        index = self.table.indexAt(QPoint(1, 1))
        if not index.isValid():
            return None
        return self.model.serial(self.proxy.mapToSource(index).row())

    def _restore_top(self, serial: int) -> None:
        """Rows dropped above the user's reading position: keep the same row at the top."""
        row = self.model.row_of_serial(serial)
        if row is None:
            return
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if index.isValid():
            self.table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtTop)

    # --- commands --------------------------------------------------------------------------------
    def clear(self) -> None:
        """Empty the log and the detail pane."""
        self.model.clear()
        self._show_upstream_column()
        self.detail.clear()
        self.curl_button.setEnabled(False)
        self.message.emit("Cleared the request log")

    def set_proxy_mode(self, on: bool) -> None:
        """Requests from now on come through the proxy (or from the mock): the Upstream
        column shows while in proxy mode or while rows from a proxy are in the log."""
        self.model.proxy_mode = on
        self._show_upstream_column()

    def _show_upstream_column(self) -> None:
        wanted = self.model.proxy_mode or self.model.has_upstream
        if self.table.isColumnHidden(COL_UPSTREAM) == wanted:
            self.table.setColumnHidden(COL_UPSTREAM, not wanted)
            self.rejected_button.setVisible(wanted)
            if not wanted:
                self.rejected_button.setChecked(False)

    def set_row_cap(self, cap: int) -> None:
        self.model.set_row_cap(cap)
        self.count_label.setToolTip(
            f"The log keeps the newest {cap:,} requests; older ones are dropped."
        )

    def set_paused(self, paused: bool) -> None:
        self.pause_button.setChecked(paused)

    def _set_paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        if paused:
            self.model.pause()
        else:
            follow = self._at_bottom()
            self.model.resume()
            if follow:
                self.table.scrollToBottom()

    def focus_search(self) -> None:
        self.search_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_edit.selectAll()

    def select_row(self, row: int) -> None:
        """Select a row of the (filtered) table and show its detail."""
        index = self.proxy.index(row, 0)
        if index.isValid():
            self.table.selectRow(row)
            self.table.scrollTo(index)

    def shown_records(self) -> list[RequestRecord]:
        """The records the table shows (after filters), oldest first."""
        if not self.proxy.is_filtering():
            return self.model.records()
        proxy = self.proxy
        return [proxy.data(proxy.index(row, 0), RecordRole) for row in range(proxy.rowCount())]

    # --- filters ---------------------------------------------------------------------------------
    def _apply_search(self) -> None:
        self._search_timer.stop()
        self.proxy.set_text(self.search_edit.text())

    def _apply_method(self) -> None:
        method = self.method_combo.currentData()
        self.proxy.set_methods(None if method is None else {method})

    def _apply_status(self) -> None:
        cls = self.status_combo.currentData()
        self.proxy.set_status_classes(None if cls is None else {cls})

    def _apply_step(self) -> None:
        self.proxy.set_step(self.step_combo.currentData())

    def _add_steps(self, steps: list[tuple[str, str]]) -> None:
        """New step ids appear in the step filter, kept sorted by title."""
        combo = self.step_combo
        for step_id, title in steps:
            if combo.findData(step_id) >= 0:
                continue
            position = 1
            while position < combo.count() and combo.itemText(position).lower() < title.lower():
                position += 1
            combo.insertItem(position, title, step_id)

    # --- selection and detail --------------------------------------------------------------------
    def _on_selection(self, selected: QItemSelection, deselected: QItemSelection) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            # The row went (trimmed or filtered out): keep showing what the user was reading.
            return
        record = self.proxy.data(rows[0], RecordRole)
        if isinstance(record, RequestRecord):
            self.detail.show_record(record, proxied=bool(self.proxy.data(rows[0], ProxiedRole)))
            self.curl_button.setEnabled(True)
            # A taller detail (a reject banner, a long explanation) shrinks the table once
            # laid out: keep the selected row in view then.
            row = QPersistentModelIndex(rows[0])
            QTimer.singleShot(0, lambda: row.isValid() and self.table.scrollTo(QModelIndex(row)))

    # --- counts ----------------------------------------------------------------------------------
    def _schedule_counts(self, *args: Any) -> None:
        if not self._count_timer.isActive():
            self._count_timer.start()

    def _update_counts(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        noun = "request" if total == 1 else "requests"
        text = f"{total:,} {noun}"
        if self.proxy.is_filtering():
            text += f", {shown:,} shown"
        self.count_label.setText(text)
        if self.model.paused:
            waiting = self.model.pending_count
            self.paused_label.setText(
                f"Paused: {waiting:,} new request{'s' if waiting != 1 else ''} waiting"
            )
            self.paused_label.show()
        else:
            self.paused_label.hide()
        self.countsChanged.emit(total, shown)

    # --- export ----------------------------------------------------------------------------------
    def _ask_export(self, fmt: str) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        if fmt == "har":
            title, name, pattern = "Export as HAR 1.2", f"scim-requests-{stamp}.har", "HAR (*.har)"
        else:
            title, name = "Export as JSON Lines", f"scim-requests-{stamp}.jsonl"
            pattern = "JSON Lines (*.jsonl)"
        start = str(Path.home() / name)
        path, _ = QFileDialog.getSaveFileName(self, title, start, f"{pattern};;All files (*)")
        if path:
            self.export_to(Path(path), fmt)

    def export_to(self, path: Path, fmt: str) -> threading.Thread:
        """Write the shown requests to ``path`` as "jsonl" or "har" on a worker thread;
        ``exported`` and ``message`` follow on the GUI thread."""
        if fmt not in ("jsonl", "har"):
            raise ValueError(f"unknown export format {fmt!r}")
        records = self.shown_records()  # immutable records: safe to hand to the worker

        def work() -> None:
            try:
                if fmt == "har":
                    data = har_bytes(records, __version__)  # never refused by orjson
                else:
                    data = to_jsonl(records).encode("utf-8")
                tmp = path.with_name(path.name + ".part")
                tmp.write_bytes(data)
                tmp.replace(path)
            except OSError as exc:
                self._export_done.emit("", f"Could not export to {path}: {exc.strerror or exc}")
                return
            noun = "request" if len(records) == 1 else "requests"
            self._export_done.emit(str(path), f"Exported {len(records):,} {noun} to {path}")

        thread = threading.Thread(target=work, name="scim-export", daemon=True)
        self._exports = [t for t in self._exports if t.is_alive()] + [thread]
        thread.start()
        return thread

    def _on_export_done(self, path: str, message: str) -> None:
        self.message.emit(message)
        self.exported.emit(path)

    # --- look ------------------------------------------------------------------------------------
    def set_mono_font(self, font: QFont) -> None:
        """Presentation mode: the monospaced font of paths, headers and bodies."""
        self.model.set_mono_font(font)
        self.detail.set_mono_font(font)
        self._size_columns(self.table)

    def _apply_colors(self) -> None:
        muted = theme.muted_color().name()
        self.count_label.setStyleSheet(f"color: {muted}")
        self.paused_label.setStyleSheet(
            f"color: {theme.status_color(429).name()}; font-weight: 600"
        )

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_colors()
            self.model.refresh_theme()
        elif event.type() == QEvent.Type.FontChange:
            self._size_columns(self.table)

    def current_record(self) -> RequestRecord | None:
        index: QModelIndex = self.table.currentIndex()
        record = self.proxy.data(index, RecordRole) if index.isValid() else None
        return record if isinstance(record, RequestRecord) else None
