"""The request log: a capped, batch-fed table model and the proxy that filters it.

:class:`RequestLogModel` receives whole batches from the event bridge (one
``beginInsertRows`` per batch) and drops its oldest rows beyond ``row_cap``, so memory stays
bounded however long the window runs. Everything a cell shows is computed once, when its row
arrives; ``data()`` only picks a prepared value, so scrolling and filtering 10,000 rows stay
fast. :class:`RequestFilterProxy` filters on those prepared values (and a case-insensitive
search in the recorded bodies), never parsing JSON per row.
"""

from __future__ import annotations

import html
import re
import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QModelRoleDataSpan,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont

from scim_desktop.core.okta import STEPS
from scim_desktop.gui import theme
from scim_desktop.server.events import RequestRecord

__all__ = [
    "COLUMNS",
    "COL_DURATION",
    "COL_FAULT",
    "COL_METHOD",
    "COL_PATH",
    "COL_STATUS",
    "COL_STEP",
    "COL_TIME",
    "COL_UPSTREAM",
    "DEFAULT_ROW_CAP",
    "METHODS",
    "STATUS_CLASSES",
    "ProxiedRole",
    "RecordRole",
    "RequestFilterProxy",
    "RequestLogModel",
    "format_local_time",
    "reason_phrase",
    "status_class",
    "step_title",
    "upstream_cell",
    "upstream_facts",
]

DEFAULT_ROW_CAP = 10_000
COLUMNS = ("Time", "Method", "Path", "Status", "Upstream", "Duration", "Okta step", "Fault")
COL_TIME, COL_METHOD, COL_PATH, COL_STATUS, COL_UPSTREAM, COL_DURATION, COL_STEP, COL_FAULT = range(
    8
)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "dropped")
FAULT_MARK = "⚡"
#: Beside the upstream's status when Okta would not accept its answer.
REJECT_MARK = "⚠"
#: The record behind a row (any column).
RecordRole = Qt.ItemDataRole.UserRole + 1
#: Whether the row's request went through the proxy (any column).
ProxiedRole = Qt.ItemDataRole.UserRole + 2

_Index = QModelIndex | QPersistentModelIndex
_HAS_FILTER_CHANGE = hasattr(QSortFilterProxyModel, "beginFilterChange")
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_CENTER = int(Qt.AlignmentFlag.AlignCenter)
_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

# Step labels carry details ("Create user alice@example.com"); the step filter lists one
# title per step id instead. Most titles follow from the label template by dropping its
# fields; these read better spelled out.
_STEP_TITLES = {
    "create_user_existence_check": "Create user: existence check",
    "import_users": "Import users",
    "import_groups": "Import groups",
    "push_group_rename": "Push group: rename",
    "push_group_add_members": "Push group: add members",
    "push_group_remove_members": "Push group: remove members",
}
_FIELD_RE = re.compile(r'\s*"?\{[a-z_]+\}"?')


def step_title(step_id: str) -> str:
    """A short, detail-free name for an Okta step id ("Create user", "Push group: create")."""
    if step_id in _STEP_TITLES:
        return _STEP_TITLES[step_id]
    template = STEPS.get(step_id, (step_id, ""))[0]
    return _FIELD_RE.sub("", template).strip().rstrip(":,").strip() or step_id


def status_class(status: int) -> str:
    """ "2xx", "3xx", "4xx", "5xx", "1xx", or "dropped" for a connection closed unanswered."""
    return "dropped" if status <= 0 else f"{min(status // 100, 5)}xx"


def reason_phrase(status: int) -> str:
    if status <= 0:
        return "connection dropped"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def format_local_time(rfc3339: str, *, with_date: bool = False) -> str:
    """An RFC 3339 UTC time as local ``HH:MM:SS.mmm`` (optionally with the date first)."""
    try:
        moment = datetime.fromisoformat(rfc3339)
    except ValueError:
        return rfc3339
    # time.localtime is several times faster than datetime.astimezone(), and this runs for
    # every request the window shows.
    t = time.localtime(moment.timestamp())
    text = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{moment.microsecond // 1000:03d}"
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} {text}" if with_date else text


def display_target(record: RequestRecord) -> str:
    """Path and query for reading: the query percent-decoded (``filter=userName eq "x"``)."""
    if not record.query:
        return record.path
    return f"{record.path}?{unquote(record.query)}"


