"""The OAuth endpoints, which skip SCIM authentication, tried with big unauthenticated bodies:
figures, printed.

    python tests/hostile/oauth_uploads.py [--connections 40] [--size 16000000]

Starts ``scim-desktop serve --oauth --max-body 16777216`` (plain http, 127.0.0.1, data in a
temporary folder), opens ``--connections`` connections that each POST ``/oauth/token`` with
a ``--size`` byte form body, sent whole but its last byte, and prints the server's RSS
before, while they are held, and after they close, with the answers. Before ``MAX_OAUTH_BODY``
was applied on the head, 40 such connections held RSS 41 -> 652 MB (Linux, /proc).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

BASE_URL_RE = re.compile(r"Base URL:\s+http://127\.0\.0\.1:(\d+)")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--size", type=int, default=16_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "scim_desktop", "serve", "--port", "0", "--oauth"),
                *("--max-body", "16777216", "--db", str(Path(folder) / "data.json")),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            port = 0
            deadline = time.monotonic() + 30
            assert proc.stdout is not None
            while not port and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if m := BASE_URL_RE.search(line):
                    port = int(m.group(1))
            if not port:
                raise SystemExit("the server did not start")
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            time.sleep(0.5)
            before = rss_mb(proc.pid)
            socks: list[socket.socket] = []
            answers: Counter[str] = Counter()
            lock = threading.Lock()
            payload = b"a" * (args.size - 1)

            def one() -> None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                with lock:
                    socks.append(sock)
                sock.sendall(
                    b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    + f"Content-Length: {args.size}\r\n\r\n".encode()
                )
                sock.settimeout(0.5)
                # All but the last byte (an OSError: the server answered and closed unread).
                with contextlib.suppress(OSError):
                    sock.sendall(payload)
                with contextlib.suppress(OSError):
                    data = sock.recv(100)
                    with lock:
                        answers[data.split(b"\r\n", 1)[0].decode() or "closed"] += 1

            threads = [threading.Thread(target=one) for _ in range(args.connections)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            time.sleep(2)
            held = rss_mb(proc.pid)
            for sock in socks:
                sock.close()
            time.sleep(2)
            after = rss_mb(proc.pid)
            print(
                f"{args.connections} x POST /oauth/token of {args.size:,} bytes, no credentials:"
                f" RSS {before:.0f} MB -> {held:.0f} MB held -> {after:.0f} MB after close"
            )
            print("answers:", dict(answers) or "none (the bodies are being read)")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
