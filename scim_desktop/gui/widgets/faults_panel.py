"""Fault switches: one-click presets, a custom rule editor, the active rules and "All off".

The panel keeps the list of active rules (in firing order) and mirrors every change onto the
server's FaultEngine through the server thread (``add_rule`` / ``remove_rule`` keep the other
rules' counters). It polls the engine for how often each rule fired while rules are active.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scim_desktop.core.fault_engine import RuleState
from scim_desktop.core.faults import PRESETS, FaultRule, FaultSpecError, parse_fault_spec
from scim_desktop.core.okta import STEPS
from scim_desktop.gui.controller import ServerController


@dataclass(frozen=True)
class ActiveRule:
    origin: str  # a preset name, or "custom"
    rule: FaultRule


class PresetButton(QPushButton):
    """A checkable card: the preset's title in bold and what Okta does about it."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        preset = PRESETS[name]
        self.preset_name = name
        self.setCheckable(True)
        self.setObjectName("presetCard")
        self.setToolTip(preset.description)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMinimumHeight(74)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(2)
        title = QLabel(preset.title)
        title.setStyleSheet("font-weight: 600;")
        title.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        summary = QLabel(preset.description)
        summary.setWordWrap(True)
        summary.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        summary.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        layout.addWidget(title)
        layout.addWidget(summary)