class UpstreamFacts:
    """What a proxied record says about the upstream (all None / empty for a mock's record
    and for one the proxy answered itself)."""

    __slots__ = ("error", "ms", "problems", "status")

    def __init__(self, record: RequestRecord) -> None:
        self.status = record.upstream_status
        self.ms = record.upstream_ms
        self.error = record.upstream_error
        self.problems = record.okta_problems

    @property
    def reached(self) -> bool:
        """The request was forwarded (whether or not the upstream answered)."""
        return self.status is not None or self.error is not None or self.ms is not None


def upstream_facts(record: RequestRecord) -> UpstreamFacts:
    return UpstreamFacts(record)


def upstream_cell(facts: UpstreamFacts, proxied: bool) -> str:
    """The Upstream column: its status ("204 ⚠" when Okta would reject the answer), the
    kind of failure ("unreachable", "timed out", "bad answer"), "—" for a request the proxy
    answered itself (a fault rule), empty for a mock's request."""
    if facts.error:
        kind = facts.error.split(":", 1)[0].strip()
        text = "timed out" if kind.startswith("timed out") else kind
    elif facts.status is not None:
        text = "dropped" if facts.status <= 0 else str(facts.status)
    else:
        return "—" if proxied else ""
    return f"{text} {REJECT_MARK}" if facts.problems else text


class _Row:
    """One record with everything its cells show, prepared once when it arrives."""

    __slots__ = (
        "duration_text",
        "meta",
        "record",
        "serial",
        "status_class",
        "status_text",
        "target",
        "time_text",
        "upstream",
        "upstream_text",
    )

    def __init__(self, record: RequestRecord, serial: int, proxied: bool = False) -> None:
        self.record = record
        self.serial = serial
        self.upstream = upstream_facts(record)
        #: Proxied: the window was in proxy mode when it arrived (or the record says so).
        self.upstream_text = upstream_cell(self.upstream, proxied or self.upstream.reached)
        self.time_text = format_local_time(record.time)
        self.target = display_target(record)
        self.status_text = "dropped" if record.status <= 0 else str(record.status)
        self.status_class = status_class(record.status)
        self.duration_text = f"{record.duration_ms:,.1f} ms"
        raw = f"{record.path}?{record.query}" if record.query else ""
        # Everything the text search looks at besides the bodies, lower-cased once.
        self.meta = "\n".join(
            (
                record.method,
                self.target,
                raw,
                self.status_text,
                record.okta_label or "",
                record.fault or "",
                self.upstream_text,
                self.upstream.error or "",
                *self.upstream.problems,
            )
        ).lower()


