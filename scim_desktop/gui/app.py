"""Starting the desktop app: QApplication, settings, the window, screenshot mode."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from types import TracebackType

import orjson
from PySide6.QtCore import (
    QLibrary,
    QLibraryInfo,
    QMessageLogContext,
    QSettings,
    QTimer,
    QtMsgType,
    qFormatLogMessage,
    qInstallMessageHandler,
)
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from scim_desktop.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    AuthConfig,
    ConfigError,
    ServerConfig,
    TlsConfig,
    UpstreamConfig,
    basic_password_path_for,
    data_dir,
    default_db_path,
    load_or_create_token,
    read_oauth_file,
    token_path_for,
    upstream_credential_path_for,
    write_private_file,
)
from scim_desktop.options import catalog_from, explicit_auth, faults_from, upstream_from

log = logging.getLogger("scim_desktop.gui")

ORG = "SCIM Desktop"
APP = "scim-desktop"


def setup_logging() -> Path:
    """Log to a file in the data folder (and stderr); returns the log file's path."""
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scim-desktop.log"
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=2 * 1024 * 1024, backupCount=2, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers[:-1]):
        root.addHandler(logging.StreamHandler(sys.stderr))
    root.setLevel(logging.INFO)
    return path


def _kept_upstream(url: str, insecure: bool, data: dict[str, object]) -> UpstreamConfig:
    """The upstream with the kept credential (none, an unknown kind or a damaged file: the
    proxy passes the client's own credential through)."""
    kind = data.get("kind")
    name, value = data.get("name"), data.get("value")
    if not isinstance(name, str) or not isinstance(value, str) or not value:
        return UpstreamConfig(url, insecure=insecure)
    if kind == "bearer":
        return UpstreamConfig(url, token=value, insecure=insecure)
    if kind == "basic":
        return UpstreamConfig(url, basic=(name, value), insecure=insecure)
    if kind == "header":
        return UpstreamConfig(url, header=(name, value), insecure=insecure)
    return UpstreamConfig(url, insecure=insecure)


def saved_upstream(settings: QSettings, db_path: Path) -> UpstreamConfig | None:
    """The upstream the window last proxied to (URL and insecure flag from the settings, the
    credential from its file), whichever mode is on now; None when there never was one or
    it no longer validates."""
    url = str(settings.value("upstream_url", "") or "")
    if not url:
        return None
    try:
        # A JSON object in a private file, read as the OAuth state file is.
        data = read_oauth_file(upstream_credential_path_for(db_path))
    except (OSError, ValueError):
        data = {}
    insecure = settings.value("upstream_insecure", False) in (True, "true")
    try:
        return _kept_upstream(url, insecure, data)
    except ConfigError:
        log.warning("The saved upstream %r is not usable; proxy mode needs it set again", url)
        return None


