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
- bodies framed by Content-Length or ``Transfer-Encoding: chunked`` (both at once, or another
  transfer coding, is refused: RFC 9112 §6.1, §6.3), ``Expect: 100-continue`` honoured, bodies
  up to ``max_body_size`` read (to a client waiting for ``100 Continue``: up to
  ``continue_limit``); a longer one is not read, and the handler is told its declared
  length so it can answer a SCIM 413 before the connection closes;
- keep-alive (HTTP/1.1 unless ``Connection: close``; HTTP/1.0 only with ``Connection:
  keep-alive``), pipelined requests answered in order, each response written with one
  ``write`` (head and body together, ``TCP_NODELAY`` set once per connection);
- a connection that is idle, or sends its request too slowly, for ``idle_timeout`` seconds is
  closed by one sweep every few seconds (not a timer per request);
- protocol errors are answered with a SCIM Error body (RFC 7644 §3.12) and ``Connection:
  close``, never a bare Tornado 400.

The handler (``ScimServer``) gets each :class:`Request` with its :class:`Connection` and
answers with :meth:`Connection.send`. Paths served by a ``tornado.web.Application`` (the
OAuth pages) go through :class:`ApplicationBridge`, which gives it the ``HTTPConnection`` it
expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import Awaitable
from typing import Any, NamedTuple, Protocol

import orjson
from tornado import httputil
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, SSLIOStream, StreamClosedError
from tornado.tcpserver import TCPServer

from scim_desktop.core import errors

log = logging.getLogger("scim_desktop.server.http")

#: Tornado's default limit for the request line and header fields.
MAX_HEADER_SIZE = 64 * 1024
#: Chunk-size lines and trailer fields longer than this are refused.
MAX_CHUNK_LINE = 1024
#: How much of a refused request's first line is kept to record it.
FIRST_LINE_KEPT = 8 * 1024
#: Seconds a connection may wait for, or take to send, its next request.
IDLE_TIMEOUT = 120.0

_HEAD_END = re.compile(rb"\r?\n\r?\n")
#: Bytes asked of the stream at a time (it hands over what has arrived, up to this).
READ_CHUNK = 64 * 1024
#: After refusing a request, what is still read and dropped before the socket closes.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024
_VERSION_RE = re.compile(r"HTTP/1\.[0-9]")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Request targets: no control characters (RFC 9112 §3.2; spaces already split the line).
#: Bytes beyond ASCII are kept as Tornado keeps them (Latin-1 characters).
_TARGET_RE = re.compile(r"[^\x00-\x20\x7f]+")
_AUTHORITY_RE = re.compile(r"([^/?#]*)(.*)", re.DOTALL)
#: One header field line (RFC 9110 §5.1, RFC 9112 §5): a token name, a colon, optional
#: SP/HTAB, the value (trailing SP/HTAB stripped after). The block of fields ends with the
#: empty line. Possessive quantifiers only: no backtracking, so a hostile 64 KB head costs
#: linear time.
#: Anchored at line starts, so every match is one whole line: as many matches as lines means
#: every line is a well-formed field.
_FIELD_RE = re.compile(r"^([!#$%&'*+\-.^_`|~0-9A-Za-z]++):[ \t]*+([^\r\n]*+)\r?\n", re.M)
#: Control characters other than HTAB, CR and LF (a CR must start a CRLF: checked apart).
_CTL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEX = frozenset("0123456789abcdefABCDEF")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_STATUS_LINES: dict[int, bytes] = {}
#: Normalized header names by the spelling a client used (a few dozen in practice).
_NAMES: dict[str, str] = {}


def normalize_name(name: str) -> str:
    """``content-type`` -> ``Content-Type``, as Tornado's HTTPHeaders spells names."""
    normal = _NAMES.get(name)
    if normal is None:
        normal = "-".join(w.capitalize() for w in name.split("-"))
        if len(_NAMES) < 4096:  # clients that invent names must not grow it without bound
            _NAMES[name] = normal
    return normal


class _Date:
    """The ``Date`` header value (RFC 9110 §6.6.1), formatted once a second."""

    second = -1
    value = ""


def http_date() -> str:
    now = time.time()
    second = int(now)
    if second != _Date.second:
        _Date.value = httputil.format_timestamp(now)
        _Date.second = second
    return _Date.value


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        reason = httputil.responses.get(status, "Unknown")
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {reason}\r\n".encode()
    return line


