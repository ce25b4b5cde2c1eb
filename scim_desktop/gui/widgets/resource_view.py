"""What the Users and Groups tabs share: a sorted, filtered table of one resource type that
follows the server's ResourceChanged events, with search, selection, counts, JSON edits,
confirmed deletes and bulk actions run in chunks on the server thread.

:class:`ResourceViewBase` is the base of :class:`~scim_desktop.gui.widgets.users_view.UsersView`
and :class:`~scim_desktop.gui.widgets.groups_view.GroupsView`; :class:`ResourceTable` is their
table and :class:`MessageBar` the inline message above it (the Governance tab uses it too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QTableView,
    QToolButton,
    QWidget,
)

from scim_desktop.core.errors import ScimError
from scim_desktop.core.resources import Outcome, ScimService
from scim_desktop.gui.controller import ServerController
from scim_desktop.gui.models.resource_table import ResourceFilterProxy, ResourceTableModel
from scim_desktop.gui.widgets.json_editor import (
    JsonEditorDialog,
    deliver,
    describe_error,
    message_style,
    run_on_server,
)

log = logging.getLogger("scim_desktop.gui")

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#: Bulk actions (deactivate 5,000 users) run as server operations of this many each.
BULK_CHUNK = 200


class BulkResult:
    """What a bulk operation on several resources did (filled on the server thread, read on
    the GUI thread after the future resolved)."""

    def __init__(self) -> None:
        self.done = 0
        self.errors: list[tuple[str, ScimError]] = []


def bulk_op(
    ids: list[str], fn: Callable[[ScimService, str], Outcome], result: BulkResult
) -> Callable[[ScimService], Outcome]:
    """One server operation applying ``fn`` to each id. A refusal of one (a ScimError is
    raised before anything is stored) does not stop the others; everything that changed is
    committed once and published together."""

    def op(svc: ScimService) -> Outcome:
        changes = []
        for rid in ids:
            try:
                changes += fn(svc, rid).changes
            except ScimError as exc:
                result.errors.append((rid, exc))
            else:
                result.done += 1
        return Outcome(changes=changes)

    return op


class MessageBar(QWidget):
    """An inline, non-blocking message above a table (errors in words), with a close button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.label, 1)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        row.addWidget(close)
        self.hide()

    def show_message(self, text: str, kind: str = "error") -> None:
        self.label.setText(text)
        self.label.setStyleSheet(message_style(kind))
        self.show()

    def text(self) -> str:
        return self.label.text() if not self.isHidden() else ""


