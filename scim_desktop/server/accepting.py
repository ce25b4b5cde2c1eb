"""Accepting connections without spinning when file descriptors run out (issue 12).

Tornado's ``add_accept_handler`` raises on EMFILE: the listening socket stays readable, so
the IOLoop calls it again at once, for as long as descriptors lack (measured: 5 CPU-seconds in
5 s and 118,645 log lines with ``ulimit -n 256`` and 300 idle connections). :class:`Acceptor`
accepts as it does, and pauses instead. The connection limit that keeps the server below the
descriptor limit in the first place is :func:`default_max_connections`, applied by
``http1.HttpServer.accepted``.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from typing import Any, Protocol

from tornado.ioloop import IOLoop

log = logging.getLogger("scim_desktop.server.http")

#: Connections accepted at once when the listening socket is readable (Tornado's figure).
ACCEPT_BATCH = 128
#: Never more connections than this, however high the descriptor limit.
MAX_CONNECTIONS = 4096
#: Pauses of the accept loop while descriptors have run out: first, and longest.
ACCEPT_PAUSE = 0.1
ACCEPT_PAUSE_MAX = 1.6


class _Server(Protocol):
    connections: Any

    def accepted(self, connection: socket.socket, address: Any) -> None: ...


def default_max_connections() -> int:
    """Connections to serve at most: below the soft RLIMIT_NOFILE (the data file, the journal,
    logs and the window need descriptors too), and never more than MAX_CONNECTIONS."""
    try:
        import resource
    except ImportError:  # Windows: no descriptor limit of this kind
        return MAX_CONNECTIONS
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(8, min(MAX_CONNECTIONS, soft - max(32, soft // 8)))


class Acceptor:
    """Accepts connections on one listening socket, as Tornado's ``add_accept_handler`` does,
    but survives running out of file descriptors: Tornado's handler raises on EMFILE, the
    socket stays readable, and the loop spins (issue 12: 5 CPU-s in 5 s and 118,645 log
    lines). Here accepting pauses (the socket leaves the IOLoop) for ACCEPT_PAUSE, doubling up
    to ACCEPT_PAUSE_MAX while it keeps failing, with one log line per episode."""

    def __init__(self, server: _Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.io_loop = IOLoop.current()
        self.removed = False
        self.paused = False
        self.pause = ACCEPT_PAUSE
        #: time.monotonic() when descriptors ran out (None: accepting normally).
        self.starved_since: float | None = None
        self.io_loop.add_handler(sock, self._on_readable, IOLoop.READ)

    def remove(self) -> None:
        if not self.removed:
            self.removed = True
            if not self.paused:
                self.io_loop.remove_handler(self.sock)

    def _on_readable(self, fd: Any, events: int) -> None:
        server = self.server
        for _ in range(ACCEPT_BATCH):
            if self.removed or self.paused:
                return
            try:
                connection, address = self.sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._starved(exc)
                    return
                raise
            if self.starved_since is not None:
                log.warning(
                    "Accepting connections again after %.1f s without file descriptors",
                    time.monotonic() - self.starved_since,
                )
                self.starved_since = None
                self.pause = ACCEPT_PAUSE
            server.accepted(connection, address)

    def _starved(self, exc: OSError) -> None:
        if self.starved_since is None:
            self.starved_since = time.monotonic()
            log.warning(
                "Out of file descriptors (%s) with %d connections open: not accepting new "
                "connections until some close",
                exc.strerror or exc,
                len(self.server.connections),
            )
        self.paused = True
        self.io_loop.remove_handler(self.sock)
        self.io_loop.call_later(self.pause, self._resume)
        self.pause = min(self.pause * 2, ACCEPT_PAUSE_MAX)

    def _resume(self) -> None:
        self.paused = False
        if not self.removed:
            self.io_loop.add_handler(self.sock, self._on_readable, IOLoop.READ)
