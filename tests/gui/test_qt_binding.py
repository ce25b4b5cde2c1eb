"""Guards against a broken Qt binding: PySide6-Essentials 6.12.0 under Python 3.11 drops a
reference to None on every call that returns nothing, and the process aborts after a few
thousand calls ("none_dealloc"). pyproject pins a sound version; this test keeps it so."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel


def test_void_calls_do_not_steal_references_to_none(qtbot) -> None:
    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(2000):
        label.setText("x")
    assert sys.getrefcount(None) - before > -100


class _Emitter(QObject):
    flag = Signal(bool)


def test_bool_signals_do_not_steal_references_to_true(qtbot) -> None:
    emitter = _Emitter()
    emitter.flag.connect(lambda value: None)
    before = sys.getrefcount(True)
    for _ in range(2000):
        emitter.flag.emit(True)
    assert sys.getrefcount(True) - before > -100
