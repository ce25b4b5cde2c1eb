"""Make docs/screenshots/proxy.png: the window in proxy mode after Okta-like traffic (the
look-alike's demo session) through the proxy to our own mock server as the upstream, which
answers one create with an empty 201; that answer, which Okta would reject, is selected.

    xvfb-run -a -s '-screen 0 1440x900x24' env QT_QPA_PLATFORM=xcb \\
        python3 -m tests.gui.proxy_screenshot docs/screenshots/proxy.png

Not a test (pytest does not collect it): a script, so the README's picture can be made again.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from scim_desktop.config import AuthConfig, ServerConfig, UpstreamConfig
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.gui.widgets.main_window import MainWindow
from scim_desktop.okta_sim import OktaSimulator
from scim_desktop.server.events import NullSink
from scim_desktop.server.runner import ServerThread

UP_TOKEN, OWN_TOKEN = "upstream-token", "proxy-token"
#: The app answers in a realistic 35 ms most of the time.
LATENCY = parse_fault_spec("latency_ms=35,probability=60%,name=app latency")
#: ... and one create with an empty 201: Okta fails "Create new user returned empty user".
EMPTY = parse_fault_spec("action=empty,path=/Users,count=1,latency_ms=48")


def main(out: Path) -> int:
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    folder = Path(tempfile.mkdtemp(prefix="scim-desktop-proxy-shot-"))
    auth = AuthConfig("bearer", token=UP_TOKEN)
    upstream = ServerThread(
        ServerConfig(port=0, db_path=folder / "app.json", auth=auth, faults=(LATENCY,)), NullSink()
    )
    upstream.start()
    config = ServerConfig(
        port=0,
        db_path=folder / "proxy.json",
        auth=AuthConfig("bearer", token=OWN_TOKEN),
        upstream=UpstreamConfig(
            upstream.base_url.replace("127.0.0.1", "localhost"), token=UP_TOKEN
        ),
    )
    window = MainWindow(config, persist=False)
    window.resize(1440, 900)
    window.show()
    window.start_server(wait=True)
    done = threading.Event()

    def traffic() -> None:
        while window.controller.server is None:
            time.sleep(0.05)
        sim = OktaSimulator(window.controller.server.base_url, token=OWN_TOKEN, pause_s=0.0)
        sim.run_demo()
        upstream.set_fault_rules((EMPTY, LATENCY)).result(10)
        sim.create_user("Grace", "Hopper")
        sim.create_user("Alan", "Turing")
        done.set()

    threading.Thread(target=traffic, daemon=True).start()

    def wait() -> None:
        QTimer.singleShot(600 if done.is_set() else 200, select if done.is_set() else wait)

    def select() -> None:
        view = window.requests
        view.table.scrollToBottom()
        rows = [r for r in range(view.proxy.rowCount()) if view.proxy.record(r).okta_problems]
        view.select_row(rows[-1])
        QTimer.singleShot(600, shoot)

    def shoot() -> None:
        window.grab().save(str(out))
        window.close()
        upstream.stop()
        app.quit()

    QTimer.singleShot(300, wait)
    app.exec()
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "proxy.png")))
