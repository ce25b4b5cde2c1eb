"""Review of issue 12 §1 as a hostile client (real sockets): what the other limit tests do not
try. A request head that trickles in a byte at a time is bounded in time, not only in size; a
TLS client that opens a connection and never handshakes does not hold its descriptor; a body
limit set on the head by the handler (``Request.body_limit``) leaves a longer body unread;
the OAuth endpoints, which anyone may call, take bodies of at most ``MAX_OAUTH_BODY``."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

from scim_desktop.config import TlsConfig
from scim_desktop.server.http1 import IDLE_SCAN_PAUSE, Connection, HttpServer, Refusal, Request
from scim_desktop.server.oauth_handlers import MAX_OAUTH_BODY
from scim_desktop.server.tls import prepare_tls
from tests.conftest import RecordingSink
from tests.server.test_http1 import Echo, split_reply
from tests.server.test_http_layer import raw_exchange

BIG = 16 * 1024 * 1024


def _listen(server: HttpServer) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server.add_sockets([sock])
    return sock.getsockname()[1]


async def _closed(reader: asyncio.StreamReader, timeout: float = 10) -> bool:
    """Whether the server ends the connection within ``timeout`` (what it sends is dropped)."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def test_a_head_trickling_in_is_cut_off_by_the_idle_deadline() -> None:
    """Slow loris on the head: one byte every 50 ms keeps the head moving, but the head has
    ``idle_timeout`` in all (the body's "still moving" allowance does not apply to it)."""
    head = b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 400 + b"\r\n\r\n"

    async def main() -> tuple[int, bool]:
        server = HttpServer(Echo(), max_body_size=1024, idle_timeout=0.3)
        port = _listen(server)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            sent = 0
            for byte in head:  # bounded: at most len(head) turns (about 22 s)
                if reader.at_eof():
                    break
                try:
                    writer.write(bytes([byte]))
                    await writer.drain()
                except ConnectionError:
                    break
                sent += 1
                await asyncio.sleep(0.05)
                if reader._buffer or reader.at_eof():  # type: ignore[attr-defined]
                    break
            closed = await _closed(reader)
            writer.close()
            return sent, closed
        finally:
            server.stop()
            await server.close_all_connections()

    sent, closed = asyncio.run(main())
    assert closed
    assert sent < len(head)  # closed while the head was still trickling in


