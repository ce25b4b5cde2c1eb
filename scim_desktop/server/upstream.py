"""The proxy's HTTP/1.1 client to the upstream SCIM server (issue 14): keep-alive connections
in a bounded pool, on Tornado's IOStream, never blocking the event loop.

Why our own client: Tornado's ``SimpleAsyncHTTPClient`` opens a connection per request (no
keep-alive), which costs a TCP (and TLS) handshake per proxied request; aiohttp or httpx would
be a new dependency (and httpx is slower). What a proxy needs of HTTP/1.1 is small: write one
request with ``Content-Length``, read one response framed as RFC 9112 §6.3 says (no body for
HEAD, 1xx, 204 and 304; chunked; Content-Length; else until the connection closes), and know
whether the connection may carry the next request.

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

from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpclient import TCPClient

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
_STATUS_RE = re.compile(r"HTTP/1\.([01]) (\d{3})(?: (.*))?")
#: A header field line (RFC 9112 §5): a token, a colon, the value (no obs-fold).
_FIELD_RE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*")
_TIMED_OUT = "scim-desktop: the upstream timed out"


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
        self.max_idle = max_idle
        self._limit = max_connections
        self._busy = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._idle: list[tuple[IOStream, float]] = []
        self._client = TCPClient()
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
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        self._busy += 1

    def _release(self) -> None:
        self._busy -= 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                break

    def _take_idle(self) -> IOStream | None:
        now = time.monotonic()
        while self._idle:
            stream, since = self._idle.pop()
            # Closed by the upstream meanwhile, unused too long, or holding bytes nobody asked
            # for (a server that answers twice): not reused.
            if now - since > IDLE_LIFETIME_S or not _quiet(stream):
                stream.close()
                continue
            return stream
        return None

    def _put_idle(self, stream: IOStream) -> None:
        if self.closed or len(self._idle) >= self.max_idle or stream.closed():
            stream.close()
            return
        # (Not watched while idle: a close callback makes Tornado change the socket's epoll
        # interest twice per request, a third of the pool's cost; _quiet asks at reuse.)
        self._idle.append((stream, time.monotonic()))

    async def _connect(self) -> IOStream:
        try:
            stream = await self._client.connect(
                self.host,
                self.port,
                ssl_options=self._ssl,
                max_buffer_size=self.max_response + MAX_HEAD + 1024 * 1024,
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
        except StreamClosedError as exc:
            real = exc.real_error
            if isinstance(real, ssl.SSLCertVerificationError):
                raise _unreachable(
                    f"the https certificate of {self.authority} is not trusted "
                    f"({real.verify_message}); use --insecure-upstream for a test server"
                ) from None
            raise _unreachable(f"{self.authority} closed the connection ({real or exc})") from None
        except OSError as exc:
            raise _unreachable(f"{self.authority}: {exc.strerror or exc}") from None
        stream.set_nodelay(True)
        return stream

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
        self, stream: IOStream, method: str, data: bytes, started: float
    ) -> UpstreamResponse:
        keep = False
        try:
            try:
                await stream.write(data)
                head = await stream.read_until_regex(b"\r?\n\r?\n", max_bytes=MAX_HEAD)
            except StreamClosedError as exc:
                if isinstance(exc.real_error, ssl.SSLError):
                    raise _unreachable(f"TLS failed ({exc.real_error})") from None
                if _buffered(stream):
                    raise _bad("the head of the answer was cut off or too long") from None
                raise _Closed() from None
            while True:  # 1xx answers (100 Continue, 103 Early Hints) precede the real one
                status, version, fields = _parse_head(head)
                if status >= 200:
                    break
                try:
                    head = await stream.read_until_regex(b"\r?\n\r?\n", max_bytes=MAX_HEAD)
                except StreamClosedError:
                    raise _bad("the connection closed after an interim 1xx answer") from None
            body, framed = await self._read_body(stream, method, status, fields)
            keep = framed and version == 1 and "close" not in _tokens(fields, "Connection")
            return UpstreamResponse(status, fields, body, time.perf_counter() - started)
        finally:
            if keep and not _buffered(stream):
                self._put_idle(stream)
            else:
                stream.close()

    async def _read_body(
        self, stream: IOStream, method: str, status: int, fields: list[tuple[str, str]]
    ) -> tuple[bytes, bool]:
        """The body as RFC 9112 §6.3 frames it, and whether the framing lets the connection
        carry another request."""
        if method == "HEAD" or status in (204, 304):
            return b"", True
        codings = _tokens(fields, "Transfer-Encoding")
        lengths = [v for n, v in fields if n.lower() == "content-length"]
        try:
            if codings:
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
            raise _bad("the connection closed before the whole body arrived") from None

    def _too_long(self, size: int | str) -> str:
        return f"the body is {size} bytes; the proxy takes at most {self.max_response}"

    async def _chunked(self, stream: IOStream) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = await stream.read_until(b"\n", max_bytes=4096)
            size_text = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE_RE.fullmatch(size_text):
                raise _bad(f"a chunk size is not hexadecimal ({size_text[:20]!r})")
            size = int(size_text, 16)
            if size == 0:
                while (await stream.read_until(b"\n", max_bytes=8192)).strip():
                    pass  # trailer fields, dropped (RFC 9112 §7.1.2)
                return b"".join(parts)
            total += size
            if total > self.max_response:
                raise _bad(self._too_long(f"more than {self.max_response}"))
            chunk = await stream.read_bytes(size + 2)
            if chunk[-2:] != b"\r\n":
                raise _bad("a chunk is longer than its size says")
            parts.append(chunk[:size])

    async def _until_close(self, stream: IOStream) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            try:
                chunk = await stream.read_bytes(65536, partial=True)
            except StreamClosedError:
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


def _buffered(stream: IOStream) -> int:
    """Bytes read from the socket that no read asked for yet."""
    return int(getattr(stream, "_read_buffer_size", 0))


def _quiet(stream: IOStream) -> bool:
    """Whether an idle connection is still open with nothing to read: one non-blocking peek
    (EOF: the upstream closed it; data: bytes nobody asked for, or TLS's close_notify)."""
    if stream.closed() or _buffered(stream):
        return False
    sock = stream.socket
    if sock is None:
        return False
    try:
        return not sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)  # b"": closed
    except BlockingIOError:
        return True  # open, nothing waiting
    except (OSError, ValueError):
        return False


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
        if "\r" in value or "\0" in value:
            raise _bad(f"a control character in the {field.group(1)} field")
        fields.append((normalize_name(field.group(1)), value))
    return int(match.group(2)), int(match.group(1)), fields
