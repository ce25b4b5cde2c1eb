"""ServerController: the window's handle on the embedded server.

It owns the :class:`ServerThread`, starts and stops it without blocking the GUI thread, and
runs functions on the server thread with results delivered back on the GUI thread. The GUI
never waits on a future with ``.result()``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from scim_desktop.config import ServerConfig
from scim_desktop.gui.bridge import QtEventSink
from scim_desktop.server.runner import ServerStartError, ServerThread

log = logging.getLogger("scim_desktop.gui")

Callback = Callable[[Any], None]
ErrorCallback = Callable[[BaseException], None]


class ServerController(QObject):
    #: The server listens: its base URL.
    started = Signal(str)
    #: The server stopped (by request).
    stopped = Signal()
    #: Starting failed, or a call failed without its own error handler: a message in words.
    failed = Signal(str)
    #: "starting" | "listening" | "stopping" | "stopped" | "error"
    stateChanged = Signal(str)
    _deliver = Signal(object, object, object)

    def __init__(self, sink: QtEventSink, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.sink = sink
        self.server: ServerThread | None = None
        self.config: ServerConfig | None = None
        self.state = "stopped"
        self.last_error = ""
        self._deliver.connect(self._on_deliver, Qt.ConnectionType.QueuedConnection)

    # --- lifecycle ---------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.state = state
        self.stateChanged.emit(state)

    def start(self, config: ServerConfig, *, wait: bool = False) -> None:
        """Start the server with ``config`` on a helper thread; ``started`` or ``failed``
        follows. ``wait=True`` blocks (for tests and the screenshot mode only)."""
        if self.state in ("starting", "listening"):
            return
        self.config = config
        self._set_state("starting")
        server = ServerThread(config, self.sink)

        def run() -> None:
            try:
                server.start()
            except ServerStartError as exc:
                self._deliver.emit(self._start_failed, str(exc), None)
            except Exception as exc:  # pragma: no cover - reported, never raised into Qt
                log.exception("The server failed to start")
                self._deliver.emit(self._start_failed, f"The server could not start: {exc}", None)
            else:
                self._deliver.emit(self._start_done, server, None)

        thread = threading.Thread(target=run, name="scim-server-start", daemon=True)
        thread.start()
        if wait:
            thread.join()

    def _start_done(self, server: ServerThread) -> None:
        self.server = server
        self.last_error = ""
        self._set_state("listening")
        self.started.emit(server.base_url)

    def _start_failed(self, message: str) -> None:
        self.server = None
        self.last_error = message
        self._set_state("error")
        self.failed.emit(message)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (flushes the store). Blocks for the orderly stop, which takes well
        under a second; used on Stop and when the window closes."""
        server = self.server
        if server is None:
            return
        self._set_state("stopping")
        server.stop(timeout)
        self.server = None
        self._set_state("stopped")
        self.stopped.emit()

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.running

    # --- calls onto the server thread ------------------------------------------------------------
    def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        then: Callback | None = None,
        error: ErrorCallback | None = None,
    ) -> concurrent.futures.Future:
        """Run ``fn(*args)`` on the server thread; ``then(result)`` / ``error(exc)`` run on the
        GUI thread afterwards."""
        server = self.server
        if server is None:
            future: concurrent.futures.Future = concurrent.futures.Future()
            future.set_exception(RuntimeError("The server is not running"))
        else:
            future = server.call(fn, *args)

        def done(f: concurrent.futures.Future) -> None:
            self._deliver.emit(self._finish_call, f, (then, error))

        future.add_done_callback(done)
        return future

    def _finish_call(self, future: concurrent.futures.Future, callbacks: tuple) -> None:
        then, error = callbacks
        exc = future.exception()
        if exc is not None:
            if error is not None:
                error(exc)
            else:
                self.failed.emit(str(exc) or type(exc).__name__)
            return
        if then is not None:
            then(future.result())

    def _on_deliver(self, fn: Callable[..., None], a: Any, b: Any) -> None:
        try:
            if b is None:
                fn(a)
            else:
                fn(a, b)
        except Exception:
            log.exception("A GUI callback failed")
