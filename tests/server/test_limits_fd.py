"""Running out of file descriptors (issue 12 §1), each server in a subprocess with a low
RLIMIT_NOFILE: the connection limit below the descriptor limit, and the accept loop that
pauses (one log line) instead of spinning when descriptors run out anyway."""

from __future__ import annotations

import re
import resource
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TOKEN = "fd-test-token"
GET = f"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
PORT_RE = re.compile(r"(?:Base URL:\s+http://127\.0\.0\.1:|^PORT )(\d+)")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")


class Process:
    """A server subprocess with RLIMIT_NOFILE set to ``nofile`` (soft and hard)."""

    def __init__(self, args: list[str], nofile: int) -> None:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit,
        )
        self.lines: list[str] = []
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._pump, args=(stream,), daemon=True).start()
        self.port = int(self.wait_for(PORT_RE))

    def _pump(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := pattern.search(line):
                    return m.group(1)
            assert self.proc.poll() is None, self.lines
            time.sleep(0.02)
        raise AssertionError(f"{pattern.pattern!r} not printed: {self.lines}")

    def request(self, timeout: float = 10) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(GET)
            return sock.recv(65536)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for p in started:
        p.stop()


def flood(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        socks.append(sock)
    return socks


def test_serve_past_its_descriptor_limit_keeps_answering(
    processes: list[Process], tmp_path: Path
) -> None:
    """``ulimit -n 128`` and 200 idle connections: the server stays under its connection limit
    (idle connections make room for new ones), says so once, and answers throughout."""
    server = Process(
        ["-m", "scim_desktop", "serve", "--port", "0", "--db", str(tmp_path / "d.json"),
         "--token", TOKEN, "--log", "jsonl"],
        nofile=128,
    )  # fmt: skip
    processes.append(server)
    socks = flood(server.port, 200)
    try:
        server.wait_for(re.compile(r"(\d+) connections open, the limit"))
        assert server.request().startswith(b"HTTP/1.1 200 ")  # during the flood
    finally:
        for sock in socks:
            sock.close()
    assert server.request().startswith(b"HTTP/1.1 200 ")  # and after it
    text = "\n".join(server.lines)
    assert "Too many open files" not in text and "Traceback" not in text
    assert text.count("connections open, the limit") == 1


SERVER = textwrap.dedent(
    """
    import asyncio, logging, socket
    from scim_desktop.server.http1 import HttpServer

    class Answer:
        def handle(self, conn, request):
            conn.send(200, {"Content-Length": "2"}, b"ok")
        def connection_closed(self, conn):
            pass
        def refused(self, conn, refusal):
            pass

    async def main():
        logging.basicConfig(level=logging.INFO)
        # No connection limit: descriptors run out first.
        server = HttpServer(Answer(), max_body_size=1024, max_connections=100_000)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        server.add_sockets([sock])
        print("PORT", sock.getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def test_accepting_pauses_when_descriptors_run_out(processes: list[Process]) -> None:
    """EMFILE used to make Tornado's accept handler raise on every turn of the loop (a busy
    loop and a log line each time): now accepting pauses, with one line per episode, and
    resumes by itself once connections close."""
    server = Process(["-c", SERVER], nofile=64)
    processes.append(server)
    socks = flood(server.port, 120)
    try:
        server.wait_for(re.compile(r"(Out of file descriptors)"))
        time.sleep(1.0)  # several pauses long: each retry must stay silent
        during = list(server.lines)
    finally:
        for sock in socks:
            sock.close()
    assert sum("Out of file descriptors" in line for line in during) == 1
    assert len(during) == 2  # PORT, and that line
    assert server.request().startswith(b"HTTP/1.1 200 ")
    server.wait_for(re.compile(r"(Accepting connections again)"))
    assert "Traceback" not in "\n".join(server.lines)


def test_start_up_raises_the_soft_descriptor_limit_to_the_hard_one() -> None:
    code = (
        "import resource\n"
        "from scim_desktop.server.runner import raise_fd_limit\n"
        "raise_fd_limit()\n"
        "print(*resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 256))

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=limit, timeout=60
    )
    assert out.stdout.split() == ["256", "256"], out.stderr
