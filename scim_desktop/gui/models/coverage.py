"""The Coverage tab's model: the lifecycle checklist (``core/coverage.Coverage``) as a table,
fed the request records the log gets.

Each record whose Okta step bears on an item becomes an ``Exchange`` (with
``coverage_files.exchange_of``, the code that reads ``--log jsonl`` lines) and goes to the
checklist; only the rows of the items it touched are repainted. Records of other steps are
skipped before any conversion, so a burst of thousands costs a dictionary lookup each.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

from scim_desktop.core.coverage import Coverage, ItemState
from scim_desktop.core.coverage_report import STATUS_COLORS, summary
from scim_desktop.coverage_files import exchange_of
from scim_desktop.gui import theme
from scim_desktop.server.events import RequestRecord

_Index = QModelIndex | QPersistentModelIndex

STATUS_COL, ITEM_COL, COUNT_COL, NOTE_COL = range(4)
HEADERS = ("Status", "Lifecycle step", "Requests", "Okta needs / what failed")
#: The item's id, for any column.
ItemIdRole = Qt.ItemDataRole.UserRole + 1

#: Status -> (glyph, word) shown in the Status column (the colour is STATUS_COLORS').
STATUS_TEXT = {
    "covered": ("✔", "Covered"),
    "failed": ("✘", "Failed"),
    "not_seen": ("○", "Not seen"),
    "manual": ("☐", "Manual"),
    "ticked": ("☑", "Ticked"),
}
_DARK_COLORS = {
    "covered": "#4ade80",
    "failed": "#f87171",
    "not_seen": "#9aa0a6",
    "manual": "#fbbf24",
}


def status_key(state: ItemState) -> str:
    """``covered`` / ``failed`` / ``not_seen`` / ``manual``, or ``ticked`` for a manual item
    ticked by hand."""
    return "ticked" if state.item.manual and state.ticked else state.status


def status_color(key: str) -> QColor:
    """The colour of a status (the HTML report's, lighter on a dark palette)."""
    key = "covered" if key == "ticked" else key
    return QColor((_DARK_COLORS if theme.is_dark() else STATUS_COLORS)[key])


_ICONS: dict[tuple[str, bool], QIcon] = {}


def status_icon(key: str) -> QIcon:
    """A filled disc in the status colour with its glyph (cached per palette)."""
    dark = theme.is_dark()
    icon = _ICONS.get((key, dark))
    if icon is None:
        size = 32
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = status_color(key)
        if key == "not_seen":
            painter.setPen(color)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            pen = painter.pen()
            pen.setWidthF(3)
            painter.setPen(pen)
            painter.drawEllipse(4, 4, size - 8, size - 8)
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawEllipse(2, 2, size - 4, size - 4)
            font = QFont()
            font.setPixelSize(18)
            font.setBold(True)
            painter.setFont(font)
            painter.setPen(QColor("white"))
            glyph = {"covered": "✓", "ticked": "✓", "failed": "✕", "manual": "?"}[key]
            painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, glyph)
        painter.end()
        icon = QIcon(pixmap)
        _ICONS[(key, dark)] = icon
    return icon


#: Judging a request costs ~50 us (its answer parsed, Okta's expectations applied): a burst's
#: batch of 500 took ~25 ms on the GUI thread on top of the request log's own work. Requests are
#: queued and judged in turns of at most this long, with JUDGE_PAUSE_MS between turns (at most
#: a fifth of the GUI thread: ~7,000 requests a second, far above Okta's pace; in a burst the
#: ticks lag and catch up after), so the window keeps painting and the server thread keeps
#: Python's lock more of the time.
JUDGE_SLICE_S = 0.002
JUDGE_PAUSE_MS = 8
#: Rows changed by traffic are repainted at most this often, in one dataChanged for the span:
#: each dataChanged makes the view measure every row again (its columns fit their contents), so
#: one per item per batch cost more than the judging itself in a burst.
REPAINT_EVERY_MS = 100


