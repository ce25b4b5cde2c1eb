"""The Coverage tab: Okta's OIN test plan and its other lifecycle steps, ticked off live.

The checklist (``gui/models/coverage.CoverageModel`` over ``core/coverage.Coverage``) is fed
the same event batches as the request log, so ticks appear as Okta works. The table shows
each item's status (covered, failed with the reason, not seen, manual); the pane beside it
the selected item's proof, what Okta needs, what failed with what Okta does about it and the
fix, and its evidence requests (double-click one to open it in the Requests tab). Manual
items are ticked by hand, for this window's session (ticks are not saved: the checklist is
about the traffic this window saw, and a report must not carry an old session's ticks).
Reset forgets both; Export writes the HTML or Markdown report (core/coverage_report.py).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, QModelIndex, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.core.coverage import Evidence, ItemState
from scim_desktop.core.coverage_report import report_html, report_markdown
from scim_desktop.gui import theme
from scim_desktop.gui.models.coverage import (
    COUNT_COL,
    ITEM_COL,
    STATUS_COL,
    STATUS_TEXT,
    CoverageModel,
    status_color,
    status_key,
)
from scim_desktop.gui.models.requests import format_local_time

log = logging.getLogger("scim_desktop.gui")

SESSION_NOTE = (
    "Covers the requests this window has seen since it opened (or since Reset); requests "
    "stored in the data file before are not counted. Manual items are ticked by hand."
)
EMPTY_DETAIL = "Select a step to see what proves it and its evidence requests."
#: Evidence table columns.
EV_HEADERS = ("Time", "Request", "Status", "Verdict")
VERDICT_COL = 3


class CoverageView(QWidget):
    """Summary, checklist table and the selected item's evidence."""

    #: The user asked to see a request (double-click on evidence): the Requests tab shows it.
    requestShown = Signal()
    #: A short message for the status bar.
    message = Signal(str)

    def __init__(self, requests: Any = None, parent: QWidget | None = None) -> None:
        """``requests``: the window's RequestsView, where evidence requests are shown."""
        super().__init__(parent)
        self.requests = requests
        self.model = CoverageModel(self)
        self._shown: ItemState | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 4)
        layout.setSpacing(6)

        top = QHBoxLayout()
        self.summary_label = QLabel(self)
        font = QFont(self.summary_label.font())
        font.setPointSizeF(max(font.pointSizeF(), 9.0) * 1.25)
        font.setBold(True)
        self.summary_label.setFont(font)
        top.addWidget(self.summary_label)
        top.addStretch(1)
        self.reset_button = QPushButton("Reset", self)
        self.reset_button.setToolTip("Forget every request and tick, and start the checklist over")
        self.html_button = QPushButton("Export HTML…", self)
        self.html_button.setToolTip("A report with the evidence, to print or hand over")
        self.md_button = QPushButton("Export Markdown…", self)
        for button in (self.reset_button, self.html_button, self.md_button):
            top.addWidget(button)
        layout.addLayout(top)

        self.progress = QProgressBar(self)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(8)
        layout.addWidget(self.progress)
        self.note = QLabel(SESSION_NOTE, self)
        self.note.setWordWrap(True)
        layout.addWidget(self.note)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setChildrenCollapsible(False)
        self.table = self._build_table()
        splitter.addWidget(self.table)
        splitter.addWidget(self._build_detail())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([820, 560])
        layout.addWidget(splitter, 1)
        self.splitter = splitter

        self.reset_button.clicked.connect(self.confirm_reset)
        self.html_button.clicked.connect(lambda: self._ask_export("html"))
        self.md_button.clicked.connect(lambda: self._ask_export("md"))
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.model.dataChanged.connect(self._on_changed)
        self.model.modelReset.connect(self._on_reset)
        self._apply_colors()
        self._update_summary()
        self._show_item(None)

    # --- construction -----------------------------------------------------------------------------
    def _build_table(self) -> QTableView:
        table = QTableView(self)
        table.setModel(self.model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().hide()
        table.setShowGrid(False)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(STATUS_COL, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(ITEM_COL, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COUNT_COL, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        table.setColumnWidth(ITEM_COL, 330)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 10)
        return table

    def _build_detail(self) -> QWidget:
        pane = QFrame(self)
        pane.setFrameShape(QFrame.Shape.StyledPanel)
        box = QVBoxLayout(pane)
        box.setContentsMargins(10, 8, 10, 8)
        box.setSpacing(6)
        self.title_label = QLabel(pane)
        font = QFont(self.title_label.font())
        font.setBold(True)
        font.setPointSizeF(max(font.pointSizeF(), 9.0) * 1.15)
        self.title_label.setFont(font)
        self.title_label.setWordWrap(True)
        self.status_label = QLabel(pane)
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.about_label = QLabel(pane)
        self.about_label.setWordWrap(True)
        self.about_label.setTextFormat(Qt.TextFormat.RichText)
        self.tick_box = QCheckBox("I checked this in Okta (ticked by hand)", pane)
        self.tick_box.toggled.connect(self._on_tick_box)
        self.failure_label = QLabel(pane)
        self.failure_label.setWordWrap(True)
        self.failure_label.setTextFormat(Qt.TextFormat.RichText)
        self.failure_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.evidence_label = QLabel(pane)
        self.evidence = QTableWidget(0, len(EV_HEADERS), pane)
        self.evidence.setHorizontalHeaderLabels(EV_HEADERS)
        self.evidence.verticalHeader().hide()
        self.evidence.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.evidence.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.evidence.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.evidence.setShowGrid(False)
        self.evidence.setWordWrap(False)
        self.evidence.setToolTip("Double-click a request to open it in the Requests tab")
        self.evidence.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.evidence.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        ev_header = self.evidence.horizontalHeader()
        ev_header.setHighlightSections(False)
        # The request gets what is left; a long verdict is cut (its tooltip has it all).
        fixed = QHeaderView.ResizeMode.ResizeToContents
        modes = (fixed, QHeaderView.ResizeMode.Stretch, fixed, QHeaderView.ResizeMode.Interactive)
        for col, mode in enumerate(modes):
            ev_header.setSectionResizeMode(col, mode)
        ev_header.setStretchLastSection(False)
        self.evidence.setColumnWidth(VERDICT_COL, 200)
        self.evidence.cellDoubleClicked.connect(self._on_evidence_activated)
        self.open_button = QPushButton("Show in Requests", pane)
        self.open_button.setToolTip("Open the selected evidence request in the Requests tab")
        self.open_button.clicked.connect(self._open_selected_evidence)
        self.evidence.itemSelectionChanged.connect(
            lambda: self.open_button.setEnabled(bool(self.evidence.selectedItems()))
        )
        for widget in (self.title_label, self.status_label, self.about_label, self.tick_box):
            box.addWidget(widget)
        box.addWidget(self.failure_label)
        row = QHBoxLayout()
        row.addWidget(self.evidence_label, 1)
        row.addWidget(self.open_button)
        box.addLayout(row)
        box.addWidget(self.evidence, 1)
        return pane

    # --- feeding ----------------------------------------------------------------------------------
    def apply_events(self, events: Iterable[Any]) -> None:
        """A batch of server events (the request log's, in arrival order)."""
        self.model.apply_events(events)

    def _on_changed(self, top: QModelIndex, bottom: QModelIndex, *args: Any) -> None:
        self._update_summary()
        current = self._current_row()
        if current is not None and top.row() <= current <= bottom.row():
            self._show_item(self.model.state(current))

    def _on_reset(self) -> None:
        self._update_summary()
        self._show_item(None)

    def tab_title(self) -> str:
        """ "Coverage 12/33", with "✘2" when items failed ("Coverage" before any traffic)."""
        states = self.model.states()
        covered = sum(1 for s in states if s.status == "covered")
        failed = sum(1 for s in states if s.status == "failed")
        if not covered and not failed:
            return "Coverage"
        return f"Coverage {covered}/{len(states)}" + (f" ✘{failed}" if failed else "")

    # --- summary ----------------------------------------------------------------------------------
    def _update_summary(self) -> None:
        states = self.model.states()
        done = sum(1 for s in states if s.status == "covered")
        self.summary_label.setText(self.model.summary())
        self.progress.setRange(0, len(states))
        self.progress.setValue(done)
        failed = any(s.status == "failed" for s in states)
        color = status_color("failed" if failed else "covered").name()
        self.progress.setStyleSheet(
            f"QProgressBar {{ border: none; border-radius: 4px; background: palette(mid); }}"
            f"QProgressBar::chunk {{ border-radius: 4px; background: {color}; }}"
        )

    # --- the selected item ------------------------------------------------------------------------
    def _current_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _on_selection(self, selected: QItemSelection, deselected: QItemSelection) -> None:
        row = self._current_row()
        self._show_item(None if row is None else self.model.state(row))

    def select_item(self, item_id: str) -> None:
        """Select an item's row (and show its evidence)."""
        row = self.model.row_of(item_id)
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))

    def _show_item(self, state: ItemState | None) -> None:
        self._shown = state
        widgets = (self.status_label, self.about_label, self.failure_label, self.evidence_label)
        if state is None:
            self.title_label.setText(EMPTY_DETAIL)
            for widget in widgets:
                widget.hide()
            self.tick_box.hide()
            self.evidence.hide()
            self.open_button.hide()
            return
        item = state.item
        key = status_key(state)
        self.title_label.setText(item.title)
        color = status_color(key).name()
        glyph, word = STATUS_TEXT[key]
        counted = f" · {state.count:,} request{'s' if state.count != 1 else ''}"
        self.status_label.setText(
            f'<span style="color:{color}; font-weight:600">{glyph} {word}</span>'
            + ("" if item.manual else counted)
        )
        self.about_label.setText(
            f"<b>Proved by:</b> {_h(item.proof)}<br><b>Okta needs:</b> {_h(item.okta_needs)}"
        )
        for widget in (self.status_label, self.about_label):
            widget.show()
        self.tick_box.setVisible(item.manual)
        if item.manual:
            self.tick_box.blockSignals(True)
            self.tick_box.setChecked(state.ticked)
            self.tick_box.blockSignals(False)
        failure = next((e for e in state.evidence if not e.ok), None)
        if failure is not None:
            parts = [f'<b style="color:{color}">What failed:</b> {_h(failure.reason)}']
            if failure.okta_effect:
                parts.append(f"<b>What Okta does:</b> {_h(failure.okta_effect)}")
            if failure.fix:
                parts.append(f"<b>Fix:</b> {_h(failure.fix)}")
            self.failure_label.setText("<br>".join(parts))
            self.failure_label.show()
        else:
            self.failure_label.hide()
        if item.manual:
            self.evidence_label.setText("Traffic cannot prove this step: tick it by hand.")
            self.evidence_label.show()
            self.evidence.hide()
            self.open_button.hide()
            return
        kept = len(state.evidence)
        if not kept:
            text = "No requests yet."
        elif state.count > kept:
            text = f"Evidence: the first {kept:,} of {state.count:,} requests (failures first)"
        else:
            text = "Evidence (failures first):"
        self.evidence_label.setText(text)
        self.evidence_label.show()
        self._fill_evidence(state.evidence)
        self.evidence.setVisible(bool(kept))
        self.open_button.setVisible(bool(kept) and self.requests is not None)
        self.open_button.setEnabled(bool(self.evidence.selectedItems()))

    def _fill_evidence(self, evidence: tuple[Evidence, ...]) -> None:
        table = self.evidence
        table.setUpdatesEnabled(False)
        try:
            table.setRowCount(len(evidence))
            for row, e in enumerate(evidence):
                cells = (
                    format_local_time(e.time) if e.time else "",
                    f"{e.method} {e.target}",
                    str(e.status or "—"),
                    "✔ ok" if e.ok else f"✘ {_cut(e.reason, 22)}",
                )
                for col, text in enumerate(cells):
                    cell = QTableWidgetItem(text)
                    cell.setData(Qt.ItemDataRole.UserRole, e.record_id)
                    if col == 1:
                        cell.setToolTip(f"{e.method} {e.target}\n{e.label}")
                    if col == 2:
                        cell.setForeground(theme.status_color(e.status))
                    if col == VERDICT_COL:
                        cell.setForeground(status_color("covered" if e.ok else "failed"))
                        if not e.ok:
                            cell.setToolTip(
                                "\n".join(x for x in (e.reason, e.okta_effect, e.fix) if x)
                            )
                    table.setItem(row, col, cell)
        finally:
            table.setUpdatesEnabled(True)

    def _on_tick_box(self, checked: bool) -> None:
        if self._shown is not None and self._shown.item.manual:
            self.model.tick(self._shown.item.id, checked)

    # --- jumping to a request ---------------------------------------------------------------------
    def _on_evidence_activated(self, row: int, column: int) -> None:
        cell = self.evidence.item(row, 0)
        if cell is not None:
            self.show_request(str(cell.data(Qt.ItemDataRole.UserRole)))

    def _open_selected_evidence(self) -> None:
        rows = self.evidence.selectionModel().selectedRows()
        if rows:
            self._on_evidence_activated(rows[0].row(), 0)

    def show_request(self, record_id: str) -> bool:
        """Select the request with that record id in the Requests tab (clearing nothing: a
        request hidden by its filters or dropped from the log is said so)."""
        requests = self.requests
        if requests is None:
            return False
        records = requests.model.records()
        # Newest first: evidence is usually recent, and ids only grow.
        source_row = next(
            (n for n in range(len(records) - 1, -1, -1) if str(records[n].id) == record_id),
            None,
        )
        if source_row is None:
            self.message.emit("That request is no longer in the log (it keeps the newest rows).")
            return False
        proxy_index = requests.proxy.mapFromSource(requests.model.index(source_row, 0))
        if not proxy_index.isValid():
            self.message.emit("That request is hidden by the Requests tab's filters.")
            return False
        requests.select_row(proxy_index.row())
        self.requestShown.emit()
        return True

    # --- reset and export -------------------------------------------------------------------------
    def confirm_reset(self) -> None:
        answer = QMessageBox.question(
            self,
            "Reset coverage",
            "Forget every request and tick, and start the checklist over? The request log "
            "is not cleared.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.reset()

    def reset(self) -> None:
        self.model.reset()

    def report(self, fmt: str) -> str:
        """The report as text: ``html`` or ``md``, stamped now."""
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        states = self.model.states()
        sources = ("live traffic seen by the SCIM Desktop window",)
        if fmt == "html":
            return report_html(states, generated, sources)
        return report_markdown(states, generated, sources)

    def _ask_export(self, fmt: str) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M")
        suffix, pattern = (
            ("html", "HTML pages (*.html *.htm)") if fmt == "html" else ("md", "Markdown (*.md)")
        )
        start = str(Path.home() / f"okta-coverage-{stamp}.{suffix}")
        path, _ = QFileDialog.getSaveFileName(
            self, "Export coverage report", start, f"{pattern};;All files (*)"
        )
        if path:
            self.export_to(Path(path), fmt)

    def export_to(self, path: Path, fmt: str) -> bool:
        """Write the report to ``path`` (small: written at once); says how it went."""
        try:
            path.write_text(self.report(fmt), encoding="utf-8")
        except OSError as exc:
            self.message.emit(f"Could not write {path}: {exc.strerror or exc}")
            return False
        self.message.emit(f"Exported the coverage report to {path}")
        return True

    # --- palette ----------------------------------------------------------------------------------
    def _apply_colors(self) -> None:
        muted = theme.muted_color().name()
        self.note.setStyleSheet(f"color: {muted};")
        self.evidence_label.setStyleSheet(f"color: {muted};")


def _cut(text: str, limit: int) -> str:
    """The start of a long text (the view elides in the middle, for request targets)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _h(text: str) -> str:
    return html.escape(text, quote=False)
