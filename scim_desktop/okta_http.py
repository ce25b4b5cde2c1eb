"""The HTTP client Okta's requests travel by: the one transport ``okta_sim.OktaSimulator`` (the
window's demo, ``scim-desktop check``) is built on.

:class:`OktaHttp` sends one request with Okta's headers and reads its answer as a
:class:`SimResult`, whatever the server does: a deadline for the whole exchange (a watcher thread
shuts the socket down, which also serves a window's Cancel), at most :data:`MAX_ANSWER` of a body,
and error texts escaped to one line. Each exchange goes to an observer as a :class:`Sent`. What
to send (paths, bodies, Okta's steps) lives in ``okta_sim``. Standard library only, plus
``server/events.escape_controls`` (which imports no Tornado), so the checker loads no server.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scim_desktop.server.events import escape_controls

OKTA_USER_AGENT = "Okta SCIM Client 1.0.0"
#: The most of one answer the client reads (the proxy judges answers up to the same 4 MB,
#: server/proxy.MAX_JUDGED): a server sending an endless or a 2 GB body is no answer ("more
#: than 4 MB") instead of the client's memory growing with it.
MAX_ANSWER = 4 * 1024 * 1024


@dataclass
class SimResult:
    """An answer: ``status`` 0 when none came (``error`` says why)."""

    status: int
    body: Any  # the parsed JSON body, None when empty or not JSON
    text: str = ""  # the body as received
    headers: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str = ""


#: How often a request's watcher looks at the stop flag (a window's Cancel) and the deadline.
_WATCH_S = 0.25
#: An error text quotes at most this much of what the server sent.
MAX_ERROR_TEXT = 200


def _error_text(exc: BaseException) -> str:
    """An exception as one line of text. http.client quotes the server's bytes in some (a bad
    status line, a header line too long): escape sequences, CR and LF from a hostile server
    must not reach a terminal or split the checker's one-line error."""
    text = escape_controls(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def size_text(n: int) -> str:
    """A byte count in words: 4 MB, 256 KB."""
    return f"{n // 1024 // 1024} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


class _Expired(Exception):
    """A request's deadline passed before its answer was whole."""


@dataclass(frozen=True, slots=True)
class Sent:
    """One exchange as the observer sees it (headers not yet redacted)."""

    method: str
    url: str
    headers: dict[str, str]
    body: str  # the request body as sent ("" for none)
    result: SimResult


class OktaHttp:
    """Sends one request at a time to a SCIM base URL with Okta's headers. Blocking."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        pause_s: float = 0.0,
        stop: threading.Event | None = None,
        timeout: float = 65.0,
        max_answer: int = MAX_ANSWER,
        ssl_context: ssl.SSLContext | None = None,
        on_exchange: Callable[[Sent], None] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._origin = f"{parts.scheme or 'http'}://{parts.netloc}"
        self._headers = {
            "User-Agent": OKTA_USER_AGENT,
            "Accept": "application/scim+json",
            "Accept-Charset": "utf-8",
            "Content-Type": "application/scim+json; charset=utf-8",
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif basic:
            raw = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            self._headers["Authorization"] = f"Basic {raw}"
        self._headers.update(headers or {})  # "HTTP Header" auth with another header name
        self.pause_s = pause_s
        self.stop = stop or threading.Event()
        #: The deadline for a whole request, connect to the last byte of the answer (Okta
        #: closes the socket after 60 s whatever arrived meanwhile).
        self.timeout = timeout
        self.max_answer = max_answer
        self.ssl_context = ssl_context
        #: Called with every exchange, answered or not (the checker records them).
        self.on_exchange = on_exchange
        self._conn: http.client.HTTPConnection | None = None

    # --- transport ---------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                # The system store verifies the certificate unless a context says otherwise.
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout, context=self.ssl_context
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self.timeout
                )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def url(self, path: str) -> str:
        return self._origin + self._base + path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user_agent: str | None = None,
        content_type: str | None = None,
        authorization: str | None = None,
    ) -> SimResult:
        """Send one request with Okta's headers (``user_agent``, ``content_type`` and
        ``authorization`` replace them: the SPEC suite's differ)."""
        if self.stop.is_set():
            raise InterruptedError("simulation stopped")
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self._headers)
        if user_agent:
            headers["User-Agent"] = user_agent
        if authorization is not None:
            headers["Authorization"] = authorization
        if data is None:
            headers.pop("Content-Type", None)
        elif content_type:
            headers["Content-Type"] = content_type
        started = time.monotonic()
        try:
            status, raw, got = self._exchange(method, self._base + path, data, headers)
        except InterruptedError:
            self.close()
            raise
        except _Expired:
            self.close()
            waited = max(time.monotonic() - started, self.timeout)
            result = SimResult(
                0, None, duration_s=waited, error=f"no answer within {self.timeout:g} s"
            )
        except (OSError, http.client.HTTPException) as exc:
            self.close()  # a dropped connection (fault) or a restart: Okta just sees a failure
            took = time.monotonic() - started
            result = SimResult(0, None, duration_s=took, error=_error_text(exc))
        else:
            took = time.monotonic() - started
            if len(raw) > self.max_answer:
                self.close()  # the rest of the body is still coming: the connection is spent
                more = size_text(self.max_answer)
                error = f"answered {status} with more than {more}: the rest was not read"
                result = SimResult(0, None, headers=got, duration_s=took, error=error)
            else:
                text = raw.decode("utf-8", errors="replace")
                try:
                    parsed = json.loads(raw) if raw else None
                except (ValueError, RecursionError):  # not JSON, or nested past the stack
                    parsed = None
                result = SimResult(status, parsed, text, got, took)
        if self.on_exchange is not None:
            sent = data.decode() if data else ""
            self.on_exchange(Sent(method, self.url(path), headers, sent, result))
        if self.pause_s:
            time.sleep(self.pause_s)
        return result

    def _exchange(
        self, method: str, target: str, data: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        """Send one request and read its answer (at most ``max_answer`` + 1 bytes of body)
        within ``timeout`` for the whole of it. http.client's timeout is per socket operation:
        a server trickling a byte a second, or sending 100 Continue without end (http.client
        skips those in a loop of its own), would hold it for ever. A watcher thread shuts the
        socket down at the deadline, which ends any read under way, and raises :class:`_Expired`
        then (also when the shut-down read ended a close-delimited body and looked like its
        end). It also watches :attr:`stop` (a window's Cancel): the request ends within a
        quarter of a second with InterruptedError instead of waiting for the deadline."""
        expired, stopped, done = threading.Event(), threading.Event(), threading.Event()
        conn = self._connection()
        deadline = time.monotonic() + self.timeout

        def watch() -> None:
            while not done.wait(max(0.0, min(_WATCH_S, deadline - time.monotonic()))):
                if self.stop.is_set():
                    stopped.set()
                elif time.monotonic() >= deadline:
                    expired.set()
                else:
                    continue
                sock = conn.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        # socket.socket's own shutdown: an SSLSocket's would drop its TLS
                        # state under the reading thread.
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                return

        threading.Thread(target=watch, name="okta-sim-deadline", daemon=True).start()
        try:
            if conn.sock is None:
                conn.connect()  # its own timeout; the deadline is checked right after
            if stopped.is_set() or expired.is_set():
                raise OSError("ended before sending")
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read(self.max_answer + 1)
            got = {k: v for k, v in resp.getheaders()}
        except (OSError, http.client.HTTPException) as exc:
            if stopped.is_set():
                raise InterruptedError("simulation stopped") from None
            if expired.is_set() or isinstance(exc, TimeoutError):
                raise _Expired() from None
            raise
        finally:
            done.set()
        if stopped.is_set():  # the shut-down read ended a close-delimited body
            raise InterruptedError("simulation stopped")
        if expired.is_set():
            raise _Expired()
        return resp.status, raw, got
