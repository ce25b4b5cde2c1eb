"""The proxy's HTTP/1.1 client to the upstream SCIM server (issue 14): keep-alive connections
in a bounded pool, on asyncio's transports (the loop Tornado runs on), never blocking it.

Why our own client: Tornado's ``SimpleAsyncHTTPClient`` opens a connection per request (no
keep-alive), which costs a TCP (and TLS) handshake per proxied request; aiohttp or httpx would
be a new dependency (neither is installed here; they were not measured). A first version on
Tornado's IOStream cost ~175 us of client CPU per GET against a fast upstream, this asyncio
Protocol ~125. What a proxy needs of HTTP/1.1 is small: write one request with
``Content-Length``, read one response framed as RFC 9112 §6.3 says (no body for HEAD, 1xx, 204
and 304; chunked; Content-Length; else until the connection closes), and know whether the
connection may carry the next request.

Limits that protect the proxy from its upstream: the head at most ``MAX_HEAD`` bytes, the body
at most ``max_response`` bytes (an upstream streaming without end must not exhaust memory), the
whole exchange within ``timeout`` seconds (Okta's 60), at most ``max_connections`` open at once
(more requests wait their turn, inside their timeout).

Failures are :class:`UpstreamError` with the status the client gets: 502 when the upstream
cannot be reached or answers something that is not HTTP/1.1, 504 when it does not answer in
time. https upstreams are verified against the system's trust store
(``ssl.create_default_context()``) unless ``insecure``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import time
from dataclasses import dataclass

from scim_desktop.config import UpstreamConfig
from scim_desktop.server.http1_head import normalize_name

#: The response head (status line and fields) may be at most this long.
MAX_HEAD = 64 * 1024
#: Connections kept open at most this long unused: many servers close idle ones after 5 s
#: (uvicorn, Node.js), and a request sent just as the server closes its end fails.
IDLE_LIFETIME_S = 4.0
#: Methods that may be sent again on a new connection when a kept-alive one turned out to be
#: closed before any answer came (idempotent, RFC 9110 §9.2.2); POST and PATCH never are.
_RETRYABLE = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")
_STATUS_RE = re.compile(r"HTTP/1\.([01]) (\d{3})(?: (.*))?")
#: A header field line (RFC 9112 §5): a token, a colon, the value (no obs-fold).
_FIELD_RE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*")
_TIMED_OUT = "scim-desktop: the upstream timed out"
#: Control characters a field value must not hold (RFC 9110 §5.5: only HTAB among the CTLs).
_FIELD_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: Interim (1xx) answers taken before the final one: servers send one or two (100 Continue,
#: 103 Early Hints); an endless stream of them is a broken upstream, not a slow one.
MAX_INTERIM = 8


class UpstreamError(Exception):
    """The upstream gave no usable answer. ``status``: 502 or 504 for the client; ``str()``:
    "unreachable: ...", "timed out after 60 s" or "bad answer: ..." (what the record says)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _unreachable(detail: str) -> UpstreamError:
    return UpstreamError(502, f"unreachable: {detail}")


def _bad(detail: str) -> UpstreamError:
    return UpstreamError(502, f"bad answer: {detail}")


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    #: The header fields as received, in order (names spelled as Tornado spells them:
    #: ``content-type`` -> ``Content-Type``).
    headers: list[tuple[str, str]]
    body: bytes
    #: Seconds from sending the request to the last byte of the answer.
    elapsed: float


class _Closed(Exception):
    """The connection closed before any byte of an answer (a kept-alive one may be stale)."""


class StreamClosedError(Exception):
    """The connection closed while a read waited for more (``real_error``: why, if known)."""

    def __init__(self, real_error: BaseException | None = None) -> None:
        super().__init__(str(real_error or "closed"))
        self.real_error = real_error


