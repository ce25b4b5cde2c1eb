"""HTTP/1.1 for the SCIM server on Tornado's ``TCPServer`` and ``IOStream``.

Why not Tornado's ``HTTPServer`` / ``HTTP1Connection``: profiling durable creates (issue 6) put
about 160 us of each request's ~350 us of IOLoop CPU in Tornado's HTTP/1.1 code (a regular
expression and an ``HTTPHeaders.add`` per header line, ``write_headers`` building the head
line by line, a timeout wrapped around every header read, ``set_nodelay`` twice and a new close
callback per request). A bare TCPServer answering the same request from this module's kind of
code used ~50 us against HTTPServer's ~135 us on this machine. So the SCIM server reads and
writes HTTP/1.1 here, still on Tornado's IOLoop, TCPServer (TLS included) and IOStream:

- request head read with one ``read_until_regex`` (at most ``max_header_size`` bytes, else a
  431), request line and header fields checked (RFC 9112 §3, §5; a malformed one is a 400),
  header names normalized as Tornado does (``content-type`` -> ``Content-Type``), repeated
  fields joined with ",";
- the handler's ``admit`` decides on each head, before any body byte is read, whether the
  body is worth reading (issue 12: unauthenticated uploads were buffered whole); a refused
  request is answered at once, its body never read;
- bodies framed by Content-Length or ``Transfer-Encoding: chunked`` (both at once, or another
  transfer coding, is refused: RFC 9112 §6.1, §6.3), ``Expect: 100-continue`` honoured once
  the head was admitted, bodies up to ``max_body_size`` read (to a client waiting for ``100
  Continue``: up to ``continue_limit``); a longer one is not read, and the handler is told its
  declared length so it can answer a SCIM 413 before the connection closes; what a client
  still sends after such a refusal is read and dropped from a budget all connections share;
- keep-alive (HTTP/1.1 unless ``Connection: close``; HTTP/1.0 only with ``Connection:
  keep-alive``), pipelined requests answered in order, each response written with one
  ``write`` (head and body together, ``TCP_NODELAY`` set once per connection);
- a connection that is idle, or sends its request too slowly, for ``idle_timeout`` seconds,
  whose body takes longer than ``body_timeout``, or whose answer is not read within
  ``write_timeout``, is closed by one sweep every few seconds (not a timer per request);
- answers written but not yet taken by their clients' sockets are counted server-wide; past
  ``undrained_budget`` (UNDRAINED_BUDGET, 256 MB) the connections holding the oldest are
  closed (:meth:`HttpServer.hold`);
- connections are accepted by this module's own handler (Tornado's spins when descriptors run
  out), at most ``max_connections`` of them (see :class:`HttpServer`);
- protocol errors are answered with a SCIM Error body (RFC 7644 §3.12) and ``Connection:
  close``, never a bare Tornado 400.

The handler (``ScimServer``) gets each :class:`Request` with its :class:`Connection` and
answers with :meth:`Connection.send`. Paths served by a ``tornado.web.Application`` (the
OAuth pages) go through :class:`ApplicationBridge`, which gives it the ``HTTPConnection`` it
expects. Reading and writing heads (:func:`parse_head`, :func:`encode_head`, :class:`Request`,
:class:`Refusal`, :class:`HttpError`) is :mod:`scim_desktop.server.http1_head`, re-exported here;
reading bodies (:class:`~scim_desktop.server.http1_body.BodyReader`, a part of
:class:`Connection`) is :mod:`scim_desktop.server.http1_body`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from tornado import httputil
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, SSLIOStream, StreamClosedError
from tornado.tcpserver import TCPServer

from scim_desktop.core import errors
from scim_desktop.server.accepting import Acceptor, default_max_connections
from scim_desktop.server.http1_body import BodyReader
from scim_desktop.server.http1_head import (
    Fields,
    HttpError,
    Refusal,
    Request,
    encode_head,
    http_date,
    parse_head,
)

log = logging.getLogger("scim_desktop.server.http")

#: Tornado's default limit for the request line and header fields.
MAX_HEADER_SIZE = 64 * 1024
#: How much of a refused request's first line is kept to record it.
FIRST_LINE_KEPT = 8 * 1024
#: Seconds a connection may wait for, or take to send, its next request.
IDLE_TIMEOUT = 120.0

_HEAD_END = re.compile(rb"\r?\n\r?\n")
#: Bytes asked of the stream at a time (it hands over what has arrived, up to this).
READ_CHUNK = 64 * 1024
#: The longest one connection is served before the loop is given back (see serve()).
FAIR_TURN_S = 0.005
#: After refusing a request, what is still read and dropped before the socket closes.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024
#: What all connections together may be reading and dropping at once (issue 12: forty
#: refused 16 MB uploads must not cost forty times LINGER_BYTES); past it, a refused
#: connection closes at once.
LINGER_POOL = 4 * 1024 * 1024
#: Seconds a request body may take in all, however steadily it trickles in.
BODY_TIMEOUT = 60.0
#: Seconds an answer may take to be written out (a client that never reads is closed).
WRITE_TIMEOUT = 60.0
#: Answer bytes written to sockets but not yet drained, all connections together. Each
#: connection queues at most one answer, but in proxy mode one may be 16 MB (the upstream
#: cap) and 4,096 connections may be open: 128 clients that never read their 15 MB answers
#: held 2 GB for WRITE_TIMEOUT. Past it, the connections holding the oldest undrained
#: answers are closed (HttpServer.hold).
UNDRAINED_BUDGET = 256 * 1024 * 1024
#: An answer body longer than this is written after its head instead of joined to it.
SEPARATE_BODY = 256 * 1024
#: Retry-After (seconds) of the 503 a connection over the limit gets.
BUSY_RETRY_AFTER = 5
#: At the connection limit with no idle connection to close, how long new connections get a
#: 503 before the connections are looked through again.
IDLE_SCAN_PAUSE = 0.1
#: At the connection limit with no idle connection, a connection whose request head has
#: been arriving for longer than this is closed to make room: a client sends its head at
#: once, so such a connection is a slow loris holding a slot for up to ``idle_timeout``.
SLOW_HEAD_S = 10.0
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Handler(Protocol):
    def handle(self, conn: Connection, request: Request) -> None:
        """Answer ``request`` with ``conn.send`` (now or later), or close ``conn``."""

    def connection_closed(self, conn: Connection) -> None:
        """``conn`` closed (by either side); its current request may be unanswered."""

    def refused(self, conn: Connection, refusal: Refusal) -> None:
        """A request that could not be read was refused (to record it)."""

    # Optional (HttpServer looks it up once):
    #   def admit(self, conn: Connection, request: Request, length: int) -> bool
    # called with each request's head before any body byte is read (``length``: the
    # Content-Length, -1 for a chunked body, 0 for none). False: the request will be refused
    # (``handle`` still gets it, with an empty body, to answer and record the refusal), so
    # its body is not read and the connection ends after the answer. True: its body is read,
    # up to ``max_body_size`` or the smaller ``request.body_limit`` admit may set.


class HttpServer(TCPServer):
    """Accepts connections and serves each one with a :class:`Connection`.

    Limits (issue 12), each kept without a timer per request: one sweep every few seconds
    closes connections past ``idle_timeout`` (waiting for a request head, or a body that
    stopped moving), ``body_timeout`` (a body that trickles) or ``write_timeout`` (an answer
    the client does not read); at most ``max_connections`` are open (a new one past it takes
    the place of the longest-idle keep-alive connection, or of a request head arriving for
    over ``slow_head_timeout``, else gets a 503 and is closed);
    refused requests' unread bodies are read and dropped from a budget shared by all
    connections (LINGER_POOL); and answers not yet drained to their clients hold at most
    ``undrained_budget`` bytes all together (see :meth:`hold`)."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body_size: int,
        continue_limit: int | None = None,
        max_header_size: int = MAX_HEADER_SIZE,
        idle_timeout: float = IDLE_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        max_connections: int | None = None,
        slow_head_timeout: float = SLOW_HEAD_S,
        undrained_budget: int = UNDRAINED_BUDGET,
        ssl_options: Any = None,
    ) -> None:
        super().__init__(ssl_options=ssl_options, max_buffer_size=max_body_size + max_header_size)
        self.handler = handler
        #: Handler.admit, if the handler decides on request heads.
        self.admit: Callable[[Connection, Request, int], bool] | None = getattr(
            handler, "admit", None
        )
        self.max_body_size = max_body_size
        #: A client that waits for "100 Continue" is not asked for a body longer than this
        #: (its handler refuses it unread); others have bodies up to max_body_size read.
        self.continue_limit = max_body_size if continue_limit is None else continue_limit
        self.max_header_size = max_header_size
        self.idle_timeout = idle_timeout
        self.body_timeout = body_timeout
        self.write_timeout = write_timeout
        self.slow_head_timeout = slow_head_timeout
        self.max_connections = (
            default_max_connections() if max_connections is None else max_connections
        )
        #: Bytes refused connections may still read and drop, all together (see _linger_close).
        self.linger_left = LINGER_POOL
        self.undrained_budget = undrained_budget
        #: Bytes of answers still in write buffers (see hold), and who holds them, by the
        #: write's future, oldest first (a dict keeps insertion order).
        self.undrained = 0
        self._holders: dict[asyncio.Future[None], tuple[Connection, int]] = {}
        self._over_since: float | None = None
        self.connections: set[Connection] = set()
        self._sweeping = False
        self._full_since: float | None = None
        self._no_idle_until = 0.0
        self._busy_answer = self._make_busy_answer()

    # --- accepting -------------------------------------------------------------------------------
    def add_sockets(self, sockets: Any) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = Acceptor(self, sock).remove

    def accepted(self, connection: socket.socket, address: Any) -> None:
        """A new connection: served, unless max_connections are open and no idle one can make
        room for it (then it gets a 503 with Retry-After and is closed). One log line when
        the limit is reached, one when the server is well below it again."""
        count = len(self.connections)
        if count >= self.max_connections:
            if self._full_since is None:
                self._full_since = time.monotonic()
                log.warning(
                    "%d connections open, the limit: idle ones (or request heads arriving for "
                    "over %g s) are closed to make room for new ones, which get a 503 when none "
                    "is",
                    count,
                    self.slow_head_timeout,
                )
            if not self._close_idlest():
                self._turn_away(connection)
                return
        elif self._full_since is not None and count < self.max_connections * 0.9:
            log.warning(
                "Below the connection limit again after %.1f s",
                time.monotonic() - self._full_since,
            )
            self._full_since = None
        self._handle_connection(connection, address)

    def _close_idlest(self) -> bool:
        """Make room at the connection limit: close the keep-alive connections idle the
        longest (waiting for a next request, none of it received; RFC 9112 §9.6 lets a server
        close those at any time), a sixteenth of the limit at once so the scan over every
        connection is not made again for each new one. With none idle, the connections whose
        request head has been arriving for over ``slow_head_timeout`` seconds are closed
        instead (else a flood of half heads would turn every newcomer away with a 503 for
        ``idle_timeout`` seconds). False when there are neither (then the scan is not repeated
        for IDLE_SCAN_PAUSE seconds: each new connection gets a 503)."""
        now = time.monotonic()
        if now < self._no_idle_until:
            return False
        idle = [
            conn
            for conn in self.connections
            if conn.reading_since is not None
            and not conn._buf
            and not conn._in_body
            and not conn.stream.closed()
        ]
        if not idle:
            # Half heads: part of a request head received, its body not started.
            slow = now - self.slow_head_timeout
            idle = [
                conn
                for conn in self.connections
                if conn.reading_since is not None
                and conn.reading_since < slow
                and not conn._in_body
                and not conn.stream.closed()
            ]
        if not idle:
            self._no_idle_until = now + IDLE_SCAN_PAUSE
            return False
        idle.sort(key=lambda conn: conn.reading_since)  # type: ignore[arg-type, return-value]
        for conn in idle[: max(1, self.max_connections // 16)]:
            conn.close()
            self.connections.discard(conn)  # its slot is free now (its close callback is later)
        return True

    def _make_busy_answer(self) -> bytes:
        error = errors.ScimError("The server has too many connections open; try again shortly")
        error.status = 503  # type: ignore[misc]
        body = orjson.dumps(error.to_body())
        headers = {
            "Content-Type": "application/scim+json; charset=utf-8",
            "Retry-After": str(BUSY_RETRY_AFTER),
            "Content-Length": str(len(body)),
            "Connection": "close",
        }
        return encode_head(503, headers) + body

    def _turn_away(self, connection: socket.socket) -> None:
        """Answer 503 on a connection that is not served, without a stream or a buffer (a TLS
        connection is only closed: the answer would need a handshake first)."""
        with contextlib.suppress(OSError):
            if self.ssl_options is None:
                connection.setblocking(False)
                connection.send(self._busy_answer)
                connection.shutdown(socket.SHUT_WR)
                # Drop what the client already sent, or closing would reset the connection
                # and could destroy the answer before it is read.
                with contextlib.suppress(OSError):
                    connection.recv(READ_CHUNK)
        connection.close()

    def handle_stream(self, stream: IOStream, address: Any) -> Awaitable[None]:
        # Counted at once, not when the coroutine first runs: a batch of accepts happens
        # before any of them starts, and the connection limit must see every one.
        conn = Connection(self, stream, address)
        self.connections.add(conn)
        if not self._sweeping:
            self._sweeping = True
            IOLoop.current().call_later(self._sweep_every(), self._sweep)
        return self._serve(conn)

    async def _serve(self, conn: Connection) -> None:
        try:
            await conn.serve()
        except Exception:  # a bug here must not stop the server; the connection goes
            log.exception("Error serving a connection from %s", conn.remote_ip)
        finally:
            conn.close()
            self.connections.discard(conn)

    # --- deadlines -------------------------------------------------------------------------------
    def _sweep_every(self) -> float:
        shortest = min(self.idle_timeout, self.body_timeout, self.write_timeout)
        return max(0.05, min(shortest / 4, 5.0))

    def _sweep(self) -> None:
        """Close connections past a deadline: waiting too long for (the rest of) their next
        request, a body that takes too long in all, or an answer that is not being read (one
        log line per sweep for the last two, however many connections)."""
        now = time.monotonic()
        idle, body, write = self.idle_timeout, self.body_timeout, self.write_timeout
        slow_bodies = unread = 0
        for conn in list(self.connections):
            since = conn.reading_since
            if since is not None and now - since > idle:
                conn.close()
            elif conn._in_body and now - conn.body_since > body:
                slow_bodies += 1
                conn.close()
            elif conn.writing_since is not None and now - conn.writing_since > write:
                unread += 1
                conn.close()
        if slow_bodies or unread:
            log.info(
                "Closed %d connections whose request body took over %g s, and %d that did not "
                "read their answer within %g s",
                slow_bodies,
                body,
                unread,
                write,
            )
        if self.connections:
            IOLoop.current().call_later(self._sweep_every(), self._sweep)
        else:
            self._sweeping = False

    # --- answers not read ---------------------------------------------------------------------
    def hold(self, conn: Connection, size: int, written: asyncio.Future[None]) -> None:
        """``conn`` wrote an answer of ``size`` bytes that the socket did not take at once:
        the stream keeps all of it (Tornado holds a view of the whole answer until its last
        byte is sent) until ``written`` resolves (drained, or the connection closed).

        Past ``undrained_budget`` the connections holding the oldest undrained answers are
        closed (not this one), until the total is within it again. Why these: an answer
        that a client reads at any usable pace is gone long before a budget's worth of newer
        answers piles up behind it, so the oldest are those of clients that do not read,
        however many connections they hold; closing them frees exactly the memory at stake.
        The alternatives stop everyone for one attacker: pausing every connection's reading
        until the total drains (backpressure) or answering 503 to new requests would hold
        well-behaved clients, the window's Simulate Okta and ``check`` included, hostage for
        up to ``write_timeout``. The answer that crossed the budget is sent (it is already
        in memory; one answer is at most the upstream cap)."""
        self._holders[written] = (conn, size)
        self.undrained += size
        written.add_done_callback(self._drained)
        if self.undrained <= self.undrained_budget:
            return
        closed = freed = 0
        for future, (holder, held) in list(self._holders.items()):
            if self.undrained <= self.undrained_budget:
                break
            if holder is conn:
                continue
            # Counted out now: the future's own callback runs later (it finds nothing).
            del self._holders[future]
            self.undrained -= held
            holder.close()
            closed += 1
            freed += held
        if self._over_since is None:
            self._over_since = time.monotonic()
            log.warning(
                "Answers not read by their clients exceed %d MB: closed %d connections holding "
                "the oldest (%d MB); more are closed while it lasts",
                self.undrained_budget // 2**20,
                closed,
                freed // 2**20,
            )

    def _drained(self, written: asyncio.Future[None]) -> None:
        entry = self._holders.pop(written, None)
        if entry is not None:
            self.undrained -= entry[1]
        if self._over_since is not None and self.undrained <= self.undrained_budget // 2:
            log.warning(
                "Answers not read are within the budget again after %.1f s",
                time.monotonic() - self._over_since,
            )
            self._over_since = None

    async def close_all_connections(self) -> None:
        """Close every open connection (after ``stop()``, when the server shuts down)."""
        while self.connections:
            for conn in list(self.connections):
                conn.close()
            await asyncio.sleep(0)


class Connection(BodyReader):
    """One client connection: reads requests one after the other and writes their answers.

    Answers go out one at a time: the next request is not read before the previous answer
    is written, so what is queued for a client that does not read is one answer, for at
    most ``write_timeout`` seconds (and all such answers together are bounded by the
    server's ``undrained_budget``)."""

    request: Request | None = None
    #: time.monotonic() since when the next request's head is awaited, or since its body last
    #: moved (None while a request is being answered); see HttpServer._sweep.
    reading_since: float | None = None
    #: time.monotonic() when the current body started (its head was read).
    body_since = 0.0
    #: time.monotonic() since when an answer is waiting to be written out (None: none is).
    writing_since: float | None = None
    _sent = False
    _waiter: asyncio.Future[None] | None = None
    _write: asyncio.Future[None] | None = None
    _buf: bytearray
    _in_body = False
    #: The current request's body (or its rest) was left unread: linger before closing.
    _unread = False
    #: The start of the request being read (what a refusal records).
    _first_line = b""

    def __init__(self, server: HttpServer, stream: IOStream, address: Any) -> None:
        self.server = server
        self.stream = stream
        self.protocol = "https" if isinstance(stream, SSLIOStream) else "http"
        family = getattr(stream.socket, "family", None)
        if family in (socket.AF_INET, socket.AF_INET6) and address:
            self.remote_ip: str = address[0]
        else:
            self.remote_ip = "0.0.0.0"
        self._buf = bytearray()  # received, not yet read as a request
        # Waiting for its first request from now on (so also idle, for the connection limit,
        # before its coroutine first runs).
        self.reading_since = time.monotonic()
        stream.set_close_callback(self._on_close)
        stream.set_nodelay(True)  # each answer goes out in one write

    # --- the request loop ----------------------------------------------------------------------
    async def serve(self) -> None:
        stream = self.stream
        handler = self.server.handler
        turn = time.perf_counter()
        while not stream.closed():
            try:
                request = await self._read_request()
            except StreamClosedError:
                return
            except HttpError as exc:
                await self._refuse(exc)
                return
            if request is None:
                continue
            self.request = request
            self._sent = False
            handler.handle(self, request)
            if not self._sent and not stream.closed():
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter
                self._waiter = None
            self.request = None
            write = self._write
            if write is not None:
                self._write = None
                if not write.done():  # most answers are written at once; the rest, timed
                    self.writing_since = time.monotonic()
                try:
                    await write  # the answer is on its way: backpressure, and close after it
                except StreamClosedError:
                    return
                self.writing_since = None
            if not request.keep_alive:
                if self._unread:
                    await self._linger_close()
                self.close()
                return
            if time.perf_counter() - turn > FAIR_TURN_S:
                # Awaiting data that has already arrived, or a write the socket took at once,
                # does not give the loop back: a client that always has its next request
                # ready (pipelining, or just fast) was served alone while every other
                # connection waited (measured: 2 s). So each connection yields after its turn.
                await asyncio.sleep(0)
                turn = time.perf_counter()

    # --- reading ---------------------------------------------------------------------------------
    async def _fill(self) -> None:
        """Append what the client sent next to the connection's buffer."""
        self._buf += await self.stream.read_bytes(READ_CHUNK, partial=True)
        if self._in_body:
            self.reading_since = time.monotonic()  # a body may take long while it moves

    async def _read_request(self) -> Request | None:
        self.reading_since = time.monotonic()
        server = self.server
        buf = self._buf
        limit = server.max_header_size
        searched = 0
        while True:
            if not searched and buf and buf[0] in b"\r\n":
                limit -= self._skip_empty_lines(server.max_header_size - limit)
                if not buf:
                    await self._fill()
                    continue
            end = _HEAD_END.search(buf, searched)
            if end is not None and end.end() <= limit:
                break
            if len(buf) > limit or end is not None:
                self._first_line = bytes(buf[:FIRST_LINE_KEPT])
                raise HttpError(431, f"The request line and header fields exceed {limit} bytes")
            searched = max(0, len(buf) - 3)
            await self._fill()
        self._first_line = bytes(buf[: min(end.end(), FIRST_LINE_KEPT)])
        request = parse_head(bytes(buf[: end.end()]))
        del buf[: end.end()]
        if request is None:
            return None
        self._unread = False
        headers = request.headers
        coding = headers.get("Transfer-Encoding")
        length = headers.get("Content-Length")
        if coding is not None:
            if length is not None:
                raise HttpError(
                    400, "A request cannot have both Transfer-Encoding and Content-Length"
                )
            if coding.strip(" \t").lower() != "chunked":
                raise HttpError(501, f"Transfer-Encoding {coding!r} is not supported; use chunked")
            size = -1
        else:
            size = 0 if length is None else self._content_length(length)
        admit = server.admit
        if admit is not None and not admit(self, request, size):
            # Refused on its head (issue 12): the body is never read. One that has arrived
            # whole already is dropped and the connection goes on; else it ends after the
            # answer, and what the client still sends is read and dropped (_linger_close).
            if 0 <= size <= len(buf):
                del buf[:size]
            else:
                request.keep_alive = False
                self._unread = True
            self.reading_since = None
            return request
        self.reading_since = self.body_since = time.monotonic()
        self._in_body = True
        limit = server.max_body_size
        if request.body_limit is not None:
            limit = min(limit, request.body_limit)
        expect = headers.get("Expect")
        if (
            expect is not None
            and expect.lower() == "100-continue"
            and request.version == "HTTP/1.1"
            and not buf  # the client is waiting for us before it sends the body
        ):
            # RFC 9110 §10.1.1: only once the head passed (admit), and for a body to be read.
            limit = min(limit, server.continue_limit)
            if size < 0 or 0 < size <= limit:
                self.stream.write(_CONTINUE)
        if size < 0:
            await self._read_chunked(request, limit)
        elif size > limit:
            request.declared_length = size
            request.keep_alive = False  # the body stays unread: the connection must end
            self._unread = True
        elif size:
            request.body = await self._read_exactly(size)
        self.reading_since = None
        self._in_body = False
        return request

    async def _refuse(self, exc: HttpError) -> None:
        """Answer a request that could not be read, then close."""
        log.info("Refused a request from %s: %s %s", self.remote_ip, exc.status, exc.detail)
        error = errors.ScimError(exc.detail)
        error.status = exc.status  # type: ignore[misc]
        body = orjson.dumps(error.to_body())
        headers = {
            "Content-Type": "application/scim+json; charset=utf-8",
            "Date": http_date(),
            "Content-Length": str(len(body)),
            "Connection": "close",
        }
        text = self._first_line.decode("latin-1").lstrip("\r\n")
        line = text.replace("\r", "\n").split("\n", 1)[0]
        try:
            self.server.handler.refused(self, Refusal(line, exc.status, dict(headers), body))
        except Exception:
            log.exception("Could not record a refused request")
        self.reading_since = None
        self._in_body = False
        self.writing_since = time.monotonic()  # a client that does not read is swept
        try:
            await self.stream.write(encode_head(exc.status, headers) + body)
        except StreamClosedError:
            return
        self.writing_since = None
        await self._linger_close()

    async def _linger_close(self) -> None:
        """Close a connection whose client may still be sending (a refused or unread body):
        closing a socket with unread data resets it, and the client could lose the answer
        it was sent. So: end our side, then read and drop what still comes for a moment,
        up to LINGER_BYTES, and only as far as the budget all connections share allows
        (past it the connection closes at once: a flood of refused uploads is not read)."""
        self._buf.clear()
        server = self.server
        allowance = min(LINGER_BYTES, server.linger_left)
        if allowance <= 0:
            self.close()
            return
        server.linger_left -= allowance
        try:
            if not isinstance(self.stream, SSLIOStream):
                with contextlib.suppress(OSError):
                    self.stream.socket.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            dropped = 0
            with contextlib.suppress(StreamClosedError, TimeoutError):
                while dropped < allowance:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        break
                    chunk = await asyncio.wait_for(
                        self.stream.read_bytes(READ_CHUNK, partial=True), timeout
                    )
                    dropped += len(chunk)
        finally:
            server.linger_left += allowance
            self.close()

    # --- answers -------------------------------------------------------------------------------
    def send(self, status: int, headers: Fields, body: bytes | None) -> None:
        """Write the answer to the current request: ``headers`` as given (a list of values
        for a repeated field), plus ``Connection`` when the connection will not stay open, or
        an HTTP/1.0 client asked to keep it."""
        request = self.request
        if request is None and self.stream.closed():
            return  # the client went away; nobody is left to answer
        if self._sent or request is None:
            raise RuntimeError("The request was already answered")
        if not request.keep_alive:
            headers["Connection"] = "close"
        elif "Connection" in request.headers and request.version != "HTTP/1.1":
            headers["Connection"] = "keep-alive"
        try:
            data = encode_head(status, headers)
        except ValueError:
            self.close()  # no answer can be written: end the exchange, not just this call
            raise
        finally:
            self._sent = True
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)
        size = len(data) + (len(body) if body else 0)
        try:
            if body and len(body) > SEPARATE_BODY:
                # Not joined: a copy of a proxied 16 MB answer would double what it holds.
                self.stream.write(data)
                data = body
            elif body:
                data += body
            self._write = self.stream.write(data)
        except StreamClosedError:
            self._write = None
            return
        if not self._write.done():  # the rest waits in the stream's buffer: counted
            self.server.hold(self, size, self._write)

    def close(self) -> None:
        if not self.stream.closed():
            self.stream.close()

    def _on_close(self) -> None:
        self.server.connections.discard(self)
        try:
            self.server.handler.connection_closed(self)
        except Exception:
            log.exception("Error handling a closed connection")
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class ApplicationBridge(httputil.HTTPConnection):
    """Serves one request with a ``tornado.web.Application`` (``context`` gives it the
    client's address and scheme); its answer is collected and sent in one write."""

    def __init__(self, conn: Connection) -> None:
        self.context = conn
        self._conn = conn
        #: The body's length when it was too long to read (see Request.declared_length).
        self.declared_length = 0
        self._start: httputil.ResponseStartLine | None = None
        self._headers: httputil.HTTPHeaders | None = None
        self._chunks: list[bytes] = []
        self._close_callback: Any = None

    def serve(self, app: httputil.HTTPServerConnectionDelegate, request: Request) -> None:
        self.declared_length = request.declared_length
        try:
            headers = request.tornado_headers()
            delegate = app.start_request(self._conn, self)
            start = httputil.RequestStartLine(request.method, request.target, request.version)
            delegate.headers_received(start, headers)
        except httputil.HTTPInputError as exc:  # what Tornado refuses beyond this parser
            request.keep_alive = False
            body = orjson.dumps({"error": "invalid_request", "error_description": str(exc)})
            answer = {
                "Content-Type": "application/json",
                "Cache-Control": "no-store",
                "Date": http_date(),
                "Content-Length": str(len(body)),
            }
            conn = self._conn
            line = f"{request.method} {request.target} {request.version}"
            try:
                conn.server.handler.refused(conn, Refusal(line, 400, dict(answer), body))
            except Exception:
                log.exception("Could not record a refused request")
            conn.send(400, answer, body)
            return
        if request.body:
            delegate.data_received(request.body)
        delegate.finish()

    def connection_closed(self) -> None:
        callback, self._close_callback = self._close_callback, None
        if callback is not None:
            callback()

    # --- httputil.HTTPConnection ---------------------------------------------------------------
    def write_headers(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
        chunk: bytes | None = None,
    ) -> asyncio.Future[None]:
        assert isinstance(start_line, httputil.ResponseStartLine)
        self._start = start_line
        self._headers = headers
        return self.write(chunk or b"")

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        if chunk:
            self._chunks.append(chunk)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def finish(self) -> None:
        assert self._start is not None and self._headers is not None
        body = b"".join(self._chunks)
        headers: dict[str, str] = {}
        for name, value in self._headers.get_all():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        headers.pop("Transfer-Encoding", None)  # the whole body goes out at once
        status = self._start.code
        if status not in (204, 304) and "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body))
        request = self._conn.request
        if request is not None and request.method == "HEAD":
            body = b""
        self._conn.send(status, headers, body)

    def set_close_callback(self, callback: Any) -> None:
        self._close_callback = callback
