"""Resource limits of the HTTP/1.1 layer (issue 12 §1), on real sockets: requests decided on
their head before any body byte is read, the read-and-drop budget shared by all connections,
empty lines before a request, trailer and extension limits, body and write deadlines, the
connection cap, and one clear line for plain http on the TLS port. Figures (RSS, CPU) are
printed by tests/hostile/hostile_clients.py, not asserted here."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from scim_desktop.config import TlsConfig
from scim_desktop.server.http1 import (
    LINGER_POOL,
    Connection,
    HttpServer,
    Refusal,
    Request,
)
from scim_desktop.server.http1_body import MAX_LEADING_EMPTY, MAX_TRAILER_FIELDS
from scim_desktop.server.runner import ServerThread
from tests.conftest import RecordingSink
from tests.server.test_http1 import AUTH, assert_scim_error, split_reply
from tests.server.test_http_layer import raw_exchange, records, wait_for
from tests.server.test_tls import tls_server

BIG = 16 * 1024 * 1024


def read_answer(sock: socket.socket) -> bytes:
    """One answer (head and Content-Length body) from ``sock``, nothing after it (the head is
    read a byte at a time: a pipelined answer may follow)."""
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    length = int(split_reply(data)[1].get("content-length", "0"))
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        assert chunk
        body += chunk
    return data + body


def closed_by_server(sock: socket.socket, timeout: float = 10) -> bool:
    """Whether the server ends the connection (EOF or reset) within ``timeout``; what it
    still sends is read and dropped."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


# --- decided on the head (a real SCIM server) -----------------------------------------------------
@pytest.mark.parametrize(
    ("head", "status"),
    [
        # No credentials: 401 on the head.
        (b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n", 401),
        (b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n", 401),
        # No such endpoint (no credentials needed to learn that).
        (b"POST /nowhere HTTP/1.1\r\nHost: x\r\n", 404),
        # An unknown method, before authentication.
        (b"BREW /scim/v2/Users HTTP/1.1\r\nHost: x\r\n", 405),
        # A method the route lacks, once authenticated.
        (b"POST /scim/v2/ServiceProviderConfig HTTP/1.1\r\nHost: x\r\n" + AUTH, 405),
        # Authenticated, but declared over --max-body.
        (b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + AUTH, 413),
    ],
)
def test_refused_on_the_head_before_the_body_is_sent(
    server: ServerThread, sink: RecordingSink, head: bytes, status: int
) -> None:
    """The answer comes while the client has sent 64 KB of a 1 MB body (16 MB for the 413,
    which is decided first): the server did not wait for (or buffer) the rest. The connection
    then ends, and the refusal is recorded."""
    length = BIG if status == 413 else server.config.max_body_bytes
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + f"Content-Length: {length}\r\n\r\n".encode() + b"{" * 65536)
        reply = read_answer(sock)
        error = assert_scim_error(reply, status)
        assert split_reply(reply)[1]["connection"] == "close"
        if status == 413:
            assert str(length) in error["detail"]
        if status == 401:
            assert "www-authenticate" in split_reply(reply)[1]
        assert closed_by_server(sock)
    wait_for(lambda: [r.status for r in records(sink)] == [status])
    assert server.context.stats["active"] == 0


def test_no_100_continue_for_a_refused_head(server: ServerThread) -> None:
    """RFC 9110 §10.1.1: "100 Continue" only once the head passed; a refused client is told
    at once and never asked for its body."""
    reply = raw_exchange(
        server.port,
        b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Type: application/scim+json\r\nContent-Length: 500\r\n\r\n",
        read_until_close=True,
    )
    assert reply.startswith(b"HTTP/1.1 401 ")
    assert b"100 Continue" not in reply
    # With credentials the same head is asked for its body.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            + AUTH
            + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_a_refused_body_that_arrived_whole_keeps_the_connection(server: ServerThread) -> None:
    """A small refused request (body in the same packet as its head) is dropped from the
    buffer, not read further: the connection serves the next request."""
    body = b'{"userName": "nobody@example.com"}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nContent-Type: application/scim+json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
            + b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            + AUTH
            + b"\r\n"
        )
        first = read_answer(sock)
        assert first.startswith(b"HTTP/1.1 401 ") and b"Connection: close" not in first
        second = read_answer(sock)
        assert second.startswith(b"HTTP/1.1 200 ")
        assert json.loads(second.partition(b"\r\n\r\n")[2])["totalResults"] == 0


