"""The budget for answers written but not read (``HttpServer.undrained_budget``), on real
sockets: clients that ask for large answers and never read them hold memory until the
server-wide total passes the budget; then the connections holding the oldest undrained
answers are closed, and a client that reads is still served. The server's socket buffer is
made small so that what the kernel takes at once does not hide the answers. Figures (RSS
with many such clients, in proxy mode) are printed by tests/hostile/unread_answers.py."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from scim_desktop.server.http1 import UNDRAINED_BUDGET, Connection, HttpServer, Refusal, Request
from tests.server.test_http1 import split_reply
from tests.server.test_limits import read_answer, run_server

MB = 1024 * 1024


class Big:
    """Answers ``GET /<name>`` with ``size`` bytes; keeps each connection by the name asked."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.conns: dict[str, Connection] = {}

    def handle(self, conn: Connection, request: Request) -> None:
        # A small send buffer: the kernel takes a few KB, the rest waits in the stream.
        conn.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        self.conns[request.target] = conn
        body = b"x" * self.size
        conn.send(200, {"Content-Length": str(len(body))}, body)

    def connection_closed(self, conn: Connection) -> None:
        pass

    def refused(self, conn: Connection, refusal: Refusal) -> None:
        pass


async def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def non_reader(port: int, target: str) -> socket.socket:
    """A client that asks for ``target`` and never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    sock.send(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def reader_gets(port: int, target: str) -> bytes:
    """A client that reads: one whole answer (run in a thread, blocking)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return read_answer(sock)


def test_the_default_budget() -> None:
    server = HttpServer(Big(0), max_body_size=1024)
    assert server.undrained_budget == UNDRAINED_BUDGET == 256 * MB


def test_past_the_budget_the_oldest_unread_answers_are_closed() -> None:
    """Three clients hold 1 MB answers each under a 2.5 MB budget: the third answer closes
    the first client's connection (the oldest undrained answer), the others stay, and the
    total held stays within the budget; a client that reads still gets its whole answer."""
    handler = Big(MB)

    async def test(server: HttpServer, port: int) -> tuple[list[bool], int, bytes]:
        socks = []
        for n in range(3):
            socks.append(await non_reader(port, f"/unread{n}"))
            await until(lambda n=n: f"/unread{n}" in handler.conns)
            if n < 2:  # each held in full (nothing over the budget yet)
                await until(lambda n=n: server.undrained >= (n + 1) * MB)
        conns = [handler.conns[f"/unread{n}"] for n in range(3)]
        await until(lambda: conns[0].stream.closed())
        closed = [c.stream.closed() for c in conns]
        held = server.undrained
        # A well-behaved client is served while the non-readers still hold their answers.
        answer = await asyncio.to_thread(reader_gets, port, "/reader")
        for sock in socks:
            sock.close()
        return closed, held, answer

    closed, held, answer = run_server(handler, test, undrained_budget=5 * MB // 2)
    assert closed == [True, False, False]
    assert 2 * MB <= held <= 5 * MB // 2
    status, _, body = split_reply(answer)
    assert status == 200 and body == b"x" * MB


def test_many_non_readers_never_hold_more_than_the_budget() -> None:
    """Twelve non-readers one after the other under a budget of three answers: each new
    answer closes the oldest, so the last three stay open, the first nine are closed, and
    the total held never passed the budget once an answer was counted (watched after each)."""
    handler = Big(MB)

    async def test(server: HttpServer, port: int) -> tuple[list[bool], int]:
        socks = []
        peak = 0
        for n in range(12):
            socks.append(await non_reader(port, f"/u{n}"))
            await until(lambda n=n: f"/u{n}" in handler.conns)
            peak = max(peak, server.undrained)
        await asyncio.sleep(0.1)
        closed = [handler.conns[f"/u{n}"].stream.closed() for n in range(12)]
        for sock in socks:
            sock.close()
        return closed, peak

    budget = 3 * MB + 4096  # three answers and their heads
    closed, peak = run_server(handler, test, undrained_budget=budget)
    assert peak <= budget
    assert all(closed[:9]) and not any(closed[9:])


def test_the_total_comes_back_to_zero_when_answers_drain_or_clients_leave() -> None:
    """The count follows each answer: read ones are taken off, and so are those of clients
    that leave without reading (nothing leaks into a budget that would close others)."""
    handler = Big(MB)

    async def test(server: HttpServer, port: int) -> tuple[int, int, int]:
        socks = [await non_reader(port, f"/gone{n}") for n in range(2)]
        await until(lambda: server.undrained >= 2 * MB)
        held = server.undrained
        answer = await asyncio.to_thread(reader_gets, port, "/read")
        assert split_reply(answer)[0] == 200
        after_read = server.undrained  # the reader's answer is off the count
        for sock in socks:
            sock.close()
        await until(lambda: server.undrained == 0)
        return held, after_read, len(server._holders)

    held, after_read, holders = run_server(handler, test, undrained_budget=64 * MB)
    assert (
        held
        == after_read
        == 2 * MB + 2 * len(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n")
    )
    assert holders == 0
