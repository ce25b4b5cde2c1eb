"""The Governance tab's parts: catalog helpers, the holders list model and the add dialogs.

The catalog is handled in its file form (``Catalog.to_json()``, a dict); these helpers read it
the way Okta does (a type's ``schema`` decides whether ``roles`` or ``entitlements`` grants
its values, Okta's entitlement management guide).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.gui import theme
from scim_desktop.gui.models.resources import UsersModel, full_name
from scim_desktop.gui.widgets.json_editor import message_style

log = logging.getLogger("scim_desktop.gui")

ROLE_SCHEMA = "urn:okta:scim:schemas:core:1.0:Role"
ENTITLEMENT_SCHEMA = "urn:okta:scim:schemas:core:1.0:Entitlement"
CATALOG_FILTER = "Catalog files (*.json);;All files (*)"
NOT_RUNNING = "Start the server first: the catalog lives in it."

# What a tree item is (ItemRole holds (kind, type id, key)).
ItemRole = Qt.ItemDataRole.UserRole + 1
TYPE, VALUE, EXT_GROUP, EXT_ATTR, USER_GROUP, USER_ATTR = (
    "type",
    "value",
    "ext-group",
    "ext-attr",
    "user-group",
    "user-attr",
)
NAME_COL, ID_COL, HOLDERS_COL, DETAILS_COL = range(4)

AnyIndex = QModelIndex | QPersistentModelIndex


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def slug(name: str) -> str:
    """An id for a new value or type from its name ("Billing Admin" -> "billing-admin")."""
    text = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")
    return text or "value"


def grant_attribute(rtype: dict[str, Any]) -> str:
    """Which user attribute grants values of this type: ``roles`` for Okta's Role schema,
    ``entitlements`` for every other type (Okta's entitlement management guide)."""
    return "roles" if rtype.get("schema") == ROLE_SCHEMA else "entitlements"


def type_keys(rtype: dict[str, Any]) -> tuple[str, ...]:
    """What an entitlement's ``type`` may say to name this type: its id or its name."""
    return tuple(k for k in (as_text(rtype.get("id")), as_text(rtype.get("name"))) if k)


def schema_attributes(catalog: dict[str, Any], urn: str) -> list[dict[str, Any]]:
    for schema in catalog.get("schemas") or []:
        if isinstance(schema, dict) and schema.get("id") == urn:
            return [a for a in schema.get("attributes") or [] if isinstance(a, dict)]
    return []


def describe_attribute(attribute: dict[str, Any]) -> str:
    parts = [as_text(attribute.get("type")) or "string"]
    if attribute.get("multiValued"):
        parts.append("multi-valued")
    if attribute.get("required"):
        parts.append("required")
    description = as_text(attribute.get("description"))
    return " · ".join(parts) + (f" — {description}" if description else "")


def blank_extension(catalog: dict[str, Any], urn: str) -> dict[str, Any]:
    """An extension object for a new value: each declared attribute with an empty value of
    its type (the admin fills them in the catalog file; Okta shows them as they are)."""
    empty: dict[str, Any] = {"boolean": False, "integer": 0, "decimal": 0}
    return {
        as_text(a.get("name")): empty.get(as_text(a.get("type")), "")
        for a in schema_attributes(catalog, urn)
        if as_text(a.get("name"))
    }


class HoldersModel(QAbstractListModel):
    """The users holding one value, by userName; rows are user ids into the users model."""

    def __init__(self, users: UsersModel, parent: Any = None) -> None:
        super().__init__(parent)
        self.users = users
        self._ids: list[str] = []

    def set_ids(self, ids: list[str]) -> None:
        def key(uid: str) -> str:
            user = self.users.resource_by_id(uid) or {}
            return as_text(user.get("userName")).casefold() or uid

        ordered = sorted(ids, key=key)
        if ordered == self._ids:
            return
        self.beginResetModel()
        self._ids = ordered
        self.endResetModel()

    def ids(self) -> list[str]:
        return list(self._ids)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._ids)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._ids):
            return None
        uid = self._ids[index.row()]
        user = self.users.resource_by_id(uid) or {}
        if role == Qt.ItemDataRole.DisplayRole:
            name = full_name(user)
            user_name = as_text(user.get("userName")) or uid
            return f"{user_name}   ·   {name}" if name else user_name
        if role == Qt.ItemDataRole.ForegroundRole and user.get("active", True) is False:
            return theme.muted_color()
        if role == Qt.ItemDataRole.ToolTipRole:
            inactive = " (deactivated)" if user.get("active", True) is False else ""
            return f"{as_text(user.get('userName'))}{inactive}\nid {uid}"
        if role == Qt.ItemDataRole.UserRole:
            return uid
        return None


class AddValueDialog(QDialog):
    """Name, id and description of a new value (the id follows the name until edited)."""

    def __init__(self, type_name: str, taken: set[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Add a value to {type_name}")
        self.setMinimumWidth(440)
        self.taken = taken
        self._id_edited = False
        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setPlaceholderText("Billing Administrator")
        self.value_id = QLineEdit()
        self.value_id.setPlaceholderText("billing-administrator")
        self.description = QLineEdit()
        form.addRow("Display name", self.name)
        form.addRow("id", self.value_id)
        form.addRow("Description", self.description)
        layout = QVBoxLayout(self)
        intro = QLabel("Okta reads the new value on its next entitlement import.")
        intro.setStyleSheet(message_style("muted"))
        layout.addWidget(intro)
        layout.addLayout(form)
        self.error = QLabel()
        self.error.setStyleSheet(message_style("error"))
        self.error.hide()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.name.textChanged.connect(self._name_changed)
        self.value_id.textEdited.connect(lambda: setattr(self, "_id_edited", True))

    def _name_changed(self, text: str) -> None:
        if not self._id_edited:
            base = slug(text)
            candidate, n = base, 2
            while candidate in self.taken:
                candidate, n = f"{base}-{n}", n + 1
            self.value_id.setText(candidate if text.strip() else "")

    def _accept(self) -> None:
        if not self.name.text().strip() or not self.value_id.text().strip():
            self.error.setText("A display name and an id are needed.")
            self.error.show()
        elif self.value_id.text().strip() in self.taken:
            self.error.setText(f"The id {self.value_id.text().strip()} is taken in this type.")
            self.error.show()
        else:
            self.accept()


class AddTypeDialog(QDialog):
    """A new resource type: name, kind (Role or another entitlement), endpoint."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add an entitlement type")
        self.setMinimumWidth(480)
        self._endpoint_edited = False
        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setPlaceholderText("License")
        self.kind = QComboBox()
        self.kind.addItem("Entitlement (granted through entitlements)", ENTITLEMENT_SCHEMA)
        self.kind.addItem("Role (granted through roles)", ROLE_SCHEMA)
        self.endpoint = QLineEdit()
        self.endpoint.setPlaceholderText("/Licenses")
        self.description = QLineEdit()
        form.addRow("Name", self.name)
        form.addRow("Kind", self.kind)
        form.addRow("Endpoint", self.endpoint)
        form.addRow("Description", self.description)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Served in /ResourceTypes; Okta lists its values on the app's Governance tab."
        )
        intro.setStyleSheet(message_style("muted"))
        layout.addWidget(intro)
        layout.addLayout(form)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add type")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.name.textChanged.connect(self._name_changed)
        self.endpoint.textEdited.connect(lambda: setattr(self, "_endpoint_edited", True))

    def _name_changed(self, text: str) -> None:
        if not self._endpoint_edited:
            words = re.sub(r"[^A-Za-z0-9]+", "", text.title())
            self.endpoint.setText(f"/{words}s" if words else "")
