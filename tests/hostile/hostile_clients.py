"""Issue 12 §1 (resource limits) tried as a hostile client: figures, printed.

    python tests/hostile/hostile_clients.py [--only NAME ...]

Each part starts the real ``scim-desktop serve`` as a subprocess on 127.0.0.1 (a free port,
data in a temporary folder) and prints what the attack cost the server, read from /proc
(Linux only): RSS, CPU seconds, open sockets. Loopback only; about 2 minutes in all (the
slow-client part waits for the server's 60 s body and write deadlines).

Parts (``--only`` takes these names):

- ``uploads``: 40 connections each POST a 16 MB body (Content-Length: 16777216, no
  credentials), then 40 more declaring 1 MB (the --max-body limit) without credentials:
  RSS before, at its peak, after; the answers.
- ``descriptors``: a server with ``ulimit -n 256`` and 300 idle connections: CPU per 3 s
  while past the limit, stderr lines, whether a request succeeds during the flood and after.
- ``slow``: bodies trickling 1 byte every 5 s, an endless stream of chunked trailer fields,
  4 MB of empty lines, and 30 clients that pipeline large GETs and never read the answers:
  how long each connection lives, and the RSS of the last.
- ``filters``: runs ``tests/benchmarks/bench_filter_limits.py --users 3000`` (an over-long
  filter's refusal time, the largest allowed filter, another client's longest wait) and
  ``tests/hostile/patch_work.py`` (the costliest PATCH bodies) -- see :func:`part_filters`.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import socket
import subprocess
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

TOKEN = "hostile-clients-token"
AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()


class Served(Watched):
    """``scim-desktop serve`` in a subprocess, optionally with a low RLIMIT_NOFILE."""

    def __init__(self, folder: Path, *, nofile: int | None = None) -> None:
        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        args = ["serve", "--port", "0", "--db", str(folder / "data.json"), "--token", TOKEN]
        # --log jsonl: one JSON line per request on stdout; warnings on stderr
        super().__init__([*args, "--log", "jsonl"], "server", preexec_fn=limit)

    def request(self, head: bytes, timeout: float = 10) -> int:
        """Send one request on a new connection; its status (0: no answer)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.sendall(head)
                data = sock.recv(65536)
        except OSError:
            return 0
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


def get_users(port_host: str = "x", count: int = 1) -> bytes:
    return f"GET /scim/v2/Users?count={count} HTTP/1.1\r\nHost: {port_host}\r\n".encode() + AUTH


def status_of(data: bytes) -> int:
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


class RssPeak:
    """Samples a server's RSS every 20 ms in a thread until stopped; keeps the peak."""

    def __init__(self, server: Served) -> None:
        self.server = server
        self.peak = server.rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.server.rss_mb())
            except OSError:
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


# --- uploads --------------------------------------------------------------------------------------
def upload(port: int, length: int, answers: Counter[str]) -> None:
    """POST a body of ``length`` bytes without credentials, sending all of it (as a client
    that does not wait for an answer), then read the answer."""
    piece = b"a" * 65536
    head = (
        b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nContent-Type: application/scim+json\r\n"
        + f"Content-Length: {length}\r\n\r\n".encode()
    )
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head)
            sent = 0
            try:
                while sent < length:
                    sock.sendall(piece[: length - sent])
                    sent += len(piece)
            except OSError:
                pass  # the server ended the connection: it was not going to read the rest
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            answers[str(status_of(data) or "reset")] += 1
    except OSError as exc:
        answers[type(exc).__name__] += 1


