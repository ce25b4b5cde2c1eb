"""The table-model base of the Users and Groups views, fed by the server's ResourceChanged events.

The models hold the rendered resources (exactly what a SCIM client would GET) in arrival
order, with an id -> row map. :meth:`ResourceTableModel.apply_events` takes one batch from the
event bridge and turns it into as few model signals as possible: changes are coalesced by id
(the last state wins), every new row of a batch arrives in ONE ``beginInsertRows`` (appended),
updated rows get ``dataChanged`` per contiguous run, and removals are done per run (or, when a
batch deletes most of the table, as one reset). Work per batch is proportional to the batch
(plus one re-index after removals), never to the whole table per event.

Why per run and not one signal spanning the changed rows: measured with PySide6 6.12, a
sorting QSortFilterProxyModel calls ``data()`` about four times for *every* row inside a
``dataChanged`` range (whatever the roles or columns), ~13 µs per row from Python. A span over
10,000 rows costs ~130 ms; 1,000 scattered runs cost ~15 ms. For the same reason a reset under
a sorted proxy re-sorts everything (~1 s at 10,000 rows), so deletions reset only when that is
cheaper than removing run by run.

Rows that change are highlighted: ``BackgroundRole`` returns :func:`theme.highlight_color`
fading from full strength to nothing over ``fade_ms``. A 10 Hz timer emits ``dataChanged``
(BackgroundRole) only for rows still fading, at most :data:`FADE_ROWS_PER_TICK` per tick
(taken in turns when more fade at once), and stops when none are.

The Users and Groups columns (:class:`UsersModel`, :class:`GroupsModel`) and the cell texts
the detail panes share live in :mod:`scim_desktop.gui.models.resources`;
:class:`ResourceFilterProxy` (search, header clicks) lives here, with the model it sorts.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QModelRoleDataSpan,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
)
from PySide6.QtGui import QColor, QFont

from scim_desktop.gui import theme
from scim_desktop.server.events import ResourceChanged

ResourceRole = Qt.ItemDataRole.UserRole + 1
#: The resource's id (a str), for views that need it without the whole dict.
IdRole = Qt.ItemDataRole.UserRole + 2
#: What the proxy sorts by: the displayed text, except where that would sort wrongly (the
#: member count sorts as a number, shown with a thousands separator).
SortRole = Qt.ItemDataRole.UserRole + 3

#: A batch deleting more rows than this AND more rows than it leaves rebuilds the table with
#: one reset; otherwise rows are removed run by run (cheaper under a sorting proxy, see above).
RESET_DELETIONS_ABOVE = 100
#: Rows repainted per highlight tick at most; beyond it the fading rows take turns.
FADE_ROWS_PER_TICK = 300
#: While sorted by a column, a batch creating at most this many rows inserts each at its
#: place; a larger one is appended and sorted into place with one layout change (which
#: costs ~25 ms at 10,000 rows, whatever the batch).
INSERT_IN_PLACE_UP_TO = 32
#: Highlight refresh interval: ~10 Hz is smooth enough for a two-second fade.
FADE_TICK_MS = 100

AnyIndex = QModelIndex | QPersistentModelIndex
# Plain ints: Qt passes roles to data() as int, and int comparisons are the cheapest.
_DISPLAY = Qt.ItemDataRole.DisplayRole.value
_BACKGROUND = Qt.ItemDataRole.BackgroundRole.value
_FOREGROUND = Qt.ItemDataRole.ForegroundRole.value
_ALIGNMENT = Qt.ItemDataRole.TextAlignmentRole.value
_TOOLTIP = Qt.ItemDataRole.ToolTipRole.value
_FONT = Qt.ItemDataRole.FontRole.value
_RESOURCE = int(ResourceRole)
_SORT = int(SortRole)
_ID = int(IdRole)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def collation_key(value: Any) -> str:
    """How a column's text sorts: case-insensitively, accents after their base letter
    ("jose" < "José" < "josh"), empty first."""
    folded = _text(value).casefold()
    if folded.isascii():
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return f"{base}\x00{folded}"


class ResourceTableModel(QAbstractTableModel):
    """Shared machinery of :class:`UsersModel` and :class:`GroupsModel`."""

    RTYPE: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[str, ...]] = ()
    #: Columns shown with a tooltip (long text that may be elided).
    TOOLTIP_COLUMNS: ClassVar[frozenset[int]] = frozenset()
    #: Columns that sort by :meth:`_sort_value` instead of their text.
    SORT_KEY_COLUMNS: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, parent: QObject | None = None, *, fade_ms: int = 2000) -> None:
        super().__init__(parent)
        self.fade_ms = fade_ms
        self._resources: list[dict[str, Any]] = []
        self._ids: list[str] = []
        self._row_of: dict[str, int] = {}
        # Display values per row, computed when first painted and dropped when the row changes.
        self._cells: list[tuple[Any, ...] | None] = []
        self._search: list[str | None] = []
        # id -> time.monotonic() of its last change, while its highlight fades.
        self._fading: dict[str, float] = {}
        self._fade_timer = QTimer(self)
        self._fade_timer.setInterval(FADE_TICK_MS)
        self._fade_timer.timeout.connect(self._fade_tick)
        self._repaint_queue: list[str] = []
        self._fade_cursor = 0
        self._colors: dict[int, QColor] = {}
        # Events that arrive while a snapshot is being fetched (see hold_events()).
        self._held: list[ResourceChanged] | None = None
        # Row order (see sort()): each row's arrival number, and while the rows are sorted by
        # a column, each row's sort key.
        self._seq: list[int] = []
        self._next_seq = 0
        self._keys: list[Any] | None = None
        self._sort_column = -1
        self._descending = False

    # --- subclass hooks ------------------------------------------------------------------
    def _cells_for(self, resource: dict[str, Any]) -> tuple[Any, ...]:
        raise NotImplementedError

    def _foreground(self, resource: dict[str, Any], column: int) -> QColor | None:
        return None

    def _alignment(self, column: int) -> Qt.AlignmentFlag | None:
        return None

    def _font(self, column: int) -> QFont | None:
        return None

    def _sort_value(self, row: int, column: int) -> Any:
        """The sort key of a column listed in SORT_KEY_COLUMNS."""
        return self._resource_sort_value(self._resources[row], column)

    def _resource_sort_value(self, resource: dict[str, Any], column: int) -> Any:
        return self._cells_for(resource)[column]

    # --- Qt model interface --------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._resources)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.COLUMNS):
            if role == _DISPLAY:
                return self.COLUMNS[section]
            return None
        if orientation == Qt.Orientation.Vertical and role == _DISPLAY:
            return section + 1
        return None

    def data(self, index: AnyIndex, role: int = _DISPLAY) -> Any:
        row = index.row()
        column = index.column()
        if not (0 <= row < len(self._resources) and 0 <= column < len(self.COLUMNS)):
            return None  # also an invalid index (row -1)
        if role in (_DISPLAY, _SORT):
            # The hot path: sorting 10,000 rows asks this ~250,000 times.
            if role == _SORT and column in self.SORT_KEY_COLUMNS:
                return self._sort_value(row, column)
            cells = self._cells[row]
            return (cells if cells is not None else self._row_cells(row))[column]
        return self._value(row, column, role)

    def multiData(self, index: AnyIndex, span: QModelRoleDataSpan) -> None:
        """Every role a painted cell needs in one call (Qt 6's delegates ask this way):
        one call into Python per cell instead of seven. Painting competes with the server
        thread for the GIL, so fewer calls also means fewer waits for it."""
        row = index.row()
        column = index.column()
        if not (0 <= row < len(self._resources) and 0 <= column < len(self.COLUMNS)):
            return
        value = self._value
        for role_data in span:
            role_data.setData(value(row, column, role_data.role()))

    def _value(self, row: int, column: int, role: int) -> Any:
        if role in (_DISPLAY, _SORT):
            if role == _SORT and column in self.SORT_KEY_COLUMNS:
                return self._sort_value(row, column)
            return self._row_cells(row)[column]
        if role == _BACKGROUND:
            if not self._fading:
                return None
            strength = self.highlight_strength(row)
            if strength <= 0:
                return None
            # 25 steps are smooth enough; the colours are made once per step and fade tick
            # (not per painted cell, and still following a light / dark switch).
            step = round(strength * 25)
            color = self._colors.get(step)
            if color is None:
                color = self._colors[step] = theme.highlight_color(step / 25)
            return color
        if role == _FOREGROUND:
            return self._foreground(self._resources[row], column)
        if role == _ALIGNMENT:
            return self._alignment(column)
        if role == _FONT:
            return self._font(column)
        if role == _TOOLTIP:
            if column in self.TOOLTIP_COLUMNS:
                text = self._row_cells(row)[column]
                return text if isinstance(text, str) and text else None
            return None
        if role == _RESOURCE:
            return self._resources[row]
        if role == _ID:
            return self._ids[row]
        return None

    # --- lookups -------------------------------------------------------------------------
    def resource(self, row: int) -> dict[str, Any]:
        return self._resources[row]

    def resource_id(self, row: int) -> str:
        return self._ids[row]

    def row_of(self, rid: str) -> int | None:
        return self._row_of.get(rid)

    def resource_by_id(self, rid: str) -> dict[str, Any] | None:
        row = self._row_of.get(rid)
        return None if row is None else self._resources[row]

    def resources(self) -> Sequence[dict[str, Any]]:
        """Every resource, in row order (read-only view: do not modify)."""
        return self._resources

    def search_text(self, row: int) -> str:
        """Every column's text of ``row`` and its id, case-folded and joined (for search)."""
        text = self._search[row]
        if text is None:
            parts = [_text(v) for v in self._row_cells(row)]
            parts.append(self._ids[row])
            text = "\x1f".join(parts).casefold()
            self._search[row] = text
        return text

    def is_fading(self, rid: str) -> bool:
        return rid in self._fading

    def highlight_strength(self, row: int) -> float:
        """How strongly ``row`` is highlighted now: 1.0 right after a change, 0.0 when not."""
        started = self._fading.get(self._ids[row])
        if started is None:
            return 0.0
        return max(0.0, 1.0 - (time.monotonic() - started) * 1000.0 / max(1, self.fade_ms))

    def _row_cells(self, row: int) -> tuple[Any, ...]:
        cells = self._cells[row]
        if cells is None:
            cells = self._cells_for(self._resources[row])
            self._cells[row] = cells
        return cells

    # --- order ---------------------------------------------------------------------------
    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order the rows by ``column`` (-1: arrival order), and keep them in that order as
        resources arrive and change.

        The model sorts itself (a view's proxy forwards header clicks here) because a
        sorting QSortFilterProxyModel asks ``data()`` twice per comparison: ~250,000 calls
        into Python, about a second of frozen window, to sort 10,000 users. Here the keys
        are computed once per row and sorted by Python (~30 ms at 10,000 rows). Ties keep
        arrival order."""
        if not 0 <= column < len(self.COLUMNS):
            column = -1
        self._sort_column = column
        self._descending = column >= 0 and order == Qt.SortOrder.DescendingOrder
        self._keys = None if column < 0 else [self._sort_key(r) for r in range(len(self._ids))]
        self._reorder()

    def sort_column(self) -> int:
        return self._sort_column

    def _sort_key(self, row: int) -> Any:
        return self._key_of(self._resources[row], self._row_cells(row))

    def _key_of(self, resource: dict[str, Any], cells: tuple[Any, ...]) -> Any:
        column = self._sort_column
        if column in self.SORT_KEY_COLUMNS:
            return self._resource_sort_value(resource, column)
        return collation_key(cells[column])

    def _ordered(self, first: int, second: int) -> bool:
        """Whether row ``first`` may come before row ``second`` in the sorted order."""
        keys = self._keys
        assert keys is not None
        a, b = keys[first], keys[second]
        if a == b:
            return self._seq[first] < self._seq[second]
        return a > b if self._descending else a < b

    def _in_place(self, row: int) -> bool:
        last = len(self._ids) - 1
        return (row == 0 or self._ordered(row - 1, row)) and (
            row == last or self._ordered(row, row + 1)
        )

    def _insert_sorted(self, rid: str, resource: dict[str, Any], now: float) -> None:
        """Insert one new row where the sort puts it (after the rows that tie with it)."""
        keys = self._keys
        assert keys is not None
        cells = self._cells_for(resource)
        key = self._key_of(resource, cells)
        low, high = 0, len(keys)
        descending = self._descending
        while low < high:
            middle = (low + high) // 2
            other = keys[middle]
            if (other >= key) if descending else (other <= key):
                low = middle + 1
            else:
                high = middle
        self.beginInsertRows(QModelIndex(), low, low)
        self._resources.insert(low, resource)
        self._ids.insert(low, rid)
        self._cells.insert(low, cells)
        self._search.insert(low, None)
        self._seq.insert(low, self._next_seq)
        self._next_seq += 1
        keys.insert(low, key)
        ids, row_of = self._ids, self._row_of
        for row in range(low, len(ids)):
            row_of[ids[row]] = row
        self._fading[rid] = now
        self.endInsertRows()

    def _sorted_order(self) -> list[int] | None:
        """The rows in their wanted order, or None when they are in it already."""
        seq = self._seq
        order = sorted(range(len(seq)), key=seq.__getitem__)
        keys = self._keys
        if keys is not None:
            order.sort(key=keys.__getitem__, reverse=self._descending)  # stable: ties by seq
        if all(row == position for position, row in enumerate(order)):
            return None
        return order

    def _reorder(self) -> None:
        """Put the rows in their wanted order with one layout change (selections and other
        persistent indexes follow their rows)."""
        order = self._sorted_order()
        if order is None:
            return
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        self._permute(order)
        new_row = [0] * len(order)
        for position, row in enumerate(order):
            new_row[row] = position
        self.changePersistentIndexList(
            persistent, [self.index(new_row[i.row()], i.column()) for i in persistent]
        )
        self.layoutChanged.emit()

    def _permute(self, order: list[int]) -> None:
        """Keep the rows ``order`` (old row numbers), in that order: row ``i`` becomes the
        old row ``order[i]`` (no signals)."""
        self._resources = [self._resources[i] for i in order]
        self._ids = [self._ids[i] for i in order]
        self._cells = [self._cells[i] for i in order]
        self._search = [self._search[i] for i in order]
        self._seq = [self._seq[i] for i in order]
        if self._keys is not None:
            self._keys = [self._keys[i] for i in order]
        self._row_of = {rid: row for row, rid in enumerate(self._ids)}

    # --- loading -------------------------------------------------------------------------
    def load(self, resources: Iterable[dict[str, Any]]) -> None:
        """Replace everything (a snapshot); no highlight. Events held by
        :meth:`hold_events` are applied afterwards."""
        self.beginResetModel()
        self._set_all([r for r in resources if isinstance(r, dict) and "id" in r])
        self._fading.clear()
        self._repaint_queue.clear()
        self._fade_timer.stop()
        self.endResetModel()
        held, self._held = self._held, None
        if held:
            self.apply_events(held)

    def hold_events(self) -> None:
        """Keep incoming events until the next :meth:`load` (or :meth:`release_events`).

        Call it just before asking the server for a snapshot: every event delivered after
        the request is re-applied on top of the snapshot. Because the last event of an id
        always carries that resource's newest state (and "cleared" restarts from empty), the
        result is right whether an event was published before or after the snapshot."""
        if self._held is None:
            self._held = []

    def release_events(self) -> None:
        """Stop holding (the snapshot failed) and apply what was held."""
        held, self._held = self._held, None
        if held:
            self.apply_events(held)

    def clear(self) -> None:
        self._held = None
        self.load([])

    def _set_all(self, resources: list[dict[str, Any]]) -> None:
        # The same id twice (it never happens from a snapshot) keeps the last.
        by_id: dict[str, dict[str, Any]] = {}
        for resource in resources:
            by_id[str(resource["id"])] = resource
        self._resources = list(by_id.values())
        self._ids = list(by_id)
        self._row_of = {rid: row for row, rid in enumerate(self._ids)}
        self._cells = [None] * len(self._resources)
        self._search = [None] * len(self._resources)
        first = self._next_seq
        self._next_seq += len(self._ids)
        self._seq = list(range(first, self._next_seq))
        # Called inside a reset: sorted without signals of its own.
        if self._sort_column >= 0:
            self._keys = [self._sort_key(r) for r in range(len(self._ids))]
            order = self._sorted_order()
            if order is not None:
                self._permute(order)
        else:
            self._keys = None

    # --- events --------------------------------------------------------------------------
    def apply_events(self, events: Iterable[Any]) -> None:
        """Apply one batch of events (anything that is not a ResourceChanged of this model's
        type is ignored). Coalesced by id: the last state of each resource wins."""
        mine = [
            e
            for e in events
            if isinstance(e, ResourceChanged) and (e.rtype == self.RTYPE or e.kind == "cleared")
        ]
        if not mine:
            return
        if self._held is not None:
            self._held.extend(mine)
            return
        cleared = False
        latest: dict[str, dict[str, Any] | None] = {}
        for event in mine:
            if event.kind == "cleared":
                cleared = True
                latest.clear()
            elif event.kind == "deleted" or not isinstance(event.resource, dict):
                # An update published after the resource went away carries None: a deletion.
                latest[event.id] = None
            else:
                latest[event.id] = event.resource
        now = time.monotonic()
        if cleared:
            self.beginResetModel()
            self._set_all([r for r in latest.values() if r is not None])
            self._fading = dict.fromkeys(self._ids, now)
            self._repaint_queue.clear()
            self.endResetModel()
            self._sync_timer()
            return

        updated: list[tuple[int, int, int]] = []  # (row, first, last changed column)
        deleted: list[int] = []
        created: list[tuple[str, dict[str, Any]]] = []
        last_column = len(self.COLUMNS) - 1
        keys = self._keys
        moved: list[int] = []  # updated rows whose sort key changed
        for rid, resource in latest.items():
            row = self._row_of.get(rid)
            if resource is None:
                if row is not None:
                    deleted.append(row)
            elif row is None:
                created.append((rid, resource))
            else:
                before = self._cells[row]
                self._resources[row] = resource
                self._search[row] = None
                self._fading[rid] = now
                after = self._cells[row] = None if before is None else self._cells_for(resource)
                if keys is not None:
                    key = self._sort_key(row)  # (computes the cells of a row never shown)
                    if key != keys[row]:
                        keys[row] = key
                        moved.append(row)
                if before is None or after is None:
                    # Never shown or searched: no view looked at it, so there is nothing to
                    # compare; the whole row changed.
                    updated.append((row, 0, last_column))
                    continue
                changed = [c for c, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
                if changed:
                    updated.append((row, changed[0], changed[-1]))
                else:  # nothing shown changed (e.g. a title): still say the row changed
                    updated.append((row, last_column, last_column))

        # Checked before rows are removed (row numbers change): a changed key that leaves its
        # row between its neighbours moves nothing.
        reorder = any(not self._in_place(row) for row in moved)
        if updated:
            self._emit_updated(updated)
            # Views repaint only the changed cells; the highlight covers the whole row, so
            # the rest of those rows is repainted now too (bounded like a fade tick).
            partial = [row for row, first, last in updated if (first, last) != (0, last_column)]
            if partial:
                self._emit_changed(partial[:FADE_ROWS_PER_TICK], [_BACKGROUND])
        if deleted:
            self._remove_rows(deleted)
            keys = self._keys  # removing most rows rebuilds the lists
        if created and keys is not None and len(created) <= INSERT_IN_PLACE_UP_TO:
            for rid, resource in created:
                self._insert_sorted(rid, resource, now)
        elif created:
            first = len(self._resources)
            self.beginInsertRows(QModelIndex(), first, first + len(created) - 1)
            for offset, (rid, resource) in enumerate(created):
                self._resources.append(resource)
                self._ids.append(rid)
                self._row_of[rid] = first + offset
                self._fading[rid] = now
            self._cells.extend([None] * len(created))
            self._search.extend([None] * len(created))
            self._seq.extend(range(self._next_seq, self._next_seq + len(created)))
            self._next_seq += len(created)
            if keys is not None:
                keys.extend(self._sort_key(row) for row in range(first, len(self._ids)))
                reorder = True
            self.endInsertRows()
        if reorder:
            # Many new rows arrive at the bottom; they and changed rows then move to their
            # place with one layout change (none when they are in it already).
            self._reorder()
        self._sync_timer()

    def _remove_rows(self, rows: list[int]) -> None:
        for row in rows:
            self._fading.pop(self._ids[row], None)
        if len(rows) > RESET_DELETIONS_ABOVE and len(rows) > len(self._resources) - len(rows):
            gone = set(rows)
            self.beginResetModel()
            self._permute([i for i in range(len(self._resources)) if i not in gone])
            self.endResetModel()
            return
        # Contiguous runs, removed from the bottom up so earlier rows keep their numbers.
        for first, last in reversed(_runs(sorted(rows))):
            self.beginRemoveRows(QModelIndex(), first, last)
            for rid in self._ids[first : last + 1]:
                del self._row_of[rid]
            del self._resources[first : last + 1]
            del self._ids[first : last + 1]
            del self._cells[first : last + 1]
            del self._search[first : last + 1]
            del self._seq[first : last + 1]
            if self._keys is not None:
                del self._keys[first : last + 1]
            self.endRemoveRows()
        # One re-index of the rows behind the first removal (not one per deleted row).
        start = min(rows)
        ids = self._ids
        row_of = self._row_of
        for row in range(start, len(ids)):
            row_of[ids[row]] = row

    def _emit_updated(self, updated: list[tuple[int, int, int]]) -> None:
        """dataChanged per run of consecutive updated rows, over the columns that changed.

        Only the changed columns, because a sorting proxy re-checks the order of every row
        in the range when its sort column is inside it (and never otherwise): deactivating
        5,000 users sorted by userName must not re-check 5,000 rows."""
        updated.sort()
        runs: list[list[int]] = []
        for row, first, last in updated:
            if runs and row == runs[-1][1] + 1:
                run = runs[-1]
                run[1], run[2], run[3] = row, min(run[2], first), max(run[3], last)
            elif not runs or row != runs[-1][1]:
                runs.append([row, row, first, last])
        for top, bottom, first, last in runs:
            self.dataChanged.emit(self.index(top, first), self.index(bottom, last))

    def _emit_changed(self, rows: list[int], roles: list[int] | None) -> None:
        """dataChanged for exactly ``rows`` (all columns), one signal per contiguous run
        (see the module docstring for why never one spanning signal)."""
        last_column = len(self.COLUMNS) - 1
        for first, last in _runs(sorted(rows)):
            top, bottom = self.index(first, 0), self.index(last, last_column)
            if roles is None:
                self.dataChanged.emit(top, bottom)
            else:
                self.dataChanged.emit(top, bottom, roles)

    # --- highlight fade ------------------------------------------------------------------
    def _sync_timer(self) -> None:
        busy = bool(self._fading or self._repaint_queue)
        if busy and not self._fade_timer.isActive():
            self._fade_timer.start()
        elif not busy and self._fade_timer.isActive():
            self._fade_timer.stop()

    def _fade_tick(self) -> None:
        self._colors.clear()
        horizon = time.monotonic() - self.fade_ms / 1000.0
        fading = self._fading
        expired = [rid for rid, started in fading.items() if started <= horizon]
        for rid in expired:
            del fading[rid]
        # Rows whose highlight just ended are repainted once more, to clear it; they go first.
        queue = self._repaint_queue
        queue.extend(expired)
        budget = FADE_ROWS_PER_TICK
        ids = queue[:budget]
        del queue[:budget]
        room = budget - len(ids)
        if room > 0 and fading:
            still = list(fading)
            if len(still) <= room:
                ids.extend(still)
            else:  # more rows fade than one tick may repaint: they take turns
                start = self._fade_cursor % len(still)
                ids.extend((still[start:] + still[:start])[:room])
                self._fade_cursor = start + room
        row_of = self._row_of
        rows = [row for row in (row_of.get(rid) for rid in ids) if row is not None]
        if rows:
            self._emit_changed(rows, [_BACKGROUND])
        self._sync_timer()


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row numbers as (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and row == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], row)
        elif not runs or row != runs[-1][1]:
            runs.append((row, row))
    return runs


class ResourceFilterProxy(QSortFilterProxyModel):
    """Filters a :class:`ResourceTableModel`, and sorts it (header clicks) by asking the
    model to order its rows (see :meth:`ResourceTableModel.sort`): the proxy itself keeps
    the model's order. A proxy made with ``sort_source=False`` sorts on its own instead
    (slower, but other views of the same model keep their order: the member picker).

    The search matches every column and the id, case-insensitively; several words must all
    match (in any column). It asks the model for one pre-joined text per row instead of the
    default ``data()`` per column: a tenth of the calls into Python, which is what filtering
    10,000 rows costs. ``exclude_ids`` hides some rows (the member picker hides members)."""

    def __init__(self, parent: QObject | None = None, *, sort_source: bool = True) -> None:
        super().__init__(parent)
        self._sort_source = sort_source
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setSortLocaleAware(True)
        self.setDynamicSortFilter(True)
        self.setSortRole(SortRole)
        self._terms: tuple[str, ...] = ()
        self._exclude: frozenset[str] = frozenset()
        self._source: ResourceTableModel | None = None

    def setSourceModel(self, model: Any) -> None:
        self._source = model if isinstance(model, ResourceTableModel) else None
        super().setSourceModel(model)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if self._sort_source and self._source is not None:
            self._source.sort(column, order)
            return
        super().sort(column, order)

    @property
    def search(self) -> str:
        return " ".join(self._terms)

    def set_search(self, text: str) -> None:
        terms = tuple(text.casefold().split())
        if terms == self._terms:
            return
        self.beginFilterChange()
        self._terms = terms
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_exclude_ids(self, ids: Iterable[str]) -> None:
        self.beginFilterChange()
        self._exclude = frozenset(ids)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        model = self._source
        if model is None:
            return super().filterAcceptsRow(source_row, source_parent)
        if self._exclude and model.resource_id(source_row) in self._exclude:
            return False
        if not self._terms:
            return True
        text = model.search_text(source_row)
        return all(term in text for term in self._terms)

    def multiData(self, index: AnyIndex, span: QModelRoleDataSpan) -> None:
        # QSortFilterProxyModel answers multiData with one data() per role, each mapped to
        # the source: ~20 calls into Python per painted cell. Forwarded, it is one.
        model = self._source
        if model is None or not index.isValid():
            super().multiData(index, span)
            return
        model.multiData(self.mapToSource(index), span)

    def resource(self, proxy_row: int) -> dict[str, Any]:
        return self.index(proxy_row, 0).data(ResourceRole)

    def source_rows(self, proxy_indexes: Iterable[QModelIndex]) -> list[int]:
        """Distinct source rows of some proxy indexes (a selection), in proxy order."""
        rows: dict[int, None] = {}
        for index in proxy_indexes:
            rows[self.mapToSource(index).row()] = None
        return [r for r in rows if r >= 0]
