"""The client-side tools against hostile servers and files: figures, printed.

    python tests/hostile/client_tools_hostile.py [--only NAME ...] [--big]

``scim-desktop check`` (okta_sim's client) against a raw-socket server in this process, and
``scim-desktop coverage`` against generated files under a temporary directory. Each attack runs
the tool in a child process, which prints its own peak RSS (VmHWM), so the hostile server's
memory is not counted. Loopback only; about two minutes (``--big``: a 1 GB JSON Lines file and
a 200 MB HAR too, about two more minutes and 2.5 GB of disk).

Parts (``--only`` takes these names):

- ``endless``: the SPEC suite's GET /Groups answered with a 200 whose body never ends
  (close-delimited; the rest 404): the client reads 4 MB (okta_sim.MAX_ANSWER), closes the
  connection and calls it no answer.
- ``declared``: the same with ``Content-Length: 2147483648`` declared.
- ``trickle``: that answer one byte every 0.2 s: the whole-request deadline (3 s here) ends it.
- ``walk``: ``totalResults`` 10**18, pages of 100 small users: the import walk's 1000-page cap.
- ``bomb``: ``totalResults`` 10**18, every page ~4 MB of ``{}`` (~20 times bigger parsed): the
  walk's 16 MB budget (okta_sim.MAX_IMPORT_BYTES); before it, a MemoryError past 6 GB.
- ``wide``: every page 100,000 users (1.6 MB) where 100 were asked for: the same budget.
- ``jsonl``: coverage over a 200 MB JSON Lines file (``--big``: and 1 GB), read a line at a
  time; ``har`` (``--big`` only): a 200 MB HAR, parsed whole; ``har-cap``: a 300 MB HAR is
  refused in one line, at once (coverage_files.MAX_HAR_BYTES); ``har-tiny``: a 60 MB HAR of 20
  million empty entries is refused at once too (MAX_HAR_CONTAINERS; it took 3.3 GB and 614 s).

Figures on the 2-core session machine (2026-12-05): endless and declared 29 MB peak; trickle
3.0 s; walk 1000 requests, 88 MB; bomb 5 requests, 634 MB; wide 10 requests, 384 MB; JSON
Lines 200 MB and 1 GB both 31 MB (8.9 s, 47 s; was 880 MB for 200 MB); HAR 200 MB 954 MB;
the tiny HAR 98 MB, 0.4 s (a HAR just under the cap, 3.9 million empty entries: 400 MB, 113 s).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.test_client_tools_hostile import HostileServer, Request, answer  # noqa: E402

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


# --- the hostile answers --------------------------------------------------------------------------
def endless(conn: socket.socket, request: Request) -> None:
    if "/Groups" not in request.target:  # SPEC 10 (list groups); the rest a 404
        conn.sendall(answer(404, b""))
        return
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\n\r\n[")
    _stream(conn)


def declared(conn: socket.socket, request: Request) -> None:
    if "/Groups" not in request.target:
        conn.sendall(answer(404, b""))
        return
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n\r\n[")
    _stream(conn)


def _stream(conn: socket.socket) -> None:
    chunk = b"{}," * 20000
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            conn.sendall(chunk)
    except OSError:
        pass


def trickle(conn: socket.socket, request: Request) -> None:
    if "/Groups" not in request.target:
        conn.sendall(answer(404, b""))
        return
    try:
        for byte in answer(200, b'{"Resources": []}'):
            conn.sendall(bytes([byte]))
            time.sleep(0.2)
    except OSError:
        pass


def _created(conn: socket.socket, request: Request) -> bool:
    """Creates succeed (so the lifecycle reaches the import walk); True when answered."""
    if request.method == "POST":
        body = json.loads(request.body)
        conn.sendall(answer(201, json.dumps({**body, "id": "u-" + os.urandom(4).hex()}).encode()))
        return True
    if request.method != "GET" or "startIndex=" not in request.target:
        conn.sendall(answer(404, b""))
        return True
    return False


def _page(start: int, users: list[dict[str, object]]) -> bytes:
    doc = {"schemas": [LIST], "totalResults": 10**18, "startIndex": start}
    return json.dumps({**doc, "itemsPerPage": len(users), "Resources": users}).encode()


def walk(conn: socket.socket, request: Request) -> None:
    if not _created(conn, request):
        start = int(request.target.split("startIndex=")[1].split("&")[0])
        users = [
            {"id": f"u{start + i}", "userName": f"u{start + i}@example.com"} for i in range(100)
        ]
        conn.sendall(answer(200, _page(start, users)))


_BOMB: dict[int, bytes] = {}


def bomb(conn: socket.socket, request: Request) -> None:
    if not _created(conn, request):
        start = int(request.target.split("startIndex=")[1].split("&")[0])
        junk = _BOMB.setdefault(0, b", ".join([b"{}"] * 1_000_000))
        head = _page(start, [{"id": f"u{start}", "userName": "x", "junk": []}])
        conn.sendall(answer(200, head.replace(b'"junk": []', b'"junk": [' + junk + b"]")))


def wide(conn: socket.socket, request: Request) -> None:
    if not _created(conn, request):
        users = [{"id": f"u{i}"} for i in range(100_000)]  # 1.6 MB
        body = json.dumps({"schemas": [LIST], "totalResults": 100_000, "Resources": users})
        conn.sendall(answer(200, body.encode()))


# --- the tool, in a child -----------------------------------------------------------------------
CHILD_CHECK = """
import sys, time
from scim_desktop.check.runner import CheckOptions, Runner, Unreachable
url, suites, timeout = sys.argv[1], tuple(sys.argv[2].split(",")), float(sys.argv[3])
started = time.monotonic()
try:
    report = Runner(CheckOptions(url, token="t0ken-secret", suites=suites, timeout=timeout)).run()
    walk = next((c for c in report.checks if c.name.startswith("import users")), None)
    said = f"{report.passed} passed, {report.failed} failed" + (
        f"; walk: {walk.status}, {len(walk.requests)} requests" if walk else "")
