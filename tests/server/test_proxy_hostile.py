"""Proxy mode (issue 14) against attackers: a client on the internet trying to leave the
upstream's SCIM base, and an upstream that answers badly (a buggy or hostile server). Real
sockets throughout: a proxy-mode ServerThread, a raw-socket upstream written here (it can
answer anything, byte for byte), raw-socket clients."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scim_desktop.config import AuthConfig, UpstreamConfig
from scim_desktop.server.proxy import MAX_JUDGED
from scim_desktop.server.runner import ServerThread
from scim_desktop.server.upstream import UpstreamPool
from tests.conftest import RecordingSink
from tests.server.proxy_fixtures import ScriptedUpstream, start_proxy, wait_for

#: What the raw upstream does with one request: gets the request head (bytes, without the
#: blank line) and the connection, writes what it likes; returns False to close the connection.
Script = Callable[[bytes, socket.socket], bool]

OK_BODY = b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0}'


def ok_answer(body: bytes = OK_BODY) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


class RawUpstream:
    """A keep-alive HTTP/1.1 server on a raw socket whose answers are a script's bytes (also
    tests/hostile/proxy_hostile.py's upstream, with a deep ``backlog`` for its crowds)."""

    def __init__(self, script: Script, backlog: int | None = None) -> None:
        self.script = script
        self.heads: list[bytes] = []
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=backlog)
        self.port = self._sock.getsockname()[1]
        self._clients: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/scim"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            self._clients.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with contextlib.suppress(OSError), conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                while len(buf) < length:
                    buf += conn.recv(65536)
                buf = buf[length:]
                self.heads.append(head)
                if not self.script(head, conn):
                    return

    def close(self) -> None:
        self._sock.close()
        for conn in self._clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def exchange(port: int, request: bytes, timeout: float = 10) -> tuple[int, bytes, bytes]:
    """Send one raw request on a new connection; the status, head and body of the answer
    (read by its Content-Length, or to the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                break
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        if request.startswith(b"HEAD "):
            length = 0  # a HEAD answer's length is the GET's; it has no body
        while length is not None and len(body) < length:
            more = sock.recv(65536)
            if not more:
                break
            body += more
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, head, body


def get(port: int, path: str, extra: str = "") -> tuple[int, bytes, bytes]:
    return exchange(port, f"GET {path} HTTP/1.1\r\nHost: proxy.test\r\n{extra}\r\n".encode())


@pytest.fixture
def raw_upstreams() -> Iterator[list[RawUpstream]]:
    started: list[RawUpstream] = []
    yield started
    for upstream in started:
        upstream.close()


# --- a client trying to leave the upstream's SCIM base ---------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/scim/v2/..%2f..%2fadmin",  # decoded before resolving (nginx, many routers)
        "/scim/v2/..%2Fadmin",
        "/scim/v2/%2e%2e%2fadmin",
        "/scim/v2/..\\admin",  # a backslash as a separator (Windows servers, some routers)
        "/scim/v2/..%5cadmin",
        "/scim/v2/..;/admin",  # a path parameter cut off before resolving (Tomcat, Jetty)
        "/scim/v2/.;x/admin",
        "/scim/v2/%252e%252e/admin",  # decoded twice (a second proxy in front of the app)
        "/scim/v2/..%00/admin",  # cut at the NUL (C servers)
        "/scim/v2/Users/%2E%2e",
    ],
)
def test_encoded_dot_segments_are_refused_and_never_forwarded(
    tmp_path: Path,
    scripted: ScriptedUpstream,
    sink: RecordingSink,
    proxies: list[ServerThread],
    path: str,
) -> None:
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    proxies.append(proxy)
    status, _, body = get(proxy.port, path)
    assert status == 400, body
    assert b"Dot segments" in body
    assert scripted.seen == []
    # What only looks like one passes (an id holding dots or an encoded slash).
    for fine in ("/scim/v2/Users/a..b", "/scim/v2/Users/..a", "/scim/v2/Users/x%2Fy"):
        assert get(proxy.port, fine)[0] == 200
    assert [s.target for s in scripted.seen] == [
        "/api/scim/Users/a..b",
        "/api/scim/Users/..a",
        "/api/scim/Users/x%2Fy",
    ]


def test_a_target_starting_with_two_slashes_is_never_sent_upstream(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    # An upstream at its root: "/scim/v2//evil.example/x" would be "//evil.example/x" there,
    # an authority to a server parsing targets as relative references.
    proxy = start_proxy(tmp_path, UpstreamConfig(f"http://127.0.0.1:{scripted.port}"), sink)
    proxies.append(proxy)
    status, _, body = get(proxy.port, "/scim/v2//evil.example/x")
    assert status == 400, body
    assert scripted.seen == []
    assert get(proxy.port, "/scim/v2/Users")[0] == 200
    assert [s.target for s in scripted.seen] == ["/Users"]


# --- an upstream that answers badly ----------------------------------------------------------


def start_raw(
    tmp_path: Path,
    sink: RecordingSink,
    proxies: list[ServerThread],
    raw_upstreams: list[RawUpstream],
    script: Script,
    **upstream: Any,
) -> tuple[ServerThread, RawUpstream]:
    up = RawUpstream(script)
    raw_upstreams.append(up)
    auth = AuthConfig("bearer", token=PROXY_TOKEN) if "token" in upstream else None
    proxy = start_proxy(tmp_path, UpstreamConfig(up.url, **upstream), sink, auth=auth)
    proxies.append(proxy)
    return proxy, up


PROXY_TOKEN = "proxy-token-0123456789"
UPSTREAM_SECRET = "upstream-secret-token-0123456789abcdef"


def authorization(head: bytes) -> bytes:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"authorization":
            return value.strip()
    return b""


@pytest.mark.parametrize(
    "echo",
    [
        # The credential in the status line, in a malformed field line (quoted in part: its
        # first 40 characters), in a chunk-size line (its first 20).
        lambda auth: b"HTTP/1.1 20 " + auth + b"\r\nContent-Length: 2\r\n\r\n{}",
        lambda auth: b"HTTP/1.1 200 OK\r\nX Echo: " + auth + b"\r\nContent-Length: 2\r\n\r\n{}",
        lambda auth: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + auth[7:] + b"\r\n",
    ],
)
def test_the_upstream_credential_echoed_in_garbage_is_not_in_the_502_or_the_record(
    tmp_path: Path,
    sink: RecordingSink,
    proxies: list[ServerThread],
    raw_upstreams: list[RawUpstream],
    echo: Callable[[bytes], bytes],
) -> None:
    def script(head: bytes, conn: socket.socket) -> bool:
        conn.sendall(echo(authorization(head)))
        return False

    proxy, up = start_raw(tmp_path, sink, proxies, raw_upstreams, script, token=UPSTREAM_SECRET)
    status, head, body = get(
        proxy.port, "/scim/v2/Users", f"Authorization: Bearer {PROXY_TOKEN}\r\n"
    )
    assert status == 502, body
    assert authorization(up.heads[0]) == f"Bearer {UPSTREAM_SECRET}".encode()  # it was sent
    assert b"***" in body  # the detail quotes the garbage, the secret hidden
    assert UPSTREAM_SECRET[:12].encode() not in head + body
    assert wait_for(lambda: any(getattr(e, "upstream_error", None) for e in sink.events))
    assert UPSTREAM_SECRET[:12] not in repr(sink.events)


def test_a_204_with_a_late_body_does_not_give_the_next_client_a_stale_answer(
    tmp_path: Path,
    sink: RecordingSink,
    proxies: list[ServerThread],
    raw_upstreams: list[RawUpstream],
) -> None:
    """A server bug: 204 with Content-Length and a body written a moment later. Had the
    connection been reused, the next request would read those bytes (here shaped as an
    answer) as its own, and every later client the answer meant for the one before."""

    def script(head: bytes, conn: socket.socket) -> bool:
        if b" /api/scim/Users/gone " in head.split(b"\r\n")[0]:
            conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 44\r\n\r\n")
            time.sleep(0.3)  # after the proxy has finished with the 204
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n" + b'{"stale":1}\n')
            return True
        conn.sendall(ok_answer(b'{"fresh":%d}' % len(up.heads)))
        return True

    proxy, up = start_raw(tmp_path, sink, proxies, raw_upstreams, script)
    status, head, _ = exchange(
        proxy.port, b"DELETE /scim/v2/Users/gone HTTP/1.1\r\nHost: p\r\n\r\n"
    )
    assert status == 204 and b"Content-Length" not in head
    for n in (2, 3):
        status, _, body = get(proxy.port, "/scim/v2/Users")
        assert (status, body) == (200, b'{"fresh":%d}' % n)
    # The 204's connection was not used again; the two GETs shared a new one.
    assert up.connections == 2


def test_a_head_answer_with_a_late_body_does_not_give_the_next_client_a_stale_answer(
    tmp_path: Path,
    sink: RecordingSink,
    proxies: list[ServerThread],
    raw_upstreams: list[RawUpstream],
) -> None:
    """A server bug: a body written after a HEAD answer (RFC 9112 §6.3: it has none)."""

    def script(head: bytes, conn: socket.socket) -> bool:
        if head.startswith(b"HEAD "):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 48\r\n\r\n")
            time.sleep(0.3)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n" + b'{"stale":1}\n')
            return True
        conn.sendall(ok_answer(b'{"fresh":%d}' % len(up.heads)))
        return True

    proxy, up = start_raw(tmp_path, sink, proxies, raw_upstreams, script)
    status, head, _ = exchange(proxy.port, b"HEAD /scim/v2/Users HTTP/1.1\r\nHost: p\r\n\r\n")
    assert status == 200 and b"Content-Length: 48" in head
    for n in (2, 3):
        status, _, body = get(proxy.port, "/scim/v2/Users")
        assert (status, body) == (200, b'{"fresh":%d}' % n)
    assert up.connections == 2


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        # 101 to a request that asked for no upgrade: waiting for a "real" answer after it
        # would last until the timeout (another protocol's bytes follow).
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello", b"101"),
        # Status codes outside 100-599: 0xx was taken for an interim answer (a wait until the
        # timeout), 9xx was passed to the client.
        (b"HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\n{}", b"outside 100-599"),
        (b"HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\n{}", b"outside 100-599"),
        (b"HTTP/1.1 999 High\r\nContent-Length: 2\r\n\r\n{}", b"outside 100-599"),
        # A control character in a field value (RFC 9110 §5.5) was passed to the client.
        (b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\n{}", b"control character"),
        (b"HTTP/1.1 200 OK\r\nX-A: a\x1b[2Jb\r\nContent-Length: 2\r\n\r\n{}", b"control character"),
        # Interim answers without end.
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 50 + ok_answer(), b"interim"),
        # Trailer fields without end (each line short: only their total can be capped).
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
            + (b"X-T: " + b"t" * 100 + b"\r\n") * 1000,
            b"trailer section",
        ),
        # A transfer coding the client would get still applied and unlabelled, or chunked twice.
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            b"2\r\n\x1f\x8b\r\n0\r\n\r\n",
            b"not supported",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
            b"7\r\n2\r\n{}\r\n\r\n0\r\n\r\n",
            b"not supported",
        ),
    ],
    ids=[
        "101",
        "status-000",
        "status-099",
        "status-999",
        "ctl-01",
        "ctl-esc",
        "endless-1xx",
        "endless-trailer",
        "te-gzip",
        "te-chunked-twice",
    ],
)
def test_answers_that_are_not_http_are_a_502_at_once(
    tmp_path: Path,
    sink: RecordingSink,
    proxies: list[ServerThread],
    raw_upstreams: list[RawUpstream],
    answer: bytes,
    why: bytes,
) -> None:
    def script(head: bytes, conn: socket.socket) -> bool:
        conn.sendall(answer)
        time.sleep(5)  # and then nothing: a proxy still waiting would answer 504
        return False

    proxy, _ = start_raw(tmp_path, sink, proxies, raw_upstreams, script, timeout=3)
    status, head, body = get(proxy.port, "/scim/v2/Users")
    assert status == 502, head + body
    assert why in body
    assert b"\x01" not in head and b"\x1b" not in head


def test_a_few_interim_answers_are_read_past(
    tmp_path: Path,
    sink: RecordingSink,
    proxies: list[ServerThread],
    raw_upstreams: list[RawUpstream],
) -> None:
    def script(head: bytes, conn: socket.socket) -> bool:
        interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
        conn.sendall(interim + ok_answer())
        return True

    proxy, _ = start_raw(tmp_path, sink, proxies, raw_upstreams, script)
    assert get(proxy.port, "/scim/v2/Users")[:3:2] == (200, OK_BODY)


def test_a_waiter_cancelled_as_it_is_woken_passes_the_free_connection_on() -> None:
    """The pool's bounded wait: a request woken for a free connection but cancelled before it
    took it (its own timeout firing in the same loop pass, the server stopping) must wake the
    next one, which would otherwise wait with the connection free until its own timeout (a
    504 here: the pool's timeout is 4 s)."""

    def script(head: bytes, conn: socket.socket) -> bool:
        conn.sendall(ok_answer())
        return True

    up = RawUpstream(script)
    try:

        async def run() -> tuple[int, bool]:
            pool = UpstreamPool(UpstreamConfig(up.url, timeout=4), max_connections=1)
            await pool._acquire()  # the one connection busy, as for a request in flight
            second = asyncio.ensure_future(pool.request("GET", "/api/scim/second", [], b""))
            third = asyncio.ensure_future(pool.request("GET", "/api/scim/third", [], b""))
            await asyncio.sleep(0.2)  # both waiting for it
            pool._release()  # the request in flight is done: `second` is woken...
            second.cancel()  # ...and cancelled in the same loop pass, before it runs
            try:
                answer = await third
            finally:
                pool.close()
            return answer.status, second.cancelled()

        assert asyncio.run(run()) == (200, True)
        assert [h.split(b" ")[1] for h in up.heads] == [b"/api/scim/third"]
    finally:
        up.close()


def test_an_answer_too_long_to_judge_passes_through_whole_and_is_recorded(
    tmp_path: Path,
    sink: RecordingSink,
    proxies: list[ServerThread],
    raw_upstreams: list[RawUpstream],
) -> None:
    """Over MAX_JUDGED the answer is not parsed for the record or the Okta checks (a JSON of
    tiny objects is ~30 times bigger parsed: tests/hostile/proxy_hostile.py's bigjson part
    prints what that cost), but still goes to the client byte for byte and is recorded."""
    big = b'{"Resources":[' + b"{}," * (MAX_JUDGED // 3) + b'{}],"totalResults":"many"}'

    def script(head: bytes, conn: socket.socket) -> bool:
        conn.sendall(ok_answer(big))
        return True

    proxy, _ = start_raw(tmp_path, sink, proxies, raw_upstreams, script)
    status, _, body = get(proxy.port, "/scim/v2/Users")
    assert status == 200 and body == big
    assert wait_for(lambda: any(getattr(e, "upstream_status", None) for e in sink.events))
    record = next(e for e in sink.events if getattr(e, "upstream_status", None) == 200)
    assert record.status == 200 and record.upstream_error is None
    assert record.okta_problems == ()  # not judged (a string totalResults would be flagged)
    assert record.response_body.startswith('{"Resources":[{},')


@pytest.mark.parametrize(
    ("authorization", "secret"),
    [
        ("Bearer okta-token-for-the-real-server-42", "okta-token-for-the-real-server-42"),
        # Basic: the blob and the password each hidden ("svc:pass-word-9876" in base64).
        ("Basic c3ZjOnBhc3Mtd29yZC05ODc2", "c3ZjOnBhc3Mtd29yZC05ODc2"),
        ("Basic c3ZjOnBhc3Mtd29yZC05ODc2", "pass-word-9876"),
    ],
)
def test_transparent_mode_a_client_credential_the_upstream_quotes_is_not_logged(
    tmp_path: Path,
    proxies: list[ServerThread],
    raw_upstreams: list[RawUpstream],
    authorization: str,
    secret: str,
) -> None:
    """The client's credential goes upstream in transparent mode; a server answering
    '401 invalid token <the token>' (or echoing it in a header) must not put it in the
    text log, the JSON lines or the window's records, which show the request's own
    Authorization as '***'. The client still gets the body and the fields as the upstream
    wrote them."""
    import io

    from scim_desktop.server.events import MultiSink
    from scim_desktop.server.log_sinks import JsonLinesSink, TextSink

    def script(head: bytes, conn: socket.socket) -> bool:
        body = (
            b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401",'
            b'"detail":"invalid credential %s"}' % secret.encode()
        )
        conn.sendall(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/scim+json\r\n"
            b'WWW-Authenticate: Bearer error="invalid_token", seen="%s"\r\n'
            b"X-Debug-Auth: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (secret.encode(), authorization.encode(), len(body), body)
        )
        return True

    up = RawUpstream(script)
    raw_upstreams.append(up)
    text_out, json_out = io.StringIO(), io.StringIO()
    text, jsonl, recording = TextSink(text_out), JsonLinesSink(json_out), RecordingSink()
    proxy = start_proxy(tmp_path, UpstreamConfig(up.url), MultiSink(text, jsonl, recording))
    proxies.append(proxy)
    status, head, body = get(proxy.port, "/scim/v2/Users", f"Authorization: {authorization}\r\n")
    assert status == 401
    assert secret.encode() in body  # the client's own answer, unchanged...
    # ...its header fields too (hidden from the record only).
    assert b"X-Debug-Auth: %s\r\n" % authorization.encode() in head
    assert b'seen="%s"' % secret.encode() in head
    assert authorization.encode() in up.heads[0]  # transparent: it did go upstream
    assert wait_for(lambda: any(getattr(e, "upstream_status", None) for e in recording.events))
    text.flush()
    jsonl.flush()
    logged = text_out.getvalue() + json_out.getvalue() + repr(recording.events)
    assert "invalid credential ***" in logged
    assert secret not in logged
    record = next(e for e in recording.events if getattr(e, "upstream_status", None))
    assert 'seen="***"' in record.response_headers["Www-Authenticate"]
    text.close()
    jsonl.close()


def test_the_pool_bounds_upstream_connections_and_the_loop_stays_free(
    tmp_path: Path,
    sink: RecordingSink,
    proxies: list[ServerThread],
    raw_upstreams: list[RawUpstream],
) -> None:
    """33 requests held by a slow upstream: at most 32 connections reach it (the pool's
    bound; the 33rd waits for a free one, inside its timeout), and meanwhile the proxy
    answers what it answers itself (a 404, a refused path): its event loop is not blocked."""
    release = threading.Event()
    holding: list[bytes] = []

    def script(head: bytes, conn: socket.socket) -> bool:
        holding.append(head)
        release.wait(20)
        conn.sendall(ok_answer())
        return True

    proxy, up = start_raw(tmp_path, sink, proxies, raw_upstreams, script)
    results: list[int] = []
    clients = [
        threading.Thread(target=lambda: results.append(get(proxy.port, "/scim/v2/Users")[0]))
        for _ in range(33)
    ]
    for client in clients:
        client.start()
    assert wait_for(lambda: len(holding) >= 32)
    assert get(proxy.port, "/admin")[0] == 404
    assert get(proxy.port, "/scim/v2/..%2fadmin")[0] == 400
    assert len(holding) == 32 and up.connections == 32 and not results
    release.set()
    for client in clients:
        client.join(20)
    assert results == [200] * 33
    assert up.connections == 32  # the 33rd used a connection another had finished with


def test_forwarding_fields_are_believed_only_from_the_tunnel_on_loopback(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    """Without a tunnel, a client's X-Forwarded-*, Forwarded and X-Real-IP are dropped and
    the chain starts at its address; while a tunnel is up, the tunnel tool (on loopback) is a
    trusted hop: its chain is kept and the proxy's hop appended."""
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    proxies.append(proxy)
    claimed = (
        "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: okta-facing.example\r\nForwarded: for=203.0.113.9\r\n"
        "X-Real-IP: 203.0.113.9\r\n"
    )
    assert get(proxy.port, "/scim/v2/Users", claimed)[0] == 200
    untrusted = scripted.seen[-1]
    assert untrusted.header("X-Forwarded-For") == "127.0.0.1"
    assert untrusted.header("X-Forwarded-Proto") == "http"
    assert untrusted.header("X-Forwarded-Host") == "proxy.test"
    assert untrusted.header("Forwarded") is None and untrusted.header("X-Real-IP") is None
    proxy.context.public_url = "https://okta-facing.example"  # as when a tunnel comes up
    assert get(proxy.port, "/scim/v2/Users", claimed)[0] == 200
    trusted = scripted.seen[-1]
    assert trusted.header("X-Forwarded-For") == "203.0.113.9, 127.0.0.1"
    assert trusted.header("X-Forwarded-Proto") == "https"
    assert trusted.header("X-Forwarded-Host") == "okta-facing.example"
    assert trusted.header("Forwarded") == "for=203.0.113.9"
