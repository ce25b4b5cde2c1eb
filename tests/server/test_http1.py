"""The HTTP/1.1 reader and writer the SCIM server runs on (scim_desktop/server/http1.py):
request heads, framing, refusals as SCIM Errors, keep-alive and the idle timeout."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from scim_desktop.core.errors import ERROR_SCHEMA
from scim_desktop.server.handlers import drain_cap
from scim_desktop.server.http1 import (
    Connection,
    HttpError,
    HttpServer,
    Refusal,
    Request,
    encode_head,
    parse_head,
)
from scim_desktop.server.runner import ServerThread
from tests.conftest import TOKEN, RecordingSink
from tests.server.test_http_layer import raw_exchange, records, start_with_latency, wait_for
from tests.server.test_okta_flows import okta_create_body

AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()


def split_reply(reply: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def assert_scim_error(reply: bytes, status: int) -> dict:
    got, headers, body = split_reply(reply)
    assert got == status, reply[:300]
    assert headers["content-type"].startswith("application/scim+json")
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)
    assert error["schemas"] == [ERROR_SCHEMA] and error["status"] == str(status)
    assert error["detail"]
    return error


# --- request heads (pure) ------------------------------------------------------------------------
def test_head_names_are_normalized_and_repeats_joined() -> None:
    req = parse_head(
        b"GET /scim/v2/Users?x=1 HTTP/1.1\r\nhost: a\r\nACCEPT: b\r\nx-forwarded-for: 1\r\n"
        b"X-Forwarded-For:  2 \r\ncontent-type:application/json\r\n\r\n"
    )
    assert req is not None
    assert (req.method, req.target, req.version) == ("GET", "/scim/v2/Users?x=1", "HTTP/1.1")
    assert req.headers == {
        "Host": "a",
        "Accept": "b",
        "X-Forwarded-For": "1,2",
        "Content-Type": "application/json",
    }
    assert req.keep_alive


def test_head_with_bare_line_feeds_and_leading_empty_lines() -> None:
    req = parse_head(b"\r\n\r\nPOST /x HTTP/1.0\nA: one\ttwo \nConnection: Keep-Alive\n\n")
    assert req is not None and req.method == "POST" and req.version == "HTTP/1.0"
    assert req.headers["A"] == "one\ttwo"
    assert req.keep_alive  # HTTP/1.0 keeps the connection only when asked to
    assert parse_head(b"GET / HTTP/1.0\r\n\r\n").keep_alive is False  # type: ignore[union-attr]
    assert parse_head(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keep_alive is False  # type: ignore[union-attr]
    assert parse_head(b"\r\n\r\n") is None


def test_target_bytes_beyond_ascii_are_kept_as_latin_1_as_tornado_did() -> None:
    req = parse_head("GET /Users/jos\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert req is not None and req.target == "/Users/jos\u00c3\u00a9"


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /x\r\n\r\n", 400),  # no version
        (b"GET /x y HTTP/1.1\r\n\r\n", 400),  # a space in the target
        (b"GET  /x HTTP/1.1\r\n\r\n", 400),  # two spaces
        (b"G(T /x HTTP/1.1\r\n\r\n", 400),  # method not a token
        (b"GET /x\x01 HTTP/1.1\r\n\r\n", 400),  # control character
        (b"GET /x HTTP/2.0\r\n\r\n", 505),
        (b"GET /x FTP/1.1\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nHost : x\r\n\r\n", 400),  # whitespace before the colon
        (b"GET /x HTTP/1.1\r\n folded-first: x\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\n: empty name\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nHost: x\r\nA: one\r\n two\r\n\r\n", 400),  # obs-fold
        (b"GET /x HTTP/1.1\r\nHost: x\r\nA: a\x01b\r\n\r\n", 400),  # control character
        (b"GET /x HTTP/1.1\r\nHost: x\r\nA: a\x00\r\n\r\n", 400),  # NUL
        (b"GET /x HTTP/1.1\r\nHost: x\r\nA: a\rB: b\r\n\r\n", 400),  # bare CR
        (b"GET /x HTTP/1.1\r\nTransfer-Encoding:\x0bchunked\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        (b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),  # two Hosts
        (b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ],
)
def test_malformed_heads_are_refused(head: bytes, status: int) -> None:
    with pytest.raises(HttpError) as info:
        parse_head(head)
    assert info.value.status == status and info.value.detail


def test_response_head() -> None:
    head = encode_head(201, {"Content-Type": "application/scim+json", "Content-Length": "2"})
    assert head == (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/scim+json\r\nContent-Length: 2\r\n\r\n"
    )
    assert encode_head(599, {}).startswith(b"HTTP/1.1 599 Unknown\r\n")
    for bad in ("a\r\nSet-Cookie: x", "a\nb", "a\rb"):
        with pytest.raises(ValueError):
            encode_head(200, {"Location": bad})


# --- on a real server ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT A REQUEST\r\n\r\n", 400),
        (b"GET /scim/v2/Users HTTP/3\r\n\r\n", 505),
        (b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        (
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n", 400),
        (b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n", 400),
        (  # with credentials: the head passes, so the chunk parser is what refuses
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            + AUTH
            + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
        (
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            + AUTH
            + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n",
            400,
        ),
        (  # a chunk size line must end with CRLF
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            + AUTH
            + b"Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
            400,
        ),
        (
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\xa0\r\n\r\n",
            501,
        ),
    ],
)
def test_unreadable_requests_get_a_scim_error_and_the_connection_closes(
    server: ServerThread, request_bytes: bytes, status: int
) -> None:
    reply = raw_exchange(server.port, request_bytes, read_until_close=True)
    assert_scim_error(reply, status)
    assert split_reply(reply)[1]["connection"] == "close"
    # The server carries on.
    ok = raw_exchange(
        server.port,
        b"GET /scim/v2/ServiceProviderConfig HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n",
    )
    assert ok.startswith(b"HTTP/1.1 200")


def test_refused_requests_are_recorded(server: ServerThread, sink: RecordingSink) -> None:
    """The request log (and the window) shows what was refused, with the answer sent."""
    raw_exchange(
        server.port,
        b"GET /scim/v2/Users?filter=x HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n",
        read_until_close=True,
    )
    raw_exchange(server.port, b"NOT A REQUEST\r\n\r\n", read_until_close=True)
    wait_for(lambda: len(records(sink)) == 2)
    first, second = records(sink)
    assert (first.method, first.path, first.query, first.status) == (
        "GET",
        "/scim/v2/Users",
        "filter=x",
        400,
    )
    assert "control character" in json.loads(first.response_body)["detail"]
    assert first.response_headers["Connection"] == "close"
    assert (second.method, second.path, second.status) == ("?", "NOT A REQUEST", 400)
    assert server.context.stats["errors"] == 2


def test_refused_requests_never_record_secrets_or_control_characters(
    server: ServerThread, sink: RecordingSink
) -> None:
    long_query = "access_token=SECRET1&x=" + "a" * 300
    for request in (
        # An extra space: no method or path can be told apart, the line is recorded.
        b"GET /oauth/token?client_secret=SECRET2&a=b c HTTP/1.1\r\nHost: x\r\n\r\n",
        # No Host, and a line longer than what used to be kept.
        f"GET /scim/v2/Users?{long_query} HTTP/1.1\r\n\r\n".encode(),
        # A typo that makes the Authorization line malformed: the detail must not quote it.
        b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization : Bearer SECRET3\r\n\r\n",
        b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nBearer SECRET4\r\n\r\n",
        # Escape sequences a terminal would obey.
        b"GET /\x1b]0;owned\x07 HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        reply = raw_exchange(server.port, request, read_until_close=True)
        assert reply.startswith(b"HTTP/1.1 400") and b"SECRET" not in reply
    wait_for(lambda: len(records(sink)) == 5)
    fields = [str(v) for r in records(sink) for v in r.to_dict().values()]
    assert not [f for f in fields if "SECRET" in f or "\x1b" in f or "\x07" in f]
    spaced, long_line, _, _, escaped = records(sink)
    assert spaced.method == "?" and "client_secret=***" in spaced.path
    assert (long_line.method, long_line.path) == ("GET", "/scim/v2/Users")
    assert long_line.query.startswith("access_token=***&x=aaa")
    assert escaped.method == "GET" and escaped.path == "/\\x1b]0;owned\\x07"


def test_absolute_form_targets_are_served() -> None:
    """RFC 9112 §3.2.2: what a client sends through a proxy (curl -x) names the path; its
    authority is the Host."""
    req = parse_head(
        b"GET http://user@example.com:8080/scim/v2/Users?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert req is not None and req.target == "/scim/v2/Users?x=1"
    assert req.headers["Host"] == "example.com:8080"
    root = parse_head(b"GET https://example.com HTTP/1.1\r\nHost: x\r\n\r\n")
    assert root is not None and root.target == "/" and root.headers["Host"] == "example.com"
    with pytest.raises(HttpError):
        parse_head(b"GET ftp://example.com/x HTTP/1.1\r\nHost: x\r\n\r\n")


def test_header_fields_over_64_kb_are_refused_with_431(server: ServerThread) -> None:
    big = b"X-Big: " + b"a" * 70_000 + b"\r\n"
    reply = raw_exchange(
        server.port,
        b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n",
        read_until_close=True,
    )
    assert_scim_error(reply, 431)


@pytest.mark.parametrize("over", ["limit", "read cap"])
def test_body_over_the_limit_is_answered_413_unread_and_recorded(
    server: ServerThread, sink: RecordingSink, over: str
) -> None:
    """A client waiting for 100 Continue is refused before it sends a body over the
    configured limit; a body over the read cap is refused unread from any client."""
    limit = server.config.max_body_bytes
    declared = limit + 1 if over == "limit" else drain_cap(limit) + 1
    reply = raw_exchange(
        server.port,
        b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
        + AUTH
        + b"Content-Type: application/scim+json\r\nExpect: 100-continue\r\n"
        + f"Content-Length: {declared}\r\n\r\n".encode(),
        read_until_close=True,
    )
    # No "100 Continue" for a body that will not be read: the 413 comes at once.
    assert not reply.startswith(b"HTTP/1.1 100")
    error = assert_scim_error(reply, 413)
    assert str(declared) in error["detail"]
    assert split_reply(reply)[1]["connection"] == "close"
    wait_for(lambda: any(r.status == 413 for r in records(sink)))
    [record] = [r for r in records(sink) if r.status == 413]
    assert record.method == "POST" and record.path == "/scim/v2/Users"


def test_chunked_body_with_extensions_and_trailers(server: ServerThread) -> None:
    body = json.dumps(okta_create_body("trailer@example.com")).encode()
    reply = raw_exchange(
        server.port,
        b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
        + AUTH
        + b"Content-Type: application/scim+json\r\nTransfer-Encoding: Chunked\r\n\r\n"
        + f"{len(body):X};name=value\r\n".encode()
        + body
        + b"\r\n0\r\nX-Trailer: yes\r\n\r\n",
    )
    status, _, answer = split_reply(reply)
    assert status == 201 and json.loads(answer)["userName"] == "trailer@example.com"


def test_http_1_0_keep_alive_is_honoured(server: ServerThread) -> None:
    request = (
        b"GET /scim/v2/ServiceProviderConfig HTTP/1.0\r\nConnection: keep-alive\r\n"
        + AUTH
        + b"\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for _ in range(2):  # the same connection answers twice
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            status, headers, body = split_reply(data)
            while len(body) < int(headers["content-length"]):
                body += sock.recv(65536)
            assert status == 200 and headers["connection"] == "keep-alive"


def test_each_response_has_one_set_of_framing_headers(server: ServerThread) -> None:
    reply = raw_exchange(
        server.port, b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n"
    )
    head = reply.partition(b"\r\n\r\n")[0].lower()
    assert head.count(b"\r\ncontent-length:") == 1 and head.count(b"\r\ndate:") == 1
    assert b"transfer-encoding" not in head and b"\r\nconnection:" not in head


# --- the connection loop on its own server -------------------------------------------------------
class Echo:
    """Answers every request with its method, target and body; never on a closed request."""

    def __init__(self) -> None:
        self.closed = 0

    def handle(self, conn: Connection, request: Request) -> None:
        body = json.dumps(
            {"method": request.method, "target": request.target, "body": request.body.decode()}
        ).encode()
        conn.send(200, {"Content-Length": str(len(body))}, body)

    def connection_closed(self, conn: Connection) -> None:
        self.closed += 1

    def refused(self, conn: Connection, refusal: Refusal) -> None:
        pass


async def _serve(idle_timeout: float) -> tuple[HttpServer, int]:
    server = HttpServer(Echo(), max_body_size=1024, idle_timeout=idle_timeout)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server.add_sockets([sock])
    return server, sock.getsockname()[1]


def test_idle_and_slow_connections_are_closed_after_the_timeout() -> None:
    async def main() -> tuple[float, float, bytes]:
        server, port = await _serve(idle_timeout=0.3)
        try:
            t0 = time.monotonic()
            # Idle after one answered request.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await reader.readuntil(b"}")
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            idle = time.monotonic() - t0
            # Sending half a head and nothing more.
            t1 = time.monotonic()
            reader2, writer2 = await asyncio.open_connection("127.0.0.1", port)
            writer2.write(b"GET /slow HTTP/1.1\r\nHost:")
            assert await asyncio.wait_for(reader2.read(), 5) == b""
            slow = time.monotonic() - t1
            writer.close()
            writer2.close()
            return idle, slow, answer
        finally:
            server.stop()
            await server.close_all_connections()

    idle, slow, answer = asyncio.run(main())
    assert answer.endswith(b'"target": "/a", "body": ""}')
    # Closed (the reads above ended), and never before the timeout; how much later depends on
    # the machine, so that is not asserted.
    assert idle >= 0.3 and slow >= 0.3


def test_pipelined_bodies_are_framed_exactly() -> None:
    async def main() -> bytes:
        server, port = await _serve(idle_timeout=30)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                b"POST /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"2\r\nde\r\n0\r\n\r\n"
                b"GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return data
        finally:
            server.stop()
            await server.close_all_connections()

    data = asyncio.run(main())
    bodies = [json.loads(part.partition(b"\r\n\r\n")[2]) for part in data.split(b"HTTP/1.1 ")[1:]]
    assert [(b["target"], b["body"]) for b in bodies] == [("/1", "abc"), ("/2", "de"), ("/3", "")]
    assert data.count(b"Connection: close") == 1


def test_a_body_that_keeps_moving_is_not_cut_off_by_the_idle_timeout() -> None:
    """The timeout limits waiting for a request's head; a body is limited only while it
    stops moving (a slow upload that makes progress is read to the end)."""

    async def main() -> tuple[bytes, bytes]:
        server, port = await _serve(idle_timeout=0.3)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
            for part in (b"ab", b"cd", b"ef"):
                await asyncio.sleep(0.2)  # 0.6 s in all, twice the timeout
                writer.write(part)
            answer = await asyncio.wait_for(reader.readuntil(b"}"), 5)
            # A body that stops moving is cut off.
            writer.write(b"POST /stuck HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab")
            rest = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return answer, rest
        finally:
            server.stop()
            await server.close_all_connections()

    answer, rest = asyncio.run(main())
    assert answer.endswith(b'"body": "abcdef"}')
    assert rest == b""


def test_oauth_paths_refused_by_tornado_get_an_answer(db_path, sink: RecordingSink) -> None:
    """Requests this parser accepts but Tornado's HTTPServerRequest refuses are answered (not a
    closed connection and a logged traceback); an unread body over the limit is a 413."""
    from tests.server.test_oauth_flow import make_server

    server = make_server(db_path, sink)
    try:
        reply = raw_exchange(
            server.port,
            b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: a b\r\n\r\n",
            read_until_close=True,
        )
        status, headers, body = split_reply(reply)
        assert status == 400 and json.loads(body)["error"] == "invalid_request"
        assert headers["connection"] == "close"
        wait_for(lambda: any(r.status == 400 for r in records(sink)))  # and recorded
        reply = raw_exchange(
            server.port,
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {server.config.max_body_bytes + 1}\r\n\r\n".encode(),
            read_until_close=True,
        )
        status, _, body = split_reply(reply)
        assert status == 413 and json.loads(body)["error"] == "invalid_request"
    finally:
        server.stop()


def test_stopping_ends_answers_that_are_still_waiting(db_path, sink: RecordingSink) -> None:
    server = start_with_latency(db_path, sink, 30_000)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n")
        wait_for(lambda: server.context.stats.get("active", 0) == 1)
        t0 = time.monotonic()
        server.stop()
        assert time.monotonic() - t0 < 10
        assert [r.status for r in records(sink)] == [0]  # recorded as not answered
        assert sock.recv(100) == b""  # closed without an answer
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "close", False),
        ("HTTP/1.1", "Keep-Alive, CLOSE", False),
        ("HTTP/1.1", "x-close", True),  # a token, not a substring (RFC 9110 §7.6.1)
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "keep-alive", True),
        ("HTTP/1.0", "TE,  Keep-Alive ", True),
        ("HTTP/1.0", "not-keep-alive", False),
    ],
)
def test_connection_options_are_tokens(
    version: str, connection: str | None, keep_alive: bool
) -> None:
    field = f"Connection: {connection}\r\n" if connection is not None else ""
    req = parse_head(f"GET / {version}\r\nHost: x\r\n{field}\r\n".encode())
    assert req is not None and req.keep_alive is keep_alive