class CoverageModel(QAbstractTableModel):
    """One row per checklist item, in checklist order."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.coverage = Coverage()
        self._row = {item.id: n for n, item in enumerate(self.coverage.items)}
        self._states: list[ItemState] = self.coverage.snapshot()
        self.records_seen = 0  # records that bore on some item since the last reset
        self._pending: deque[RequestRecord] = deque()  # wanted records not judged yet
        self._turn = QTimer(self)
        self._turn.setSingleShot(True)
        self._turn.setInterval(JUDGE_PAUSE_MS)  # painting and input come first
        self._turn.timeout.connect(self._judge_some)
        self._dirty: set[str] = set()  # items judged since the last repaint
        self._repaint = QTimer(self)
        self._repaint.setSingleShot(True)
        self._repaint.setInterval(REPAINT_EVERY_MS)
        self._repaint.timeout.connect(self._publish)

    # --- feeding ----------------------------------------------------------------------------------
    def apply_events(self, events: Iterable[Any]) -> None:
        """Take a batch of server events (the request log's, in arrival order). Requests that
        bear on some item are queued and judged in turns of ``JUDGE_SLICE_S`` on the GUI
        thread's event loop (:meth:`flush` judges them all at once)."""
        cov = self.coverage
        self._pending.extend(
            e for e in events if isinstance(e, RequestRecord) and cov.wants(e.okta_step)
        )
        if self._pending and not self._turn.isActive():
            self._turn.start()

    @property
    def pending(self) -> int:
        """Requests queued and not judged yet."""
        return len(self._pending)

    def flush(self) -> None:
        """Judge every queued request now, and show the result."""
        self._judge_some(deadline=None)
        self._publish()

    def _judge_some(self, deadline: float | None = -1.0) -> None:
        if deadline is not None and deadline < 0:
            deadline = time.perf_counter() + JUDGE_SLICE_S
        touched: set[str] = set()
        cov, pending = self.coverage, self._pending
        while pending:
            ids = cov.add(exchange_of(pending.popleft()))
            if ids:
                self.records_seen += 1
                touched.update(ids)
            if deadline is not None and time.perf_counter() >= deadline:
                break
        self._dirty |= touched
        if self._dirty and not self._repaint.isActive():
            self._repaint.start()
        if pending and not self._turn.isActive():
            self._turn.start()

    def tick(self, item_id: str, done: bool) -> None:
        """Tick (or untick) a manual item by hand."""
        self.coverage.tick(item_id, done)
        self._dirty.add(item_id)
        self._publish()  # the user's own click shows at once

    def reset(self) -> None:
        """Forget every request and tick."""
        self.beginResetModel()
        self._pending.clear()  # requests seen before Reset are not counted
        self._dirty.clear()
        self.coverage.reset()
        self._states = self.coverage.snapshot()
        self.records_seen = 0
        self.endResetModel()

    def _publish(self) -> None:
        """Show the items judged since the last repaint: one dataChanged for their span."""
        if not self._dirty:
            return
        rows = [self._row[item_id] for item_id in self._dirty]
        for item_id, row in zip(self._dirty, rows, strict=True):
            self._states[row] = self.coverage.state(item_id)
        self._dirty.clear()
        self.dataChanged.emit(self.index(min(rows), 0), self.index(max(rows), len(HEADERS) - 1))

    # --- reading ----------------------------------------------------------------------------------
    def states(self) -> list[ItemState]:
        return list(self._states)

    def state(self, row: int) -> ItemState:
        return self._states[row]

    def row_of(self, item_id: str) -> int:
        return self._row[item_id]

    def summary(self, sep: str = " · ") -> str:
        return summary(self._states, sep)

    # --- Qt ---------------------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._states)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if (
            index.isValid()
            and index.column() == STATUS_COL
            and self._states[index.row()].item.manual
        ):
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or not index.isValid():
            return False
        state = self._states[index.row()]
        if not state.item.manual:
            return False
        checked = value in (Qt.CheckState.Checked, Qt.CheckState.Checked.value, 2, True)
        self.tick(state.item.id, checked)
        return True

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        state = self._states[index.row()]
        col = index.column()
        key = status_key(state)
        if role == ItemIdRole:
            return state.item.id
        if role == Qt.ItemDataRole.DisplayRole:
            if col == STATUS_COL:
                return STATUS_TEXT[key][1]
            if col == ITEM_COL:
                return state.item.title
            if col == COUNT_COL:
                return f"{state.count:,}" if state.count else ("—" if state.item.manual else "0")
            if col == NOTE_COL:
                return state.reason or state.item.okta_needs
        if role == Qt.ItemDataRole.DecorationRole and col == STATUS_COL:
            return status_icon(key)
        if role == Qt.ItemDataRole.CheckStateRole and col == STATUS_COL and state.item.manual:
            return Qt.CheckState.Checked if state.ticked else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == STATUS_COL or (col == NOTE_COL and state.reason):
                return status_color(key)
            if col == NOTE_COL or (col == COUNT_COL and not state.count):
                return theme.muted_color()
        if role == Qt.ItemDataRole.FontRole and col == STATUS_COL:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COUNT_COL:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(state)
        return None


def _tooltip(state: ItemState) -> str:
    lines = [
        state.item.title,
        f"Proved by: {state.item.proof}",
        f"Okta needs: {state.item.okta_needs}",
    ]
    if state.item.manual:
        lines.append("Traffic cannot prove this item: tick it once you checked it in Okta.")
    if state.reason:
        lines.append(f"Failed: {state.reason}")
    return "\n".join(lines)