class RequestLogModel(QAbstractTableModel):
    """The request log, newest last, capped at ``row_cap`` rows (oldest dropped first)."""

    #: Step ids seen for the first time in a batch: a list of ``(step_id, title)``.
    stepsSeen = Signal(list)
    #: The paused buffer changed size (paused, waiting records).
    pauseChanged = Signal(bool, int)

    def __init__(self, parent: QObject | None = None, row_cap: int = DEFAULT_ROW_CAP) -> None:
        super().__init__(parent)
        if row_cap < 1:
            raise ValueError("row_cap must be at least 1")
        self._rows: list[_Row] = []
        self._row_cap = row_cap
        self._serial = 0
        self._paused = False
        self._buffer: deque[RequestRecord] = deque(maxlen=row_cap)
        self._steps: dict[str, str] = {}
        self._colors: dict[tuple[str, Any], QColor] = {}
        self._mono: QFont = theme.mono_font()
        #: Records arriving now come from a proxy (set by the window on a mode switch).
        self.proxy_mode = False
        #: Some row shows an upstream (the view shows the Upstream column while so).
        self.has_upstream = False

    # --- feeding ---------------------------------------------------------------------------------
    @property
    def row_cap(self) -> int:
        return self._row_cap

    def set_row_cap(self, cap: int) -> None:
        """Keep at most ``cap`` rows; drops the oldest rows (and paused ones) beyond it."""
        if cap < 1:
            raise ValueError("row_cap must be at least 1")
        self._row_cap = cap
        self._buffer = deque(self._buffer, maxlen=cap)
        self._trim()

    def add_records(self, records: Sequence[RequestRecord]) -> None:
        """Append a batch (one row insertion), then drop the oldest rows beyond the cap.

        While paused, the batch is kept aside (at most ``row_cap`` records) until
        :meth:`resume`."""
        if not records:
            return
        if self._paused:
            self._buffer.extend(records)
            self.pauseChanged.emit(True, len(self._buffer))
            return
        if len(records) > self._row_cap:
            records = records[-self._row_cap :]
        serial = self._serial
        proxied = self.proxy_mode
        new_rows = [_Row(record, serial + i, proxied) for i, record in enumerate(records)]
        self.has_upstream = self.has_upstream or any(r.upstream_text for r in new_rows)
        self._serial = serial + len(new_rows)
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(new_rows) - 1)
        self._rows.extend(new_rows)
        self.endInsertRows()
        self._trim()
        self._note_steps(records)

    def _trim(self) -> None:
        excess = len(self._rows) - self._row_cap
        if excess <= 0:
            return
        self.beginRemoveRows(QModelIndex(), 0, excess - 1)
        del self._rows[:excess]
        self.endRemoveRows()

    def _note_steps(self, records: Iterable[RequestRecord]) -> None:
        new: list[tuple[str, str]] = []
        for record in records:
            step = record.okta_step
            if step and step not in self._steps:
                title = step_title(step)
                self._steps[step] = title
                new.append((step, title))
        if new:
            self.stepsSeen.emit(new)

    def clear(self) -> None:
        """Forget every row (and anything held while paused)."""
        self.beginResetModel()
        self._rows = []
        self._buffer.clear()
        self.has_upstream = False
        self.endResetModel()
        if self._paused:
            self.pauseChanged.emit(True, 0)

    # --- pause -----------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def pending_count(self) -> int:
        """Records held back while paused."""
        return len(self._buffer)

    def pause(self) -> None:
        if not self._paused:
            self._paused = True
            self.pauseChanged.emit(True, len(self._buffer))

    def resume(self) -> None:
        """Stop holding back: everything buffered while paused is added as one batch."""
        if not self._paused:
            return
        self._paused = False
        held = list(self._buffer)
        self._buffer.clear()
        self.add_records(held)
        self.pauseChanged.emit(False, 0)

    def set_paused(self, paused: bool) -> None:
        if paused:
            self.pause()
        else:
            self.resume()

    # --- access ----------------------------------------------------------------------------------
    def record(self, row: int) -> RequestRecord:
        return self._rows[row].record

    def records(self) -> list[RequestRecord]:
        """Every record shown, oldest first (a new list)."""
        return [r.record for r in self._rows]

    def entry(self, row: int) -> _Row:
        """The prepared row (for the filter proxy)."""
        return self._rows[row]

    def serial(self, row: int) -> int:
        """A number that stays with a row while it lives (to find it again after a trim)."""
        return self._rows[row].serial

    def row_of_serial(self, serial: int) -> int | None:
        if not self._rows:
            return None
        row = serial - self._rows[0].serial
        return row if 0 <= row < len(self._rows) else None

    def steps_seen(self) -> dict[str, str]:
        """Step id -> title, in order of first appearance."""
        return dict(self._steps)

    # --- theme -----------------------------------------------------------------------------------
    @property
    def mono_font(self) -> QFont:
        return self._mono

    def set_mono_font(self, font: QFont) -> None:
        self._mono = QFont(font)
        self.refresh_theme()

    def refresh_theme(self) -> None:
        """Colours follow the palette: call after a light/dark switch."""
        self._colors.clear()
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0),
                self.index(len(self._rows) - 1, len(COLUMNS) - 1),
                [
                    Qt.ItemDataRole.ForegroundRole,
                    Qt.ItemDataRole.BackgroundRole,
                    Qt.ItemDataRole.FontRole,
                ],
            )

    def _color(self, kind: str, key: Any) -> QColor:
        cached = self._colors.get((kind, key))
        if cached is None:
            if kind == "status":
                cached = theme.status_color(key)
            elif kind == "method":
                cached = theme.method_color(key)
            elif kind == "fault":
                cached = theme.fault_color()
            elif kind == "fault_bg":
                cached = QColor(theme.fault_color())
                cached.setAlphaF(0.22 if theme.is_dark() else 0.10)
            else:
                cached = theme.muted_color()
            self._colors[(kind, key)] = cached
        return cached

    # --- QAbstractTableModel ---------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if section in (COL_STATUS, COL_UPSTREAM, COL_DURATION) else _LEFT
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row_no = index.row()
        if not 0 <= row_no < len(self._rows):
            return None
        return self._value(self._rows[row_no], index.column(), role)

    def multiData(self, index: _Index, span: QModelRoleDataSpan) -> None:
        """Every role a painted cell needs in one call (Qt 6 delegates ask this way). The
        server thread shares the interpreter, and each call from Qt into Python during a
        paint may wait for the GIL: one call per cell instead of one per role."""
        row_no = index.row()
        if not 0 <= row_no < len(self._rows):
            return
        row = self._rows[row_no]
        col = index.column()
        value = self._value
        for role_data in span:
            role_data.setData(value(row, col, role_data.role()))

    def _value(self, row: _Row, col: int, role: int) -> Any:
        record = row.record
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_TIME:
                return row.time_text
            if col == COL_METHOD:
                return record.method
            if col == COL_PATH:
                return row.target
            if col == COL_STATUS:
                return row.status_text
            if col == COL_UPSTREAM:
                return row.upstream_text
            if col == COL_DURATION:
                return row.duration_text
            if col == COL_STEP:
                return record.okta_label or ""
            if col == COL_FAULT:
                return FAULT_MARK if record.fault else ""
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == COL_STATUS:
                return self._color("status", record.status)
            if col == COL_UPSTREAM:
                return self._upstream_color(row.upstream)
            if col == COL_METHOD:
                return self._color("method", record.method)
            if col == COL_FAULT:
                return self._color("fault", None)
            if col in (COL_TIME, COL_DURATION):
                return self._color("muted", None)
            return None
        if role == RecordRole:
            return record
        if role == ProxiedRole:
            return bool(row.upstream_text)
        if role == Qt.ItemDataRole.BackgroundRole:
            # A faint red wash marks rows a fault answered, visible even on a projector.
            return self._color("fault_bg", None) if record.fault else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, col)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if col in (COL_STATUS, COL_UPSTREAM, COL_DURATION):
                return _RIGHT
            if col == COL_FAULT:
                return _CENTER
            return _LEFT
        if role == Qt.ItemDataRole.FontRole:
            return self._mono if col == COL_PATH else None
        return None

    def _upstream_color(self, facts: UpstreamFacts) -> QColor:
        if facts.error or facts.problems:
            return self._color("fault", None)
        if facts.status is not None:
            return self._color("status", facts.status)
        return self._color("muted", None)

    def _tooltip(self, row: _Row, col: int) -> str | None:
        record = row.record
        if col == COL_UPSTREAM:
            return _upstream_tooltip(row)
        if col == COL_PATH:
            return f"{record.path}?{record.query}" if record.query else record.path
        if col == COL_STEP and record.okta_label:
            explanation = html.escape(record.okta_explanation or "")
            return f"<p><b>{html.escape(record.okta_label)}</b><br>{explanation}</p>"
        if col in (COL_FAULT, COL_STATUS) and record.fault:
            return f"Fault: {record.fault}"
        if col == COL_STATUS:
            return f"{row.status_text} {reason_phrase(record.status)}".strip()
        if col == COL_TIME:
            return format_local_time(record.time, with_date=True)
        return None


