"""Colours, fonts and small helpers shared by every view, for light and dark palettes.

Colours are picked from the application palette's lightness, so the window follows the
system's light or dark mode (Qt reports it through the palette and ``colorScheme()``).
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QPalette


def is_dark() -> bool:
    palette = QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def status_color(status: int) -> QColor:
    """Text colour for an HTTP status: 2xx green, 3xx blue, 4xx amber, 5xx red, 0 (dropped)
    grey."""
    dark = is_dark()
    if status == 0:
        return QColor("#9aa0a6" if dark else "#6b7280")
    if status < 300:
        return QColor("#4ade80" if dark else "#15803d")
    if status < 400:
        return QColor("#60a5fa" if dark else "#1d4ed8")
    if status < 500:
        return QColor("#fbbf24" if dark else "#b45309")
    return QColor("#f87171" if dark else "#b91c1c")


METHOD_COLORS_LIGHT = {
    "GET": "#1d4ed8",
    "POST": "#15803d",
    "PUT": "#7c3aed",
    "PATCH": "#b45309",
    "DELETE": "#b91c1c",
}
METHOD_COLORS_DARK = {
    "GET": "#60a5fa",
    "POST": "#4ade80",
    "PUT": "#c084fc",
    "PATCH": "#fbbf24",
    "DELETE": "#f87171",
}


def method_color(method: str) -> QColor:
    table = METHOD_COLORS_DARK if is_dark() else METHOD_COLORS_LIGHT
    return QColor(table.get(method.upper(), "#9aa0a6" if is_dark() else "#374151"))


def highlight_color(strength: float = 1.0) -> QColor:
    """Background for a row that just changed, fading with ``strength`` from 1 to 0."""
    base = QColor("#854d0e") if is_dark() else QColor("#fef08a")
    base.setAlphaF(max(0.0, min(1.0, strength)) * (0.55 if is_dark() else 0.9))
    return base


def fault_color() -> QColor:
    return QColor("#dc2626")


def muted_color() -> QColor:
    return QColor("#9aa0a6" if is_dark() else "#6b7280")


def mono_font(point_delta: int = 0) -> QFont:
    """The system's fixed-width font at the application font's size (so presentation mode,
    which enlarges the application font, enlarges code and paths too)."""
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    size = QGuiApplication.font().pointSizeF()
    if size > 0:
        font.setPointSizeF(max(6.0, size + point_delta))
    return font


# JSON highlighting (keys, strings, numbers, literals) for both palettes.
JSON_COLORS_LIGHT = {
    "key": "#7c3aed",
    "string": "#15803d",
    "number": "#1d4ed8",
    "literal": "#b45309",
}
JSON_COLORS_DARK = {
    "key": "#c084fc",
    "string": "#86efac",
    "number": "#93c5fd",
    "literal": "#fcd34d",
}


def json_color(kind: str) -> QColor:
    table = JSON_COLORS_DARK if is_dark() else JSON_COLORS_LIGHT
    return QColor(table[kind])
