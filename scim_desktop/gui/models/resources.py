"""The Users and Groups table models: their columns, cell texts and colours.

The machinery they share (batched updates from ResourceChanged events, model-side sorting,
fading highlights) is :class:`~scim_desktop.gui.models.resource_table.ResourceTableModel`;
this module says only what each column shows. The cell texts (:func:`full_name`,
:func:`primary_email`, :func:`custom_attributes`...) are also what the detail panes show.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont

from scim_desktop.gui import theme
from scim_desktop.gui.models.resource_table import ResourceTableModel, _text

_bold_font: QFont | None = None


def _bold() -> QFont:
    # Made on first use: a QFont needs the QGuiApplication to exist.
    global _bold_font
    if _bold_font is None:
        _bold_font = QFont()
        _bold_font.setBold(True)
    return _bold_font


def format_time(value: Any) -> str:
    """An RFC 3339 timestamp as short local time ("2026-11-29 14:20"), or "" if unparsable."""
    if not isinstance(value, str) or not value:
        return ""
    return _format_time(value)


@functools.lru_cache(maxsize=8192)
def _format_time(value: str) -> str:
    # Cached: a table of 10,000 users repeats its timestamps, and updates keep "created".
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    # Not strftime: it is ~10x slower here (it imports through shiboken's import hook).
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}"
    )


def full_name(user: dict[str, Any]) -> str:
    name = user.get("name")
    if isinstance(name, dict):
        formatted = name.get("formatted")
        if isinstance(formatted, str) and formatted.strip():
            return formatted.strip()
        parts = [name.get(k) for k in ("givenName", "middleName", "familyName")]
        joined = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
        if joined:
            return joined
    display = user.get("displayName")
    return display.strip() if isinstance(display, str) else ""


def primary_email(user: dict[str, Any]) -> str:
    emails = user.get("emails")
    if not isinstance(emails, list):
        return ""
    values = [e for e in emails if isinstance(e, dict) and isinstance(e.get("value"), str)]
    for email in values:
        if email.get("primary") is True:
            return email["value"]
    return values[0]["value"] if values else ""


#: Schemas of a user that are not custom extensions (RFC 7643 §4.1, §4.3).
BUILT_IN_USER_SCHEMAS = frozenset(
    {
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    }
)


def grant_names(user: dict[str, Any], attribute: str) -> str:
    """A user's roles or entitlements as compact text ("Administrator, Viewer"): each
    grant's display, else its value (Okta sends both)."""
    items = user.get(attribute)
    if not isinstance(items, list) or not items:
        return ""
    return ", ".join(
        _text(g.get("display")) or _text(g.get("value")) for g in items if isinstance(g, dict)
    )


