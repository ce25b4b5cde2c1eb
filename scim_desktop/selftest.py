"""``scim-desktop --self-test``: prove that this installation works, in a few seconds.

1. Starts the SCIM server on a free loopback port with a temporary database and a random
   bearer token.
2. Over HTTP (``http.client``, like any client): checks that a request without the token is
   refused, then creates, reads, filters, patches and deletes a user, and checks that the
   deleted user is gone.
3. Stops the server and checks that the data file it wrote is valid JSON.
4. Opens the real main window where Qt can: offscreen (``QT_QPA_PLATFORM=offscreen``) unless
   ``QT_QPA_PLATFORM`` names another platform. The window starts its own server, shows a
   request it receives, and is closed again.

Everything runs in this process (threads, no subprocess): inside a frozen PyInstaller
bundle ``sys.executable`` is the app itself, not a Python interpreter. Exits 0 when every
check passes, 1 with a one-line reason when one fails. Nothing outside a temporary folder is
written: not the user's database, settings or token.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

from scim_desktop import __version__
from scim_desktop.config import AuthConfig, ServerConfig

EXIT_OK = 0
EXIT_FAILED = 1

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json; charset=utf-8"

# What Qt's xcb platform needs on Debian and Ubuntu (the .deb's Depends name the same).
QT_XCB_PACKAGES = (
    "libegl1 libgl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 "
    "libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 "
    "libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 libx11-xcb1"
)


class SelfTestError(Exception):
    """A check failed; the message says which and why, in words."""


class Report:
    """Prints one line per check, with its time."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.passed = 0
        self.started = time.perf_counter()

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[list[str]]:
        """Run one check; the body may append details to the yielded list."""
        details: list[str] = []
        t0 = time.perf_counter()
        try:
            yield details
        except SelfTestError as exc:
            self.line(f"  FAIL  {name}: {exc}")
            raise SelfTestError(f"{name}: {exc}") from None
        except Exception as exc:
            self.line(f"  FAIL  {name}: {type(exc).__name__}: {exc}")
            raise SelfTestError(f"{name}: {type(exc).__name__}: {exc}") from exc
        elapsed = time.perf_counter() - t0
        extra = f" ({'; '.join(details)})" if details else ""
        self.passed += 1
        self.line(f"  ok    {name}{extra} [{elapsed * 1000:.0f} ms]")


# --- HTTP ------------------------------------------------------------------------------------
class ScimHttp:
    """A minimal SCIM client over ``http.client`` (what Okta's client sends, no gzip)."""

    def __init__(self, base_url: str, authorization: str | None, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.base_path = parts.path.rstrip("/")
        self.authorization = authorization
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, *, auth: bool = True
    ) -> tuple[int, Any]:
        headers = {
            "User-Agent": "SCIM Desktop self-test",
            "Accept": "application/scim+json",
        }
        if auth and self.authorization:
            headers["Authorization"] = self.authorization
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = SCIM_JSON
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, self.base_path + path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except OSError as exc:
            raise SelfTestError(f"{method} {path}: no answer from the server ({exc})") from None
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            raise SelfTestError(f"{method} {path}: the answer is not JSON: {raw[:200]!r}") from None
        return response.status, parsed

    def expect(
        self, method: str, path: str, status: int, body: Any = None, *, auth: bool = True
    ) -> Any:
        got, parsed = self.request(method, path, body, auth=auth)
        if got != status:
            detail = ""
            if isinstance(parsed, dict) and parsed.get("detail"):
                detail = f": {parsed['detail']}"
            raise SelfTestError(f"{method} {path} answered {got}, expected {status}{detail}")
        return parsed


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SelfTestError(message)


