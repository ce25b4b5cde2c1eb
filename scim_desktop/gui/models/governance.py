"""Who holds which catalog value: an index over the users' ``roles`` and ``entitlements``.

The Governance tab shows, for a catalog value, the users granted it, and for a user, its
grants. :class:`HolderIndex` follows the Users table model (the one copy of every user the
window keeps) through its signals: a new, changed or removed row costs work proportional to
that user's grants, never a scan of every user. Only a model reset (a snapshot, or a batch
that deleted most users) rebuilds it, once.

Grants are keyed by the user attribute and the value (``("roles", "role-admin")``); an
entitlement also carries its ``type`` (Okta sends ``{value, display, type}``), so the same
value id in two entitlement types is told apart when asking for a type's holders.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal

from scim_desktop.gui.models.resource_table import ResourceTableModel

AnyIndex = QModelIndex | QPersistentModelIndex
#: The user attributes that carry grants (Okta's entitlement management guide).
GRANT_ATTRIBUTES = ("roles", "entitlements")
_BACKGROUND = Qt.ItemDataRole.BackgroundRole.value

#: One grant: (attribute, value, type or None, display).
Grant = tuple[str, str, str | None, str]


def user_grants(user: dict[str, Any]) -> tuple[Grant, ...]:
    """The grants a user resource carries, as (attribute, value, type, display) in order."""
    grants: list[Grant] = []
    for attribute in GRANT_ATTRIBUTES:
        items = user.get(attribute)
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict):
                continue
            value = item.get("value")
            if not isinstance(value, str) or not value:
                continue
            kind = item.get("type")
            display = item.get("display")
            grants.append(
                (
                    attribute,
                    value,
                    kind if isinstance(kind, str) and kind else None,
                    display if isinstance(display, str) and display else value,
                )
            )
    return tuple(grants)


def type_matches(granted: str | None, type_keys: Iterable[str]) -> bool:
    """Whether an entitlement's ``type`` names the catalog type (by id or name; a grant
    without a type matches any type: the value alone identifies it)."""
    return granted is None or granted.casefold() in {k.casefold() for k in type_keys}


class HolderIndex(QObject):
    """value -> holders and user -> grants, kept current from a :class:`ResourceTableModel`
    of users. ``changed`` carries the (attribute, value) keys whose holders changed (an
    empty set after a rebuild: everything may have); ``users_changed`` the ids of users
    that changed at all (their grants panel may show other attributes)."""

    changed = Signal(object)
    users_changed = Signal(object)

    def __init__(self, users: ResourceTableModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.users = users
        # (attribute, value) -> {user id: entitlement type or None}
        self._holders: dict[tuple[str, str], dict[str, str | None]] = {}
        self._grants: dict[str, tuple[Grant, ...]] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._touched: set[str] = set()
        self._rebuilt = False
        # Changes are announced at most every 100 ms: a burst of Okta grants becomes one
        # refresh of the tree's counts and the holder list.
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._announce)
        users.rowsInserted.connect(self._rows_inserted)
        users.rowsAboutToBeRemoved.connect(self._rows_removing)
        users.dataChanged.connect(self._data_changed)
        users.modelReset.connect(self.rebuild)
        self.rebuild()

    # --- queries -------------------------------------------------------------------------
    def holders(self, attribute: str, value: str, type_keys: Iterable[str] = ()) -> list[str]:
        """The ids of the users holding ``value`` (for entitlements: of that type)."""
        held = self._holders.get((attribute, value), {})
        if attribute != "entitlements":
            return list(held)
        keys = tuple(type_keys)
        return [uid for uid, granted in held.items() if not keys or type_matches(granted, keys)]

    def count(self, attribute: str, value: str, type_keys: Iterable[str] = ()) -> int:
        held = self._holders.get((attribute, value))
        if not held:
            return 0
        if attribute != "entitlements" or not type_keys:
            return len(held)
        return len(self.holders(attribute, value, type_keys))

    def grants(self, uid: str) -> tuple[Grant, ...]:
        return self._grants.get(uid, ())

    def users_with_grants(self) -> int:
        return len(self._grants)

    # --- following the users model ---------------------------------------------------------
    def rebuild(self) -> None:
        self._holders.clear()
        self._grants.clear()
        for resource in self.users.resources():
            self._set_user(str(resource.get("id", "")), resource)
        self._rebuilt = True
        self._schedule()

    def _rows_inserted(self, parent: AnyIndex, first: int, last: int) -> None:
        for row in range(first, last + 1):
            self._set_user(self.users.resource_id(row), self.users.resource(row))
        self._schedule()

    def _rows_removing(self, parent: AnyIndex, first: int, last: int) -> None:
        for row in range(first, last + 1):
            self._set_user(self.users.resource_id(row), None)
        self._schedule()

    def _data_changed(self, top: AnyIndex, bottom: AnyIndex, roles: Any = ()) -> None:
        if list(roles) == [_BACKGROUND]:
            return  # a highlight fading, nothing changed
        for row in range(top.row(), bottom.row() + 1):
            uid = self.users.resource_id(row)
            self._touched.add(uid)
            self._set_user(uid, self.users.resource(row))
        self._schedule()

    def _set_user(self, uid: str, user: dict[str, Any] | None) -> None:
        new = user_grants(user) if user is not None else ()
        old = self._grants.get(uid, ())
        if new == old:
            return
        for attribute, value, _kind, _display in old:
            held = self._holders.get((attribute, value))
            if held is not None:
                held.pop(uid, None)
                if not held:
                    del self._holders[(attribute, value)]
            self._dirty.add((attribute, value))
        for attribute, value, kind, _display in new:
            self._holders.setdefault((attribute, value), {})[uid] = kind
            self._dirty.add((attribute, value))
        if new:
            self._grants[uid] = new
        else:
            self._grants.pop(uid, None)

    def _schedule(self) -> None:
        if (self._dirty or self._rebuilt or self._touched) and not self._timer.isActive():
            self._timer.start()

    def _announce(self) -> None:
        dirty, touched, rebuilt = self._dirty, self._touched, self._rebuilt
        self._dirty, self._touched, self._rebuilt = set(), set(), False
        if rebuilt or dirty:
            self.changed.emit(set() if rebuilt else dirty)
        if touched:
            self.users_changed.emit(touched)

    def flush(self) -> None:
        """Announce pending changes now (tests, and before a screenshot)."""
        if self._timer.isActive():
            self._timer.stop()
            self._announce()