def test_a_tls_client_that_never_handshakes_is_closed(tmp_path: Path) -> None:
    """A connection to the https port that sends nothing, or half a ClientHello, is closed by
    the idle sweep like any other: no descriptor is held forever."""
    tls = TlsConfig(tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem")
    context, _, _ = prepare_tls(tls, "127.0.0.1")

    async def main() -> tuple[bool, bool, int]:
        server = HttpServer(Echo(), max_body_size=1024, idle_timeout=0.3, ssl_options=context)
        port = _listen(server)
        try:
            silent_r, silent_w = await asyncio.open_connection("127.0.0.1", port)
            half_r, half_w = await asyncio.open_connection("127.0.0.1", port)
            half_w.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
            silent, half = await _closed(silent_r), await _closed(half_r)
            silent_w.close()
            half_w.close()
            await asyncio.sleep(0.05)
            return silent, half, len(server.connections)
        finally:
            server.stop()
            await server.close_all_connections()

    silent, half, left = asyncio.run(main())
    assert silent and half
    assert left == 0


class Limited(Echo):
    """Reads at most 1 KB of a body (``body_limit`` set on the head), as ScimServer does for
    the OAuth endpoints; answers with what it got."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def admit(self, conn: Connection, request: Request, length: int) -> bool:
        request.body_limit = 1024
        return True

    def handle(self, conn: Connection, request: Request) -> None:
        self.seen.append((len(request.body), request.declared_length))
        super().handle(conn, request)

    def refused(self, conn: Connection, refusal: Refusal) -> None:
        pass


def test_a_body_limit_set_on_the_head_leaves_a_longer_body_unread() -> None:
    async def main() -> tuple[list[tuple[int, int]], bytes, bytes, bytes]:
        handler = Limited()
        server = HttpServer(handler, max_body_size=BIG, continue_limit=BIG)
        port = _listen(server)
        try:
            # Under the limit: read.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            small = await reader.readuntil(b"}")
            # 16 MB declared (under max_body_size): not read, no 100 Continue, and the
            # connection ends after the answer.
            writer.write(
                b"POST /b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                + f"Content-Length: {BIG}\r\n\r\n".encode()
            )
            big = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            # Chunked past the limit: the rest is not read either.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"800\r\n"
                + b"z" * 2048
                + b"\r\n"
            )
            chunked = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return handler.seen, small, big, chunked
        finally:
            server.stop()
            await server.close_all_connections()

    seen, small, big, chunked = asyncio.run(main())
    assert small.endswith(b'"body": "abc"}')
    assert not big.startswith(b"HTTP/1.1 100")
    assert split_reply(big)[0] == 200 and b"connection: close" in big.lower()
    assert split_reply(chunked)[0] == 200
    assert seen == [(3, 0), (0, BIG), (0, 2048)]


def test_oauth_endpoints_take_small_bodies_only(db_path: Path, sink: RecordingSink) -> None:
    """A token request is a few hundred bytes: a longer body is a 413 even under
    ``--max-body``, so --max-body set high for big groups does not let an unauthenticated
    client make the server hold that much per connection."""
    from tests.server.test_oauth_flow import make_server

    server = make_server(db_path, sink)
    try:
        assert server.config.max_body_bytes > MAX_OAUTH_BODY + 1
        body = b"grant_type=authorization_code&code=x&pad=" + b"a" * MAX_OAUTH_BODY
        reply = raw_exchange(
            server.port,
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body,
            read_until_close=True,
        )
        status, _, answer = split_reply(reply)
        assert status == 413
        assert json.loads(answer)["error"] == "invalid_request"
        # A normal-sized one still reaches the endpoint (a 400 for the unknown code).
        small = b"grant_type=authorization_code&code=x"
        reply = raw_exchange(
            server.port,
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(small)}\r\n\r\n".encode()
            + small,
        )
        assert split_reply(reply)[0] in (400, 401)
    finally:
        server.stop()


def test_at_the_connection_limit_a_slow_half_head_makes_room() -> None:
    """Connections that hold half a request head and send nothing more fill the limit: while
    those heads are young a newcomer gets the 503, once they have been arriving for over
    ``slow_head_timeout`` the oldest makes room (a flood of half heads turned every newcomer
    away for the whole idle timeout)."""
    from tests.server.test_limits import Echo as Counter
    from tests.server.test_limits import asyncio_wait_for, run_server, until_closed

    async def test(server: HttpServer, port: int) -> tuple[bytes, bytes, bytes]:
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        for _, writer in conns:
            writer.write(b"GET /partial HTTP/1.1\r\nHost: x\r\n")
        await asyncio_wait_for(
            lambda: len(server.connections) == 3 and all(c._buf for c in server.connections)
        )
        r1, w1 = await asyncio.open_connection("127.0.0.1", port)
        w1.write(b"GET /early HTTP/1.1\r\nHost: x\r\n\r\n")
        early = await until_closed(r1)  # the half heads are young: no room
        server.slow_head_timeout = 0.0  # as if they had been arriving for longer than it
        await asyncio.sleep(IDLE_SCAN_PAUSE * 2)  # the 503 paused the scan for this long
        r2, w2 = await asyncio.open_connection("127.0.0.1", port)
        w2.write(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
        late = await asyncio.wait_for(r2.readuntil(b"}"), 10)
        # One half head (the oldest) was closed; the other two are still open.
        closed = [await _closed(reader, timeout=0.5) for reader, _ in conns]
        for _, writer in [*conns, (r1, w1), (r2, w2)]:
            writer.close()
        return early, late, closed

    early, late, closed = run_server(Counter(), test, max_connections=3)
    assert split_reply(early)[0] == 503
    assert late.endswith(b'"target": "/late", "length": 0}')
    assert sorted(closed) == [False, False, True]


def test_an_oauth_body_over_its_limit_is_refused_on_the_head(
    db_path: Path, sink: RecordingSink
) -> None:
    """The OAuth endpoints' small limit is decided before the body: a client that waits for
    100 Continue is never asked for a body over it, and gets the 413 at once."""
    from tests.server.test_oauth_flow import make_server

    server = make_server(db_path, sink)
    try:
        declared = MAX_OAUTH_BODY * 10  # under --max-body, over the OAuth limit
        assert declared < server.config.max_body_bytes
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                + f"Content-Length: {declared}\r\n\r\n".encode()
            )
            first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 413 "), first[:80]
        assert b"100 Continue" not in first
    finally:
        server.stop()


def test_a_client_that_always_has_its_next_request_ready_does_not_starve_others(server) -> None:
    """Reading data that has already arrived does not give the event loop back, so a client
    pipelining thousands of requests was served alone while another client waited (2 s seen
    with two fast clients). Each connection now yields after its turn: the other client is
    answered while most of the pipeline is still unanswered."""
    import threading

    from tests.conftest import TOKEN

    pipelined = 4000
    auth = f"Authorization: Bearer {TOKEN}"
    one = f"GET /scim/v2/ServiceProviderConfig HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n".encode()
    answered = [0]
    seen_by_other: list[int] = []
    done = threading.Event()

    def read_all(sock: socket.socket) -> None:
        tail = b""  # a status line split between two reads is counted once
        while answered[0] < pipelined:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data = tail + chunk
            answered[0] += data.count(b"HTTP/1.1 200 ")
            tail = data[-12:]  # shorter than a status line: never counted twice
        done.set()

    hog = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    other = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    try:
        reader = threading.Thread(target=read_all, args=(hog,), daemon=True)
        reader.start()
        hog.sendall(one * pipelined)
        other.sendall(one)
        assert other.recv(65536).startswith(b"HTTP/1.1 200 ")
        seen_by_other.append(answered[0])
        assert done.wait(30)
        assert answered[0] == pipelined
        # The other client did not wait for the whole pipeline.
        assert seen_by_other[0] < pipelined // 2, seen_by_other
    finally:
        hog.close()
        other.close()