def custom_attributes(user: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """A user's custom extension attributes (schema URN, name, value): every object under a
    URN key other than the core and enterprise schemas (RFC 7643 §3.3), e.g. the catalog's
    user schema extensions."""
    out: list[tuple[str, str, Any]] = []
    for key, value in user.items():
        if key.startswith("urn:") and key not in BUILT_IN_USER_SCHEMAS and isinstance(value, dict):
            out.extend((key, name, v) for name, v in value.items())
    return out


def attribute_text(value: Any) -> str:
    """An attribute value as JSON writes scalars (``true``, not Python's ``True``)."""
    if isinstance(value, list):
        return ", ".join(attribute_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def custom_text(user: dict[str, Any]) -> str:
    """Custom attributes as compact text ("costCenterCode: CC-1001")."""
    return " · ".join(
        f"{name}: {attribute_text(value)}" for _urn, name, value in custom_attributes(user)
    )


class UsersModel(ResourceTableModel):
    RTYPE = "User"
    COLUMNS = (
        "userName",
        "Name",
        "Email",
        "Active",
        "externalId",
        "Groups",
        "Roles",
        "Entitlements",
        "Custom attributes",
        "Created",
        "Modified",
    )
    (
        USERNAME,
        NAME,
        EMAIL,
        ACTIVE,
        EXTERNAL_ID,
        GROUPS,
        ROLES,
        ENTITLEMENTS,
        CUSTOM,
        CREATED,
        MODIFIED,
    ) = range(11)
    TOOLTIP_COLUMNS = frozenset({USERNAME, NAME, EMAIL, GROUPS, ROLES, ENTITLEMENTS, CUSTOM})

    def _cells_for(self, user: dict[str, Any]) -> tuple[Any, ...]:
        meta = user.get("meta") if isinstance(user.get("meta"), dict) else {}
        groups = user.get("groups")
        group_names = ""
        if isinstance(groups, list):
            group_names = ", ".join(
                sorted(
                    (_text(g.get("display")) or _text(g.get("value")))
                    for g in groups
                    if isinstance(g, dict)
                )
            )
        return (
            _text(user.get("userName")),
            full_name(user),
            primary_email(user),
            "✓" if user.get("active", True) is not False else "✗",
            _text(user.get("externalId")),
            group_names,
            grant_names(user, "roles"),
            grant_names(user, "entitlements"),
            custom_text(user),
            format_time(meta.get("created")),
            format_time(meta.get("lastModified")),
        )

    def _foreground(self, resource: dict[str, Any], column: int) -> QColor | None:
        if column == self.ACTIVE:
            # The same green / red the request log uses for 2xx / 5xx.
            return theme.status_color(200 if resource.get("active", True) is not False else 500)
        if column in (self.EXTERNAL_ID, self.CUSTOM, self.CREATED, self.MODIFIED):
            return theme.muted_color()
        return None

    def _alignment(self, column: int) -> Qt.AlignmentFlag | None:
        if column == self.ACTIVE:
            return Qt.AlignmentFlag.AlignCenter
        return None

    def _font(self, column: int) -> QFont | None:
        return _bold() if column == self.ACTIVE else None

    def is_active(self, row: int) -> bool:
        return self._resources[row].get("active", True) is not False


#: How many member names the Groups table lists before "+N more".
MEMBER_NAMES_SHOWN = 3


class GroupsModel(ResourceTableModel):
    RTYPE = "Group"
    COLUMNS = ("displayName", "Members", "Member names", "externalId", "Modified")
    DISPLAY_NAME, MEMBERS, MEMBER_NAMES, EXTERNAL_ID, MODIFIED = range(5)
    TOOLTIP_COLUMNS = frozenset({DISPLAY_NAME, MEMBER_NAMES})
    SORT_KEY_COLUMNS = frozenset({MEMBERS})

    def _cells_for(self, group: dict[str, Any]) -> tuple[Any, ...]:
        meta = group.get("meta") if isinstance(group.get("meta"), dict) else {}
        members = [m for m in group.get("members") or [] if isinstance(m, dict)]
        names = [_text(m.get("display")) or _text(m.get("value")) for m in members]
        shown = ", ".join(names[:MEMBER_NAMES_SHOWN])
        if len(names) > MEMBER_NAMES_SHOWN:
            shown += f", +{len(names) - MEMBER_NAMES_SHOWN:,} more"
        return (
            _text(group.get("displayName")),
            f"{len(members):,}",
            shown,
            _text(group.get("externalId")),
            format_time(meta.get("lastModified")),
        )

    def _foreground(self, resource: dict[str, Any], column: int) -> QColor | None:
        if column in (self.EXTERNAL_ID, self.MODIFIED):
            return theme.muted_color()
        return None

    def _resource_sort_value(self, resource: dict[str, Any], column: int) -> Any:
        if column == self.MEMBERS:
            members = resource.get("members")
            return len(members) if isinstance(members, list) else 0
        return super()._resource_sort_value(resource, column)

    def _alignment(self, column: int) -> Qt.AlignmentFlag | None:
        if column == self.MEMBERS:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None
