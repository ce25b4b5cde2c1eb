"""The Users tab's detail pane: the selected user at a glance.

Profile, roles and entitlements (Okta Identity Governance grants) and the custom extension
attributes (RFC 7643 §3.3), read from the Users model's copy of the resource: nothing is
fetched. Edits go through the JSON editor (double-click), which shows the whole resource.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtWidgets import QFrame, QTextBrowser, QWidget

from scim_desktop.gui import theme
from scim_desktop.gui.models.resources import (
    attribute_text,
    custom_attributes,
    full_name,
    primary_email,
)


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(
        f"<tr><td style='color:{theme.muted_color().name()}; padding-right:12px'>"
        f"{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
        for k, v in pairs
    )


def _grants(user: dict[str, Any], attribute: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in user.get(attribute) or []:
        if isinstance(item, dict) and isinstance(item.get("value"), str):
            display = str(item.get("display") or item["value"])
            kind = item.get("type")
            out.append((display, f"{item['value']}" + (f" · {kind}" if kind else "")))
    return out


def user_html(user: dict[str, Any]) -> str:
    """The detail pane's document for one user."""
    name = full_name(user) or str(user.get("userName") or "")
    active = user.get("active", True) is not False
    state = "active" if active else "deactivated"
    color = theme.status_color(200 if active else 500).name()
    parts = [
        f"<h3 style='margin-bottom:0'>{html.escape(name)}</h3>",
        f"<p style='margin-top:2px'>{html.escape(str(user.get('userName') or ''))} · "
        f"<span style='color:{color}; font-weight:600'>{state}</span></p>",
        "<table>"
        + _rows(
            [
                ("Email", primary_email(user)),
                ("externalId", str(user.get("externalId") or "")),
                ("id", str(user.get("id") or "")),
            ]
        )
        + "</table>",
    ]
    for title, attribute in (("Roles", "roles"), ("Entitlements", "entitlements")):
        grants = _grants(user, attribute)
        parts.append(f"<h4>{title} ({len(grants)})</h4>")
        parts.append(
            f"<table>{_rows(grants)}</table>"
            if grants
            else f"<p style='color:{theme.muted_color().name()}'>None</p>"
        )
    custom = custom_attributes(user)
    parts.append(f"<h4>Custom attributes ({len(custom)})</h4>")
    if custom:
        rows = [(name, attribute_text(value)) for _urn, name, value in custom]
        urns = sorted({urn for urn, _name, _value in custom})
        parts.append(f"<table>{_rows(rows)}</table>")
        parts.append(
            f"<p style='color:{theme.muted_color().name()}'>"
            + "<br>".join(html.escape(u) for u in urns)
            + "</p>"
        )
    else:
        parts.append(f"<p style='color:{theme.muted_color().name()}'>None</p>")
    return "".join(parts)


class UserDetail(QTextBrowser):
    """The selected user's profile, grants and custom attributes (read-only)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.document().setDocumentMargin(12)
        self.show_user(None)

    def show_user(self, user: dict[str, Any] | None) -> None:
        if user is None:
            muted = theme.muted_color().name()
            self.setHtml(
                f"<p style='color:{muted}'>Select a user to see its grants and custom "
                "attributes.</p>"
            )
        else:
            self.setHtml(user_html(user))
