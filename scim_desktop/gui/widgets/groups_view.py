"""The Groups tab: groups Okta pushed, their members, and edits through the server's rules.

Left, the live groups table (search, sort); right, the members of the selected group with
Add members… (a searchable multi-select list of the current users) and Remove. Rename, Edit
JSON, Add group and Delete run on the server thread like Okta's own requests (PATCH, PUT,
POST, DELETE), and the tables follow from the server's events.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
)
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.core.resources import Outcome
from scim_desktop.gui import theme
from scim_desktop.gui.controller import ServerController
from scim_desktop.gui.models.resource_table import IdRole, ResourceFilterProxy
from scim_desktop.gui.models.resources import (
    GroupsModel,
    UsersModel,
    full_name,
    primary_email,
)
from scim_desktop.gui.widgets.json_editor import base_url, deliver, describe_error
from scim_desktop.gui.widgets.resource_view import (
    PATCH_SCHEMA,
    ResourceTable,
    ResourceViewBase,
)

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
AnyIndex = QModelIndex | QPersistentModelIndex


def add_members_patch(ids: list[str]) -> dict[str, Any]:
    """Okta's "Push group: add members" PATCH (RFC 7644 §3.5.2.1)."""
    return {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in ids]}],
    }


def remove_members_patch(ids: list[str]) -> dict[str, Any]:
    """Okta's "Push group: remove members" PATCH, one value-path filter per member
    (RFC 7644 §3.5.2.2)."""
    return {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "remove", "path": f'members[value eq "{i}"]'} for i in ids],
    }


def rename_patch(name: str) -> dict[str, Any]:
    """A path-less replace of displayName, as Okta sends when a pushed group is renamed."""
    return {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "value": {"displayName": name}}],
    }


class MembersModel(QAbstractTableModel):
    """The members of one group. Names and emails come from the users table when one is
    given (always current), else the member's ``display``."""

    COLUMNS = ("Member", "Name")

    def __init__(self, users: UsersModel | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.users = users
        self._members: list[dict[str, Any]] = []

    def set_members(self, members: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self._members = [m for m in members if isinstance(m, dict) and m.get("value")]
        self.endResetModel()

    def member_id(self, row: int) -> str:
        return str(self._members[row]["value"])

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._members)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.COLUMNS)
        ):
            return self.COLUMNS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row, column = index.row(), index.column()
        if not (0 <= row < len(self._members) and 0 <= column < len(self.COLUMNS)):
            return None
        member = self._members[row]
        if role == IdRole:
            return str(member["value"])
        if role == Qt.ItemDataRole.ForegroundRole and column > 0:
            return theme.muted_color()
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(member)
        is_group = str(member.get("type", "User")).lower() == "group"
        user = None
        if self.users is not None and not is_group:
            user = self.users.resource_by_id(str(member["value"]))
        if column == 0:
            if user is not None and user.get("userName"):
                return str(user["userName"])
            return str(member.get("display") or member["value"])
        if is_group:
            return "(group)"
        return full_name(user) if user is not None else ""

    def _tooltip(self, member: dict[str, Any]) -> str:
        user = self.users.resource_by_id(str(member["value"])) if self.users else None
        lines = [str(member.get("display") or member["value"])]
        if user is not None:
            email = primary_email(user)
            if email and email != lines[0]:
                lines.append(email)
        lines.append(f"id {member['value']}")
        return "\n".join(lines)