def encode_head(status: int, headers: dict[str, str]) -> bytes:
    """The status line and header fields of a response, ending with the empty line."""
    text = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    # A CR or LF inside a value would split the response (header injection).
    if text.count("\n") != len(headers) or text.count("\r") != len(headers):
        raise ValueError(f"A response header holds a line break: {headers!r}")
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    return status_line(status) + data + b"\r\n"


class Refusal(NamedTuple):
    """A request answered without reaching the handler, and the answer it got."""

    #: Its first line as received (possibly cut, or not a request line at all).
    request_line: str
    status: int
    headers: dict[str, str]
    body: bytes


class HttpError(Exception):
    """A request that cannot be read as HTTP/1.1: answered with ``status`` and closed."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Request:
    """One request as read off the connection."""

    __slots__ = (
        "body",
        "declared_length",
        "head",
        "headers",
        "keep_alive",
        "method",
        "target",
        "version",
    )

    def __init__(
        self, method: str, target: str, version: str, headers: dict[str, str], head: str
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        #: The request line and header fields as received (decoded as Latin-1).
        self.head = head
        self.body = b""
        #: The body's length when it was too long to read (the body is then empty).
        self.declared_length = 0
        connection = headers.get("Connection", "").lower()
        if version == "HTTP/1.1":
            self.keep_alive = "close" not in connection
        else:
            self.keep_alive = "keep-alive" in connection

    def tornado_headers(self) -> httputil.HTTPHeaders:
        """The header fields as Tornado's HTTPHeaders (for a tornado.web.Application)."""
        _, _, fields = self.head.lstrip("\r\n").partition("\n")
        return httputil.HTTPHeaders.parse(fields)


def parse_head(data: bytes) -> Request | None:
    """The request line and header fields (None for a head of empty lines only)."""
    text = data.decode("latin-1")
    if _CTL_RE.search(text) or text.count("\r") != text.count("\r\n"):
        # RFC 9110 §5.5: never kept, never passed on (a bare CR included)
        raise HttpError(400, "The request head holds a control character")
    # RFC 9112 §2.2: empty lines before the request line are ignored.
    head = text.lstrip("\r\n") if text[0] in "\r\n" else text
    if not head:
        return None
    end = head.find("\n")
    line = head[:end]
    parts = (line[:-1] if line.endswith("\r") else line).split(" ")
    if len(parts) != 3:
        raise HttpError(400, "The request line is not 'METHOD target HTTP/1.1'")
    method, target, version = parts
    if not _TOKEN_RE.fullmatch(method):
        raise HttpError(400, f"The request method {method[:40]!r} is not a token")
    if not _TARGET_RE.fullmatch(target):
        raise HttpError(400, "The request target is empty or holds characters that are not allowed")
    if not _VERSION_RE.fullmatch(version):
        raise HttpError(
            505 if version.startswith("HTTP/") else 400, f"{version[:20]!r} is not HTTP/1.x"
        )
    block = head[end + 1 :]
    fields = _FIELD_RE.findall(block)
    if len(fields) != block.count("\n") - 1:  # the last line is the empty one
        _refuse_fields(block)  # raises, saying which line is wrong
    headers: dict[str, str] = {}
    names = _NAMES
    for name, value in fields:
        name = names.get(name) or normalize_name(name)
        if value and value[-1] in " \t":
            value = value.rstrip(" \t")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    if target[0] != "/" and target != "*":
        target = _origin_form(target, headers)
    if version == "HTTP/1.1":
        host = headers.get("Host")
        if host is None or "," in host:  # RFC 9112 §3.2: exactly one
            raise HttpError(400, "An HTTP/1.1 request needs exactly one Host header field")
    elif "Transfer-Encoding" in headers:  # RFC 9112 §6.1: faulty framing from HTTP/1.0
        raise HttpError(400, "Transfer-Encoding is not allowed in an HTTP/1.0 request")
    return Request(method, target, version, headers, text)


def _refuse_fields(block: str) -> None:
    """Raise the HttpError that says what is wrong in header fields _FIELD_RE refused."""
    for line in block.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        if line[0] in " \t":  # RFC 9112 §5.2: obsolete line folding is refused
            raise HttpError(400, "A header field is folded over lines (obs-fold)")
        name, colon, _ = line.partition(":")
        if not colon:  # not quoted: the line may be a credential
            raise HttpError(400, "A header field line has no ':'")
        if not _TOKEN_RE.fullmatch(name):
            raise HttpError(400, f"Malformed header field name {name[:40]!r}")
    raise HttpError(400, "Malformed header fields")