class _Conn(asyncio.Protocol):
    """One connection to the upstream, as an asyncio Protocol: reading stays registered with
    the loop for the connection's life (Tornado's IOStream changed the socket's epoll interest
    around every read, which with its futures cost twice this per request), and a close by the
    upstream is noticed at once, also while the connection is idle in the pool.

    Reads mirror IOStream's (``read_until``, ``read_bytes``...) over one buffer; a buffer
    beyond ``limit`` closes the connection (an upstream that floods the proxy)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self._closed = False
        self.error: BaseException | None = None
        self.overflow = False
        self._waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > self.limit:
            self.overflow = True
            self.close()
        self._wake()

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _more(self) -> None:
        if self._closed:
            raise StreamClosedError(self.error)
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    # the stream API the exchange uses
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    def write(self, data: bytes) -> None:
        if self._closed or self.transport is None or self.transport.is_closing():
            raise StreamClosedError(self.error)
        self.transport.write(data)

    async def read_until_regex(self, pattern: re.Pattern[bytes], max_bytes: int) -> bytes:
        start = 0
        while True:
            match = pattern.search(self.buf, start)
            if match is not None:
                return self._take(match.end())
            if len(self.buf) > max_bytes:
                raise StreamClosedError(ValueError("too long"))
            start = max(0, len(self.buf) - 3)
            await self._more()

    async def read_until(self, sep: bytes, max_bytes: int) -> bytes:
        start = 0
        while True:
            end = self.buf.find(sep, start)
            if end >= 0:
                return self._take(end + len(sep))
            if len(self.buf) > max_bytes:
                raise _bad("a chunk-size or trailer line is too long")
            start = len(self.buf)
            await self._more()

    async def read_bytes(self, size: int) -> bytes:
        while len(self.buf) < size:
            await self._more()
        return self._take(size)

    async def read_some(self) -> bytes:
        """What has arrived (waiting for something); StreamClosedError at the end."""
        while not self.buf:
            await self._more()
        return self._take(len(self.buf))

    def _take(self, size: int) -> bytes:
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out


class UpstreamPool:
    """Keep-alive connections to one upstream. Belongs to the server thread's event loop;
    :meth:`close` ends every connection (the server calls it when it stops)."""

    def __init__(
        self,
        config: UpstreamConfig,
        *,
        max_connections: int = 32,
        max_idle: int = 16,
        max_response: int = 16 * 1024 * 1024,
    ) -> None:
        self.config = config
        scheme, _, rest = config.url.partition("://")
        authority, _, path = rest.partition("/")
        self.https = scheme == "https"
        #: The upstream's ``Host`` value and the path its SCIM base lives at ("" or "/x/y").
        self.authority = authority
        self.path = "/" + path if path else ""
        host, port = _split_authority(authority, 443 if self.https else 80)
        self.host, self.port = host, port
        self.timeout = config.timeout
        self.max_response = max_response
        #: The upstream credential's texts: an upstream that echoes it in something the error
        #: texts quote (a status line, a malformed field, a chunk-size line) must not put it in
        #: the client's 502 or a record, not even its first 40 characters.
        self._secrets = tuple(s.encode() for s in config.secrets() if len(s) >= 4)
        self.max_idle = max_idle
        self._limit = max_connections
        self._busy = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._idle: list[tuple[_Conn, float]] = []
        self._ssl: ssl.SSLContext | None = None
        if self.https:
            ctx = ssl.create_default_context()  # the system's trust store, hostname checked
            if config.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl = ctx
        self.closed = False

    # --- the pool ---------------------------------------------------------------------------
    async def _acquire(self) -> None:
        while self._busy >= self._limit:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                # Woken for a free slot but cancelled before taking it (its timeout, or the
                # client gone): the slot's wake-up goes to the next waiter, else it is lost and
                # a request waits with a connection free.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        self._busy += 1

    def _release(self) -> None:
        self._busy -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                break

    def _take_idle(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            stream, since = self._idle.pop()
            # Closed by the upstream meanwhile, unused too long, or holding bytes nobody asked
            # for (a server that answers twice): not reused.
            if now - since > IDLE_LIFETIME_S or stream.closed() or stream.buf:
                stream.close()
                continue
            return stream
        return None

    def _put_idle(self, stream: _Conn) -> None:
        if self.closed or len(self._idle) >= self.max_idle or stream.closed():
            stream.close()
            return
        self._idle.append((stream, time.monotonic()))

    async def _connect(self) -> _Conn:
        limit = self.max_response + MAX_HEAD + 64 * 1024
        try:
            _, conn = await asyncio.get_running_loop().create_connection(
                lambda: _Conn(limit),
                self.host,
                self.port,
                ssl=self._ssl,
                server_hostname=self.host if self._ssl is not None else None,
            )
        except ssl.SSLCertVerificationError as exc:
            raise _unreachable(
                f"the https certificate of {self.authority} is not trusted "
                f"({exc.verify_message}); use --insecure-upstream for a test server"
            ) from None
        except ssl.SSLError as exc:
            raise _unreachable(
                f"TLS handshake with {self.authority} failed ({exc.reason})"
            ) from None
        except socket.gaierror as exc:
            raise _unreachable(f"cannot resolve {self.host} ({exc.strerror})") from None
        except OSError as exc:
            raise _unreachable(f"{self.authority}: {exc.strerror or exc}") from None
        return conn  # (asyncio sets TCP_NODELAY on TCP transports)

    def close(self) -> None:
        """End every idle connection; connections in use end with their request."""
        self.closed = True
        idle, self._idle = self._idle, []
        for stream, _ in idle:
            stream.close()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(_unreachable("the proxy is stopping"))

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    # --- one exchange -----------------------------------------------------------------------
    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> UpstreamResponse:
        """Send one request (``target``: the path and query on the upstream; ``headers``
        without Host or Content-Length, which are added) and read its answer. Raises
        :class:`UpstreamError`."""
        if self.closed:
            raise _unreachable("the proxy is stopping")
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {self.authority}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        try:
            head = "".join(lines).encode("latin-1")
        except UnicodeEncodeError:
            head = "".join(lines).encode("utf-8")
        started = time.perf_counter()
        # The timeout is a timer that cancels this task (asyncio.wait_for would run the
        # exchange in a task of its own: a fifth of the proxy's cost per request).
        task = asyncio.current_task()
        assert task is not None
        timer = asyncio.get_running_loop().call_later(self.timeout, task.cancel, _TIMED_OUT)
        try:
            return await self._exchange(method, head + body, started)
        except asyncio.CancelledError as exc:
            if timer.cancelled() or _TIMED_OUT not in exc.args:
                raise  # cancelled by someone else: the server is stopping
            task.uncancel()
            raise UpstreamError(504, f"timed out after {self.timeout:g} s") from None
        finally:
            timer.cancel()

    async def _exchange(self, method: str, data: bytes, started: float) -> UpstreamResponse:
        await self._acquire()
        try:
            stream = self._take_idle()
            if stream is not None:
                try:
                    return await self._on(stream, method, data, started)
                except _Closed:
                    # A kept-alive connection the upstream had closed: the request may be
                    # sent again on a new one only if sending it twice does no harm.
                    if method not in _RETRYABLE:
                        raise _unreachable(
                            "the upstream closed a kept-alive connection as the request was "
                            "sent; not sent again (not idempotent)"
                        ) from None
            stream = await self._connect()
            try:
                return await self._on(stream, method, data, started)
            except _Closed:
                raise _unreachable("the upstream closed the connection without answering") from None
        finally:
            self._release()

    async def _on(
        self, stream: _Conn, method: str, data: bytes, started: float
    ) -> UpstreamResponse:
        keep = False
        try:
            try:
                stream.write(data)
                head = await stream.read_until_regex(_HEAD_END_RE, MAX_HEAD)
            except StreamClosedError as exc:
                if isinstance(exc.real_error, ssl.SSLError):
                    raise _unreachable(f"TLS failed ({exc.real_error})") from None
                if stream.buf:
                    raise _bad("the head of the answer was cut off or too long") from None
                raise _Closed() from None
            interim = 0
            while True:  # 1xx answers (100 Continue, 103 Early Hints) precede the real one
                status, version, fields = _parse_head(self._hide_secrets(head))
                if status >= 200:
                    break
                if status == 101:
                    # RFC 9110 §15.2.2: only an answer to a request's Upgrade, and the proxy
                    # never forwards one; what follows would be another protocol's bytes.
                    raise _bad("101 Switching Protocols to a request that asked for no upgrade")
                interim += 1
                if interim > MAX_INTERIM:
                    raise _bad(f"more than {MAX_INTERIM} interim 1xx answers")
                try:
                    head = await stream.read_until_regex(_HEAD_END_RE, MAX_HEAD)
                except StreamClosedError:
                    raise _bad("the connection closed after an interim 1xx answer") from None
            body, framed = await self._read_body(stream, method, status, fields)
            keep = framed and version == 1 and "close" not in _tokens(fields, "Connection")
            return UpstreamResponse(status, fields, body, time.perf_counter() - started)
        finally:
            if keep and not stream.buf:
                self._put_idle(stream)
            else:
                stream.close()

    async def _read_body(
        self, stream: _Conn, method: str, status: int, fields: list[tuple[str, str]]
    ) -> tuple[bytes, bool]:
        """The body as RFC 9112 §6.3 frames it, and whether the framing lets the connection
        carry another request."""
        codings = _tokens(fields, "Transfer-Encoding")
        lengths = [v for n, v in fields if n.lower() == "content-length"]
        if method == "HEAD":
            # No body (RFC 9112 §6.3 item 1), but servers that write one anyway are common
            # enough, and its bytes may come a moment later: read as the next request's answer.
            # HEAD is rare (Okta sends none), so its connection is simply not reused.
            return b"", False
        if status in (204, 304):
            # No body whatever the fields say (RFC 9112 §6.3 item 1). A 204 declaring one
            # (RFC 9110 §8.6 and RFC 9112 §6.1 forbid Content-Length and Transfer-Encoding
            # there) may be followed by those bytes, perhaps a moment later: the connection is
            # not reused, else the next request would read them as its answer (a response
            # desync: every later client gets the answer meant for the one before). A 304's
            # Content-Length is the representation's (§8.6), not a body.
            declared = status == 204 and any(v.strip() not in ("", "0") for v in lengths)
            return b"", not (codings or declared)
        try:
            if codings:
                if codings.count("chunked") > 1 or set(codings) - {"chunked", "identity"}:
                    # gzip, compress, deflate as transfer codings (RFC 9112 §7), or chunked
                    # twice (§6.1 forbids it): the body would go to the client still coded and
                    # unlabelled (Transfer-Encoding is hop-by-hop), garbage to it. Refused.
                    raise _bad(f"Transfer-Encoding {', '.join(codings)[:60]!r} is not supported")
                if codings[-1] != "chunked":  # §6.3 item 4: read until the connection closes
                    return await self._until_close(stream), False
                # §6.3 item 3: Transfer-Encoding overrides Content-Length; such a message is
                # suspect, so the connection is not reused.
                return await self._chunked(stream), not lengths
            if lengths:
                values = {v.strip() for length in lengths for v in length.split(",")}
                if len(values) != 1 or not (value := values.pop()).isdigit():
                    raise _bad(f"invalid Content-Length {', '.join(lengths)[:60]!r}")
                size = int(value)
                if size > self.max_response:
                    raise _bad(self._too_long(size))
                return (await stream.read_bytes(size) if size else b""), True
            return await self._until_close(stream), False
        except StreamClosedError:
            if stream.overflow:
                raise _bad(self._too_long(f"more than {self.max_response}")) from None
            raise _bad("the connection closed before the whole body arrived") from None

    def _hide_secrets(self, data: bytes) -> bytes:
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, b"***")
        return data

    def _too_long(self, size: int | str) -> str:
        return f"the body is {size} bytes; the proxy takes at most {self.max_response}"

    async def _chunked(self, stream: _Conn) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = await stream.read_until(b"\n", 4096)
            size_text = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE_RE.fullmatch(size_text):
                shown = self._hide_secrets(size_text)[:20]
                raise _bad(f"a chunk size is not hexadecimal ({shown!r})")
            size = int(size_text, 16)
            if size == 0:
                trailer = 0  # trailer fields, dropped (RFC 9112 §7.1.2), at most MAX_HEAD
                while line := (await stream.read_until(b"\n", 8192)).strip():
                    trailer += len(line)
                    if trailer > MAX_HEAD:
                        raise _bad(f"the trailer section is longer than {MAX_HEAD} bytes")
                return b"".join(parts)
            total += size
            if total > self.max_response:
                raise _bad(self._too_long(f"more than {self.max_response}"))
            chunk = await stream.read_bytes(size + 2)
            if chunk[-2:] != b"\r\n":
                raise _bad("a chunk is longer than its size says")
            parts.append(chunk[:size])

    async def _until_close(self, stream: _Conn) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            try:
                chunk = await stream.read_some()
            except StreamClosedError:
                if stream.overflow:
                    raise _bad(self._too_long(f"more than {self.max_response}")) from None
                return b"".join(parts)
            total += len(chunk)
            if total > self.max_response:
                raise _bad(self._too_long(f"more than {self.max_response}"))
            parts.append(chunk)


def _split_authority(authority: str, default_port: int) -> tuple[str, int]:
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, colon, port = authority.rpartition(":")
    if colon:
        return host, int(port)
    return authority, default_port


def _tokens(fields: list[tuple[str, str]], name: str) -> list[str]:
    """A list-valued field's tokens, lowercased (RFC 9110 §5.6.1), over repeated lines."""
    lowered = name.lower()
    return [
        token.strip().lower()
        for field, value in fields
        if field.lower() == lowered
        for token in value.split(",")
        if token.strip()
    ]


def _parse_head(head: bytes) -> tuple[int, int, list[tuple[str, str]]]:
    """Status, minor version and fields of a response head; UpstreamError when it is not
    HTTP/1.x (a server speaking something else, or garbage)."""
    text = head.decode("latin-1").lstrip("\r\n")
    line, _, rest = text.partition("\n")
    match = _STATUS_RE.fullmatch(line.rstrip("\r"))
    if match is None:
        shown = line.rstrip("\r")[:60]
        raise _bad(f"not an HTTP/1.1 status line ({shown!r})")
    status = int(match.group(2))
    if not 100 <= status <= 599:  # RFC 9110 §15: other values are not HTTP status codes
        raise _bad(f"status {status} is outside 100-599")
    fields: list[tuple[str, str]] = []
    for line in rest.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        field = _FIELD_RE.fullmatch(line)
        if field is None:
            if line[0] in " \t":
                raise _bad("a header field is folded over lines (obs-fold)")
            raise _bad(f"malformed header field line ({line[:40]!r})")
        value = field.group(2)
        if _FIELD_CTL_RE.search(value):
            raise _bad(f"a control character in the {field.group(1)} field")
        fields.append((normalize_name(field.group(1)), value))
    return status, int(match.group(1)), fields