class MemberPickerDialog(QDialog):
    """Pick users to add to a group: a searchable, multi-select list of the current users
    (members already in the group are left out)."""

    def __init__(
        self,
        users: UsersModel,
        exclude: set[str],
        group_name: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.users = users
        self.setWindowTitle(f"Add members to {group_name}")
        self.resize(640, 520)
        layout = QVBoxLayout(self)
        self.search = QLineEdit()
        self.search.setClearButtonEnabled(True)
        self.search.setPlaceholderText("Search users…")
        layout.addWidget(self.search)
        # Sorting here must not reorder the Users tab, which shows the same model.
        self.proxy = ResourceFilterProxy(self, sort_source=False)
        self.proxy.setSourceModel(users)
        self.proxy.set_exclude_ids(exclude)
        self.table = ResourceTable()
        self.table.setModel(self.proxy)
        self.table.setAlternatingRowColors(True)
        for column in range(users.columnCount()):
            keep = column in (UsersModel.USERNAME, UsersModel.NAME, UsersModel.EMAIL)
            self.table.setColumnHidden(column, not keep)
        self.table.set_column_widths((220, 160, 220))
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.empty_text = "No users to add."
        layout.addWidget(self.table, 1)
        self.hint = QLabel()
        layout.addWidget(self.hint)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)
        self._timer.timeout.connect(lambda: self.proxy.set_search(self.search.text()))
        self.search.textChanged.connect(self._timer.start)
        self.table.selectionModel().selectionChanged.connect(self._update)
        self.table.doubleClicked.connect(lambda _index: self.accept())
        self._update()

    def _update(self, *args: Any) -> None:
        n = len(self.selected_ids())
        self.ok_button.setEnabled(n > 0)
        self.ok_button.setText(f"Add {n:,} member{'s' if n != 1 else ''}" if n else "Add")
        self.hint.setText(
            "Select one or more users (Ctrl / Shift for several)." if not n else f"{n:,} selected"
        )

    def select_ids(self, ids: list[str]) -> None:
        """Select these users (for scripts and tests)."""
        selection = self.table.selectionModel()
        selection.clearSelection()
        for rid in ids:
            row = self.users.row_of(rid)
            if row is None:
                continue
            index = self.proxy.mapFromSource(self.users.index(row, 0))
            if index.isValid():
                selection.select(
                    index,
                    selection.SelectionFlag.Select | selection.SelectionFlag.Rows,
                )

    def selected_ids(self) -> list[str]:
        rows = self.proxy.source_rows(self.table.selectionModel().selectedRows())
        return [self.users.resource_id(r) for r in rows]