def test_unauthenticated_chunked_upload_is_not_read(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"10000\r\n"
            + b"a" * 65536
        )
        reply = read_answer(sock)
        assert reply.startswith(b"HTTP/1.1 401 ") and b"Connection: close" in reply
        assert closed_by_server(sock)


def test_authenticated_requests_still_work(server: ServerThread) -> None:
    """The accepted path: the head is checked once, the body read, the answer as before."""
    body = json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ok@example.com",
        }
    ).encode()
    reply = raw_exchange(
        server.port,
        b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
        + AUTH
        + b"Content-Type: application/scim+json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    status, _, answer = split_reply(reply)
    assert status == 201 and json.loads(answer)["userName"] == "ok@example.com"


def test_empty_lines_before_a_request_are_bounded(server: ServerThread) -> None:
    """RFC 9112 §2.2: a few empty lines before the request line are ignored; more are a
    400 (4 MB of them used to be read two bytes at a time)."""
    ok = b"\r\n" * (MAX_LEADING_EMPTY // 2) + b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + AUTH
    assert raw_exchange(server.port, ok + b"\r\n").startswith(b"HTTP/1.1 200 ")
    too_many = b"\r\n" * (MAX_LEADING_EMPTY // 2 + 1) + b"GET /scim/v2/Users HTTP/1.1\r\n"
    reply = raw_exchange(server.port, too_many + b"Host: x\r\n\r\n", read_until_close=True)
    assert "empty lines" in assert_scim_error(reply, 400)["detail"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        try:
            sock.sendall(b"\r\n" * (2 * 1024 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed while we were still sending
        else:
            assert read_answer(sock).startswith(b"HTTP/1.1 400 ")


def test_the_linger_budget_is_shared_and_given_back(server: ServerThread) -> None:
    """Refused uploads are read and dropped from one budget for all connections, which is
    whole again once they are gone."""
    http = server.http_server
    assert http is not None
    socks = []
    for _ in range(12):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {BIG}\r\n\r\n".encode()
            + b"a" * 65536
        )
        socks.append(sock)
    for sock in socks:
        assert read_answer(sock).startswith(b"HTTP/1.1 413 ")
    assert 0 <= http.linger_left <= LINGER_POOL
    for sock in socks:
        sock.close()
    wait_for(lambda: not http.connections)
    assert http.linger_left == LINGER_POOL


# --- the connection loop on its own server ------------------------------------------------------
class Echo:
    """Answers every request with its target and body length (``size`` bytes of padding)."""

    def __init__(self, size: int = 0) -> None:
        self.size = size
        self.handled = 0

    def handle(self, conn: Connection, request: Request) -> None:
        self.handled += 1
        body = json.dumps({"target": request.target, "length": len(request.body)}).encode()
        body += b" " * self.size
        conn.send(200, {"Content-Length": str(len(body))}, body)

    def connection_closed(self, conn: Connection) -> None:
        pass

    def refused(self, conn: Connection, refusal: Refusal) -> None:
        pass


def run_server(
    handler: Any, test: Callable[[HttpServer, int], Awaitable[Any]], **options: Any
) -> Any:
    """Run ``test(server, port)`` against an HttpServer on a free loopback port."""

    async def main() -> Any:
        server = HttpServer(handler, max_body_size=options.pop("max_body_size", 1024), **options)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        server.add_sockets([sock])
        try:
            return await test(server, sock.getsockname()[1])
        finally:
            server.stop()
            await server.close_all_connections()

    return asyncio.run(main())


async def until_closed(reader: asyncio.StreamReader, timeout: float = 10) -> bytes:
    """What the server sent until it closed the connection (a reset counts as closed)."""
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), timeout):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_a_trickling_body_is_cut_off_by_the_body_deadline() -> None:
    """A body that keeps moving (under the idle timeout) but never ends is closed once the
    body deadline passes, long before it would be complete."""

    async def test(server: HttpServer, port: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n")
        sent = 0
        while sent < 200 and not reader.at_eof():
            await asyncio.sleep(0.05)  # well under the idle timeout: the body moves
            try:
                writer.write(b"a")
                await writer.drain()
            except ConnectionError:
                break
            sent += 1
            if server.connections == set():
                break
        assert await until_closed(reader) == b""
        writer.close()
        return sent

    sent = run_server(Echo(), test, idle_timeout=1.0, body_timeout=0.5)
    assert sent < 200  # closed before the body was complete


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"0\r\n" + b"X-T: 1\r\n" * (MAX_TRAILER_FIELDS + 1) + b"\r\n", "trailer"),
        (b"0\r\n" + (b"X-T: " + b"a" * 1000 + b"\r\n") * 70 + b"\r\n", "trailer"),
        ((b"1;" + b"e" * 1000 + b"\r\na\r\n") * 70 + b"0\r\n\r\n", "extensions"),
    ],
)
def test_trailers_and_extensions_are_limited_like_header_fields(body: bytes, detail: str) -> None:
    """Trailer fields (count and bytes) and chunk extensions are limited as a head is: an
    endless stream of them ends with a 431 instead of being read for as long as it comes."""

    async def test(server: HttpServer, port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        data = await until_closed(reader)
        writer.close()
        return data

    reply = run_server(Echo(), test, max_body_size=1024 * 1024)
    error = assert_scim_error(reply, 431)
    assert detail in error["detail"].lower()


def test_a_client_that_does_not_read_its_answers_is_closed() -> None:
    """Pipelined requests whose (large) answers are never read: one answer is queued at a
    time (the next request waits), and the connection is closed at the write deadline."""
    handler = Echo(size=32 * 1024 * 1024)

    async def test(server: HttpServer, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        sock.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
        deadline = time.monotonic() + 20
        while server.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not server.connections  # closed by the server, not by us
        sock.close()

    run_server(handler, test, write_timeout=0.5)
    assert handler.handled == 1


def test_past_the_connection_limit_an_idle_connection_makes_room() -> None:
    """At max_connections, a new connection closes the one idle the longest (a keep-alive
    connection waiting for its next request); with none idle, it gets a 503 and Retry-After."""

    async def test(server: HttpServer, port: int) -> tuple[bytes, bytes, bytes]:
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio_wait_for(lambda: len(server.connections) == 3)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /new HTTP/1.1\r\nHost: x\r\n\r\n")
        served = await asyncio.wait_for(reader.readuntil(b"}"), 10)
        evicted = await until_closed(conns[0][0])  # the oldest idle one
        # Now every connection holds part of a request: none is idle.
        for _, w in [*conns[1:], (reader, writer)]:
            w.write(b"GET /partial HTTP/1.1\r\n")
        await asyncio_wait_for(lambda: all(c._buf for c in server.connections))
        r5, w5 = await asyncio.open_connection("127.0.0.1", port)
        w5.write(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
        busy = await until_closed(r5)
        for _, w in [*conns, (reader, writer), (r5, w5)]:
            w.close()
        return served, evicted, busy

    served, evicted, busy = run_server(Echo(), test, max_connections=3)
    assert served.endswith(b'"target": "/new", "length": 0}')
    assert evicted == b""
    status, headers, _ = split_reply(busy)
    assert status == 503 and headers["retry-after"].isdigit() and headers["connection"] == "close"
    assert_scim_error(busy, 503)


async def asyncio_wait_for(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# --- TLS ------------------------------------------------------------------------------------------
def test_plain_http_on_the_tls_port_is_one_clear_line(
    db_path, caplog: pytest.LogCaptureFixture
) -> None:
    server = tls_server(db_path, TlsConfig.generated_for(db_path))
    try:
        with caplog.at_level(logging.INFO):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n\r\n")
                assert closed_by_server(sock)
            wait_for(lambda: "plain http request" in caplog.text)
    finally:
        server.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert "plain http request to the https port from 127.0.0.1" in lines
    assert not [line for line in lines if "SSL Error" in line]
    assert not [r for r in caplog.records if r.exc_info]
