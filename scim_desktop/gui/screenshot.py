"""``scim-desktop gui --screenshot PATH [--demo]``: a picture of the window, then exit.

With ``--demo`` the throwaway server gets the demo data set and a realistic Okta traffic
sequence, including a fault that fires (a 429 on a create, which Okta retries).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from scim_desktop.core.demo import load_dataset
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.okta_sim import OktaSimulator

if TYPE_CHECKING:
    from scim_desktop.gui.widgets.main_window import MainWindow


def _pump_until(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if done():
            return True
        time.sleep(0.01)
    return done()


def _settle(seconds: float) -> None:
    _pump_until(lambda: False, seconds)


TABS = {"requests": 0, "users": 1, "groups": 2, "faults": 3, "connect": 4}


def take_screenshot(window: MainWindow, path: Path, *, demo: bool, tab: str = "requests") -> None:
    """Prepare the window, save a PNG of it to ``path`` and quit the application."""

    def run() -> None:
        try:
            _capture(window, path, demo, tab)
        finally:
            QApplication.quit()

    QTimer.singleShot(0, run)


def _capture(window: MainWindow, path: Path, demo: bool, tab: str = "requests") -> None:
    controller = window.controller
    if not _pump_until(lambda: controller.state in ("listening", "error"), 30):
        raise RuntimeError("the server did not start")
    server = controller.server
    if demo and server is not None:
        from scim_desktop.gui.widgets.main_window import load_demo_data

        data = load_demo_data()
        url = server.base_url
        data_future = server.apply(lambda svc: load_dataset(svc, data, url))
        _pump_until(data_future.done, 30)
        window.faults.add_rule(
            parse_fault_spec("status=429,retry_after=30,method=POST,path=/Users,count=1"), "custom"
        )
        auth = window.config.auth
        sim = OktaSimulator(
            server.base_url,
            token=auth.token if auth.mode == "bearer" else None,
            basic=(auth.username, auth.password) if auth.mode == "basic" else None,
        )
        thread = threading.Thread(target=sim.run_demo, daemon=True)
        thread.start()
        _pump_until(lambda: not thread.is_alive(), 60)
        _settle(0.6)  # let the bridge deliver the last batch and the faults panel poll
        records = window.requests.shown_records()
        rows = [i for i, r in enumerate(records) if r.extra.get("okta_retry")]
        rows = rows or [i for i, r in enumerate(records) if r.status == 429]
        if rows:
            window.requests.select_row(rows[0])
    if demo and tab == "faults":
        window.faults._buttons["503-groups"].click()  # show a switch on and the banner
        _settle(0.8)
    window.tabs.setCurrentIndex(TABS.get(tab, 0))
    if tab == "groups" and window.groups.model.rowCount():
        window.groups.table.selectRow(0)
    # Past the change highlight's fade (2 s), unless the log itself is the subject.
    _settle(0.4 if tab == "requests" else 2.4)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        raise RuntimeError(f"could not save the screenshot to {path}")
    print(f"Saved a screenshot of the window to {path}")
