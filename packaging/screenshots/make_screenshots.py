"""Screenshots for the README's Install section, taken offscreen from the real window.

    python packaging/screenshots/make_screenshots.py

Writes first-start.png (the window right after the first start: base URL and token) and
connect-okta.png (the "Connect to Okta" tab) beside this file, using a throwaway database.
Two more come from the app itself (on a real X server for fonts as users see them:
``xvfb-run -a -s '-screen 0 1440x900x24' env QT_QPA_PLATFORM=xcb ...``):
``scim-desktop gui --screenshot packaging/screenshots/demo.png --demo`` and
``scim-desktop gui --screenshot packaging/screenshots/governance.png --screenshot-tab governance
--demo`` (the demo catalog and the simulator's grants on the Governance tab).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.gui.widgets.main_window import MainWindow

HERE = Path(__file__).resolve().parent


def pump(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)


def main() -> int:
    QGuiApplication.setApplicationDisplayName("SCIM Desktop")
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(
            host="127.0.0.1",
            port=8080,
            db_path=Path(tmp) / "scim-desktop.json",
            auth=AuthConfig("bearer", token="Zx8q3-demo-token-abc123"),
        )
        window = MainWindow(config, settings=None, persist=False)
        window.resize(1280, 800)
        window.show()
        window.start_server(wait=True)
        pump(1.0)
        window.grab().save(str(HERE / "first-start.png"))
        window.tabs.setCurrentWidget(window.guide)
        pump(0.5)
        window.grab().save(str(HERE / "connect-okta.png"))
        window.close()
        pump(0.3)
    print(f"Saved first-start.png and connect-okta.png in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
