"""Fixtures the window's tests share: a private settings file, and whole windows with their real
embedded server started on an ephemeral port (closed, and so stopped, after the test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from scim_desktop.config import ServerConfig
from scim_desktop.gui.widgets.main_window import MainWindow


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """The window's settings in an INI file of the test's own (never the user's)."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def open_window(qtbot, settings: QSettings) -> Iterator[Callable[..., MainWindow]]:
    """``open_window(config, **kw)``: a shown MainWindow on ``config`` (``kw`` goes to
    MainWindow; ``settings`` defaults to the test's), its server listening. Every window
    opened is closed at the end of the test."""
    windows: list[MainWindow] = []

    def open_(config: ServerConfig, **kw: Any) -> MainWindow:
        kw.setdefault("settings", settings)
        win = MainWindow(config, **kw)
        qtbot.addWidget(win)
        win.resize(1440, 900)
        win.show()
        win.start_server()
        qtbot.waitUntil(lambda: win.controller.state == "listening", timeout=15000)
        windows.append(win)
        return win

    yield open_
    for win in windows:
        win.close()