def part_uploads(folder: Path) -> None:
    print("\n== Unauthenticated uploads (issue: 40 x 16 MB took RSS 63 -> 730 MB) ==")
    server = Served(folder / "uploads")
    try:
        for count, length in ((40, 16 * 1024 * 1024), (40, 1024 * 1024)):
            time.sleep(0.5)
            before = server.rss_mb()
            peak = RssPeak(server)
            answers: Counter[str] = Counter()
            t0 = time.monotonic()
            threads = [
                threading.Thread(target=upload, args=(server.port, length, answers))
                for _ in range(count)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            took = time.monotonic() - t0
            time.sleep(1.0)
            top = peak.stop()
            after = server.rss_mb()
            ok = server.request(get_users() + b"\r\n")
            print(
                f"{count} x POST Content-Length {length:>9}, no credentials: RSS {before:.0f} -> "
                f"peak {top:.0f} -> {after:.0f} MB (growth {top - before:.0f} MB); "
                f"answers {dict(answers)}; {took:.1f} s; next authenticated GET: {ok}"
            )
    finally:
        server.stop()


# --- descriptors ----------------------------------------------------------------------------------
def part_descriptors(folder: Path) -> None:
    print("\n== Past the descriptor limit (issue: ulimit -n 256, 300 idle connections: ==")
    print("==   5 CPU-s in 5 s and 118,645 log lines)                                      ==")
    for kind, opening in (
        ("idle", b""),
        ("holding half a request head", b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"),
    ):
        server = Served(folder / f"fds-{len(opening)}", nofile=256)
        try:
            flood_figures(server, kind, opening)
        finally:
            server.stop()


def flood_figures(server: Served, kind: str, opening: bytes) -> None:
    flood: list[socket.socket] = []
    try:
        time.sleep(0.5)
        lines_before = len(server.stderr)
        for _ in range(300):
            sock = socket.socket()
            sock.settimeout(5)
            try:
                sock.connect(("127.0.0.1", server.port))
                if opening:
                    sock.sendall(opening)
            except OSError:
                sock.close()
                continue
            flood.append(sock)
        time.sleep(0.5)
        cpu0, t0 = server.cpu_s(), time.monotonic()
        time.sleep(3.0)
        cpu = server.cpu_s() - cpu0
        elapsed = time.monotonic() - t0
        during = server.request(get_users() + b"\r\n")
        print(
            f"300 connections {kind}: server holds {server.sockets()} sockets; "
            f"CPU {cpu:.2f} s in {elapsed:.1f} s; stderr lines {len(server.stderr) - lines_before}"
        )
        print(f"  a new request during the flood: {during or 'no answer'}")
        for sock in flood:
            sock.close()
        flood.clear()
        time.sleep(0.5)
        after = server.request(get_users() + b"\r\n")
        print(f"  the next request after the flood closed: {after or 'no answer'}")
        for line in server.stderr[lines_before:][:6]:
            print("  stderr:", line[:160])
    finally:
        for sock in flood:
            sock.close()


# --- slow clients ---------------------------------------------------------------------------------
def lifetime(sock: socket.socket, started: float, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closed ``sock`` (reading what it sends), and what it sent."""
    sock.settimeout(0.2)
    data = b""
    while time.monotonic() - started < limit:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return time.monotonic() - started, data


def trickle(port: int, results: list[str], limit: float) -> None:
    """An authenticated POST whose 1000-byte body comes 1 byte every 5 s."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            + AUTH
            + b"Content-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n"
        )
        started = time.monotonic()
        sent = 0
        sock.settimeout(0.2)
        while time.monotonic() - started < limit:
            try:
                sock.send(b"{" if sent == 0 else b" ")
                sent += 1
            except OSError:
                break
            closed = False
            until = time.monotonic() + 5
            while time.monotonic() < until:
                try:
                    if sock.recv(65536) == b"":
                        closed = True
                        break
                except TimeoutError:
                    continue
                except OSError:
                    closed = True
                    break
            if closed:
                break
        results.append(f"{time.monotonic() - started:.0f} s ({sent} bytes sent)")


def endless_trailers(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            + AUTH
            + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
        )
        started = time.monotonic()
        sent = 0
        try:
            while sent < 64 * 1024 * 1024 and time.monotonic() - started < 30:
                sock.sendall(b"X-Trailer: " + b"t" * 500 + b"\r\n")
                sent += 513
        except OSError:
            pass
        took, data = lifetime(sock, started, 10)
        return f"answer {status_of(data) or 'none'} after {sent / 1024:.0f} KB, {took:.2f} s"


def empty_lines(server: Served) -> str:
    cpu0 = server.cpu_s()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        started = time.monotonic()
        with contextlib.suppress(OSError):
            sock.sendall(b"\r\n" * (2 * 1024 * 1024) + get_users() + b"\r\n")
        took, data = lifetime(sock, started, 10)
    time.sleep(0.3)
    return (
        f"answer {status_of(data) or 'none'} in {took:.2f} s, "
        f"server CPU {server.cpu_s() - cpu0:.2f} s"
    )


def read_all(port: int, request: bytes) -> bytes:
    """Send ``request``; everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(1 << 20):
            data += chunk
        return data


def make_users(port: int, count: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")
        for i in range(count):
            body = (
                '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
                f'"userName":"user{i}@example.com","displayName":"User {i} ' + "x" * 400 + '",'
                f'"name":{{"givenName":"User","familyName":"{i}"}},"active":true}}'
            ).encode()
            sock.sendall(
                b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
                + AUTH
                + b"Content-Type: application/scim+json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)


def part_slow(folder: Path) -> None:
    print("\n== Slow clients (issue: they bypassed the 120 s idle timeout; 30 pipelining ==")
    print("==   clients that never read stayed 150 s and RSS rose 139 -> 227 MB)          ==")
    server = Served(folder / "slow")
    readers = Served(folder / "readers")
    try:
        print("trailers without end:", endless_trailers(server.port))
        print("2 MB of empty lines before a request:", empty_lines(server))
        make_users(readers.port, 1000)
        page = len(read_all(readers.port, get_users(count=1000) + b"Connection: close\r\n\r\n"))
        # Both kinds at once: each waits for a 60 s deadline.
        results: list[str] = []
        trickles = [
            threading.Thread(target=trickle, args=(server.port, results, 100)) for _ in range(5)
        ]
        for t in trickles:
            t.start()
        baseline = readers.sockets()
        before = readers.rss_mb()
        peak = RssPeak(readers)
        pipeliners = []
        for _ in range(30):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", readers.port))
            sock.sendall((get_users(count=1000) + b"\r\n") * 20)
            pipeliners.append(sock)
        started = time.monotonic()
        open_at: dict[int, int] = {}
        while time.monotonic() - started < 100:
            held = readers.sockets() - baseline
            second = int(time.monotonic() - started)
            open_at.setdefault(second, held)
            if held <= 0 and not any(t.is_alive() for t in trickles):
                break
            time.sleep(0.25)
        gone = time.monotonic() - started
        top = peak.stop()
        for t in trickles:
            t.join()
        for sock in pipeliners:
            sock.close()
        print("5 bodies trickling 1 byte / 5 s, closed after:", ", ".join(results))
        marks = {s: n for s, n in open_at.items() if s % 10 == 0}
        print(
            f"30 clients pipelining 20 GETs of a {page / 1024:.0f} KB page, never reading: "
            f"connections open by second {marks}; all closed after {gone:.0f} s; "
            f"RSS {before:.0f} -> peak {top:.0f} -> {readers.rss_mb():.0f} MB"
        )
    finally:
        server.stop()
        readers.stop()


# --- filters --------------------------------------------------------------------------------------
def part_filters(folder: Path) -> None:
    """Issue 12 §1, "One filter stalls the server" (and its PATCH counterpart): with 3,000
    users, how long the refusal of an over-long filter takes (POST /Users/.search with 40,000
    ``displayName pr`` clauses), the largest allowed filter, and another client's longest wait
    meanwhile; then the costliest PATCH bodies. The scripts that measure them run here."""
    print("\n== Filters and PATCH work: refusal time, another client's wait ==", flush=True)
    here = Path(__file__).resolve().parent
    for script, args in (
        (here.parent / "benchmarks" / "bench_filter_limits.py", ["--users", "3000"]),
        (here / "patch_work.py", []),
    ):
        subprocess.run([sys.executable, str(script), *args], check=False, timeout=600)


PARTS: dict[str, Callable[[Path], None]] = {
    "uploads": part_uploads,
    "descriptors": part_descriptors,
    "slow": part_slow,
    "filters": part_filters,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(PARTS), help="run only these parts")
    args = parser.parse_args(argv)
    if not Path("/proc/self/status").exists():
        print("This script reads /proc (Linux only).")
        return 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        for name, part in PARTS.items():
            if not args.only or name in args.only:
                part(Path(tmp))
    print(f"\n({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