def _origin_form(target: str, headers: dict[str, str]) -> str:
    """An absolute-form target (``http://host/path``, as sent through a proxy) as the path
    it names; its authority replaces Host (RFC 9112 §3.2.2, §7.2)."""
    scheme, separator, rest = target.partition("://")
    if not separator or scheme.lower() not in ("http", "https"):
        raise HttpError(400, "The request target is neither a path nor an http(s) URL")
    match = _AUTHORITY_RE.match(rest)
    assert match is not None  # the pattern matches any text
    authority, remainder = match.group(1).rpartition("@")[2], match.group(2)
    if authority:
        headers["Host"] = authority
    return remainder if remainder.startswith("/") else "/" + remainder


class Handler(Protocol):
    def handle(self, conn: Connection, request: Request) -> None:
        """Answer ``request`` with ``conn.send`` (now or later), or close ``conn``."""

    def connection_closed(self, conn: Connection) -> None:
        """``conn`` closed (by either side); its current request may be unanswered."""

    def refused(self, conn: Connection, refusal: Refusal) -> None:
        """A request that could not be read was refused (to record it)."""


class HttpServer(TCPServer):
    """Accepts connections and serves each one with a :class:`Connection`."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body_size: int,
        continue_limit: int | None = None,
        max_header_size: int = MAX_HEADER_SIZE,
        idle_timeout: float = IDLE_TIMEOUT,
        ssl_options: Any = None,
    ) -> None:
        super().__init__(ssl_options=ssl_options, max_buffer_size=max_body_size + max_header_size)
        self.handler = handler
        self.max_body_size = max_body_size
        #: A client that waits for "100 Continue" is not asked for a body longer than this
        #: (its handler refuses it unread); others have bodies up to max_body_size read.
        self.continue_limit = max_body_size if continue_limit is None else continue_limit
        self.max_header_size = max_header_size
        self.idle_timeout = idle_timeout
        self.connections: set[Connection] = set()
        self._sweeping = False

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        conn = Connection(self, stream, address)
        self.connections.add(conn)
        if not self._sweeping:
            self._sweeping = True
            IOLoop.current().call_later(self._sweep_every(), self._sweep)
        try:
            await conn.serve()
        except Exception:  # a bug here must not stop the server; the connection goes
            log.exception("Error serving a connection from %s", conn.remote_ip)
        finally:
            conn.close()
            self.connections.discard(conn)

    def _sweep_every(self) -> float:
        return max(0.05, min(self.idle_timeout / 4, 5.0))

    def _sweep(self) -> None:
        """Close connections that waited too long for (the rest of) their next request."""
        now = time.monotonic()
        for conn in list(self.connections):
            if conn.reading_since is not None and now - conn.reading_since > self.idle_timeout:
                conn.close()
        if self.connections:
            IOLoop.current().call_later(self._sweep_every(), self._sweep)
        else:
            self._sweeping = False

    async def close_all_connections(self) -> None:
        """Close every open connection (after ``stop()``, when the server shuts down)."""
        while self.connections:
            for conn in list(self.connections):
                conn.close()
            await asyncio.sleep(0)


class Connection:
    """One client connection: reads requests one after the other and writes their answers."""

    request: Request | None = None
    #: time.monotonic() since when the next request's head is awaited, or since its body last
    #: moved (None while a request is being answered); see HttpServer._sweep.
    reading_since: float | None = None
    _sent = False
    _waiter: asyncio.Future[None] | None = None
    _write: Awaitable[None] | None = None
    _buf: bytearray
    _in_body = False
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
        stream.set_close_callback(self._on_close)
        stream.set_nodelay(True)  # each answer goes out in one write

    # --- the request loop ----------------------------------------------------------------------
    async def serve(self) -> None:
        stream = self.stream
        handler = self.server.handler
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
                try:
                    await write  # the answer is on its way: backpressure, and close after it
                except StreamClosedError:
                    return
            if not request.keep_alive:
                if request.declared_length:
                    await self._linger_close()
                self.close()
                return

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
        self.reading_since = time.monotonic()
        self._in_body = True
        headers = request.headers
        limit = server.max_body_size
        expect = headers.get("Expect")
        if (
            expect is not None
            and expect.lower() == "100-continue"
            and request.version == "HTTP/1.1"
            and not buf  # the client is waiting for us before it sends the body
        ):
            limit = min(limit, server.continue_limit)
            if self._continue_for(headers, limit):
                self.stream.write(_CONTINUE)
        coding = headers.get("Transfer-Encoding")
        length = headers.get("Content-Length")
        if coding is not None:
            if length is not None:
                raise HttpError(
                    400, "A request cannot have both Transfer-Encoding and Content-Length"
                )
            if coding.strip(" \t").lower() != "chunked":
                raise HttpError(501, f"Transfer-Encoding {coding!r} is not supported; use chunked")
            await self._read_chunked(request, limit)
        elif length is not None:
            size = self._content_length(length)
            if size > limit:
                request.declared_length = size
                request.keep_alive = False  # the body stays unread: the connection must end
            elif size:
                request.body = await self._read_exactly(size)
        self.reading_since = None
        self._in_body = False
        return request

    async def _read_exactly(self, size: int) -> bytes:
        buf = self._buf
        while len(buf) < size:
            await self._fill()
        data = bytes(buf[:size])
        del buf[:size]
        return data

    async def _read_line(self, what: str) -> str:
        buf = self._buf
        searched = 0
        while (end := buf.find(b"\n", searched)) < 0:
            if len(buf) > MAX_CHUNK_LINE:
                raise HttpError(400, f"A {what} is longer than {MAX_CHUNK_LINE} bytes")
            searched = len(buf)
            await self._fill()
        if end > MAX_CHUNK_LINE:
            raise HttpError(400, f"A {what} is longer than {MAX_CHUNK_LINE} bytes")
        if end == 0 or buf[end - 1] != 13:  # RFC 9112 §7.1: CRLF after every chunk line
            raise HttpError(400, f"A {what} does not end with CRLF")
        line = bytes(buf[: end - 1]).decode("latin-1")
        del buf[: end + 1]
        if _CTL_RE.search(line):
            raise HttpError(400, f"A {what} holds a control character")
        return line

    def _continue_for(self, headers: dict[str, str], limit: int) -> bool:
        """Whether to ask for the body: there is one, and it is not refused unread."""
        length = headers.get("Content-Length")
        if length is None:
            return "Transfer-Encoding" in headers
        try:
            return 0 < self._content_length(length) <= limit
        except HttpError:
            return False  # refused below

    @staticmethod
    def _content_length(value: str) -> int:
        if "," in value:  # the same length repeated is allowed (RFC 9110 §8.6)
            values = {v.strip() for v in value.split(",")}
            if len(values) != 1:
                raise HttpError(400, f"Conflicting Content-Length values: {value[:80]!r}")
            value = values.pop()
        if not (value.isascii() and value.isdigit()) or len(value) > 18:
            raise HttpError(400, f"Content-Length {value[:40]!r} is not a number of bytes")
        return int(value)

    async def _read_chunked(self, request: Request, limit: int) -> None:
        """A chunked body (RFC 9112 §7.1): sizes in hex, extensions ignored, trailers read and
        dropped. Past ``limit`` the rest is not read (and the connection will end)."""
        parts: list[bytes] = []
        total = 0
        while True:
            line = await self._read_line("chunk size line")
            size_text = line.split(";", 1)[0].strip(" \t")
            if not size_text or len(size_text) > 16 or not _HEX.issuperset(size_text):
                raise HttpError(400, f"Malformed chunk size line: {line[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > limit:
                request.declared_length = total
                request.keep_alive = False
                return
            chunk = await self._read_exactly(size + 2)
            if chunk[-2:] != b"\r\n":
                raise HttpError(400, "A chunk does not end with CRLF")
            parts.append(chunk[:-2])
        while await self._read_line("trailer field"):
            pass
        request.body = b"".join(parts)

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
        try:
            await self.stream.write(encode_head(exc.status, headers) + body)
        except StreamClosedError:
            return
        await self._linger_close()

    async def _linger_close(self) -> None:
        """Close a connection whose client may still be sending (a refused or unread body):
        closing a socket with unread data resets it, and the client could lose the answer
        it was sent. So: end our side, then read and drop what still comes for a moment."""
        self._buf.clear()
        if not isinstance(self.stream, SSLIOStream):
            with contextlib.suppress(OSError):
                self.stream.socket.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        dropped = 0
        with contextlib.suppress(StreamClosedError, TimeoutError):
            while dropped < LINGER_BYTES:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                chunk = await asyncio.wait_for(
                    self.stream.read_bytes(READ_CHUNK, partial=True), timeout
                )
                dropped += len(chunk)
        self.close()

    # --- answers -------------------------------------------------------------------------------
    def send(self, status: int, headers: dict[str, str], body: bytes | None) -> None:
        """Write the answer to the current request: ``headers`` as given (plus ``Connection``
        when the connection will not stay open, or an HTTP/1.0 client asked to keep it)."""
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
        if body:
            data += body
        try:
            self._write = self.stream.write(data)
        except StreamClosedError:
            self._write = None

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