class ResourceTable(QTableView):
    """A table view tuned for large live models: fixed row height, no word wrap, sortable
    by header (unsorted — arrival order — until a header is clicked)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setShowGrid(False)
        self.setCornerButtonEnabled(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vertical = self.verticalHeader()
        vertical.hide()
        # A fixed row height keeps scrolling 10,000 rows cheap (no per-row size hints).
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionsMovable(True)
        self.setSortingEnabled(True)
        # setSortingEnabled sorts by the indicator's column; start in arrival order instead
        # (the newest rows at the bottom, as Okta creates them).
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.empty_text = ""

    def set_column_widths(self, widths: Iterable[int], stretch: int | None = None) -> None:
        header = self.horizontalHeader()
        for column, width in enumerate(widths):
            self.setColumnWidth(column, width)
        if stretch is not None:
            header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)

    def paintEvent(self, event: Any) -> None:
        super().paintEvent(event)
        model = self.model()
        if self.empty_text and model is not None and model.rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            rect = self.viewport().rect().adjusted(24, 24, -24, -24)
            painter.drawText(
                rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text
            )
            painter.end()


class ResourceViewBase(QWidget):
    """Shared plumbing of the Users and Groups tabs: model, proxy, table, search, count."""

    RTYPE = ""
    NOUN = ("resource", "resources")

    def __init__(
        self, controller: ServerController, model: ResourceTableModel, parent: QWidget | None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = model
        self.proxy = ResourceFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = ResourceTable()
        self.table.setModel(self.proxy)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(self._double_clicked)
        self.search = QLineEdit()
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(300)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(120)
        self._search_timer.timeout.connect(self._apply_search)
        self.search.textChanged.connect(self._search_timer.start)
        self.search.returnPressed.connect(self._apply_search)
        self.count_label = QLabel()
        self.message = MessageBar()
        self.json_dialog: JsonEditorDialog | None = None
        #: A snapshot is on its way (load_snapshot() was called and has not answered yet).
        self.loading = False
        self._pending_select: str | None = None

        for signal in (
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.modelReset,
            self.proxy.layoutChanged,
        ):
            signal.connect(self._schedule_counts)
        # Buttons depend on the selected rows' data (Activate / Deactivate).
        self.model.dataChanged.connect(self._data_changed)
        self._counts_timer = QTimer(self)
        self._counts_timer.setSingleShot(True)
        self._counts_timer.setInterval(0)
        self._counts_timer.timeout.connect(self._refresh)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)

    # --- events and snapshot -----------------------------------------------------------------
    def apply_events(self, events: list) -> None:
        """One batch from the event bridge (QtEventSink.batch); anything that is not a
        ResourceChanged of this tab's type is ignored."""
        self.model.apply_events(events)
        self._select_pending()

    def select_when_shown(self, rid: str) -> None:
        """Select ``rid`` as soon as its row arrives (something made here, whose event is
        still on its way)."""
        self._pending_select = rid
        self._select_pending()

    def _select_pending(self) -> None:
        rid = self._pending_select
        if rid is not None and self.model.row_of(rid) is not None:
            self._pending_select = None
            self.select_id(rid)

    def load_snapshot(self) -> None:
        """Load every resource from the running server (call when it starts). Returns at
        once; the table fills when the snapshot arrives. Events that arrive meanwhile are
        applied on top of it, so nothing is lost or shown twice."""
        server = self.controller.server
        if server is None:
            return
        self.model.hold_events()
        self.loading = True
        self.update_counts()
        deliver(
            self.controller,
            server.snapshot((self.RTYPE,)),
            self._snapshot_loaded,
            self._snapshot_failed,
        )

    def _snapshot_loaded(self, snapshot: dict[str, list[dict[str, Any]]]) -> None:
        self.loading = False
        self.model.load(snapshot.get(self.RTYPE, []))
        self.update_counts()

    def _snapshot_failed(self, exc: BaseException) -> None:
        self.loading = False
        self.model.release_events()
        self.message.show_message(f"Could not load the {self.NOUN[1]}: {describe_error(exc)}")

    # --- selection, search, counts -----------------------------------------------------------
    def selected_proxy_rows(self) -> list[int]:
        """The selected table rows, ascending. Read from the selection's ranges: asking for
        ``selectedRows()`` builds an index per row, which costs ~0.1 s for 5,000 rows."""
        selection = self.table.selectionModel()
        if selection is None:
            return []
        ranges = [(r.top(), r.bottom()) for r in selection.selection() if r.isValid()]
        if len(ranges) == 1:
            return list(range(ranges[0][0], ranges[0][1] + 1))
        return sorted({row for top, bottom in ranges for row in range(top, bottom + 1)})

    def selected_count(self) -> int:
        selection = self.table.selectionModel()
        if selection is None:
            return 0
        ranges = [(r.top(), r.bottom()) for r in selection.selection() if r.isValid()]
        if len(ranges) <= 1:
            return sum(bottom - top + 1 for top, bottom in ranges)
        return len(self.selected_proxy_rows())

    def selected_rows(self) -> list[int]:
        """Source-model rows of the selected table rows, in table order."""
        proxy = self.proxy
        rows = [proxy.mapToSource(proxy.index(r, 0)).row() for r in self.selected_proxy_rows()]
        return [r for r in rows if r >= 0]

    def selected_ids(self) -> list[str]:
        return [self.model.resource_id(row) for row in self.selected_rows()]

    def selected_resources(self) -> list[dict[str, Any]]:
        return [self.model.resource(row) for row in self.selected_rows()]

    def select_id(self, rid: str) -> bool:
        """Select (and scroll to) the row of ``rid``; False if it is not shown."""
        row = self.model.row_of(rid)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return False
        self.table.selectionModel().select(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.setCurrentIndex(index)
        self.table.scrollTo(index)
        return True

    def set_search(self, text: str) -> None:
        """Search now (the search box waits for a pause in typing)."""
        self.search.setText(text)
        self._apply_search()

    def _apply_search(self) -> None:
        self._search_timer.stop()
        self.proxy.set_search(self.search.text())
        self.update_counts()

    def _schedule_counts(self, *args: Any) -> None:
        if not self._counts_timer.isActive():
            self._counts_timer.start()

    def _data_changed(self, top: QModelIndex, bottom: QModelIndex, roles: Any = ()) -> None:
        if list(roles) != [Qt.ItemDataRole.BackgroundRole]:  # not just a highlight step
            self._schedule_counts()

    def _refresh(self) -> None:
        self.update_counts()
        self.update_buttons()

    def update_counts(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        singular, plural = self.NOUN
        noun = singular if total == 1 else plural
        text = f"{total:,} {noun}" if shown == total else f"{shown:,} of {total:,} {noun}"
        if self.loading:
            text = f"Loading {plural}…"
        selected = self.selected_count()
        if selected > 1:
            text += f" · {selected:,} selected"
        self.count_label.setText(text)
        if total == 0:
            self.table.empty_text = "" if self.loading else self.empty_text()
        elif shown == 0:
            self.table.empty_text = f"No {plural} match “{self.search.text().strip()}”."
        else:
            self.table.empty_text = ""
        self.table.viewport().update()

    def empty_text(self) -> str:
        return f"No {self.NOUN[1]} yet."

    def _selection_changed(self, *args: Any) -> None:
        self.update_buttons()
        self._schedule_counts()

    def update_buttons(self) -> None:
        pass

    # --- shared actions ----------------------------------------------------------------------
    def edit_json(self, rid: str | None = None) -> JsonEditorDialog | None:
        """Open the JSON editor for ``rid`` (default: the selected row); returns the dialog
        (shown window-modal, not blocking)."""
        if rid is None:
            ids = self.selected_ids()
            if len(ids) != 1:
                return None
            rid = ids[0]
        resource = self.model.resource_by_id(rid)
        if resource is None:
            return None
        dialog = JsonEditorDialog(self.controller, self.RTYPE, resource, self)
        self.json_dialog = dialog
        dialog.open()
        return dialog

    def _double_clicked(self, index: QModelIndex) -> None:
        source = self.proxy.mapToSource(index)
        if source.isValid():
            self.edit_json(self.model.resource_id(source.row()))

    def _run(
        self,
        op: Callable[[ScimService], Outcome],
        then: Callable[[Any], None] | None = None,
        failed: str = "",
    ) -> None:
        def error(exc: BaseException) -> None:
            text = describe_error(exc)
            self.message.show_message(f"{failed} {text}".strip())

        run_on_server(self.controller, op, then, error)

    def _confirm_and_delete(
        self,
        rtype: str,
        resources: list[dict[str, Any]],
        names: list[str],
        one_question: str,
        many_note: str,
    ) -> bool:
        """Ask (naming up to three), then delete on the server; False if declined."""
        singular, plural = self.NOUN
        if len(names) == 1:
            question = one_question
        else:
            shown = ", ".join(names[:3]) + (f", +{len(names) - 3:,} more" if len(names) > 3 else "")
            question = f"Delete {len(names):,} {plural} ({shown})? {many_note}"
        answer = QMessageBox.question(
            self,
            f"Delete {plural}" if len(names) > 1 else f"Delete {singular}",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        ids = [str(r["id"]) for r in resources]
        self._run_bulk(ids, lambda svc, rid: svc.delete(rtype, rid), "delete")
        return True

    def _run_bulk(
        self,
        ids: list[str],
        fn: Callable[[ScimService, str], Outcome],
        verb: str,
    ) -> None:
        """Apply ``fn`` to each id on the server; report refusals in words.

        Many ids go in chunks, one server operation after the other: the server thread
        keeps answering Okta in between, and the tables get several small batches instead
        of one huge one."""
        if not ids:
            return
        result = BulkResult()
        singular, plural = self.NOUN
        chunks = [ids[i : i + BULK_CHUNK] for i in range(0, len(ids), BULK_CHUNK)]

        def next_chunk(outcome: Outcome | None = None) -> None:
            if chunks:
                self._run(bulk_op(chunks.pop(0), fn, result), next_chunk, f"Could not {verb}:")
            else:
                done()

        def done() -> None:
            if not result.errors:
                self.message.hide()
                return
            rid, first = result.errors[0]
            resource = self.model.resource_by_id(rid) or {"id": rid}
            name = resource.get("userName") or resource.get("displayName") or rid
            failed = len(result.errors)
            if len(ids) == 1:
                head = f"Could not {verb} {name}:"
            else:
                noun = singular if failed == 1 else plural
                head = f"Could not {verb} {failed:,} of {len(ids):,} {plural}; {noun} {name}:"
            self.message.show_message(f"{head} {describe_error(first)}")

        next_chunk()

    def _context_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        menu = QMenu(self)
        self.fill_context_menu(menu)
        menu.addSeparator()
        rid = self.model.resource_id(self.proxy.mapToSource(index).row())
        copy = menu.addAction("Copy id")
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(rid))
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def fill_context_menu(self, menu: QMenu) -> None:
        pass
