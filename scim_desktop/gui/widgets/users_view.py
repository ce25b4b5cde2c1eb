"""The Users tab: a live table of the users Okta provisioned, with search, sort and edits.

The table follows the server's ResourceChanged events (``apply_events``, connected by the main
window to the bridge's batches); it never re-queries. Edits — add, edit JSON, activate,
deactivate, delete — run on the server thread with the server's rules (see
:mod:`scim_desktop.gui.widgets.json_editor`) and show up through the same events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.core.errors import ScimError
from scim_desktop.core.resources import Outcome, ScimService
from scim_desktop.gui.controller import ServerController
from scim_desktop.gui.models.resource_table import ResourceFilterProxy, ResourceTableModel
from scim_desktop.gui.models.resources import UsersModel
from scim_desktop.gui.widgets.json_editor import (
    JsonEditorDialog,
    base_url,
    deliver,
    describe_error,
    message_style,
    run_on_server,
)
from scim_desktop.gui.widgets.user_detail import UserDetail

log = logging.getLogger("scim_desktop.gui")

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
DELETE_NOTE = "Okta never deletes users; this is for cleaning up demos."
#: Above this many selected users the Activate / Deactivate buttons are not worked out row
#: by row on every change.
MAX_SCANNED_SELECTION = 500
#: Bulk actions (deactivate 5,000 users) run as server operations of this many each.
BULK_CHUNK = 200


def active_patch(active: bool) -> dict[str, Any]:
    """Okta's deactivate / reactivate request: a PATCH replace without a path (OKTA.md)."""
    return {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "value": {"active": active}}],
    }


def new_user_body(
    user_name: str, given: str, family: str, email: str, active: bool
) -> dict[str, Any]:
    """A SCIM User as Okta creates one (RFC 7643 §4.1; the attributes Okta sends)."""
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": user_name.strip()}
    given, family, email = given.strip(), family.strip(), email.strip()
    if given or family:
        name: dict[str, str] = {}
        if given:
            name["givenName"] = given
        if family:
            name["familyName"] = family
        name["formatted"] = " ".join(p for p in (given, family) if p)
        body["name"] = name
        body["displayName"] = name["formatted"]
    if email:
        body["emails"] = [{"value": email, "type": "work", "primary": True}]
    body["active"] = active
    return body


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


#: A custom user attribute the catalog declares: (schema URN, name, SCIM type, description).
CustomAttribute = tuple[str, str, str, str]


def parse_custom(kind: str, text: str) -> Any:
    """A custom attribute's form text as its SCIM type (RFC 7643 §2.3); ValueError if it
    is not one."""
    if kind == "integer":
        return int(text)
    if kind == "decimal":
        return float(text)
    return text


