"""The Users tab: a live table of the users Okta provisioned, with search, sort and edits.

The table follows the server's ResourceChanged events (``apply_events``, connected by the main
window to the bridge's batches); it never re-queries. Edits — add, edit JSON, activate,
deactivate, delete — run on the server thread with the server's rules (see
:mod:`scim_desktop.gui.widgets.json_editor`) and show up through the same events. The table,
search, selection and bulk machinery it shares with the Groups tab is
:class:`~scim_desktop.gui.widgets.resource_view.ResourceViewBase`; this module adds the
users' buttons, the detail pane and the Add user form.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.core.resources import Outcome, ScimService
from scim_desktop.gui.controller import ServerController
from scim_desktop.gui.models.resources import UsersModel
from scim_desktop.gui.widgets.json_editor import (
    base_url,
    describe_error,
    message_style,
    run_on_server,
)
from scim_desktop.gui.widgets.resource_view import PATCH_SCHEMA, ResourceViewBase
from scim_desktop.gui.widgets.user_detail import UserDetail

log = logging.getLogger("scim_desktop.gui")

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
DELETE_NOTE = "Okta never deletes users; this is for cleaning up demos."
#: Above this many selected users the Activate / Deactivate buttons are not worked out row
#: by row on every change.
MAX_SCANNED_SELECTION = 500


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
