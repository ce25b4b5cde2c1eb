"""``scim-desktop gui --screenshot PATH [--demo]``: a picture of the window, then exit.

With ``--demo`` the throwaway server gets the demo data set and a realistic Okta traffic
sequence, including a fault that fires (a 429 on a create, which Okta retries).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QImageWriter
from PySide6.QtWidgets import QApplication

from scim_desktop.core.demo import load_dataset
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.okta_sim import OktaSimulator

if TYPE_CHECKING:
    from scim_desktop.gui.widgets.main_window import MainWindow

log = logging.getLogger("scim_desktop.gui.screenshot")


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


#: --screenshot-tab names -> the window's attribute holding that tab.
TABS = {
    "requests": "requests",
    "users": "users",
    "groups": "groups",
    "governance": "governance",
    "coverage": "coverage",
    "faults": "faults",
    "connect": "guide",
}


class ScreenshotError(Exception):
    """Why the screenshot cannot be or was not saved, as one line for the user."""


def path_problem(path: Path) -> str | None:
    """Why ``path`` cannot take a screenshot, checked before the window opens; or None.

    The folder must exist already: a typo in it must not quietly create folders. The
    extension names the image format (Qt has no other way to know it).
    """
    if path.is_dir():
        return f"{path} is a folder; give a file name such as {path / 'window.png'}"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist (it is not created for you)"
    suffix = path.suffix.lower().lstrip(".")
    formats = sorted(bytes(f.data()).decode() for f in QImageWriter.supportedImageFormats())
    if not suffix:
        return f"{path} has no extension to say the image format; use e.g. {path}.png"
    if suffix not in formats:
        return f"Qt cannot write .{suffix} images; use one of .{', .'.join(formats)}"
    return None


class Screenshot:
    """A screenshot taken once the event loop runs; ``error`` says why it failed, if it did."""

    def __init__(self) -> None:
        self.error: str | None = None


def take_screenshot(
    window: MainWindow, path: Path, *, demo: bool, tab: str = "requests"
) -> Screenshot:
    """Prepare the window, save a picture of it to ``path`` and quit the application.

    Any failure ends up in the returned ``Screenshot.error`` (the caller prints it and exits
    1) instead of in the excepthook, which would log a traceback and keep the exit status 0.
    """
    result = Screenshot()

    def run() -> None:
        try:
            _capture(window, path, demo, tab)
        except ScreenshotError as exc:
            result.error = str(exc)
        except Exception as exc:
            log.debug("Screenshot failed", exc_info=True)
            result.error = f"the screenshot failed: {exc or type(exc).__name__}"
        finally:
            QApplication.quit()

    QTimer.singleShot(0, run)
    return result


def _capture(window: MainWindow, path: Path, demo: bool, tab: str = "requests") -> None:
    controller = window.controller
    if not _pump_until(lambda: controller.state in ("listening", "error"), 30):
        raise ScreenshotError("the server did not start within 30 s")
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
        if tab == "coverage":
            # A server without PATCH for member removal: the checklist shows what fails.
            window.faults.add_rule(
                parse_fault_spec("status=501,step=push_group_remove_members,count=1"), "custom"
            )
        auth = window.config.auth
        sim = OktaSimulator(
            server.base_url,
            token=auth.token if auth.mode == "bearer" else None,
            basic=(auth.username, auth.password) if auth.mode == "basic" else None,
            governance=None,  # runs the OIG story when the demo data brought a catalog
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
    window.tabs.setCurrentWidget(getattr(window, TABS.get(tab, "requests")))
    if tab in ("groups", "users"):  # a selected row fills the detail pane
        view = window.groups if tab == "groups" else window.users
        if view.model.rowCount():
            view.table.selectRow(0)
    if tab == "governance":
        _settle(0.5)  # the last grants reach the users model (and the holder index)
        window.governance.show_busiest_value()
    if tab == "coverage":
        # A failed item shows what failed and the fix; else the first covered one.
        window.coverage.model.flush()  # requests still queued for judging, and their rows
        states = window.coverage.model.states()
        shown = next((s for s in states if s.status == "failed"), None)
        shown = shown or next((s for s in states if s.status == "covered"), None)
        if shown is not None:
            window.coverage.select_item(shown.item.id)
            window.coverage.evidence.selectRow(0)  # the failure, ready for Show in Requests
    # Past the change highlight's fade (2 s), unless the log itself is the subject.
    _settle(0.4 if tab == "requests" else 2.4)
    # No mkdir: path_problem() refused a missing folder before the window opened.
    if not window.grab().save(str(path)):
        raise ScreenshotError(f"Qt could not write {path} (is the folder writable?)")
    print(f"Saved a screenshot of the window to {path}")