class GroupsView(ResourceViewBase):
    """The Groups tab. ``apply_events(events)`` follows the server; ``load_snapshot()`` fills
    it when the server starts. Pass the Users tab's model as ``users_model`` to show member
    names and emails and to pick members instantly; without it the picker loads the users
    from the server when opened."""

    RTYPE = "Group"
    NOUN = ("group", "groups")

    def __init__(
        self,
        controller: ServerController,
        parent: QWidget | None = None,
        *,
        users_model: UsersModel | None = None,
        fade_ms: int = 2000,
    ) -> None:
        self.model: GroupsModel
        super().__init__(controller, GroupsModel(fade_ms=fade_ms), parent)
        self.model.setParent(self)
        self.current_id: str | None = None
        self._shown: dict[str, Any] | None = None
        self.picker: MemberPickerDialog | None = None
        self.search.setPlaceholderText("Search groups…")
        self.search.setToolTip(
            "Matches the name, member names, externalId and id; several words must all match"
        )

        self.add_button = QPushButton("Add group…")
        self.rename_button = QPushButton("Rename…")
        self.edit_button = QPushButton("Edit JSON…")
        self.delete_button = QPushButton("Delete…")
        self.add_button.clicked.connect(self.add_group)
        self.rename_button.clicked.connect(self.rename_selected)
        self.edit_button.clicked.connect(lambda: self.edit_json())
        self.delete_button.clicked.connect(self.delete_selected)

        toolbar = QHBoxLayout()
        toolbar.addWidget(self.search)
        toolbar.addSpacing(8)
        for button in (self.add_button, self.rename_button, self.edit_button, self.delete_button):
            toolbar.addWidget(button)
        toolbar.addStretch(1)
        toolbar.addWidget(self.count_label)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(toolbar)
        left_layout.addWidget(self.message)
        left_layout.addWidget(self.table, 1)
        m = GroupsModel
        self.table.set_column_widths((220, 80, 320, 170, 128), stretch=m.MEMBER_NAMES)

        # --- the members panel -------------------------------------------------------------
        right = QWidget()
        panel = QVBoxLayout(right)
        panel.setContentsMargins(8, 0, 0, 0)
        self.members_title = QLabel()
        title_font = QFont(self.members_title.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 1.25)
        title_font.setBold(True)
        self.members_title.setFont(title_font)
        self.members_subtitle = QLabel()
        self.members_subtitle.setStyleSheet(f"color: {theme.muted_color().name()};")
        self.members_search = QLineEdit()
        self.members_search.setClearButtonEnabled(True)
        self.members_search.setPlaceholderText("Filter members…")
        self.members_model = MembersModel(None, self)
        self.members_proxy = QSortFilterProxyModel(self)
        self.members_proxy.setSourceModel(self.members_model)
        self.members_proxy.setFilterKeyColumn(-1)
        self.members_proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.members_proxy.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.members_search.textChanged.connect(self.members_proxy.setFilterFixedString)
        self.members_table = ResourceTable()
        self.members_table.setModel(self.members_proxy)
        self.members_table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.Stretch
        )
        self.members_table.setColumnWidth(1, 170)
        self.members_table.selectionModel().selectionChanged.connect(self.update_buttons)
        self.add_members_button = QPushButton("Add members…")
        self.remove_member_button = QPushButton("Remove")
        self.remove_member_button.setToolTip("Remove the selected members from the group")
        self.add_members_button.clicked.connect(self.open_member_picker)
        self.remove_member_button.clicked.connect(self.remove_selected_members)
        member_buttons = QHBoxLayout()
        member_buttons.addWidget(self.members_search, 1)
        member_buttons.addWidget(self.add_members_button)
        member_buttons.addWidget(self.remove_member_button)
        panel.addWidget(self.members_title)
        panel.addWidget(self.members_subtitle)
        panel.addLayout(member_buttons)
        panel.addWidget(self.members_table, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([880, 520])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.splitter)

        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.users_model = None
        self.set_users_model(users_model)
        self.update_buttons()
        self.update_counts()
        self._show_members()

    def set_users_model(self, users_model: UsersModel | None) -> None:
        """Use the Users tab's model for member names and the member picker (the main window
        passes ``users.model``). Without one, the panel shows each member's ``display`` and
        the picker fetches the users from the server when opened."""
        if self.users_model is not None:
            for signal in (
                self.users_model.dataChanged,
                self.users_model.rowsInserted,
                self.users_model.modelReset,
            ):
                signal.disconnect(self._users_changed)
        self.users_model = users_model
        self.members_model.users = users_model
        # The Name column needs the users table; without it only the member column is shown.
        self.members_table.setColumnHidden(1, users_model is None)
        if users_model is not None:
            # Names follow the users table.
            users_model.dataChanged.connect(self._users_changed)
            users_model.rowsInserted.connect(self._users_changed)
            users_model.modelReset.connect(self._users_changed)
        self._users_changed()

    def empty_text(self) -> str:
        return "No groups yet.\nPush groups from Okta (Push Groups tab) or use Add group…"

    # --- events ------------------------------------------------------------------------
    def apply_events(self, events: list) -> None:
        super().apply_events(events)
        self._refresh_members()

    def _snapshot_loaded(self, snapshot: dict[str, list[dict[str, Any]]]) -> None:
        super()._snapshot_loaded(snapshot)
        self._refresh_members()

    def _users_changed(self, *args: Any) -> None:
        self.members_table.viewport().update()

    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        source = self.proxy.mapToSource(current)
        self.current_id = self.model.resource_id(source.row()) if source.isValid() else None
        self.members_search.clear()
        self._show_members()

    def _refresh_members(self) -> None:
        """Show the current group's members again if the group changed or went away."""
        group = self.model.resource_by_id(self.current_id) if self.current_id else None
        if group is not self._shown:
            self._show_members()

    def current_group(self) -> dict[str, Any] | None:
        return self.model.resource_by_id(self.current_id) if self.current_id else None

    def _show_members(self) -> None:
        group = self.current_group()
        self._shown = group
        if group is None:
            self.current_id = None
            self.members_title.setText("Members")
            self.members_subtitle.setText("Select a group to see its members.")
            self.members_model.set_members([])
            self.members_table.empty_text = ""
        else:
            members = group.get("members") or []
            n = len(members)
            self.members_title.setText(str(group.get("displayName") or group.get("id")))
            self.members_subtitle.setText(f"{n:,} member{'s' if n != 1 else ''}")
            self.members_model.set_members(members)
            self.members_table.empty_text = "No members yet. Use Add members… to add some."
        self.update_buttons()

    # --- buttons -----------------------------------------------------------------------
    def update_buttons(self, *args: Any) -> None:
        rows = self.selected_rows()
        self.rename_button.setEnabled(len(rows) == 1)
        self.edit_button.setEnabled(len(rows) == 1)
        self.delete_button.setEnabled(bool(rows))
        has_group = self.current_group() is not None
        self.add_members_button.setEnabled(has_group)
        self.remove_member_button.setEnabled(has_group and bool(self.selected_member_ids()))

    def fill_context_menu(self, menu: QMenu) -> None:
        rows = self.selected_rows()
        menu.addAction("Rename…", self.rename_selected).setEnabled(len(rows) == 1)
        menu.addAction("Edit JSON…", lambda: self.edit_json()).setEnabled(len(rows) == 1)
        menu.addAction("Add members…", self.open_member_picker).setEnabled(len(rows) == 1)
        menu.addAction("Delete…", self.delete_selected).setEnabled(bool(rows))

    def selected_member_ids(self) -> list[str]:
        selection = self.members_table.selectionModel()
        if selection is None:
            return []
        rows = {self.members_proxy.mapToSource(i).row() for i in selection.selectedRows()}
        return [self.members_model.member_id(r) for r in sorted(rows) if r >= 0]

    def select_members(self, ids: list[str]) -> None:
        """Select these members in the members panel (for scripts and tests)."""
        selection = self.members_table.selectionModel()
        selection.clearSelection()
        wanted = set(ids)
        for row in range(self.members_proxy.rowCount()):
            index = self.members_proxy.index(row, 0)
            if index.data(IdRole) in wanted:
                flags = selection.SelectionFlag.Select | selection.SelectionFlag.Rows
                selection.select(index, flags)

    # --- actions -----------------------------------------------------------------------
    def add_group(self) -> None:
        name, ok = QInputDialog.getText(self, "Add group", "Group name (displayName):")
        if ok and name.strip():
            self.create_group(name.strip())

    def create_group(self, name: str) -> None:
        body = {"schemas": [GROUP_SCHEMA], "displayName": name}
        url = base_url(self.controller)

        def created(outcome: Outcome) -> None:
            self.message.hide()
            if outcome.resource is not None:
                self.select_when_shown(str(outcome.resource["id"]))

        self._run(lambda svc: svc.create("Group", body, url), created, "Could not add the group:")

    def rename_selected(self) -> None:
        resources = self.selected_resources()
        if len(resources) != 1:
            return
        group = resources[0]
        current = str(group.get("displayName") or "")
        name, ok = QInputDialog.getText(
            self, "Rename group", "New name (displayName):", QLineEdit.EchoMode.Normal, current
        )
        if ok and name.strip() and name.strip() != current:
            self.rename(str(group["id"]), name.strip())

    def rename(self, group_id: str, name: str) -> None:
        body, url = rename_patch(name), base_url(self.controller)
        self._run_bulk([group_id], lambda svc, rid: svc.patch("Group", rid, body, url), "rename")

    def delete_selected(self) -> bool:
        resources = self.selected_resources()
        if not resources:
            return False
        names = [str(r.get("displayName") or r.get("id")) for r in resources]
        n = len(resources[0].get("members") or [])
        one = (
            f"Delete group {names[0]}? Its {n:,} member{'s are' if n != 1 else ' is'} not deleted."
        )
        return self._confirm_and_delete(
            "Group", resources, names, one, "Their members are not deleted."
        )

    def open_member_picker(self) -> None:
        """Open the member picker for the current group (window-modal, not blocking); when
        there is no users table to pick from, the users are fetched from the server first."""
        group = self.current_group()
        if group is None:
            return
        if self.users_model is not None:
            self._open_picker(group, self.users_model)
            return
        server = self.controller.server
        if server is None:
            self.message.show_message(describe_error(RuntimeError("not running")))
            return

        def loaded(snapshot: dict[str, list[dict[str, Any]]]) -> None:
            users = UsersModel(self)
            users.load(snapshot.get("User", []))
            self._open_picker(group, users)

        def failed(exc: BaseException) -> None:
            self.message.show_message(f"Could not load the users: {describe_error(exc)}")

        deliver(self.controller, server.snapshot(("User",)), loaded, failed)

    def _open_picker(self, group: dict[str, Any], users: UsersModel) -> None:
        existing = {str(m.get("value")) for m in group.get("members") or []}
        name = str(group.get("displayName") or group.get("id"))
        picker = MemberPickerDialog(users, existing, name, self)
        group_id = str(group["id"])
        picker.accepted.connect(lambda: self.add_members(group_id, picker.selected_ids()))
        self.picker = picker
        picker.open()

    def add_members(self, group_id: str, user_ids: list[str]) -> None:
        if not user_ids:
            return
        body, url = add_members_patch(user_ids), base_url(self.controller)
        self._run_bulk(
            [group_id], lambda svc, rid: svc.patch("Group", rid, body, url), "add members to"
        )

    def remove_selected_members(self) -> None:
        group = self.current_group()
        ids = self.selected_member_ids()
        if group is not None and ids:
            self.remove_members(str(group["id"]), ids)

    def remove_members(self, group_id: str, user_ids: list[str]) -> None:
        if not user_ids:
            return
        body, url = remove_members_patch(user_ids), base_url(self.controller)
        self._run_bulk(
            [group_id],
            lambda svc, rid: svc.patch("Group", rid, body, url),
            "remove members from",
        )


__all__ = [
    "GroupsView",
    "MemberPickerDialog",
    "MembersModel",
    "add_members_patch",
    "remove_members_patch",
    "rename_patch",
]
