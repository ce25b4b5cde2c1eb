"""Proxy mode (issue 14) against a hostile upstream and many clients: figures, printed.

    python tests/hostile/proxy_hostile.py [--only NAME ...] [--clients N]

Starts a raw-socket upstream in this process (its answer chosen by the request's last path
segment) and the real ``scim-desktop proxy --upstream ...`` as a subprocess on 127.0.0.1, and
prints what each attack cost the proxy, read from /proc (Linux only): peak and final RSS, CPU
seconds, open sockets, the answers' statuses. Loopback only; about a minute and a half.

Parts (``--only`` takes these names):

- ``bigjson``: N clients at once (default 32, the pool's size, then twice that) each get a
  15 MB JSON answer made of tiny objects (``[{},{},...]``): the proxy buffers each answer
  (capped at 16 MB) and parses it for its record and the Okta checks.
- ``endless``: N clients at once, an upstream streaming an endless body (cut at the cap: 502).
- ``slow``: 100 clients at once, an upstream answering one byte every 0.1 s (a 12 s answer):
  the proxy's sockets and RSS meanwhile; how long a fast request waits behind them (the pool
  holds 32 connections: the rest queue) and a request the proxy answers itself (404: the
  event loop is free).
- ``interim``: 32 clients, an upstream sending 100 Continue without end: the proxy's CPU.
- ``unread``: N clients (default 32, then 4 times that) ask for the 15 MB answer and never
  read it: the pool's slots are free again once the upstream's answer is in, but each answer
  waits in its client's write buffer (until the server's write deadline, or until the
  answers not read pass ``http1.UNDRAINED_BUDGET``, 256 MB, and the oldest are closed): the
  RSS it costs, how many were closed, and whether clients that read are still served.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.hostile.watched import Watched  # noqa: E402
from tests.server.test_proxy_hostile import RawUpstream, ok_answer  # noqa: E402

BIG = b"[" + b"{}," * (5 * 1024 * 1024 - 1) + b"{}]"  # 15 MB, 5 M empty objects


def _answer(kind: str, conn: socket.socket) -> None:
    if kind == "bigjson":
        conn.sendall(ok_answer(BIG))
    elif kind == "endless":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\n\r\n")
        while True:
            conn.sendall(b"[{}," * 16384)
    elif kind == "slow":
        for byte in ok_answer(b"{" + b" " * 60 + b"}"):
            conn.sendall(bytes([byte]))
            time.sleep(0.1)
    elif kind == "interim":
        while True:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" * 64)
    else:
        conn.sendall(ok_answer(b'{"fast":true}'))


def upstream_script(head: bytes, conn: socket.socket) -> bool:
    """The upstream's answer to one request (a RawUpstream script), chosen by the last path
    segment; the connection is kept."""
    target = head.split(b" ", 2)[1].decode()
    _answer(target.partition("?")[0].rsplit("/", 1)[-1], conn)
    return True


class Proxied(Watched):
    """``scim-desktop proxy`` in a subprocess, in front of ``upstream``."""

    def __init__(self, folder: Path, upstream: RawUpstream) -> None:
        super().__init__(
            [
                "proxy",
                "--upstream",
                f"http://127.0.0.1:{upstream.port}/api/scim",
                "--port",
                "0",
                "--db",
                str(folder / "proxy.json"),
                "--no-auth",
            ],
            "proxy",
        )

    def get(self, path: str, timeout: float = 90) -> tuple[int, int, float]:
        """Status, body bytes and seconds of one GET on a new connection (0: no answer)."""
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n".encode()
                )
                data = b""
                while chunk := sock.recv(1 << 20):
                    data += chunk
        except OSError:
            return 0, 0, time.monotonic() - started
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
        return status, len(body), time.monotonic() - started


def crowd(proxy: Proxied, path: str, clients: int) -> list[tuple[int, int, float]]:
    results: list[tuple[int, int, float]] = []
    threads = [
        threading.Thread(target=lambda: results.append(proxy.get(path))) for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def summary(results: list[tuple[int, int, float]]) -> str:
    statuses = Counter(status for status, _, _ in results)
    times = sorted(seconds for _, _, seconds in results)
    return (
        f"statuses {dict(statuses)}, seconds min {times[0]:.1f} median "
        f"{times[len(times) // 2]:.1f} max {times[-1]:.1f}"
    )


def crowd_costs(proxy: Proxied, path: str, clients: int, what: str) -> None:
    """``clients`` at once GET ``path``; prints their statuses and times, and the proxy's RSS
    before, at its peak and after, and its CPU seconds."""
    rss, cpu = proxy.rss_mb(), proxy.cpu_s()
    results = crowd(proxy, path, clients)
    print(
        f"  {clients} clients x {what}: {summary(results)}; RSS {rss:.0f} -> peak "
        f"{proxy.status_kb('VmHWM') / 1024:.0f} MB (after {proxy.rss_mb():.0f}), "
        f"CPU {proxy.cpu_s() - cpu:.1f} s"
    )


def part_bigjson(proxy: Proxied, clients: int) -> None:
    for n in (clients, clients * 2):
        crowd_costs(proxy, "/scim/v2/bigjson", n, "15 MB JSON")


def part_endless(proxy: Proxied, clients: int) -> None:
    crowd_costs(proxy, "/scim/v2/endless", clients, "endless body")


def part_slow(proxy: Proxied, clients: int) -> None:
    clients = max(clients, 100)
    rss, cpu = proxy.rss_mb(), proxy.cpu_s()
    results: list[tuple[int, int, float]] = []
    threads = [
        threading.Thread(target=lambda: results.append(proxy.get("/scim/v2/slow")))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    time.sleep(2)
    sockets = proxy.sockets()
    own = proxy.get("/admin")
    fast = proxy.get("/scim/v2/fast")
    for thread in threads:
        thread.join()
    print(
        f"  {clients} clients x an answer at 10 bytes/s: {summary(results)}; proxy sockets "
        f"meanwhile {sockets}; RSS {rss:.0f} -> {proxy.rss_mb():.0f} MB, CPU "
        f"{proxy.cpu_s() - cpu:.1f} s"
    )
    print(f"  meanwhile: the proxy's own 404 in {own[2]:.2f} s (status {own[0]})")
    print(f"  meanwhile: a fast upstream answer waited {fast[2]:.1f} s (status {fast[0]})")


def part_interim(proxy: Proxied, clients: int) -> None:
    cpu = proxy.cpu_s()
    results = crowd(proxy, "/scim/v2/interim", clients)
    print(
        f"  {clients} clients x endless 100 Continue: {summary(results)}; CPU "
        f"{proxy.cpu_s() - cpu:.1f} s"
    )


def part_unread(proxy: Proxied, clients: int) -> None:
    for n in (clients, clients * 4):
        rss = proxy.rss_mb()
        socks = []
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", proxy.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET /scim/v2/bigjson HTTP/1.1\r\nHost: p\r\n\r\n")
            socks.append(sock)
        time.sleep(8)
        peak = proxy.status_kb("VmHWM") / 1024
        now = proxy.rss_mb()
        # Those the server closed (the answer budget, http1.UNDRAINED_BUDGET) are no longer
        # established on its side; the others still are, their answers waiting.
        closed = n - _served_connections(proxy.port)
        fast = proxy.get("/scim/v2/fast", timeout=30)
        big = proxy.get("/scim/v2/bigjson", timeout=60)  # a client that reads a big answer
        print(
            f"  {n} clients not reading 15 MB answers: RSS {rss:.0f} -> {now:.0f} MB "
            f"after 8 s (peak {peak:.0f}); {closed} of them closed by the server; meanwhile "
            f"a fast answer in {fast[2]:.2f} s (status {fast[0]}), a client reading a 15 MB "
            f"answer got {big[1] / 2**20:.1f} MB in {big[2]:.2f} s (status {big[0]})"
        )
        for sock in socks:
            sock.close()
        time.sleep(2)
    lines = proxy.stdout + proxy.stderr
    budget = sum("Answers not read by their clients exceed" in line for line in lines)
    print(f"  log lines about the answer budget: {budget}")


def _served_connections(port: int) -> int:
    """The proxy's established connections on ``port`` (/proc/net/tcp: local port ``port``,
    state 01). One the server closed with its answer unsent is FIN_WAIT1 (04) instead."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    count += 1
    return count


PARTS: dict[str, Callable[[Proxied, int], None]] = {
    "bigjson": part_bigjson,
    "endless": part_endless,
    "slow": part_slow,
    "interim": part_interim,
    "unread": part_unread,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(PARTS), default=sorted(PARTS))
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    upstream = RawUpstream(upstream_script, backlog=512)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.only:
            proxy = Proxied(Path(folder) / name, upstream)  # a fresh proxy: its own peak RSS
            try:
                print(f"{name}: proxy RSS at start {proxy.rss_mb():.0f} MB")
                PARTS[name](proxy, args.clients)
            finally:
                proxy.stop()


if __name__ == "__main__":
    main()
