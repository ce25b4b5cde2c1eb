"""The Governance tab: the app's entitlement catalog, and who holds each value.

Okta Identity Governance reads the catalog the way this tab shows it: each resource type the
app declares in ``/ResourceTypes`` (Roles, Licenses, Profiles…), every value behind its
endpoint, the extension attributes those values carry, and the custom user attributes from
``/Schemas``. The left side is that catalog as an editable tree; the right side answers "who
holds this?" (click a value) and "what does this user hold?" (click a holder), live as Okta
grants and revokes.

The catalog is edited in its JSON file form (``Catalog.to_json()``): every edit builds the
new document, checks it with the server's own parser (so a refusal is the same one line a bad
``--catalog`` file gets) and replaces the server's catalog through
``ServerThread.set_catalog``, delivered back with :func:`deliver` (the GUI never waits). The
server then publishes ``ResourceChanged(rtype="Catalog")``, which every window (and this tab)
follows. Holders come from :class:`HolderIndex`, which follows the Users table's model.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.gui import theme
from scim_desktop.gui.controller import ServerController
from scim_desktop.gui.models.governance import HolderIndex
from scim_desktop.gui.models.resources import UsersModel, custom_text
from scim_desktop.gui.widgets.governance_parts import (
    CATALOG_FILTER,
    DETAILS_COL,
    EXT_ATTR,
    EXT_GROUP,
    HOLDERS_COL,
    ID_COL,
    NAME_COL,
    NOT_RUNNING,
    TYPE,
    USER_ATTR,
    USER_GROUP,
    VALUE,
    AddTypeDialog,
    AddValueDialog,
    HoldersModel,
    ItemRole,
    as_text,
    blank_extension,
    describe_attribute,
    grant_attribute,
    schema_attributes,
    slug,
    type_keys,
)
from scim_desktop.gui.widgets.json_editor import deliver, describe_error, message_style
from scim_desktop.gui.widgets.resource_view import MessageBar
from scim_desktop.server.events import ResourceChanged

log = logging.getLogger("scim_desktop.gui")


class GovernanceView(QWidget):
    """The Governance tab. ``load()`` asks the running server for its catalog;
    ``apply_events(events)`` follows catalog changes; the holder lists follow ``users``."""

    #: The catalog's custom user attributes changed: a list of (urn, name, type, description).
    customAttributesChanged = Signal(list)

    def __init__(
        self, controller: ServerController, users: UsersModel, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.users = users
        #: The catalog in its file form, or None (no catalog on this server).
        self.catalog: dict[str, Any] | None = None
        self.index = HolderIndex(users, self)
        self.index.changed.connect(self._holders_changed)
        self.index.users_changed.connect(self._users_changed)
        self._updating_tree = False
        self._selected: tuple[str, str, str] | None = None
        self._value_items: dict[tuple[str, str], QTreeWidgetItem] = {}
        self._types_of_value: dict[str, list[str]] = {}  # value id -> ids of its types
        self.last_dialog: QDialog | None = None

        # Toolbar.
        self.add_type_button = QPushButton("Add type…")
        self.add_value_button = QPushButton("Add value…")
        self.rename_button = QPushButton("Rename")
        self.delete_button = QPushButton("Delete…")
        self.import_button = QPushButton("Import catalog…")
        self.export_button = QPushButton("Export catalog…")
        self.add_type_button.clicked.connect(self.ask_add_type)
        self.add_value_button.clicked.connect(self.ask_add_value)
        self.rename_button.clicked.connect(self.start_rename)
        self.delete_button.clicked.connect(self.ask_delete)
        self.import_button.clicked.connect(self.ask_import)
        self.export_button.clicked.connect(self.ask_export)
        self.add_value_button.setToolTip("Add a value to the selected type")
        self.rename_button.setToolTip("Rename the selected value (F2, or double-click its name)")
        self.import_button.setToolTip("Replace the catalog with a catalog file (--catalog format)")
        self.export_button.setToolTip("Save the catalog as a file for --catalog")
        self.summary = QLabel()
        self.summary.setStyleSheet(message_style("muted"))
        toolbar = QHBoxLayout()
        for button in (
            self.add_type_button,
            self.add_value_button,
            self.rename_button,
            self.delete_button,
        ):
            toolbar.addWidget(button)
        toolbar.addSpacing(16)
        toolbar.addWidget(self.import_button)
        toolbar.addWidget(self.export_button)
        toolbar.addStretch(1)
        toolbar.addWidget(self.summary)
        self.message = MessageBar()

        # The catalog tree.
        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Catalog", "id", "Holders", "Details"])
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAnimated(False)
        self.tree.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        header = self.tree.header()
        header.setStretchLastSection(True)
        header.resizeSection(NAME_COL, 280)
        header.resizeSection(ID_COL, 190)
        header.resizeSection(HOLDERS_COL, 76)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(DETAILS_COL, QHeaderView.ResizeMode.Stretch)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.currentItemChanged.connect(self._current_changed)
        delete = QAction("Delete", self.tree)
        delete.setShortcut(QKeySequence.StandardKey.Delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(self.ask_delete)
        self.tree.addAction(delete)

        # Holders of the selected value, and the grants of the selected holder.
        self.holders_title = QLabel()
        title_font = QFont(self.holders_title.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 1.25)
        title_font.setBold(True)
        self.holders_title.setFont(title_font)
        self.holders_title.setWordWrap(True)
        self.holders_subtitle = QLabel()
        self.holders_subtitle.setStyleSheet(message_style("muted"))
        self.holders_subtitle.setWordWrap(True)
        self.holders_model = HoldersModel(users, self)
        self.holders = QListView()
        self.holders.setModel(self.holders_model)
        self.holders.setUniformItemSizes(True)
        self.holders.setAlternatingRowColors(True)
        self.holders.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.holders.selectionModel().currentChanged.connect(self._holder_changed)
        self.grants_title = QLabel()
        self.grants_title.setStyleSheet("font-weight: 600;")
        self.user_attributes = QLabel()
        self.user_attributes.setStyleSheet(message_style("muted"))
        self.user_attributes.setWordWrap(True)
        self.grants = QTreeWidget()
        self.grants.setHeaderLabels(["Grant", "Type", "value"])
        self.grants.setRootIsDecorated(False)
        self.grants.setUniformRowHeights(True)
        self.grants.header().resizeSection(0, 200)
        self.grants.header().resizeSection(1, 110)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(12, 4, 4, 4)
        side_layout.addWidget(self.holders_title)
        side_layout.addWidget(self.holders_subtitle)
        side_layout.addWidget(self.holders, 3)
        side_layout.addSpacing(6)
        side_layout.addWidget(self.grants_title)
        side_layout.addWidget(self.user_attributes)
        side_layout.addWidget(self.grants, 2)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.tree)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([820, 520])

        # Without a catalog: what the tab is for and how to get one.
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setTextFormat(Qt.TextFormat.RichText)
        self.empty.setText(
            "<p style='font-size:15pt; font-weight:600'>No entitlement catalog on this server</p>"
            "<p>With Okta Identity Governance, Okta reads the app's roles, licenses and other "
            "entitlements from <code>/ResourceTypes</code> and grants them to users.</p>"
            "<p>Import a catalog file, add a type, or use <b>Demo → Load demo data</b>.</p>"
        )
        self.empty.setStyleSheet(message_style("muted"))
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(splitter)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(toolbar)
        layout.addWidget(self.message)
        layout.addWidget(self.stack, 1)
        # Roomier rows than the 10,000-row tables: a catalog and a holder list are read, not
        # scanned (and demoed on a projector).
        self.setStyleSheet(
            "QTreeWidget::item, QListView::item { padding: 3px 2px; }"
            "QHeaderView::section { padding: 3px 4px; }"
        )
        self._show_selection()
        self._update_buttons()

    # --- the catalog from the server -----------------------------------------------------------
    def load(self) -> None:
        """Ask the running server for its catalog (when it starts); returns at once."""
        server = self.controller.server
        if server is None or not hasattr(server, "catalog"):
            return
        deliver(self.controller, server.catalog(), self._loaded, self._load_failed)

    def _loaded(self, catalog: Any) -> None:
        self.set_catalog_json(None if catalog is None else catalog.to_json())

    def _load_failed(self, exc: BaseException) -> None:
        self.message.show_message(f"Could not read the catalog: {describe_error(exc)}")

    def apply_events(self, events: list) -> None:
        """One bridge batch: the last catalog change in it, if any, replaces the tree."""
        latest: Any = False
        for event in events:
            if isinstance(event, ResourceChanged) and event.rtype == "Catalog":
                latest = event.resource if event.kind != "deleted" else None
        if latest is not False:
            self.set_catalog_json(latest if isinstance(latest, dict) else None)

    def set_catalog_json(self, catalog: dict[str, Any] | None) -> None:
        has_types = bool(catalog and (catalog.get("resourceTypes") or catalog.get("schemas")))
        self.catalog = copy.deepcopy(catalog) if has_types else None
        self._rebuild_tree()
        self.customAttributesChanged.emit(self.custom_attributes())

    def custom_attributes(self) -> list[tuple[str, str, str, str]]:
        """The catalog's custom user attributes: (schema URN, name, type, description)."""
        catalog = self.catalog or {}
        return [
            (
                as_text(e.get("schema")),
                as_text(a.get("name")),
                as_text(a.get("type")) or "string",
                as_text(a.get("description")),
            )
            for e in catalog.get("userSchemaExtensions") or []
            if isinstance(e, dict)
            for a in schema_attributes(catalog, as_text(e.get("schema")))
            if as_text(a.get("name")) and not a.get("multiValued") and a.get("type") != "complex"
        ]

    # --- the tree ------------------------------------------------------------------------------
    def types(self) -> list[dict[str, Any]]:
        if self.catalog is None:
            return []
        return [t for t in self.catalog.get("resourceTypes") or [] if isinstance(t, dict)]

    def find_type(self, type_id: str) -> dict[str, Any] | None:
        return next((t for t in self.types() if t.get("id") == type_id), None)

    def _rebuild_tree(self) -> None:
        selected = self._selected
        self._updating_tree = True
        self.tree.clear()
        self._value_items.clear()
        self._types_of_value.clear()
        catalog = self.catalog
        self.stack.setCurrentIndex(0 if catalog is None else 1)
        bold = QFont(self.tree.font())
        bold.setBold(True)
        italic = QFont(self.tree.font())
        italic.setItalic(True)
        muted = theme.muted_color()
        restore: QTreeWidgetItem | None = None
        for rtype in self.types():
            type_id = as_text(rtype.get("id"))
            values = [v for v in rtype.get("resources") or [] if isinstance(v, dict)]
            kind = "Role" if grant_attribute(rtype) == "roles" else "Entitlement"
            item = QTreeWidgetItem(
                [
                    as_text(rtype.get("name")) or type_id,
                    type_id,
                    "",
                    f"{kind} · {as_text(rtype.get('endpoint'))} · {len(values):,} "
                    f"value{'s' if len(values) != 1 else ''}"
                    + (f" — {rtype['description']}" if as_text(rtype.get("description")) else ""),
                ]
            )
            item.setFont(NAME_COL, bold)
            item.setData(NAME_COL, ItemRole, (TYPE, type_id, ""))
            item.setToolTip(DETAILS_COL, item.text(DETAILS_COL))
            self.tree.addTopLevelItem(item)
            if selected == (TYPE, type_id, ""):
                restore = item
            extensions = [
                as_text(e.get("schema"))
                for e in rtype.get("schemaExtensions") or []
                if isinstance(e, dict)
            ]
            for value in values:
                vid = as_text(value.get("id"))
                details = as_text(value.get("description"))
                extra = [
                    f"{k}: {v}"
                    for urn in extensions
                    if isinstance(value.get(urn), dict)
                    for k, v in value[urn].items()
                ]
                if extra:
                    details = " · ".join([details, *extra] if details else extra)
                child = QTreeWidgetItem(
                    [as_text(value.get("displayName")) or vid, vid, "", details]
                )
                child.setData(NAME_COL, ItemRole, (VALUE, type_id, vid))
                child.setFlags(child.flags() | Qt.ItemFlag.ItemIsEditable)
                child.setForeground(ID_COL, muted)
                child.setTextAlignment(HOLDERS_COL, Qt.AlignmentFlag.AlignCenter)
                child.setToolTip(DETAILS_COL, details)
                item.addChild(child)
                self._value_items[(type_id, vid)] = child
                self._types_of_value.setdefault(vid, []).append(type_id)
                if selected == (VALUE, type_id, vid):
                    restore = child
            for urn in extensions:
                group = QTreeWidgetItem(["Extension attributes", "", "", urn])
                group.setFont(NAME_COL, italic)
                group.setForeground(DETAILS_COL, muted)
                group.setData(NAME_COL, ItemRole, (EXT_GROUP, type_id, urn))
                item.addChild(group)
                for attribute in schema_attributes(catalog or {}, urn):
                    leaf = QTreeWidgetItem(
                        [as_text(attribute.get("name")), "", "", describe_attribute(attribute)]
                    )
                    leaf.setData(NAME_COL, ItemRole, (EXT_ATTR, type_id, urn))
                    group.addChild(leaf)
                group.setExpanded(True)
            item.setExpanded(True)
        user_extensions = [
            e for e in (catalog or {}).get("userSchemaExtensions") or [] if isinstance(e, dict)
        ]
        if user_extensions:
            group = QTreeWidgetItem(["User profile attributes", "", "", "custom user attributes"])
            group.setFont(NAME_COL, bold)
            group.setData(NAME_COL, ItemRole, (USER_GROUP, "", ""))
            self.tree.addTopLevelItem(group)
            for extension in user_extensions:
                urn = as_text(extension.get("schema"))
                for attribute in schema_attributes(catalog or {}, urn):
                    leaf = QTreeWidgetItem(
                        [
                            as_text(attribute.get("name")),
                            "",
                            "",
                            f"{describe_attribute(attribute)}  ({urn})",
                        ]
                    )
                    leaf.setData(NAME_COL, ItemRole, (USER_ATTR, "", urn))
                    leaf.setToolTip(DETAILS_COL, urn)
                    group.addChild(leaf)
            group.setExpanded(True)
        self._refresh_counts(None)
        self._updating_tree = False
        if restore is not None:
            self.tree.setCurrentItem(restore)
        else:
            self._selected = None
        self._update_summary()
        self._show_selection()
        self._update_buttons()

    def _refresh_counts(self, keys: set[tuple[str, str]] | None) -> None:
        """Holder counts of the values whose holders changed (None: every value). Looked up
        by key, so a few grants cost a few items even with a catalog of 10,000 values."""
        was = self._updating_tree
        self._updating_tree = True
        types = {as_text(t.get("id")): t for t in self.types()}
        if keys is None:
            touched = list(self._value_items.items())
        else:
            touched = []
            for attribute, vid in keys:
                for type_id in self._types_of_value.get(vid, ()):
                    if grant_attribute(types.get(type_id, {})) == attribute:
                        touched.append(((type_id, vid), self._value_items[(type_id, vid)]))
        for (type_id, vid), item in touched:
            rtype = types.get(type_id, {})
            count = self.index.count(grant_attribute(rtype), vid, type_keys(rtype))
            item.setText(HOLDERS_COL, f"{count:,}")
        self._updating_tree = was

    def _update_summary(self) -> None:
        types = self.types()
        if self.catalog is None:
            self.summary.setText("")
            return
        values = sum(len(t.get("resources") or []) for t in types)
        holders = self.index.users_with_grants()
        self.summary.setText(
            f"{len(types):,} types · {values:,} values · {holders:,} users with grants"
        )

    def value_item(self, type_id: str, vid: str) -> QTreeWidgetItem | None:
        return self._value_items.get((type_id, vid))

    # --- selection: holders and grants ---------------------------------------------------------
    def select_value(self, type_id: str, vid: str) -> bool:
        item = self._value_items.get((type_id, vid))
        if item is None:
            return False
        self.tree.setCurrentItem(item)
        return True

    def show_busiest_value(self) -> bool:
        """Select the value with the most holders and its first holder (the screenshot's
        view of the tab); False without any value."""
        self.flush()
        best: tuple[int, str, str] | None = None
        for type_id, vid in self._value_items:
            rtype = self.find_type(type_id) or {}
            count = self.index.count(grant_attribute(rtype), vid, type_keys(rtype))
            if best is None or count > best[0]:
                best = (count, type_id, vid)
        if best is None:
            return False
        self.select_value(best[1], best[2])
        ids = self.holders_model.ids()
        if ids:
            self.select_holder(ids[0])
        return True

    def _current_changed(self, current: QTreeWidgetItem | None, *args: Any) -> None:
        if self._updating_tree:
            return
        data = current.data(NAME_COL, ItemRole) if current is not None else None
        self._selected = tuple(data) if data else None  # type: ignore[assignment]
        self._show_selection()
        self._update_buttons()

    def _show_selection(self) -> None:
        selected = self._selected
        if selected is None or selected[0] != VALUE:
            self.holders_model.set_ids([])
            if selected is not None and selected[0] == TYPE:
                rtype = self.find_type(selected[1]) or {}
                self.holders_title.setText(as_text(rtype.get("name")) or selected[1])
                self.holders_subtitle.setText("Select a value to see who holds it.")
            else:
                self.holders_title.setText("Who holds what")
                self.holders_subtitle.setText(
                    "Select a value to see its holders; select a holder to see all its grants."
                )
            self._show_grants(None)
            return
        _kind, type_id, vid = selected
        rtype = self.find_type(type_id) or {}
        value = next((v for v in rtype.get("resources") or [] if v.get("id") == vid), {})
        ids = self.index.holders(grant_attribute(rtype), vid, type_keys(rtype))
        current = self.holders.currentIndex()
        holder = current.data(Qt.ItemDataRole.UserRole) if current.isValid() else None
        self.holders_model.set_ids(ids)
        if holder is not None and not self.holders.currentIndex().isValid():
            self.select_holder(holder)  # a refresh keeps the holder the admin clicked
        self.holders_title.setText(as_text(value.get("displayName")) or vid)
        n = len(ids)
        self.holders_subtitle.setText(
            f"{as_text(rtype.get('name')) or type_id} · granted through "
            f"{grant_attribute(rtype)} · {n:,} holder{'s' if n != 1 else ''}"
        )
        current = self.holders.currentIndex()
        self._show_grants(current.data(Qt.ItemDataRole.UserRole) if current.isValid() else None)

    def _holder_changed(self, current: QModelIndex, *args: Any) -> None:
        self._show_grants(current.data(Qt.ItemDataRole.UserRole) if current.isValid() else None)

    def select_holder(self, uid: str) -> bool:
        ids = self.holders_model.ids()
        if uid not in ids:
            return False
        self.holders.setCurrentIndex(self.holders_model.index(ids.index(uid)))
        return True

    def _show_grants(self, uid: str | None) -> None:
        self.grants.clear()
        self.user_attributes.hide()
        if uid is None:
            self.grants_title.setText("Grants")
            self.grants.setDisabled(True)
            return
        self.grants.setDisabled(False)
        user = self.users.resource_by_id(uid) or {}
        grants = self.index.grants(uid)
        self.grants_title.setText(
            f"Grants of {as_text(user.get('userName')) or uid} ({len(grants):,})"
        )
        custom = custom_text(user)
        if custom:
            self.user_attributes.setText(f"Custom attributes: {custom}")
            self.user_attributes.show()
        known = self._catalog_values()
        for attribute, value, kind, display in grants:
            type_name = kind or ("Role" if attribute == "roles" else "")
            item = QTreeWidgetItem([display, type_name, value])
            item.setForeground(2, theme.muted_color())
            if (attribute, value) not in known:
                # Removed from the catalog after it was granted: the server keeps the grant
                # (the user still holds it) until Okta or an admin revokes it.
                item.setText(0, f"{display}  (not in the catalog)")
                item.setForeground(0, theme.status_color(500))
                item.setToolTip(0, "No longer in the catalog; the user still holds it")
            self.grants.addTopLevelItem(item)

    def _catalog_values(self) -> set[tuple[str, str]]:
        return {
            (grant_attribute(t), as_text(v.get("id")))
            for t in self.types()
            for v in t.get("resources") or []
            if isinstance(v, dict)
        }

    def grant_texts(self) -> list[str]:
        """The shown grants of the selected holder, as display names (for tests)."""
        return [self.grants.topLevelItem(i).text(0) for i in range(self.grants.topLevelItemCount())]

    def _holders_changed(self, keys: set[tuple[str, str]]) -> None:
        self._refresh_counts(keys or None)
        self._update_summary()
        selected = self._selected
        if selected is not None and selected[0] == VALUE:
            rtype = self.find_type(selected[1]) or {}
            if not keys or (grant_attribute(rtype), selected[2]) in keys:
                self._show_selection()
        elif not keys:
            self._show_selection()

    def _users_changed(self, uids: set[str]) -> None:
        current = self.holders.currentIndex()
        uid = current.data(Qt.ItemDataRole.UserRole) if current.isValid() else None
        if uid in uids:
            self._show_grants(uid)

    def flush(self) -> None:
        """Bring counts and holder lists up to date now (tests, screenshots)."""
        self.index.flush()

    # --- edits ---------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        running = self.controller.server is not None
        selected = self._selected
        kind = selected[0] if selected else None
        self.add_type_button.setEnabled(running)
        self.import_button.setEnabled(running)
        self.export_button.setEnabled(self.catalog is not None)
        self.add_value_button.setEnabled(running and kind in (TYPE, VALUE))
        self.rename_button.setEnabled(running and kind == VALUE)
        self.delete_button.setEnabled(running and kind in (TYPE, VALUE))

    def server_started(self) -> None:
        self._update_buttons()
        self.load()

    def server_stopped(self) -> None:
        self._update_buttons()

    def commit(self, catalog: dict[str, Any] | None, done: str = "") -> bool:
        """Check ``catalog`` with the server's parser and make it the server's catalog.
        Returns False (and says why) when it is refused before reaching the server."""
        from scim_desktop.core.catalog import CatalogError, parse_catalog

        server = self.controller.server
        if server is None:
            self.message.show_message(NOT_RUNNING)
            return False
        try:
            parsed = None if catalog is None else parse_catalog(catalog)
        except CatalogError as exc:
            self.message.show_message(f"Not changed: {exc}")
            return False

        def saved(_result: Any) -> None:
            self.set_catalog_json(None if parsed is None else parsed.to_json())
            if done:
                self.message.show_message(done, "ok")

        def failed(exc: BaseException) -> None:
            self.message.show_message(f"Not changed: {describe_error(exc)}")
            self._rebuild_tree()  # undo an inline rename shown in the tree

        deliver(self.controller, server.set_catalog(parsed), saved, failed)
        return True

    def _edited(self) -> dict[str, Any]:
        return copy.deepcopy(self.catalog) if self.catalog is not None else {"resourceTypes": []}

    def add_value(self, type_id: str, name: str, vid: str = "", description: str = "") -> bool:
        catalog = self._edited()
        rtype = next((t for t in catalog["resourceTypes"] if t.get("id") == type_id), None)
        if rtype is None:
            return False
        values = rtype.setdefault("resources", [])
        vid = vid.strip() or slug(name)
        value: dict[str, Any] = {"id": vid, "displayName": name.strip()}
        if description.strip():
            value["description"] = description.strip()
        if grant_attribute(rtype) == "entitlements":
            value["type"] = as_text(rtype.get("name")) or type_id
        extensions = [e for e in rtype.get("schemaExtensions") or [] if isinstance(e, dict)]
        if extensions:
            value["schemas"] = [rtype.get("schema"), *(e.get("schema") for e in extensions)]
            for extension in extensions:
                urn = as_text(extension.get("schema"))
                value[urn] = blank_extension(catalog, urn)
        values.append(value)
        self._selected = (VALUE, type_id, vid)
        return self.commit(catalog, f"Added {name.strip()} to {rtype.get('name') or type_id}.")

    def rename_value(self, type_id: str, vid: str, name: str) -> bool:
        name = name.strip()
        catalog = self._edited()
        rtype = next((t for t in catalog["resourceTypes"] if t.get("id") == type_id), None)
        value = next((v for v in (rtype or {}).get("resources") or [] if v.get("id") == vid), None)
        if value is None or not name or value.get("displayName") == name:
            self._rebuild_tree()
            return False
        value["displayName"] = name
        return self.commit(catalog)

    def delete_value(self, type_id: str, vid: str) -> bool:
        catalog = self._edited()
        rtype = next((t for t in catalog["resourceTypes"] if t.get("id") == type_id), None)
        if rtype is None:
            return False
        before = rtype.get("resources") or []
        rtype["resources"] = [v for v in before if v.get("id") != vid]
        if len(rtype["resources"]) == len(before):
            return False
        self._selected = (TYPE, type_id, "")
        return self.commit(catalog)

    def delete_type(self, type_id: str) -> bool:
        catalog = self._edited()
        kept = [t for t in catalog["resourceTypes"] if t.get("id") != type_id]
        if len(kept) == len(catalog["resourceTypes"]):
            return False
        catalog["resourceTypes"] = kept
        self._selected = None
        return self.commit(catalog)

    def add_type(self, name: str, schema: str, endpoint: str = "", description: str = "") -> bool:
        name = name.strip()
        catalog = self._edited()
        type_id = re.sub(r"[^A-Za-z0-9]+", "", name.title()) or "Type"
        rtype: dict[str, Any] = {
            "id": type_id,
            "name": name,
            "endpoint": endpoint.strip() or f"/{type_id}s",
            "schema": schema,
            "resources": [],
        }
        if description.strip():
            rtype["description"] = description.strip()
        catalog.setdefault("resourceTypes", []).append(rtype)
        self._selected = (TYPE, type_id, "")
        return self.commit(catalog, f"Added the type {name}; add its values next.")

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._updating_tree or column != NAME_COL:
            return
        data = item.data(NAME_COL, ItemRole)
        if data and data[0] == VALUE:
            self.rename_value(data[1], data[2], item.text(NAME_COL))

    # --- buttons (dialogs) -----------------------------------------------------------------------
    def start_rename(self) -> None:
        item = self.tree.currentItem()
        if item is not None and (item.data(NAME_COL, ItemRole) or ("",))[0] == VALUE:
            self.tree.editItem(item, NAME_COL)

    def ask_add_value(self) -> QDialog | None:
        if self._selected is None:
            return None
        type_id = self._selected[1]
        rtype = self.find_type(type_id)
        if rtype is None:
            return None
        taken = {as_text(v.get("id")) for v in rtype.get("resources") or []}
        dialog = AddValueDialog(as_text(rtype.get("name")) or type_id, taken, self)
        dialog.accepted.connect(
            lambda: self.add_value(
                type_id, dialog.name.text(), dialog.value_id.text(), dialog.description.text()
            )
        )
        self.last_dialog = dialog
        dialog.open()
        return dialog

    def ask_add_type(self) -> QDialog:
        dialog = AddTypeDialog(self)
        dialog.accepted.connect(
            lambda: self.add_type(
                dialog.name.text(),
                dialog.kind.currentData(),
                dialog.endpoint.text(),
                dialog.description.text(),
            )
        )
        self.last_dialog = dialog
        dialog.open()
        return dialog

    def ask_delete(self) -> None:
        selected = self._selected
        if selected is None or selected[0] not in (TYPE, VALUE):
            return
        kind, type_id, vid = selected
        rtype = self.find_type(type_id) or {}
        if kind == VALUE:
            n = self.index.count(grant_attribute(rtype), vid, type_keys(rtype))
            held = f" {n:,} user{'s' if n != 1 else ''} hold it; " if n else " "
            question = (
                f"Delete {self.value_item(type_id, vid).text(NAME_COL)} from "  # type: ignore[union-attr]
                f"{rtype.get('name') or type_id}?{held}Okta drops it at its next import."
            )
        else:
            count = len(rtype.get("resources") or [])
            question = (
                f"Delete the type {rtype.get('name') or type_id} and its {count:,} values? "
                "Okta drops them at its next import."
            )
        answer = QMessageBox.question(
            self,
            "Delete",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            if kind == VALUE:
                self.delete_value(type_id, vid)
            else:
                self.delete_type(type_id)

    def ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a catalog", "", CATALOG_FILTER)
        if path:
            self.import_file(Path(path))

    def ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the catalog", "catalog.json", CATALOG_FILTER
        )
        if path:
            self.export_file(Path(path))

    def import_file(self, path: Path) -> bool:
        """Replace the server's catalog with a catalog file; a bad file is one line."""
        from scim_desktop.core.catalog import CatalogError, parse_catalog_bytes

        try:
            catalog = parse_catalog_bytes(path.read_bytes())
        except OSError as exc:
            self.message.show_message(f"Could not read {path.name}: {exc.strerror or exc}")
            return False
        except CatalogError as exc:
            self.message.show_message(f"Not imported, {path.name}: {exc}")
            return False
        self._selected = None
        return self.commit(catalog.to_json(), f"Imported the catalog from {path.name}.")

    def export_file(self, path: Path) -> bool:
        if self.catalog is None:
            return False
        try:
            path.write_text(json.dumps(self.catalog, indent=2, ensure_ascii=False) + "\n")
        except OSError as exc:
            self.message.show_message(f"Could not save {path.name}: {exc.strerror or exc}")
            return False
        self.message.show_message(f"Saved the catalog to {path}.", "ok")
        return True
