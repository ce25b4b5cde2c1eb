"""ServerThread: the SCIM server on its own thread and event loop.

The thread owns the IOLoop, the store and everything in memory. Other threads reach in only
through :meth:`ServerThread.call`, which schedules a function on the loop with
``IOLoop.add_callback`` (Tornado's one thread-safe method) and returns a
``concurrent.futures.Future``; the GUI attaches callbacks to it instead of blocking.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import inspect
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import tornado.httpserver
import tornado.ioloop
import tornado.netutil

from scim_desktop.config import ConfigError, ServerConfig
from scim_desktop.core.faults import FaultEngine, FaultRule, RuleState
from scim_desktop.core.resources import Outcome, ScimService
from scim_desktop.server.app import make_app
from scim_desktop.server.auth import Authenticator
from scim_desktop.server.events import EventSink, NullSink, ResourceChanged
from scim_desktop.server.handlers import ServerContext, drain_cap, publish_changes
from scim_desktop.store import DurableStore
from scim_desktop.store.lock import DataFileInUse, DataFileLock

log = logging.getLogger("scim_desktop.server")


class ServerStartError(RuntimeError):
    """The server could not start; the message is one line a person can act on."""


class PortInUse(ServerStartError):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"Port {port} on {host} is already in use. Stop the other program, or choose "
            f"another port (--port 0 picks a free one)."
        )
        self.host = host
        self.port = port


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for host:port, with errors turned into one-line messages."""
    try:
        return tornado.netutil.bind_sockets(port, host, reuse_port=False)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ServerStartError(
                f"Not allowed to listen on port {port} (ports below 1024 need privileges); "
                f"choose a port above 1024."
            ) from None
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise ServerStartError(
                f"Cannot listen on host {host!r}: it is not an address of this machine."
            ) from None
        raise ServerStartError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class ServerThread:
    """Runs the SCIM server; ``start()`` returns once it listens (or raises why it can't)."""

    def __init__(
        self,
        config: ServerConfig,
        sink: EventSink | None = None,
        *,
        name: str = "scim-server",
    ) -> None:
        self.config = config
        self.sink: EventSink = sink or NullSink()
        self._name = name
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._loop: tornado.ioloop.IOLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._stopped = threading.Event()
        self.port: int = 0
        self.warnings: list[str] = []
        self.context: ServerContext | None = None
        self.store: DurableStore | None = None

    # --- lifecycle (any thread) ---------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Start listening; raise :class:`ServerStartError` with a clear message on failure.
        Called from the owning (main or GUI) thread."""
        if self._thread is not None:
            raise RuntimeError("ServerThread.start() called twice")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ServerStartError("The server did not start in time")
        if self._startup_error is not None:
            self._thread.join(5)
            err = self._startup_error
            if isinstance(err, ServerStartError | ConfigError):
                raise err
            raise ServerStartError(f"The server could not start: {err}") from err

    @property
    def running(self) -> bool:
        return self._ready.is_set() and self._startup_error is None and not self._stopped.is_set()

    @property
    def base_url(self) -> str:
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{self.config.base_path}"

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """Run ``fn(*args, **kwargs)`` on the server thread; a coroutine result is awaited.
        Thread-safe: meant to be called from other threads (GUI, tests)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        loop = self._loop
        if loop is None or not self.running:
            future.set_exception(RuntimeError("The server is not running"))
            return future

        async def runner() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        loop.add_callback(runner)
        return future

    # --- data operations for the window (any thread) ------------------------------------------
    def apply(self, op: Callable[[ScimService], Outcome]) -> concurrent.futures.Future:
        """Run ``op(service)`` on the server thread with the same rules as a request (an edit
        made in the window is validated exactly like a PUT or PATCH), make it durable, tell
        the sink what changed, and resolve to the Outcome. Thread-safe."""

        async def run() -> Outcome:
            ctx = self.context
            assert ctx is not None
            outcome = op(ctx.service)
            if outcome.changes:
                await ctx.store.commit()
                publish_changes(ctx, outcome.changes, self.base_url)
            return outcome

        return self.call(run)

    def snapshot(self) -> concurrent.futures.Future:
        """A future of ``{"User": [...], "Group": [...]}``: every resource as clients see it.
        Thread-safe."""

        def run() -> dict[str, list[dict[str, Any]]]:
            ctx = self.context
            assert ctx is not None
            return {
                rtype: [
                    ctx.service.render(rtype, r, self.base_url) for r in ctx.store.ordered(rtype)
                ]
                for rtype in ("User", "Group")
            }

        return self.call(run)

    def reset_data(self) -> concurrent.futures.Future:
        """Delete every user and group (durably). Thread-safe."""

        async def run() -> None:
            ctx = self.context
            assert ctx is not None
            ctx.store.clear()
            await ctx.store.commit()
            ctx.sink.publish(ResourceChanged("cleared", "*", "*", None))

        return self.call(run)

    # --- faults (any thread) ---------------------------------------------------------------
    def set_fault_rules(
        self, rules: list[FaultRule] | tuple[FaultRule, ...]
    ) -> concurrent.futures.Future:
        """Replace the fault rules while serving (counters restart). Thread-safe."""
        return self.call(lambda: self.context.faults.set_rules(rules))  # type: ignore[union-attr]

    def fault_states(self) -> concurrent.futures.Future:
        """A future of the rules with how often each fired and what is left. Thread-safe."""

        def states() -> list[RuleState]:
            return self.context.faults.states()  # type: ignore[union-attr]

        return self.call(states)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, let in-flight requests finish (briefly), flush the store, close the
        loop and join the thread. Thread-safe; idempotent."""
        thread = self._thread
        if thread is None:
            return
        loop = self._loop
        if loop is not None and self._stop_requested is not None and thread.is_alive():
            event = self._stop_requested
            loop.add_callback(event.set)
        thread.join(timeout)
        if thread.is_alive():
            log.error("The server thread did not stop within %.1f s", timeout)

    # --- the server thread ------------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # pragma: no cover - last resort; _main reports its own
            log.exception("The server thread failed")
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._stopped.set()

    async def _main(self) -> None:
        sockets: list[socket.socket] = []
        store: DurableStore | None = None
        lock = DataFileLock(self.config.db_path)
        try:
            sockets = bind(self.config.host, self.config.port)
            try:
                lock.acquire()
            except DataFileInUse as exc:
                raise ServerStartError(str(exc)) from None
            store = DurableStore.open(self.config.db_path)
            service = ScimService(store)
            ctx = ServerContext(
                config=self.config,
                service=service,
                store=store,
                auth=Authenticator(self.config.auth),
                sink=self.sink,
                faults=FaultEngine(self.config.faults, seed=self.config.fault_seed),
            )
            app = make_app(ctx)
            server = tornado.httpserver.HTTPServer(
                app,
                # The handlers enforce the configured limit with a SCIM 413; this only stops
                # absurd bodies before they are read.
                max_body_size=drain_cap(self.config.max_body_bytes),
                idle_connection_timeout=120,
            )
            server.add_sockets(sockets)
        except BaseException as exc:
            for sock in sockets:
                sock.close()
            if store is not None:
                await store.close()
            lock.release()
            self._startup_error = exc
            self._ready.set()
            return
        self.port = sockets[0].getsockname()[1]
        self.warnings = list(store.warnings)
        self.context = ctx
        self.store = store
        self._loop = tornado.ioloop.IOLoop.current()
        self._stop_requested = asyncio.Event()
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            try:
                await self._shutdown(server, store, ctx)
            finally:
                lock.release()

    async def _shutdown(
        self, server: tornado.httpserver.HTTPServer, store: DurableStore, ctx: ServerContext
    ) -> None:
        server.stop()  # no new connections
        # Give requests that are being answered a moment to finish, then close the rest.
        deadline = time.monotonic() + 1.0
        while ctx.stats.get("active", 0) > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        try:
            await asyncio.wait_for(server.close_all_connections(), 1.0)
        except TimeoutError:
            log.warning("Some connections did not close in time")
        await store.close()