def _upstream_tooltip(row: _Row) -> str | None:
    facts = row.upstream
    if not row.upstream_text:
        return None
    if facts.error:
        text = f"<p><b>The upstream failed</b>: {html.escape(facts.error)}</p>"
    elif facts.status is None:
        return "Answered by the proxy (a fault rule): the upstream never saw it"
    else:
        text = f"<p>Your server answered {facts.status} {html.escape(reason_phrase(facts.status))}"
        if facts.ms is not None:
            text += f" in {facts.ms:,.1f} ms"
        text += "</p>"
    if facts.problems:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in facts.problems)
        text += f"<p><b>{REJECT_MARK} Okta would reject this answer</b></p><ul>{items}</ul>"
    return text


class RequestFilterProxy(QSortFilterProxyModel):
    """Filters the request log by text, method, status class, Okta step and faults.

    Each setter re-filters once. Rows are judged on values the model prepared when they
    arrived; the text search also looks into the recorded bodies as plain lower-cased text
    (no JSON parsing).
    """

    #: Some filter changed (the view refreshes its count label).
    filtersChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._needle = ""
        self._needle_lower = ""
        self._active = False
        self._methods: frozenset[str] | None = None
        self._classes: frozenset[str] | None = None
        self._step: str | None = None
        self._faults_only = False
        self._rejected_only = False
        self._log: RequestLogModel | None = None

    def setSourceModel(self, model: Any) -> None:
        self._log = model if isinstance(model, RequestLogModel) else None
        super().setSourceModel(model)

    def multiData(self, index: Any, span: QModelRoleDataSpan) -> None:
        # QSortFilterProxyModel answers multiData with one data() per role, each a call into
        # Python: forwarded, a painted cell costs one.
        log = self._log
        if log is None or not index.isValid():
            super().multiData(index, span)
            return
        log.multiData(self.mapToSource(index), span)

    # --- filters ---------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self._needle

    @property
    def methods(self) -> frozenset[str] | None:
        return self._methods

    @property
    def status_classes(self) -> frozenset[str] | None:
        return self._classes

    @property
    def step(self) -> str | None:
        return self._step

    @property
    def faults_only(self) -> bool:
        return self._faults_only

    def is_filtering(self) -> bool:
        return bool(
            self._needle
            or self._methods is not None
            or self._classes is not None
            or self._step
            or self._faults_only
            or self._rejected_only
        )

    def set_text(self, text: str) -> None:
        needle = text.strip()
        if needle == self._needle:
            return
        self._change(lambda: self._set_needle(needle))

    def _set_needle(self, needle: str) -> None:
        self._needle = needle
        self._needle_lower = needle.lower()

    def set_methods(self, methods: Iterable[str] | None) -> None:
        value = None if methods is None else frozenset(m.upper() for m in methods)
        if value != self._methods:
            self._change(lambda: setattr(self, "_methods", value))

    def set_status_classes(self, classes: Iterable[str] | None) -> None:
        value = None if classes is None else frozenset(c.lower() for c in classes)
        if value != self._classes:
            self._change(lambda: setattr(self, "_classes", value))

    def set_step(self, step_id: str | None) -> None:
        value = step_id or None
        if value != self._step:
            self._change(lambda: setattr(self, "_step", value))

    def set_faults_only(self, on: bool) -> None:
        if bool(on) != self._faults_only:
            self._change(lambda: setattr(self, "_faults_only", bool(on)))

    @property
    def rejected_only(self) -> bool:
        return self._rejected_only

    def set_rejected_only(self, on: bool) -> None:
        """Proxy mode: only the upstream's answers Okta would reject (or upstream failures)."""
        if bool(on) != self._rejected_only:
            self._change(lambda: setattr(self, "_rejected_only", bool(on)))

    def _change(self, apply: Any) -> None:
        # One re-filter per change. Qt 6.10 replaced invalidateFilter() with
        # begin/endFilterChange(); older Qt releases only have the former.
        if _HAS_FILTER_CHANGE:
            self.beginFilterChange()
            apply()
            self._active = self.is_filtering()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - Qt < 6.10
            apply()
            self._active = self.is_filtering()
            self.invalidateRowsFilter()
        self.filtersChanged.emit()

    # --- QSortFilterProxyModel -------------------------------------------------------------------
    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        log = self._log
        if not self._active or log is None:
            return True
        row = log.entry(source_row)
        record = row.record
        if self._faults_only and not record.fault:
            return False
        if self._rejected_only and not (record.okta_problems or record.upstream_error):
            return False
        if self._methods is not None and record.method.upper() not in self._methods:
            return False
        if self._classes is not None and row.status_class not in self._classes:
            return False
        if self._step is not None and record.okta_step != self._step:
            return False
        needle = self._needle_lower
        if not needle:
            return True
        # str.lower() and "in" beat a case-insensitive regex by ~10x on typical bodies.
        return (
            needle in row.meta
            or needle in record.request_body.lower()
            or needle in record.response_body.lower()
        )

    def record(self, row: int) -> RequestRecord:
        """The record at a proxy row."""
        return self.data(self.index(row, 0), RecordRole)  # type: ignore[no-any-return]