def http_checks(client: ScimHttp, report: Report) -> None:
    """Create, read, filter, patch and delete a user through ``client``; raises
    :class:`SelfTestError` naming the first thing that is wrong."""
    user_name = f"self-test-{secrets.token_hex(4)}@example.com"

    with report.check("a request without credentials is refused") as notes:
        if client.authorization:
            client.expect("GET", "/ServiceProviderConfig", 401, auth=False)
            notes.append("401")
        else:
            notes.append("skipped: no authentication configured")

    with report.check("create a user (POST /Users)") as notes:
        created = client.expect(
            "POST",
            "/Users",
            201,
            {
                "schemas": [USER_SCHEMA],
                "userName": user_name,
                "name": {"givenName": "Self", "familyName": "Test"},
                "emails": [{"value": user_name, "type": "work", "primary": True}],
                "active": True,
            },
        )
        _require(isinstance(created, dict) and bool(created.get("id")), "no id in the answer")
        _require(created.get("userName") == user_name, "the answer has another userName")
        user_id = str(created["id"])
        notes.append(f"201, id {user_id}")

    path = f"/Users/{quote(user_id, safe='')}"
    with report.check("read it back (GET /Users/{id})"):
        fetched = client.expect("GET", path, 200)
        _require(fetched.get("userName") == user_name, "the stored user has another userName")
        _require(fetched.get("active") is True, "the stored user is not active")

    with report.check("find it with a filter (GET /Users?filter=userName eq ...)") as notes:
        query = quote(f'userName eq "{user_name.upper()}"', safe="")
        found = client.expect("GET", f"/Users?filter={query}", 200)
        _require(found.get("totalResults") == 1, f"totalResults is {found.get('totalResults')}")
        _require(found["Resources"][0].get("id") == user_id, "the filter found another user")
        query = quote('userName eq "nobody@example.invalid"', safe="")
        none = client.expect("GET", f"/Users?filter={query}", 200)
        _require(none.get("totalResults") == 0, "a filter for nobody found someone")
        notes.append("1 match, 0 for a stranger")

    with report.check("deactivate it (PATCH active=false)"):
        patched = client.expect(
            "PATCH",
            path,
            200,
            {
                "schemas": [PATCH_SCHEMA],
                "Operations": [{"op": "replace", "value": {"active": False}}],
            },
        )
        _require(patched.get("active") is False, "active is still true after the PATCH")
        again = client.expect("GET", path, 200)
        _require(again.get("active") is False, "the PATCH was not stored")

    with report.check("delete it (DELETE /Users/{id})") as notes:
        client.expect("DELETE", path, 204)
        client.expect("GET", path, 404)
        notes.append("204, then 404")


def server_checks(report: Report, folder: Path) -> None:
    """Start a server on a free port with a database in ``folder``, run :func:`http_checks`
    against it, stop it and check the data file."""
    from scim_desktop.server.runner import ServerThread

    token = secrets.token_urlsafe(24)
    db_path = folder / "self-test.json"
    config = ServerConfig(
        host="127.0.0.1", port=0, db_path=db_path, auth=AuthConfig("bearer", token=token)
    )
    server = ServerThread(config, name="scim-self-test")
    with report.check("start the server on a free port with a temporary database") as notes:
        server.start(timeout=30)
        notes.append(server.base_url)
    try:
        http_checks(ScimHttp(server.base_url, f"Bearer {token}"), report)
    finally:
        server.stop()
    with report.check("stop the server; the data file is valid JSON"):
        _require(not server.running, "the server did not stop")
        _require(db_path.is_file(), f"no data file at {db_path}")
        json.loads(db_path.read_bytes())


# --- the window ------------------------------------------------------------------------------
def _platform_name() -> str:
    """The Qt platform plugin this process will use (offscreen unless the user chose one)."""
    value = os.environ.get("QT_QPA_PLATFORM", "").strip()
    if not value:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        value = "offscreen"
    # "xcb;offscreen" is a list to try in order; "offscreen:fontengine=freetype" has options.
    return value.split(";")[0].split(":")[0].strip()


def _qt_missing_hint() -> str:
    if sys.platform.startswith("linux"):
        return f" On Debian or Ubuntu: sudo apt-get install {QT_XCB_PACKAGES}"
    return ""


def _check_platform_plugin(platform: str) -> str:
    """Load the platform plugin library the way Qt will, so a missing system library is
    reported in words instead of Qt aborting the process."""
    from PySide6.QtCore import QLibrary, QLibraryInfo

    folder = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    candidates = [
        p
        for p in (sorted(folder.iterdir()) if folder.is_dir() else [])
        if p.name.split(".")[0].removeprefix("lib") == f"q{platform}"
    ]
    if not candidates:
        raise SelfTestError(
            f"Qt cannot start: there is no Qt platform plugin {platform!r} in {folder} "
            f"(QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM')!r})."
        )
    needs = {"xcb": "DISPLAY", "wayland": "WAYLAND_DISPLAY"}.get(platform)
    if needs and not os.environ.get(needs):
        raise SelfTestError(
            f"Qt cannot start: QT_QPA_PLATFORM asks for {platform!r} but {needs} is not set "
            "(unset QT_QPA_PLATFORM to test offscreen)."
        )
    library = QLibrary(str(candidates[0]))
    if not library.load():
        raise SelfTestError(
            f"Qt cannot load its {platform!r} platform plugin ({library.errorString()})."
            + _qt_missing_hint()
        )
    return candidates[0].name


def _pump(until: Callable[[], bool], timeout: float) -> bool:
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if until():
            return True
        time.sleep(0.01)
    QApplication.processEvents()
    return until()


