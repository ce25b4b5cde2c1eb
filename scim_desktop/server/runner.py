"""ServerThread: the SCIM server on its own thread and event loop.

The thread owns the IOLoop, the store and everything in memory. Other threads reach in only
through :meth:`ServerThread.call`, which schedules a function on the loop with
``IOLoop.add_callback`` (Tornado's one thread-safe method) and returns a
``concurrent.futures.Future``; the GUI attaches callbacks to it instead of blocking.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import inspect
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tornado.ioloop
import tornado.netutil

from scim_desktop.config import (
    DEFAULT_TUNNEL_TIMEOUT,
    ConfigError,
    ServerConfig,
    load_or_create_password_key,
    password_key_path_for,
)
from scim_desktop.core.catalog import Catalog, CatalogError, parse_catalog
from scim_desktop.core.fault_engine import FaultEngine, RuleState
from scim_desktop.core.faults import FaultRule
from scim_desktop.core.oauth import TokenInfo
from scim_desktop.core.resources import Outcome, ScimService
from scim_desktop.server.app import make_app
from scim_desktop.server.auth import Authenticator
from scim_desktop.server.events import EventSink, NullSink, ResourceChanged
from scim_desktop.server.handlers import ServerContext, publish_changes
from scim_desktop.server.http1 import HttpServer
from scim_desktop.server.oauth_handlers import OAuthRuntime
from scim_desktop.server.proxy import Proxy
from scim_desktop.server.tls import TlsError, prepare_tls, quiet_tls_errors
from scim_desktop.store import DurableStore
from scim_desktop.store.lock import DataFileInUse, DataFileLock
from scim_desktop.tunnel.process import TunnelError, TunnelProcess
from scim_desktop.tunnel.providers import get_provider

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


@dataclass(frozen=True, slots=True)
class TunnelStatus:
    """Where the tunnel stands; a new object on every change, so reading it from any thread is
    safe. ``state``: off | starting | up | failed (``error`` says why, in one line)."""

    state: str = "off"
    provider: str | None = None
    #: ``https://host`` while up.
    public_url: str | None = None
    #: The public SCIM base URL (``public_url`` + base path) while up.
    public_base_url: str | None = None
    pid: int | None = None
    error: str | None = None
    #: The tool's last output lines (for a details view).
    output: tuple[str, ...] = field(default_factory=tuple)


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


def raise_fd_limit() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit: every connection is a descriptor, and
    the default soft limit (1024 on Linux, 256 on macOS) is what a client flood exhausts
    first. macOS refuses more than OPEN_MAX (10240) even when the hard limit is unlimited."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or (hard != resource.RLIM_INFINITY and soft >= hard):
        return
    for value in (hard, 10240):
        if value != resource.RLIM_INFINITY and value <= soft:
            return
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (value, hard))
            return
        except (ValueError, OSError):
            continue


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
        #: The HTTP server while running (its connections and limits).
        self.http_server: HttpServer | None = None
        self.store: DurableStore | None = None
        #: TLS: the certificate in use, its SHA-256 fingerprint, and whether it was generated
        #: by this start (None without TLS).
        self.tls_cert_path: Path | None = config.tls.cert_path if config.tls else None
        self.tls_fingerprint: str | None = None
        self.tls_generated = False
        self.oauth: OAuthRuntime | None = None
        self._tunnel: TunnelProcess | None = None
        self._tunnel_status = TunnelStatus()
        self._tunnel_listeners: list[Callable[[TunnelStatus], None]] = []
        self._tunnel_starts: set[concurrent.futures.Future] = set()
        self._tunnel_lock = threading.Lock()  # guards _tunnel_starts (several threads)

    # --- lifecycle (any thread) ---------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Start listening; raise :class:`ServerStartError` with a clear message on failure.
        With ``config.tunnel``, also start the tunnel and return once its public URL is known
        (a tunnel that cannot start stops the server again). Called from the owning (main or
        GUI) thread."""
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
        tunnel = self.config.tunnel
        if tunnel is not None:
            # The tunnel is part of this server: if it cannot come up, nothing starts.
            future = self.start_tunnel(tunnel.provider, tunnel.tool_path, tunnel.timeout)
            try:
                future.result(tunnel.timeout + 10)
            except TunnelError as exc:
                self.stop()
                raise ServerStartError(str(exc)) from None
            except concurrent.futures.TimeoutError:
                self.stop()
                raise ServerStartError("The tunnel did not start in time") from None
            except Exception as exc:
                self.stop()
                raise ServerStartError(f"The tunnel could not start: {exc}") from exc

    @property
    def running(self) -> bool:
        return self._ready.is_set() and self._startup_error is None and not self._stopped.is_set()

    @property
    def scheme(self) -> str:
        return "https" if self.config.tls is not None else "http"

    @property
    def local_host(self) -> str:
        """The address a local client (or the tunnel tool) connects to; IPv6 in brackets."""
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"[{host}]" if ":" in host else host

    @property
    def local_origin(self) -> str:
        """``scheme://host:port`` of the listening socket, as a local client reaches it."""
        return f"{self.scheme}://{self.local_host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The local SCIM base URL (http or https, loopback): what this machine connects to.
        Thread-safe."""
        return f"{self.local_origin}{self.config.base_path}"

    @property
    def proxy_mode(self) -> bool:
        """Whether SCIM requests are forwarded to ``config.upstream``. Thread-safe."""
        return self.config.upstream is not None

    @property
    def upstream_up(self) -> bool | None:
        """Proxy mode: whether the upstream answered the last forwarded request (None: none
        forwarded yet, or not in proxy mode). Thread-safe (a read of one attribute)."""
        proxy = self.context.proxy if self.context is not None else None
        return proxy.up if proxy is not None else None

    @property
    def public_base_url(self) -> str | None:
        """The public SCIM base URL while a tunnel is up (paste it into Okta), else None.
        Thread-safe."""
        return self._tunnel_status.public_base_url

    @property
    def advertised_base_url(self) -> str:
        """The base URL clients are told about (meta.location, Location, the banner): the
        public one while a tunnel is up, else the local one. Thread-safe."""
        return self.public_base_url or self.base_url

    @property
    def advertised_origin(self) -> str:
        return self._tunnel_status.public_url or self.local_origin

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
                if not future.done():  # shutdown may have failed it already
                    future.set_exception(exc)
            else:
                if not future.done():
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
                publish_changes(ctx, outcome.changes, self.advertised_base_url)
            return outcome

        return self.call(run)

    def snapshot(self, rtypes: Sequence[str] = ("User", "Group")) -> concurrent.futures.Future:
        """A future of ``{"User": [...], "Group": [...]}`` (the ``rtypes`` asked for): every
        resource as clients see it. Thread-safe. Rendering is the server thread's work
        (~1 s for 100,000 users), so ask only for what is shown."""

        def run() -> dict[str, list[dict[str, Any]]]:
            ctx = self.context
            assert ctx is not None
            base_url = self.advertised_base_url
            return {
                rtype: [ctx.service.render(rtype, r, base_url) for r in ctx.store.ordered(rtype)]
                for rtype in rtypes
            }

        return self.call(run)

    # --- the entitlement catalog (any thread) -------------------------------------------------
    def catalog(self) -> concurrent.futures.Future[Catalog | None]:
        """A future of the catalog being served (None: no catalog). Thread-safe."""
        return self.call(lambda: self.context.service.catalog)  # type: ignore[union-attr]

    def set_catalog(self, catalog: Catalog | None) -> concurrent.futures.Future[None]:
        """Serve ``catalog`` (None: remove it) and store it durably in the data file; the
        sink gets ``ResourceChanged("updated", "Catalog", "*", catalog.to_json())`` (or
        ``"deleted"`` with None) and the Okta classifier the new endpoints. Users' grants are
        kept as they are, also of values the new catalog lacks (``Catalog.unknown_grants``
        lists them). Thread-safe."""

        def op(service: ScimService) -> Outcome:
            return service.set_catalog(catalog)

        future: concurrent.futures.Future[None] = concurrent.futures.Future()

        def done(applied: concurrent.futures.Future) -> None:
            error = applied.exception()
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(None)

        self.apply(op).add_done_callback(done)
        return future

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

    # --- tunnel (any thread) ------------------------------------------------------------------
    def start_tunnel(
        self,
        provider: str,
        tool_path: str | None = None,
        timeout: float = DEFAULT_TUNNEL_TIMEOUT,
    ) -> concurrent.futures.Future:
        """Start a tunnel to this server with ``provider`` (cloudflared, ngrok, localhost.run;
        ``tool_path``: the tool's executable, else found on PATH). The future resolves to the
        public SCIM base URL, or fails with a TunnelError whose message is one line to show.
        A tunnel already running is replaced. Thread-safe."""

        async def run() -> str:
            ctx = self.context
            assert ctx is not None
            await self._end_tunnel()
            try:
                spec = get_provider(provider)
            except ValueError as exc:
                raise TunnelError(str(exc)) from None
            proc = TunnelProcess(
                spec,
                self.port,
                scheme=self.scheme,
                host=self.local_host,
                tool_path=tool_path,
                on_exit=self._exited,
            )
            self._set_tunnel_status(TunnelStatus("starting", provider))
            try:
                # Spawned on the server thread: the child's parent-death signal follows the
                # thread that started it, and this one lives exactly as long as the server.
                proc.spawn()
            except TunnelError as exc:
                self._set_tunnel_status(TunnelStatus("failed", provider, error=str(exc)))
                raise
            self._tunnel = proc
            self._set_tunnel_status(TunnelStatus("starting", provider, pid=proc.pid))
            loop = asyncio.get_running_loop()
            try:
                origin = await loop.run_in_executor(None, proc.wait_for_url, timeout)
            except TunnelError as exc:
                await loop.run_in_executor(None, proc.stop)
                if self._tunnel is proc:
                    self._tunnel = None
                    self._set_tunnel_status(
                        TunnelStatus("failed", provider, error=str(exc), output=tuple(proc.tail()))
                    )
                raise
            if self._tunnel is not proc:
                raise TunnelError("The tunnel was stopped before it came up")
            ctx.public_url = origin
            base = origin + self.config.base_path
            self._set_tunnel_status(
                TunnelStatus("up", provider, origin, base, proc.pid, output=tuple(proc.tail()))
            )
            return base

        future = self.call(run)
        with self._tunnel_lock:
            self._tunnel_starts.add(future)

        def forget(done: concurrent.futures.Future) -> None:
            with self._tunnel_lock:
                self._tunnel_starts.discard(done)

        future.add_done_callback(forget)
        return future

    def stop_tunnel(self) -> concurrent.futures.Future:
        """Stop the tunnel (if any); URLs go back to the local ones. Thread-safe."""
        return self.call(self._end_tunnel)

    def tunnel_status(self) -> TunnelStatus:
        """The tunnel's current status. Thread-safe (an immutable snapshot)."""
        return self._tunnel_status

    def add_tunnel_listener(self, listener: Callable[[TunnelStatus], None]) -> None:
        """Call ``listener(status)`` on every tunnel status change. It runs on the server
        thread and must return quickly (the window should hand it to its own thread with a
        queued signal). Thread-safe."""
        self._tunnel_listeners = [*self._tunnel_listeners, listener]

    def remove_tunnel_listener(self, listener: Callable[[TunnelStatus], None]) -> None:
        """Thread-safe."""
        self._tunnel_listeners = [x for x in self._tunnel_listeners if x is not listener]

    def _set_tunnel_status(self, status: TunnelStatus) -> None:
        self._tunnel_status = status
        for listener in self._tunnel_listeners:
            try:
                listener(status)
            except Exception:
                log.exception("A tunnel listener failed")

    async def _end_tunnel(self) -> None:
        proc, self._tunnel = self._tunnel, None
        if self.context is not None:
            self.context.public_url = None
        if proc is not None:
            await asyncio.get_running_loop().run_in_executor(None, proc.stop)
        if self._tunnel_status.state != "off":
            self._set_tunnel_status(TunnelStatus())

    def _exited(self, proc: TunnelProcess) -> None:
        """The tunnel tool ended (reader thread): unless we stopped it, say why."""
        if proc.stopping:
            return
        loop = self._loop
        if loop is None:
            return
        # RuntimeError: the loop is closed, so the server is gone anyway.
        with contextlib.suppress(RuntimeError):
            loop.add_callback(self._tunnel_died, proc)

    def _tunnel_died(self, proc: TunnelProcess) -> None:
        if self._tunnel is not proc:
            return  # still starting (wait_for_url reports it) or already replaced
        if self._tunnel_status.state != "up":
            return
        self._tunnel = None
        if self.context is not None:
            self.context.public_url = None
        message = proc.exit_message()
        log.warning("The tunnel ended: %s", message)
        self._set_tunnel_status(
            TunnelStatus(
                "failed", proc.provider.name, pid=proc.pid, error=message, output=tuple(proc.tail())
            )
        )

    # --- OAuth (any thread) ---------------------------------------------------------------------
    @property
    def oauth_client_id(self) -> str | None:
        """The OAuth client id to paste into Okta (None unless in OAuth mode). Thread-safe."""
        oauth = self.config.auth.oauth
        return oauth.client_id if oauth and self.config.auth.mode == "oauth" else None

    @property
    def oauth_client_secret(self) -> str | None:
        """The OAuth client secret to paste into Okta. Thread-safe."""
        oauth = self.config.auth.oauth
        return oauth.client_secret if oauth and self.config.auth.mode == "oauth" else None

    @property
    def oauth_authorize_url(self) -> str | None:
        """Okta's "Authorize endpoint" (public while a tunnel is up). Thread-safe."""
        return f"{self.advertised_origin}/oauth/authorize" if self.oauth_client_id else None

    @property
    def oauth_token_url(self) -> str | None:
        """Okta's "Token endpoint" (public while a tunnel is up). Thread-safe."""
        return f"{self.advertised_origin}/oauth/token" if self.oauth_client_id else None

    @property
    def oauth_revoke_url(self) -> str | None:
        return f"{self.advertised_origin}/oauth/revoke" if self.oauth_client_id else None

    @property
    def oauth_redirect_uris(self) -> tuple[str, ...]:
        oauth = self.config.auth.oauth
        return oauth.redirect_uris if oauth else ()

    def oauth_tokens(self) -> concurrent.futures.Future:
        """A future of ``list[TokenInfo]``: every issued token (never its value), newest first,
        with its status (active, expired, revoked, rotated). Thread-safe."""

        def run() -> list[TokenInfo]:
            return self.oauth.server.tokens() if self.oauth else []

        return self.call(run)

    def revoke_token(self, token_id: str) -> concurrent.futures.Future:
        """Revoke one token by its id (a refresh token takes its grant's access tokens with it,
        RFC 7009 §2.1); resolves to False if there was no such live token. Thread-safe."""

        def run() -> bool:
            if self.oauth is None:
                return False
            done = self.oauth.server.revoke_id(token_id)
            self.oauth.save_if_changed()
            return done

        return self.call(run)

    def revoke_all_tokens(self) -> concurrent.futures.Future:
        """Revoke every live token; resolves to how many. Thread-safe."""

        def run() -> int:
            if self.oauth is None:
                return 0
            count = self.oauth.server.revoke_all()
            self.oauth.save_if_changed()
            return count

        return self.call(run)

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
        raise_fd_limit()  # before HttpServer sizes its connection limit from it
        try:
            ssl_context = None
            if self.config.tls is not None:
                try:
                    ssl_context, fingerprint, generated = prepare_tls(
                        self.config.tls, self.config.host
                    )
                except TlsError as exc:
                    raise ServerStartError(str(exc)) from None
                self.tls_fingerprint = fingerprint
                self.tls_generated = generated
                quiet_tls_errors()
            sockets = bind(self.config.host, self.config.port)
            try:
                lock.acquire()
            except DataFileInUse as exc:
                raise ServerStartError(str(exc)) from None
            store = DurableStore.open(self.config.db_path)
            try:
                key = load_or_create_password_key(password_key_path_for(self.config.db_path))
            except OSError as exc:
                raise ServerStartError(
                    f"Cannot keep the password key beside the data: {exc}"
                ) from None
            service = ScimService(store, password_key=key)
            catalog_warning = self._load_catalog(service, store)
            oauth = None
            if self.config.auth.mode == "oauth" and self.config.auth.oauth is not None:
                oauth = OAuthRuntime.open(self.config.auth.oauth)
            ctx = ServerContext(
                config=self.config,
                service=service,
                store=store,
                auth=Authenticator(self.config.auth, oauth.server if oauth else None),
                sink=self.sink,
                faults=FaultEngine(self.config.faults, seed=self.config.fault_seed),
                oauth=oauth,
            )
            if service.catalog is not None:
                ctx.okta.set_catalog(service.catalog.endpoints())
            if self.config.upstream is not None:
                # Proxy mode: SCIM paths go upstream (the store stays open but unused by
                # requests, so the window's views and the data file behave as in mock mode).
                ctx.proxy = Proxy(
                    self.config.upstream, self.config.base_path, ctx, self.config.max_body_bytes
                )
            if self.config.catalog is not None:
                await store.commit()  # --catalog FILE is in the data file before serving
            app = make_app(ctx)
            server = HttpServer(
                app,
                # Bodies over the limit are refused on the head (ScimServer.admit) or, chunked,
                # once past it; either way not read, answered 413, and the connection ends.
                max_body_size=self.config.max_body_bytes,
                ssl_options=ssl_context,
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
        self.warnings = list(store.warnings) + (oauth.warnings if oauth else [])
        if catalog_warning:
            self.warnings.append(catalog_warning)
        self.oauth = oauth
        self.context = ctx
        self.http_server = server
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

    def _load_catalog(self, service: ScimService, store: DurableStore) -> str | None:
        """Serve ``--catalog FILE`` (stored, replacing the stored one) or else the catalog
        in the data file; a warning when the stored one cannot be used (it is then left in
        the file untouched, and no catalog is served)."""
        if self.config.catalog is not None:
            service.set_catalog(self.config.catalog)
            return None
        doc = store.catalog_doc
        if doc is None:
            return None
        try:
            service.use_catalog(parse_catalog(doc))
        except CatalogError as exc:
            return (
                f"The entitlement catalog stored in {store.path} cannot be used ({exc}); "
                "serving without one. Load a good one with --catalog FILE."
            )
        store.freeze_long_lived()  # the parsed catalog and its lookups live on
        return None

    async def _shutdown(self, server: HttpServer, store: DurableStore, ctx: ServerContext) -> None:
        server.stop()  # no new connections
        # The tunnel ends with the server (the child process is stopped and reaped).
        try:
            await self._end_tunnel()
        except Exception:
            log.exception("Could not stop the tunnel")
        with self._tunnel_lock:
            pending = list(self._tunnel_starts)
        for future in pending:
            # A start still waiting for its URL never resolves once the loop is gone.
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                if not future.done():
                    future.set_exception(TunnelError("The server stopped"))
        # Give requests that are being answered a moment to finish, then close the rest.
        deadline = time.monotonic() + 1.0
        while ctx.stats.get("active", 0) > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # Answers still waiting (an injected delay): end them, recorded as unanswered.
        for task in list(getattr(server.handler, "tasks", ())):
            task.cancel()
        try:
            await asyncio.wait_for(server.close_all_connections(), 1.0)
        except TimeoutError:
            log.warning("Some connections did not close in time")
        if ctx.proxy is not None:
            ctx.proxy.close()  # the upstream's kept-alive connections end with the server
        await store.close()