except Unreachable as exc:
    said = f"exit 2: {str(exc)[:110]}"
took = time.monotonic() - started
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) // 1024
print(f"{took:6.1f} s  peak RSS {peak:5d} MB  {said}")
"""


def run_check(
    name: str, handler: Callable[[socket.socket, Request], None], suites: str, timeout: float = 60
) -> None:
    server = HostileServer(handler)
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD_CHECK, server.base_url, suites, str(timeout)],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=ROOT,
        )
        line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
        print(f"check {name:<9} {line}")
    finally:
        server.close()


CHILD_COVERAGE = """
import io, sys, contextlib
from scim_desktop.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    rc = main(["coverage", sys.argv[1]])
said = (out.getvalue().strip().splitlines() or [""])[-1] or err.getvalue().strip()[:150]
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) // 1024
print(f"peak RSS {peak:5d} MB  exit {rc}: {said}")
"""


def run_coverage(name: str, path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CHILD_COVERAGE, str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    took = time.monotonic() - started
    line = done.stdout.strip() or done.stderr[-300:]
    print(f"coverage {name:<6} {path.stat().st_size // 2**20:5d} MB  {took:6.1f} s  {line}")


# --- the files ----------------------------------------------------------------------------------
def write_session(path: Path, megabytes: int, har: bool) -> None:
    from scim_desktop.okta_sim import user_body

    body = json.dumps(user_body("Jane", "Doe"))
    answer_body = json.dumps({**user_body("Jane", "Doe"), "id": "x" * 36})
    agent = "Okta SCIM Client 1.0.0"
    with path.open("w", encoding="utf-8") as f:
        written, first = 0, True
        if har:
            f.write('{"log": {"version": "1.2", "entries": [\n')
        while written < megabytes * 2**20:
            if har:
                rec: dict[str, object] = {
                    "startedDateTime": "2026-12-05T05:00:00+00:00",
                    "time": 2.0,
                    "request": {
                        "method": "POST",
                        "url": "http://127.0.0.1/scim/v2/Users",
                        "headers": [{"name": "User-Agent", "value": agent}],
                        "postData": {"text": body},
                    },
                    "response": {"status": 201, "headers": [], "content": {"text": answer_body}},
                }
            else:
                rec = {
                    "time": "2026-12-05T05:00:00+00:00",
                    "method": "POST",
                    "path": "/scim/v2/Users",
                    "status": 201,
                    "duration_ms": 2.0,
                    "request": {"headers": {"User-Agent": agent}, "body": body},
                    "response": {"headers": {}, "body": answer_body},
                }
            line = ("" if first or not har else ",\n") + json.dumps(rec) + ("" if har else "\n")
            f.write(line)
            written += len(line)
            first = False
        if har:
            f.write("]}}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--big", action="store_true")
    args = parser.parse_args()

    def wanted(name: str) -> bool:
        return args.only is None or name in args.only

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; loopback")
    if wanted("endless"):
        run_check("endless", endless, "spec")
    if wanted("declared"):
        run_check("declared", declared, "spec")
    if wanted("trickle"):
        run_check("trickle", trickle, "spec", timeout=3)
    if wanted("walk"):
        run_check("walk", walk, "crud")
    if wanted("bomb"):
        run_check("bomb", bomb, "crud")
    if wanted("wide"):
        run_check("wide", wide, "crud")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes = [200, 1024] if args.big else [200]
        if wanted("jsonl"):
            for mb in sizes:
                path = folder / f"s{mb}.jsonl"
                write_session(path, mb, har=False)
                run_coverage("jsonl", path)
                path.unlink()
        if wanted("har") and args.big:
            path = folder / "s200.har"
            write_session(path, 200, har=True)
            run_coverage("har", path)
            path.unlink()
        if wanted("har-tiny"):
            path = folder / "tiny.har"  # 60 MB: 20 million empty entries
            path.write_bytes(b'{"log":{"entries":[' + b",".join([b"{}"] * 20_000_000) + b"]}}")
            run_coverage("tiny", path)
            path.unlink()
        if wanted("har-cap"):
            path = folder / "s300.har"
            with path.open("wb") as f:  # sparse: the size is what the cap reads
                f.write(b'{\n "log": {"entries": [\n')
                f.truncate(300 * 2**20)
            run_coverage("harcap", path)


if __name__ == "__main__":
    threading.current_thread().name = "client_tools_hostile"
    main()