def window_checks(report: Report, folder: Path) -> None:
    """Open the main window (offscreen unless QT_QPA_PLATFORM says otherwise) with its own
    server on a free port, check it shows a request it receives, and close it."""
    platform = _platform_name()
    with report.check("load Qt") as notes:
        try:
            from PySide6 import __version__ as pyside_version
            from PySide6.QtCore import qVersion
            from PySide6.QtWidgets import QApplication
        except ImportError as exc:
            raise SelfTestError(f"Qt cannot load: {exc}.{_qt_missing_hint()}") from None
        plugin = _check_platform_plugin(platform)
        notes.append(f"Qt {qVersion()}, PySide6 {pyside_version}, platform plugin {plugin}")

    from PySide6.QtCore import QtMsgType, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    qt_messages: list[str] = []

    def on_qt_message(kind: QtMsgType, context: object, message: str) -> None:
        # Qt's chatter (e.g. "This plugin does not support propagateSizeHints()") is kept
        # and shown only if a check fails.
        qt_messages.append(f"{kind.name}: {message}")

    previous = qInstallMessageHandler(on_qt_message)
    try:
        _window_checks(report, folder, platform)
    except SelfTestError:
        for message in qt_messages[-10:]:
            report.line(f"        Qt said: {message}")
        raise
    finally:
        qInstallMessageHandler(previous)
        QApplication.processEvents()


def _window_checks(report: Report, folder: Path, platform: str) -> None:
    from PySide6.QtWidgets import QApplication

    from scim_desktop.gui.widgets.main_window import MainWindow

    with report.check(f"open the main window ({platform})") as notes:
        app = QApplication.instance()
        if app is None:
            app = QApplication(["scim-desktop"])
            app.setStyle("Fusion")
        token = secrets.token_urlsafe(24)
        config = ServerConfig(
            host="127.0.0.1",
            port=0,
            db_path=folder / "window.json",
            auth=AuthConfig("bearer", token=token),
        )
        window = MainWindow(config, settings=None, persist=False)
        window.resize(1200, 800)
        window.show()
        window.start_server(wait=True)
        controller = window.controller
        if not _pump(lambda: controller.state in ("listening", "error"), 30):
            raise SelfTestError(f"the window's server did not start (state {controller.state})")
        if controller.state == "error":
            raise SelfTestError(f"the window's server failed: {controller.last_error}")
        handle = window.windowHandle()
        _pump(lambda: handle is not None and handle.isExposed(), 5)
        _require(window.isVisible(), "the window is not visible")
        _require(handle is not None and handle.isExposed(), "the window was never exposed")
        notes.append(f"{window.width()}x{window.height()}, server listening")
    try:
        with report.check("the window shows a request it receives"):
            server = controller.server
            assert server is not None
            ScimHttp(server.base_url, f"Bearer {token}").expect("GET", "/Users?count=1", 200)
            shown = _pump(
                lambda: any(r.path.endswith("/Users") for r in window.requests.shown_records()),
                10,
            )
            _require(shown, "the request never appeared in the request log")
            pixmap = window.grab()
            _require(not pixmap.isNull() and pixmap.width() > 0, "the window renders nothing")
    finally:
        with report.check("close the window; its server stops"):
            window.close()
            _pump(lambda: controller.server is None, 10)
            _require(controller.server is None, "the window's server is still running")
            window.deleteLater()
            QApplication.processEvents()


# --- entry point -----------------------------------------------------------------------------
def _describe_runtime() -> str:
    if getattr(sys, "frozen", False):
        return f"bundled app at {Path(sys.executable).resolve().parent}"
    return f"Python {sys.version.split()[0]} at {sys.executable}"


def run_self_test(out: IO[str] | None = None, *, window: bool = True) -> int:
    """Run every check, printing one line each to ``out``; 0 if all passed, else 1."""
    stream = out or sys.stdout
    assert stream is not None
    report = Report(stream)
    report.line(f"SCIM Desktop {__version__} self-test ({_describe_runtime()})")
    try:
        with tempfile.TemporaryDirectory(prefix="scim-desktop-self-test-") as tmp:
            server_checks(report, Path(tmp))
            if window:
                window_checks(report, Path(tmp))
    except SelfTestError as exc:
        report.line(f"Self-test FAILED: {exc}")
        return EXIT_FAILED
    elapsed = time.perf_counter() - report.started
    report.line(f"Self-test passed: {report.passed} checks in {elapsed:.1f} s.")
    return EXIT_OK


def _output_stream() -> IO[str]:
    """Standard output, or, in a windowed Windows build (where it is None), the console of
    the shell that started the app; failing both, a file in the temporary folder."""
    if sys.stdout is not None:
        return sys.stdout
    if sys.platform == "win32":
        import ctypes

        attach_parent_process = -1
        if ctypes.windll.kernel32.AttachConsole(attach_parent_process):  # type: ignore[attr-defined]
            return open("CONOUT$", "w", encoding="utf-8", errors="replace")
    path = Path(tempfile.gettempdir()) / "scim-desktop-self-test.txt"
    return open(path, "w", encoding="utf-8")


def main() -> int:
    """``scim-desktop --self-test``."""
    return run_self_test(_output_stream())