class AddUserDialog(QDialog):
    """A small form that creates a user through the server's rules (as Okta's POST would).
    A refusal (e.g. the userName is taken) is shown in words and the form stays open.
    The catalog's custom user attributes (``custom``) get a field each."""

    def __init__(
        self,
        controller: ServerController,
        parent: QWidget | None = None,
        custom: list[CustomAttribute] | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.custom = list(custom or [])
        #: (urn, name) -> its field (a QCheckBox for booleans, else a QLineEdit).
        self.custom_fields: dict[tuple[str, str], QLineEdit | QCheckBox] = {}
        self.created: dict[str, Any] | None = None
        self.setWindowTitle("Add user")
        self.setMinimumWidth(480)
        layout = QVBoxLayout(self)
        intro = QLabel("Created like Okta's POST /Users, with the same rules.")
        intro.setStyleSheet(message_style("muted"))
        layout.addWidget(intro)
        form = QFormLayout()
        self.user_name = QLineEdit()
        self.user_name.setPlaceholderText("jane.doe@example.com")
        self.given = QLineEdit()
        self.given.setPlaceholderText("Jane")
        self.family = QLineEdit()
        self.family.setPlaceholderText("Doe")
        self.email = QLineEdit()
        self.email.setPlaceholderText("same as userName")
        self.active = QCheckBox("Active")
        self.active.setChecked(True)
        form.addRow("userName", self.user_name)
        form.addRow("Given name", self.given)
        form.addRow("Family name", self.family)
        form.addRow("Email", self.email)
        form.addRow("", self.active)
        for urn, name, kind, description in self.custom:
            field: QLineEdit | QCheckBox
            if kind == "boolean":
                field = QCheckBox()
            else:
                field = QLineEdit()
                field.setPlaceholderText(kind)
            field.setToolTip(f"{description}\n{urn}".strip())
            self.custom_fields[(urn, name)] = field
            form.addRow(name, field)
        layout.addLayout(form)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(message_style("error"))
        self.error.hide()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.create_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.create_button.setText("Create")
        self.buttons.accepted.connect(self.create)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.user_name.textChanged.connect(self._update)
        self._update()

    def _update(self) -> None:
        self.create_button.setEnabled(bool(self.user_name.text().strip()))

    def body(self) -> dict[str, Any]:
        user_name = self.user_name.text().strip()
        email = self.email.text().strip() or (user_name if "@" in user_name else "")
        body = new_user_body(
            user_name, self.given.text(), self.family.text(), email, self.active.isChecked()
        )
        kinds = {(urn, name): kind for urn, name, kind, _ in self.custom}
        for (urn, name), field in self.custom_fields.items():
            if isinstance(field, QCheckBox):
                value: Any = field.isChecked()
                if not value:
                    continue
            else:
                text = field.text().strip()
                if not text:
                    continue
                value = parse_custom(kinds[(urn, name)], text)  # ValueError: said by create()
            body.setdefault(urn, {})[name] = value
            if urn not in body["schemas"]:
                body["schemas"].append(urn)  # RFC 7643 §3: extension URNs in "schemas"
        return body

    def create(self) -> None:
        if not self.user_name.text().strip():
            self.show_error("A userName is required.")
            return
        try:
            body = self.body()
        except ValueError:
            bad = [
                name
                for (urn, name), field in self.custom_fields.items()
                if isinstance(field, QLineEdit) and not _parses(self.custom, urn, name, field)
            ]
            self.show_error(f"{', '.join(bad) or 'A custom attribute'}: not a number.")
            return
        url = base_url(self.controller)
        self.create_button.setEnabled(False)

        def op(svc: ScimService) -> Outcome:
            return svc.create("User", body, url)

        run_on_server(self.controller, op, self._created, self._failed)

    def _created(self, outcome: Outcome) -> None:
        self.created = outcome.resource
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self._update()
        self.show_error(describe_error(exc))

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()


def _parses(custom: list[CustomAttribute], urn: str, name: str, field: QLineEdit) -> bool:
    kind = next((k for u, n, k, _ in custom if (u, n) == (urn, name)), "string")
    try:
        parse_custom(kind, field.text().strip() or "0")
    except ValueError:
        return False
    return True


class UsersView(ResourceViewBase):
    """The Users tab. ``apply_events(events)`` follows the server; ``load_snapshot()`` fills
    it when the server starts. ``model`` (a :class:`UsersModel`) is public for counts."""

    RTYPE = "User"
    NOUN = ("user", "users")
    #: A user was created from this tab (its rendered resource).
    userCreated = Signal(dict)

    def __init__(
        self,
        controller: ServerController,
        parent: QWidget | None = None,
        *,
        fade_ms: int = 2000,
    ) -> None:
        self.model: UsersModel
        super().__init__(controller, UsersModel(fade_ms=fade_ms), parent)
        self.model.setParent(self)
        self.add_dialog: AddUserDialog | None = None
        #: The catalog's custom user attributes (the Add user form gets a field each).
        self.custom_attributes: list[CustomAttribute] = []
        self._detail_shown: dict[str, Any] | None = None
        self.search.setPlaceholderText("Search users…")
        self.search.setToolTip(
            "Matches every column (userName, name, email, externalId, groups, roles, "
            "entitlements, custom attributes…) and the id; "
            "several words must all match"
        )

        self.add_button = QPushButton("Add user…")
        self.edit_button = QPushButton("Edit JSON…")
        self.activate_button = QPushButton("Activate")
        self.deactivate_button = QPushButton("Deactivate")
        self.delete_button = QPushButton("Delete…")
        self.add_button.clicked.connect(self.add_user)
        self.edit_button.clicked.connect(lambda: self.edit_json())
        self.activate_button.clicked.connect(lambda: self.set_active(True))
        self.deactivate_button.clicked.connect(lambda: self.set_active(False))
        self.delete_button.clicked.connect(self.delete_selected)
        self.edit_button.setToolTip("View and edit the selected user as JSON (double-click)")
        self.deactivate_button.setToolTip(
            "PATCH active=false, the request Okta sends when a user is unassigned"
        )
        self.activate_button.setToolTip("PATCH active=true, as Okta does on reactivation")
        self.delete_button.setToolTip(DELETE_NOTE)

        toolbar = QHBoxLayout()
        toolbar.addWidget(self.search)
        toolbar.addSpacing(8)
        for button in (
            self.add_button,
            self.edit_button,
            self.activate_button,
            self.deactivate_button,
            self.delete_button,
        ):
            toolbar.addWidget(button)
        toolbar.addStretch(1)
        toolbar.addWidget(self.count_label)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(toolbar)
        layout.addWidget(self.message)
        # The selected user's grants and custom attributes beside the table (collapsible).
        self.detail = UserDetail()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setCollapsible(0, False)
        self.splitter.setSizes([1100, 300])
        layout.addWidget(self.splitter, 1)

        m = UsersModel
        self.table.set_column_widths(
            (210, 140, 210, 56, 120, 160, 120, 160, 170, 124, 124), stretch=m.GROUPS
        )
        delete = QAction("Delete", self.table)
        delete.setShortcut(QKeySequence.StandardKey.Delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(self.delete_selected)
        self.table.addAction(delete)
        self.update_buttons()
        self.update_counts()

    def empty_text(self) -> str:
        return (
            "No users yet.\nAssign people to the app in Okta and they appear here as Okta "
            "creates them — or use Add user…"
        )

    def update_buttons(self) -> None:
        selected = self.selected_count()
        shown = self.selected_resources()[0] if selected == 1 else None
        if shown is not self._detail_shown:  # a changed user is a new dict
            self._detail_shown = shown
            self.detail.show_user(shown)
        self.edit_button.setEnabled(selected == 1)
        self.delete_button.setEnabled(selected > 0)
        if selected > MAX_SCANNED_SELECTION:
            # Too many to look at on every change: both stay available, and the action
            # only touches the users that need it.
            self.activate_button.setEnabled(True)
            self.deactivate_button.setEnabled(True)
            return
        actives = [self.model.is_active(r) for r in self.selected_rows()]
        self.activate_button.setEnabled(any(not a for a in actives))
        self.deactivate_button.setEnabled(any(actives))

    def fill_context_menu(self, menu: QMenu) -> None:
        rows = self.selected_rows()
        menu.addAction("Edit JSON…", lambda: self.edit_json()).setEnabled(len(rows) == 1)
        menu.addAction("Activate", lambda: self.set_active(True)).setEnabled(
            any(not self.model.is_active(r) for r in rows)
        )
        menu.addAction("Deactivate", lambda: self.set_active(False)).setEnabled(
            any(self.model.is_active(r) for r in rows)
        )
        menu.addAction("Delete…", self.delete_selected).setEnabled(bool(rows))

    # --- actions -------------------------------------------------------------------------
    def add_user(self) -> AddUserDialog:
        """Open the Add user form (window-modal, not blocking); returns it."""
        dialog = AddUserDialog(self.controller, self, self.custom_attributes)
        dialog.accepted.connect(lambda: self._user_created(dialog))
        self.add_dialog = dialog
        dialog.open()
        return dialog

    def set_custom_attributes(self, attributes: list[CustomAttribute]) -> None:
        """The custom user attributes the server's catalog declares (from the Governance
        tab, when the catalog changes)."""
        self.custom_attributes = list(attributes)

    def _user_created(self, dialog: AddUserDialog) -> None:
        if dialog.created is not None:
            self.userCreated.emit(dialog.created)
            # The row arrives with the server's event; select it once it is there.
            self.select_when_shown(str(dialog.created.get("id", "")))

    def set_active(self, active: bool, ids: list[str] | None = None) -> None:
        """Activate or deactivate users (default: the selected ones that need it) with the
        PATCH Okta sends."""
        if ids is None:
            ids = [
                self.model.resource_id(r)
                for r in self.selected_rows()
                if self.model.is_active(r) != active
            ]
        body, url = active_patch(active), base_url(self.controller)
        self._run_bulk(
            ids,
            lambda svc, rid: svc.patch("User", rid, body, url),
            "activate" if active else "deactivate",
        )

    def delete_selected(self) -> bool:
        """Delete the selected users after a confirmation; False if nothing was asked or
        the confirmation was declined."""
        resources = self.selected_resources()
        if not resources:
            return False
        names = [str(r.get("userName") or r.get("id")) for r in resources]
        return self._confirm_and_delete(
            "User", resources, names, f"Delete {names[0]}? {DELETE_NOTE}", DELETE_NOTE
        )