class FaultsPanel(QWidget):
    #: (any rule active, one-line summary of what is active)
    activeChanged = Signal(bool, str)

    def __init__(self, controller: ServerController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.active: list[ActiveRule] = []
        self._states: list[RuleState] = []
        self._buttons: dict[str, PresetButton] = {}
        self._live = False
        self._summary = ""

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        columns = QHBoxLayout(body)
        columns.setContentsMargins(16, 12, 16, 12)
        columns.setSpacing(16)
        layout = QVBoxLayout()
        layout.setSpacing(14)
        columns.addLayout(layout, 3)
        right = QVBoxLayout()
        right.setSpacing(14)
        columns.addLayout(right, 2)

        # --- presets ---------------------------------------------------------------------------
        presets_box = QGroupBox("One-click faults")
        grid = QGridLayout(presets_box)
        grid.setSpacing(8)
        for i, name in enumerate(PRESETS):
            button = PresetButton(name)
            button.toggled.connect(lambda on, n=name: self._toggle_preset(n, on))
            self._buttons[name] = button
            grid.addWidget(button, i // 2, i % 2)
        layout.addWidget(presets_box)

        # --- active rules ------------------------------------------------------------------------
        active_box = QGroupBox("Active rules (checked in order; the first that fires answers)")
        active_layout = QVBoxLayout(active_box)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Rule", "Fired", "Left", ""])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.cellClicked.connect(self._cell_clicked)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(140)
        self.empty_label = QLabel("No faults: the server answers every request normally.")
        self.empty_label.setStyleSheet("color: palette(placeholder-text);")
        self.all_off = QPushButton("All faults off")
        self.all_off.setObjectName("allFaultsOff")
        self.all_off.clicked.connect(self.clear_all)
        row = QHBoxLayout()
        row.addWidget(self.empty_label, 1)
        row.addStretch(0)
        row.addWidget(self.all_off)
        active_layout.addWidget(self.table)
        active_layout.addLayout(row)
        layout.addWidget(active_box)

        layout.addStretch(1)
        # --- custom rule -------------------------------------------------------------------------
        right.addWidget(self._build_editor())
        right.addStretch(1)

        self._poll = QTimer(self)
        self._poll.setInterval(500)
        self._poll.timeout.connect(self.refresh_states)
        self._refresh_table()

    # --- the editor ----------------------------------------------------------------------------
    def _build_editor(self) -> QGroupBox:
        box = QGroupBox("Custom rule")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)

        self.f_method = QComboBox()
        self.f_method.addItems(["Any", "GET", "POST", "PUT", "PATCH", "DELETE"])
        self.f_path = QLineEdit()
        self.f_path.setPlaceholderText("any path; e.g. /Users*  /Groups/*  (relative to /scim/v2)")
        self.f_step = QComboBox()
        self.f_step.setEditable(True)
        self.f_step.addItem("Any")
        for step_id, (label, _explanation) in STEPS.items():
            self.f_step.addItem(f"{step_id}", step_id)
            self.f_step.setItemData(self.f_step.count() - 1, label, Qt.ItemDataRole.ToolTipRole)
        self.f_probability = QSpinBox()
        self.f_probability.setRange(1, 100)
        self.f_probability.setValue(100)
        self.f_probability.setSuffix(" %")
        self.f_count = QSpinBox()
        self.f_count.setRange(0, 1_000_000)
        self.f_count.setSpecialValueText("every matching request")
        match_row = QHBoxLayout()
        match_row.addWidget(self.f_method)
        match_row.addWidget(self.f_path, 1)
        form.addRow("Match method / path", match_row)
        form.addRow("Okta step", self.f_step)
        odds_row = QHBoxLayout()
        odds_row.addWidget(QLabel("probability"))
        odds_row.addWidget(self.f_probability)
        odds_row.addSpacing(12)
        odds_row.addWidget(QLabel("only the next"))
        odds_row.addWidget(self.f_count, 1)
        form.addRow("How often", odds_row)

        self.f_status = QComboBox()
        self.f_status.setEditable(True)
        for text in ["none", "429", "500", "502", "503", "504", "400", "401", "403", "404", "409"]:
            self.f_status.addItem(text)
        self.f_retry = QComboBox()
        self.f_retry.addItems(["no Retry-After", "seconds", "HTTP-date"])
        self.f_retry_s = QSpinBox()
        self.f_retry_s.setRange(0, 86_400)
        self.f_retry_s.setValue(30)
        self.f_retry_s.setSuffix(" s")
        self.f_latency = QSpinBox()
        self.f_latency.setRange(0, 600_000)
        self.f_latency.setSingleStep(250)
        self.f_latency.setSuffix(" ms")
        self.f_action = QComboBox()
        self.f_action.addItem("answer normally / with the status", None)
        self.f_action.addItem("drop the connection", "drop")
        self.f_action.addItem("empty 201 to a create", "empty")
        self.f_action.addItem("501 Not Implemented", "not_implemented")
        status_row = QHBoxLayout()
        status_row.addWidget(self.f_status)
        status_row.addWidget(self.f_retry)
        status_row.addWidget(self.f_retry_s)
        status_row.addStretch(1)
        form.addRow("Answer with status", status_row)
        form.addRow("Delay first", self.f_latency)
        form.addRow("Or instead", self.f_action)

        self.f_rate = QDoubleSpinBox()
        self.f_rate.setRange(0, 100_000)
        self.f_rate.setDecimals(1)
        self.f_rate.setSpecialValueText("off")
        self.f_rate.setSuffix(" req/s")
        self.f_burst = QSpinBox()
        self.f_burst.setRange(0, 100_000)
        self.f_burst.setSpecialValueText("auto")
        self.f_per_client = QCheckBox("per client")
        rate_row = QHBoxLayout()
        rate_row.addWidget(self.f_rate)
        rate_row.addWidget(QLabel("burst"))
        rate_row.addWidget(self.f_burst)
        rate_row.addWidget(self.f_per_client)
        rate_row.addStretch(1)
        form.addRow("Rate limit", rate_row)
        self.f_name = QLineEdit()
        self.f_name.setPlaceholderText("optional label")
        form.addRow("Name", self.f_name)

        self.f_spec = QLineEdit()
        self.f_spec.setPlaceholderText(
            "or paste a --fault spec: status=429,retry_after=30,path=/Users"
        )
        self.add_button = QPushButton("Add rule")
        self.add_button.clicked.connect(self._add_from_editor)
        self.f_spec.returnPressed.connect(self._add_from_editor)
        add_row = QHBoxLayout()
        add_row.addWidget(self.f_spec, 1)
        add_row.addWidget(self.add_button)
        form.addRow(add_row)
        self.f_error = QLabel("")
        self.f_error.setWordWrap(True)
        self.f_error.setStyleSheet("color: #dc2626;")
        form.addRow(self.f_error)
        return box

    def rule_from_editor(self) -> FaultRule:
        """The rule the editor describes (the spec line wins when filled). Raises
        FaultSpecError with a message naming what is wrong."""
        spec = self.f_spec.text().strip()
        if spec:
            return parse_fault_spec(spec)
        status_text = self.f_status.currentText().strip().lower()
        status: int | None = None
        if status_text not in ("", "none"):
            try:
                status = int(status_text)
            except ValueError:
                raise FaultSpecError(
                    f"fault spec: status must be a number, got {status_text!r}"
                ) from None
        retry: str | None = None
        if self.f_retry.currentIndex() == 1:
            retry = str(self.f_retry_s.value())
        elif self.f_retry.currentIndex() == 2:
            retry = "date"
        elif status == 429:
            retry = "none"
        step = self.f_step.currentText().strip()
        rate = self.f_rate.value() or None
        kwargs: dict[str, Any] = {
            "method": None if self.f_method.currentText() == "Any" else self.f_method.currentText(),
            "path": self.f_path.text().strip() or None,
            "step": None if step in ("", "Any") else step,
            "probability": self.f_probability.value() / 100,
            "count": self.f_count.value() or None,
            "status": status,
            "retry_after": retry if (status is not None or rate) else None,
            "latency_ms": self.f_latency.value(),
            "action": self.f_action.currentData(),
            "rate": rate,
            "burst": (self.f_burst.value() or None) if rate else None,
            "per_client": self.f_per_client.isChecked() if rate else False,
            "name": self.f_name.text().strip(),
        }
        return FaultRule(**kwargs)

    def _add_from_editor(self) -> None:
        try:
            rule = self.rule_from_editor()
        except FaultSpecError as exc:
            self.f_error.setText(str(exc))
            return
        self.f_error.setText("")
        self.f_spec.clear()
        self.add_rule(rule, "custom")

    # --- the active list -------------------------------------------------------------------------
    def add_rule(self, rule: FaultRule, origin: str = "custom") -> None:
        self.active.append(ActiveRule(origin, rule))
        server = self.controller.server
        if server is not None and server.context is not None:
            faults = server.context.faults
            self.controller.call(faults.add_rule, rule)
        self._changed()

    def remove_at(self, index: int) -> None:
        entry = self.active.pop(index)
        server = self.controller.server
        if server is not None and server.context is not None:
            self.controller.call(server.context.faults.remove_rule, index)
        if entry.origin in self._buttons and not any(a.origin == entry.origin for a in self.active):
            button = self._buttons[entry.origin]
            button.blockSignals(True)
            button.setChecked(False)
            button.blockSignals(False)
        self._changed()

    def clear_all(self) -> None:
        self.active.clear()
        for button in self._buttons.values():
            button.blockSignals(True)
            button.setChecked(False)
            button.blockSignals(False)
        server = self.controller.server
        if server is not None and server.context is not None:
            self.controller.call(server.context.faults.clear)
        self._changed()

    def _toggle_preset(self, name: str, on: bool) -> None:
        if on:
            for rule in PRESETS[name].rules:
                self.add_rule(rule, name)
            return
        for index in reversed([i for i, a in enumerate(self.active) if a.origin == name]):
            self.remove_at(index)

    def set_rules(self, rules: tuple[FaultRule, ...] | list[FaultRule]) -> None:
        """Show rules the server started with (from --fault / --fault-preset), ticking the
        preset switches they came from."""
        self.active = [ActiveRule(self._origin_of(r), r) for r in rules]
        for name, button in self._buttons.items():
            button.blockSignals(True)
            button.setChecked(any(a.origin == name for a in self.active))
            button.blockSignals(False)
        self._changed(push=False)

    @staticmethod
    def _origin_of(rule: FaultRule) -> str:
        for name, preset in PRESETS.items():
            if rule in preset.rules:
                return name
        return "custom"

    def server_started(self) -> None:
        """Re-apply the panel's rules to a (re)started server."""
        server = self.controller.server
        if server is not None:
            server.set_fault_rules([a.rule for a in self.active])
        self._changed(push=False)

    def _changed(self, push: bool = True) -> None:
        del push  # rules were already pushed one by one
        self._states = []
        self._refresh_table()
        active = bool(self.active)
        if active:
            self._poll.start()
        else:
            self._poll.stop()
        self._live, self._summary = active, self.summary()
        self.activeChanged.emit(active, self._summary)

    def summary(self) -> str:
        entries = [
            a
            for i, a in enumerate(self.active)
            if i >= len(self._states) or self._states[i].remaining != 0
        ]
        if not entries:
            return ""
        texts = [a.rule.describe() for a in entries[:2]]
        more = len(entries) - 2
        return "; ".join(texts) + (f"; and {more} more" if more > 0 else "")

    def refresh_states(self) -> None:
        server = self.controller.server
        if server is None or server.context is None:
            return
        self.controller.call(
            server.context.faults.states, then=self._show_states, error=lambda e: None
        )

    def _show_states(self, states: list[RuleState]) -> None:
        self._states = states
        if self.table.rowCount() != len(self.active):
            self._refresh_table()
        for row in range(min(len(states), self.table.rowCount())):
            fired, left = self._count_texts(row)
            for col, text in ((1, fired), (2, left)):
                item = self.table.item(row, col)
                if item is not None and item.text() != text:
                    item.setText(text)
        live, summary = self.live(), self.summary()
        if (live, summary) != (self._live, self._summary):
            self._live, self._summary = live, summary
            self.activeChanged.emit(live, summary)

    def live(self) -> bool:
        """Whether any rule can still fire (a rule whose count ran out cannot)."""
        if not self.active:
            return False
        if len(self._states) != len(self.active):
            return True
        return any(state.remaining != 0 for state in self._states)

    def _cell_clicked(self, row: int, column: int) -> None:
        if column == 3 and 0 <= row < len(self.active):
            self.remove_at(row)

    def _count_texts(self, row: int) -> tuple[str, str]:
        """How often rule ``row`` fired and how many firings it has left ("∞": no count)."""
        state = self._states[row] if row < len(self._states) else None
        rule = self.active[row].rule
        fired = str(state.fired) if state else "0"
        if state is not None and state.remaining is not None:
            return fired, str(state.remaining)
        return fired, str(rule.count) if rule.count is not None else "∞"

    def _refresh_table(self) -> None:
        self.table.setRowCount(len(self.active))
        for row, entry in enumerate(self.active):
            text = entry.rule.describe()
            if entry.origin != "custom":
                text = f"{PRESETS[entry.origin].title}: {text}" if not entry.rule.name else text
            item = QTableWidgetItem(text)
            item.setToolTip(PRESETS[entry.origin].description if entry.origin in PRESETS else text)
            self.table.setItem(row, 0, item)
            fired_text, left_text = self._count_texts(row)
            fired = QTableWidgetItem(fired_text)
            fired.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 1, fired)
            left = QTableWidgetItem(left_text)
            left.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 2, left)
            remove = QTableWidgetItem("Remove")
            remove.setForeground(QColor("#2563eb"))
            remove.setToolTip("Stop this rule")
            self.table.setItem(row, 3, remove)
        self.empty_label.setVisible(not self.active)
        self.all_off.setEnabled(bool(self.active))