def save_upstream(settings: QSettings, config: ServerConfig, kept: UpstreamConfig | None) -> None:
    """Remember the mode and the upstream (``kept``: the one to remember while the mock is
    on, so switching back to the proxy finds it filled in)."""
    upstream = config.upstream or kept
    settings.setValue("server_mode", "proxy" if config.upstream is not None else "mock")
    if upstream is None:
        return
    settings.setValue("upstream_url", upstream.url)
    settings.setValue("upstream_insecure", upstream.insecure)
    kind, name, value = "passthrough", "", ""
    if upstream.token is not None:
        kind, value = "bearer", upstream.token
    elif upstream.basic is not None:
        kind, (name, value) = "basic", upstream.basic
    elif upstream.header is not None:
        kind, (name, value) = "header", upstream.header
    path = upstream_credential_path_for(config.db_path)
    data = {"version": 1, "kind": kind, "name": name, "value": value}
    try:
        # Written over when the credential goes (passthrough), so no old secret lingers.
        if kind != "passthrough" or path.exists():
            write_private_file(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        log.warning("Could not keep the upstream credential in %s: %s", path, exc)


def save_basic_password(db_path: Path, password: str) -> None:
    """Keep the Basic password in its private file; no password removes the file, so no old
    secret lingers after a switch to another kind of authentication."""
    path = basic_password_path_for(db_path)
    try:
        if password:
            data = {"version": 1, "password": password}
            write_private_file(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("Could not keep the Basic password in %s: %s", path, exc)


def migrate_basic_password(settings: QSettings, db_path: Path) -> None:
    """Move a Basic password an older version left in QSettings to its private file, once:
    write the file, then remove the setting (kept while the file cannot be written, so the
    password is not lost)."""
    if not settings.contains("basic_password"):
        return
    old = str(settings.value("basic_password", "") or "")
    if old:
        save_basic_password(db_path, old)
        if not basic_password_path_for(db_path).exists():
            return
    settings.remove("basic_password")
    settings.sync()  # out of the INI file now, not whenever Qt next writes it


def saved_basic_password(settings: QSettings, db_path: Path) -> str:
    """The Basic password kept beside the database ("" when there is none)."""
    migrate_basic_password(settings, db_path)
    if settings.contains("basic_password"):  # the file could not be written
        return str(settings.value("basic_password", "") or "")
    try:
        # A JSON object in a private file, read as the OAuth state file is.
        password = read_oauth_file(basic_password_path_for(db_path)).get("password", "")
    except (OSError, ValueError) as exc:
        log.warning("The kept Basic password cannot be read: %s", exc)
        return ""
    return password if isinstance(password, str) else ""


def saved_auth(settings: QSettings, db_path: Path) -> AuthConfig:
    """How clients authenticate to this server, as last set in the window (a bearer token
    kept beside the database by default)."""
    migrate_basic_password(settings, db_path)  # whatever the mode: out of the INI file
    mode = settings.value("auth_mode", "bearer")
    if mode == "none":
        return AuthConfig("none")
    if mode == "oauth":
        from scim_desktop.gui.widgets.connection import oauth_auth

        return oauth_auth(db_path, int(settings.value("oauth_token_ttl", 3600)))
    if mode == "basic":
        return AuthConfig(
            "basic",
            username=str(settings.value("basic_user", "")),
            password=saved_basic_password(settings, db_path),
        )
    return AuthConfig("bearer", token=load_or_create_token(token_path_for(db_path)))


def config_from(
    args: argparse.Namespace, settings: QSettings, *, saved_proxy: bool = True
) -> ServerConfig:
    """Command-line options win; otherwise the last settings; otherwise the defaults.
    ``saved_proxy=False``: the mock server unless ``--upstream`` asks for the proxy (the
    demo screenshot's simulated Okta must never write to the user's own server)."""
    db_text = args.db or settings.value("db", "") or default_db_path()
    db_path = Path(db_text).expanduser().resolve()
    host = args.host or settings.value("host", DEFAULT_HOST)
    port = args.port if args.port is not None else int(settings.value("port", DEFAULT_PORT))
    # --upstream (and its credential options) win; otherwise the mode the window last had.
    upstream = upstream_from(args)
    if upstream is None and saved_proxy and settings.value("server_mode", "mock") == "proxy":
        upstream = saved_upstream(settings, db_path)
    given = explicit_auth(args)
    if upstream is not None and not upstream.has_credential:
        # Transparent proxy (as make_config): the upstream checks the client's credential.
        if given is not None and given.mode != "none":
            raise ConfigError(
                "--token and --basic need an upstream credential (--upstream-token, "
                "--upstream-basic or --upstream-header, or one set in Settings): without one "
                "the proxy is transparent and your server checks the client's own credential"
            )
        auth = AuthConfig("none")
    else:
        auth = given if given is not None else saved_auth(settings, db_path)
    return ServerConfig(
        upstream=upstream,
        host=str(host),
        port=int(port),
        db_path=db_path,
        auth=auth,
        max_body_bytes=args.max_body,
        faults=faults_from(args),
        fault_seed=args.fault_seed,
        catalog=catalog_from(args),
        tls=TlsConfig.generated_for(db_path)
        if settings.value("tls", False) in (True, "true")
        else None,
    )


def _install_excepthooks(window_ref: list) -> None:
    """Unexpected exceptions are logged with their traceback and shown as a notice; the
    window keeps working."""

    def show(text: str) -> None:
        window = window_ref[0] if window_ref else None
        if window is not None:
            QTimer.singleShot(
                0,
                lambda: window.notice.show_notice(
                    f"⚠ Something went wrong: {text}. The details are in the log file; "
                    "everything else keeps working."
                ),
            )

    def hook(typ: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        log.error("Unexpected error:\n%s", "".join(traceback.format_exception(typ, value, tb)))
        show(str(value) or typ.__name__)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook


# Qt messages that read like errors but say nothing useful. The offscreen platform (screenshots,
# the self-test, CI) warns about propagateSizeHints() on every window it shows: it only means
# the plugin has no window manager to pass size hints to.
QT_NOISE = frozenset({"This plugin does not support propagateSizeHints()"})


def install_qt_message_filter() -> None:
    """Drop the known-harmless Qt messages in QT_NOISE; print every other one as Qt would.

    A message handler rather than a QLoggingCategory rule: the message comes from Qt's
    "default" category, and silencing that category would hide real warnings too.
    """

    def handler(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
        if message in QT_NOISE:
            return
        # qFormatLogMessage honours QT_MESSAGE_PATTERN, like Qt's own handler.
        sys.stderr.write(qFormatLogMessage(kind, context, message) + "\n")
        sys.stderr.flush()

    qInstallMessageHandler(handler)


def platform_problem() -> str | None:
    """Why Qt's X11 (xcb) platform plugin cannot load here, in words; None when it can, or
    when the window will not use xcb (another platform, not Linux).

    Qt does not fail softly there: without, say, libxcb-cursor0 (which Qt needs since 6.5
    and many desktops lack) it prints "could not load the Qt platform plugin" and aborts
    the process. Loading the plugin library first, the way Qt will, turns that into a
    sentence the command line can show before it falls back to the headless server.
    """
    if not sys.platform.startswith("linux"):
        return None
    requested = os.environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if requested and requested != "xcb":
        return None
    wayland = os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland"
    if not requested and (wayland or not os.environ.get("DISPLAY")):
        return None  # Qt picks Wayland (or nothing to show on): not this check's business
    # Where Qt looks for plugins: QT_PLUGIN_PATH first, then its own folder.
    folders = [Path(p) for p in os.environ.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    folders.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)))
    plugins = [f / "platforms" / "libqxcb.so" for f in folders]
    plugin = next((p for p in plugins if p.is_file()), None)
    if plugin is None:
        return "Qt has no xcb platform plugin"
    library = QLibrary(str(plugin))
    if library.load():
        return None
    # The same packages the self-test and the .deb name (selftest.py only imports config).
    from scim_desktop.selftest import QT_XCB_PACKAGES

    return (
        f"Qt cannot load its X11 platform plugin: {library.errorString()}; on Debian or "
        f"Ubuntu, sudo apt-get install {QT_XCB_PACKAGES}"
    )


def run_gui(args: argparse.Namespace) -> int:
    from scim_desktop.gui.widgets.main_window import MainWindow

    install_qt_message_filter()
    log_path = setup_logging()
    QGuiApplication.setApplicationName(APP)
    QGuiApplication.setOrganizationName(ORG)
    QGuiApplication.setApplicationDisplayName("SCIM Desktop")
    QGuiApplication.setDesktopFileName("scim-desktop")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    screenshot = getattr(args, "screenshot", None)
    demo = bool(getattr(args, "demo", False))
    temp_dir: tempfile.TemporaryDirectory[str] | None = None
    settings = QSettings(ORG, APP)
    if screenshot:
        from scim_desktop.gui.screenshot import path_problem

        problem = path_problem(Path(screenshot))
        if problem is not None:
            print(f"scim-desktop: error: cannot save the screenshot: {problem}", file=sys.stderr)
            return 1
    try:
        if screenshot and demo:
            # A throwaway server: the screenshot never touches the user's data or settings.
            temp_dir = tempfile.TemporaryDirectory(prefix="scim-desktop-shot-")
            args.db = args.db or str(Path(temp_dir.name) / "demo.json")
            if args.port is None:
                args.port = 0
        config = config_from(args, settings, saved_proxy=not (screenshot and demo))
    except ConfigError as exc:
        print(f"scim-desktop: error: {exc}", file=sys.stderr)
        return 2
    window_ref: list = []
    _install_excepthooks(window_ref)
    try:
        row_cap = int(settings.value("row_cap", 10_000))
    except (TypeError, ValueError):
        row_cap = 10_000
    window = MainWindow(
        config, settings=settings, persist=not screenshot, row_cap=max(1_000, row_cap)
    )
    window_ref.append(window)
    window.resize(1440, 900)
    geometry = settings.value("geometry")
    if geometry is not None and not screenshot:
        window.restoreGeometry(geometry)
    if settings.value("presentation", False) in (True, "true") and not screenshot:
        window.presentation_action.setChecked(True)

    # SIGINT / SIGTERM close the window (and so stop the server cleanly). Python signal
    # handlers run only while the interpreter runs, so a timer wakes it up regularly.
    signal.signal(signal.SIGTERM, lambda *a: QTimer.singleShot(0, window.close))
    signal.signal(signal.SIGINT, lambda *a: QTimer.singleShot(0, window.close))
    wake = QTimer()
    wake.start(200)
    wake.timeout.connect(lambda: None)

    window.show()
    window.start_server(wait=bool(screenshot))
    log.info("SCIM Desktop window started; log file %s", log_path)
    shot = None
    if screenshot:
        from scim_desktop.gui.screenshot import take_screenshot

        tab = getattr(args, "screenshot_tab", "requests") or "requests"
        shot = take_screenshot(window, Path(screenshot), demo=demo, tab=tab)
    code = app.exec()
    if temp_dir is not None:
        temp_dir.cleanup()
    if shot is not None and shot.error is not None:
        print(f"scim-desktop: error: {shot.error}", file=sys.stderr)
        return 1
    return int(code)
