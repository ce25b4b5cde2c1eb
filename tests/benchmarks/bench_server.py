"""HTTP benchmark of the headless server: prints figures, asserts nothing (issue 6).

    python tests/benchmarks/bench_server.py [--users N] [--seconds S] [--concurrency C]
                                            [--compare] [--scale] [--gzip]
                                            [--proxy [--proxy-upstream scim2|ours|both]]

Starts ``python -m scim_desktop serve`` on 127.0.0.1 (a free port, a temporary database) and
drives it with C concurrent keep-alive HTTP/1.1 clients (asyncio protocols in this process;
the server is another process). Workloads, each for S seconds (bounded in count too):

- create: durable POSTs of Okta-like users (every answer waits for its fsync);
- filter: ``userName eq "..."`` (Okta's pre-create check) with N users stored;
- page: ``startIndex=random&count=100`` with N users stored;
- import walk: one client walks ``startIndex`` 1, 101, ... ``count=100`` like Okta's import,
  and the whole walk is timed (repeated while time is left);
- PATCH deactivate: Okta's path-less ``replace`` with ``{"active": false}``;
- GET by id.

Then (issue 13) a catalog of ``--catalog-values`` values (10,000 by default) in one License
type, served by ``--catalog FILE``: pages of 100 at random ``startIndex`` and Okta's
entitlement import walk over ``/Licenses``, on rows named "ours: values", to compare
with the users' page and walk rows above.

``--compare`` runs the same workloads in the same run against scim2-server (its ASGI app over
its in-memory storage under uvicorn: one process, the asyncio loop, keep-alive, and by default
uvicorn's pure-Python h11 parser, as Tornado's is pure Python; ``--scim2-http httptools`` for
its C parser) and GET by id against a bare Tornado handler returning a fixed small JSON body
(this stack's ceiling), then prints the ratios the issue sets as targets. The servers run one
after another, never together. Needs the ``bench`` extra.

``--scale`` also runs ours at 100,000 users: create at 1,000 vs 100,000 stored, filter / page
/ GET vs the main run, RSS, the start-up time of the 100,000-user file (time to listening
minus that of an empty file), and fold stalls: the folder is polled every 5 ms, a fold lasting
from FOLD_LEAD_S before its first visible trace (a second journal segment or the temporary
snapshot file) until the old segment is gone; the stall is the longest request (at
concurrency C) that overlapped a fold, shown beside the longest one that did not.

Latency is from writing a request to reading its whole answer, queueing in the server
included. The cli / srv / other columns say how busy this client, the server and everything
else on the 2 cores were: other processes skew the figures (a warning says so), while the
server CPU per request ("srv us/req", and the "by CPU" ratios) is much less sensitive to them.
No Accept-Encoding is sent unless ``--gzip`` (Okta sends gzip,deflate; scim2-server under
uvicorn does not compress). Loopback only; every server it starts is stopped on exit, also on
Ctrl+C, SIGTERM, errors, the overall time limit (``--max-minutes``) or, on Linux, this
process dying.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import queue
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[2]
SERVERS_PY = Path(__file__).resolve().with_name("_servers.py")
HOST = "127.0.0.1"
TOKEN = "bench-token-0123456789"
MAX_REQUESTS = 2_000_000  # per workload, on top of its time limit
FOLD_POLL_S = 0.005
#: A fold snapshots and builds its document before any file shows it (and a stalled IOLoop
#: writes no new journal segment): its window is taken to open this much earlier.
FOLD_LEAD_S = 0.2

# --- requests ---------------------------------------------------------------------------------

#: Okta's create body (developer.okta.com, "SCIM 2.0 protocol reference": Create the user).
CREATE_TEMPLATE = (
    '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
    '"userName":"%(u)s","name":{"givenName":"Given%(i)d","familyName":"Family%(i)d"},'
    '"emails":[{"primary":true,"value":"%(u)s","type":"work"}],'
    '"displayName":"Given%(i)d Family%(i)d","locale":"en-US","externalId":"00u%(i)017d",'
    '"groups":[],"password":"1mz050nq%(i)d","active":true}'
)
#: Okta's deactivate: PATCH with a path-less replace of {"active": false}.
DEACTIVATE_BODY = (
    b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
    b'"Operations":[{"op":"replace","value":{"active":false}}]}'
)
_ID_RE = re.compile(rb'"id":\s*"([^"]+)"')
_TOTAL_RE = re.compile(rb'"totalResults":\s*(\d+)')
_PER_PAGE_RE = re.compile(rb'"itemsPerPage":\s*(\d+)')


class Requests:
    """Pre-rendered HTTP/1.1 requests for one server (Okta's headers, keep-alive)."""

    def __init__(self, port: int, base_path: str, gzip: bool) -> None:
        self.base = base_path.rstrip("/")
        enc = "Accept-Encoding: gzip,deflate\r\n" if gzip else ""
        self.headers = (
            f"Host: {HOST}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"User-Agent: Okta SCIM Client 1.0.0\r\nAccept: application/scim+json\r\n"
            f"Accept-Charset: utf-8\r\n{enc}"
        ).encode()

    def get(self, path: str) -> bytes:
        return b"GET " + (self.base + path).encode() + b" HTTP/1.1\r\n" + self.headers + b"\r\n"

    def with_body(self, method: str, path: str, body: bytes) -> bytes:
        return (
            f"{method} {self.base}{path} HTTP/1.1\r\n".encode()
            + self.headers
            + b"Content-Type: application/scim+json; charset=utf-8\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def create(self, user_name: str, i: int) -> bytes:
        body = (CREATE_TEMPLATE % {"u": user_name, "i": i}).encode()
        return self.with_body("POST", "/Users", body)

    def filter_user_name(self, user_name: str) -> bytes:
        f = quote(f'userName eq "{user_name}"', safe="")
        return self.get(f"/Users?filter={f}&startIndex=1&count=100")

    def page(self, start: int, count: int = 100) -> bytes:
        return self.get(f"/Users?startIndex={start}&count={count}")

    def by_id(self, rid: str) -> bytes:
        return self.get(f"/Users/{rid}")

    def deactivate(self, rid: str) -> bytes:
        return self.with_body("PATCH", f"/Users/{rid}", DEACTIVATE_BODY)


# --- a lean keep-alive HTTP/1.1 client ------------------------------------------------------------


class Conn(asyncio.Protocol):
    """One keep-alive connection with one request in flight; parses just enough HTTP/1.1
    (Content-Length or chunked bodies) to find where each response ends."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = exc or ConnectionResetError("connection closed by the server")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.lost)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None or self.waiter.done():
            return
        parsed = _parse_response(self.buf)
        if parsed is not None:
            status, body, gz, used = parsed
            del self.buf[:used]
            self.waiter.set_result((status, body, gz))

    async def request(self, raw: bytes) -> tuple[int, bytes, bool]:
        if self.lost is not None:
            raise self.lost
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _parse_response(buf: bytearray) -> tuple[int, bytes, bool, int] | None:
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    gz = b"\r\ncontent-encoding: gzip" in head
    start = end + 4
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        j = head.find(b"\r\n", i + 2)
        total = start + int(head[i + 17 : j if j >= 0 else len(head)])
        if len(buf) < total:
            return None
        return status, bytes(buf[start:total]), gz, total
    if b"\r\ntransfer-encoding: chunked" in head:
        pos, parts = start, []
        while True:
            k = buf.find(b"\r\n", pos)
            if k < 0:
                return None
            size = int(bytes(buf[pos:k]).split(b";")[0], 16)
            if size == 0:
                if len(buf) < k + 4:
                    return None
                return status, b"".join(parts), gz, k + 4  # no trailers are sent here
            if len(buf) < k + 2 + size + 2:
                return None
            parts.append(bytes(buf[k + 2 : k + 2 + size]))
            pos = k + 2 + size + 2
    return status, b"", gz, start  # 204 / 304 / no body


def plain(body: bytes, gz: bool) -> bytes:
    return zlib.decompress(body, 16 + zlib.MAX_WBITS) if gz else body


async def open_conns(port: int, n: int) -> list[Conn]:
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(n):
        _, proto = await loop.create_connection(Conn, HOST, port)
        conns.append(proto)
    return conns


# --- servers as subprocesses ------------------------------------------------------------------


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes a child get SIGTERM when this process dies (Linux), so no
    server outlives the benchmark even if it is killed."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return preexec


_PREEXEC = _die_with_parent()
_RUNNING: list[ServerProc] = []


class ServerProc:
    """A server process: started, waited for until it listens, always stopped."""

    def __init__(self, name: str, cmd: list[str], ready_re: str, ready_stream: str) -> None:
        self.name = name
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        env = dict(os.environ, PYTHONPATH=path)
        env.pop("PYTHONSTARTUP", None)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if ready_stream == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_PREEXEC,
        )
        _RUNNING.append(self)
        self.tail: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        watched = self.proc.stdout if ready_stream == "stdout" else self.proc.stderr
        for stream in {self.proc.stdout, self.proc.stderr} - {None}:
            threading.Thread(
                target=self._pump, args=(stream, stream is watched), daemon=True
            ).start()
        self._ready_re = re.compile(ready_re)
        self.port = 0
        self.startup_seconds = 0.0

    def _pump(self, stream: object, watched: bool) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            line = raw.decode(errors="replace").rstrip()
            self.tail = [*self.tail[-40:], line]
            if watched:
                self._lines.put(line)
        if watched:
            self._lines.put(None)

    def wait_ready(self, timeout: float) -> ServerProc:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or time.monotonic() > deadline:
                self.stop()
                tail = "\n".join(self.tail[-15:])
                raise RuntimeError(f"{self.name} did not start:\n{tail}")
            m = self._ready_re.search(line)
            if m:
                self.port = int(m.group(1))
                self.startup_seconds = time.perf_counter() - self.started
                return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the server process (all its threads), from /proc."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def memory_mb(self) -> tuple[float, float] | None:
        """(VmRSS, VmHWM) in MB: resident now and peak resident."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        vals = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
        return int(vals.get("VmRSS", 0)) / 1024, int(vals.get("VmHWM", 0)) / 1024

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM (a clean stop: ours folds its journal), SIGKILL if it hangs; returns the
        seconds the stop took."""
        t0 = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self in _RUNNING:
            _RUNNING.remove(self)
        return time.perf_counter() - t0


def stop_all() -> None:
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop(10)


#: The request log format the server runs with (--log-format): "text" is the command's
#: default; "jsonl" also serializes every request and response body.
LOG_FORMAT = "text"


def start_ours(db: Path, timeout: float = 120.0, extra: Sequence[str] = ()) -> ServerProc:
    cmd = [sys.executable, "-m", "scim_desktop", "serve", "--host", HOST, "--port", "0"]
    cmd += ["--db", str(db), "--token", TOKEN, "--log", LOG_FORMAT, *extra]
    # The request log goes to /dev/null: written, as in headless use, not kept. With jsonl
    # the banner is on stderr, with text on stdout.
    stream = "stderr" if LOG_FORMAT == "jsonl" else "stdout"
    return ServerProc("scim-desktop", cmd, r"Base URL:\s+http://[^:]+:(\d+)/", stream).wait_ready(
        timeout
    )


def start_helper(which: str, *extra: str) -> ServerProc:
    cmd = [sys.executable, str(SERVERS_PY), which, *extra]
    return ServerProc(which, cmd, r"^PORT (\d+)$", "stdout").wait_ready(60)


# --- fold monitor (ours only) -----------------------------------------------------------------


class FoldMonitor:
    """Polls the database folder: a fold is running while a temporary snapshot file exists or
    more than one journal segment does (a fold rotates the journal, writes the snapshot, then
    deletes the old segments). Records those windows and counts finished folds (the database
    file's mtime changing)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.windows: list[tuple[float, float]] = []
        self.folds = 0
        self._task: asyncio.Task[None] | None = None

    def _state(self) -> tuple[bool, int]:
        folding, segments, mtime = False, 0, 0
        prefix = self.db.name + ".journal."
        with os.scandir(self.db.parent) as it:
            for entry in it:
                name = entry.name
                if name.startswith(prefix):
                    segments += 1
                elif name.endswith(".tmp") and name.startswith("." + self.db.name):
                    folding = True
                elif name == self.db.name:
                    mtime = entry.stat().st_mtime_ns
        return folding or segments > 1, mtime

    async def _run(self) -> None:
        start: float | None = None
        _, last_mtime = self._state()
        while True:
            folding, mtime = self._state()
            now = time.perf_counter()
            if folding and start is None:
                start = now - FOLD_POLL_S
            elif not folding and start is not None:
                self.windows.append((start, now))
                start = None
            if mtime != last_mtime:
                self.folds += 1
                last_mtime = mtime
            try:
                await asyncio.sleep(FOLD_POLL_S)
            except asyncio.CancelledError:
                if start is not None:
                    self.windows.append((start, time.perf_counter()))
                raise

    def start(self) -> None:
        self.windows, self.folds = [], 0
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # wait() does not raise the task's CancelledError, so a cancellation of the
            # caller (Ctrl+C) is never swallowed here.
            await asyncio.wait([self._task])
            self._task = None


def _system_busy() -> float | None:
    """CPU seconds all cores spent busy since boot (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat", "rb") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Meter:
    """CPU used per wall second by this client, by the server, and by everything else on the
    machine (other processes compete for the same 2 cores and skew the figures)."""

    def __init__(self, server: ServerProc) -> None:
        self.server = server
        self.t0 = time.perf_counter()
        self.cpu0 = time.process_time()
        self.srv0 = server.cpu_seconds()
        self.sys0 = _system_busy()

    def finish(self, res: Result) -> None:
        res.seconds = wall = time.perf_counter() - self.t0
        res.client_cpu = (time.process_time() - self.cpu0) / wall
        srv1, sys1 = self.server.cpu_seconds(), _system_busy()
        if self.srv0 is not None and srv1 is not None:
            res.server_cpu = (srv1 - self.srv0) / wall
        if self.sys0 is not None and sys1 is not None and res.server_cpu is not None:
            res.other_cpu = max(0.0, (sys1 - self.sys0) / wall - res.client_cpu - res.server_cpu)


# --- workloads --------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    workload: str
    users: int
    concurrency: int
    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)
    client_cpu: float = 0.0
    server_cpu: float | None = None
    other_cpu: float | None = None
    note: str = ""
    walk_seconds: list[float] = field(default_factory=list)
    fold_max_ms: float | None = None
    nofold_max_ms: float | None = None
    fold_longest_ms: float = 0.0
    folds: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000

    @property
    def cpu_us(self) -> float | None:
        """Server CPU time per request (all its threads), in microseconds: the cost of a
        request, much less sensitive than req/s to other processes on the machine."""
        if self.server_cpu is None or not self.requests:
            return None
        return self.server_cpu * self.seconds / self.requests * 1e6

    @property
    def max_ms(self) -> float:
        return max(self.latencies, default=float("nan")) * 1000


@dataclass
class Target:
    """A running server and what the harness knows of its users."""

    name: str
    proc: ServerProc
    req: Requests
    users: list[tuple[str, str]] = field(default_factory=list)  # (id, userName)
    next_i: int = 1
    prefix: str = "u"
    db: Path | None = None
    monitor: FoldMonitor | None = None


async def drive(
    target: Target,
    workload: str,
    concurrency: int,
    seconds: float,
    make: Callable[[int], bytes],
    ok: Sequence[int] = (200,),
    on_ok: Callable[[int, int, bytes, bool], None] | None = None,
    count: int | None = None,
    keep_spans: bool = False,
) -> Result:
    """Run ``make(k)`` requests (k = 0, 1, ...) on ``concurrency`` connections until
    ``seconds`` pass or ``count`` (at most MAX_REQUESTS) were sent."""
    limit = min(count if count is not None else MAX_REQUESTS, MAX_REQUESTS)
    res = Result(target.name, workload, len(target.users), concurrency)
    conns = await open_conns(target.proc.port, concurrency)
    counter = iter(range(limit))
    lat = res.latencies
    spans = res.spans
    perf = time.perf_counter
    deadline = perf() + seconds
    errors: list[str] = []

    async def worker(conn: Conn) -> None:
        for k in counter:
            raw = make(k)
            t0 = perf()
            status, body, gz = await conn.request(raw)
            t1 = perf()
            lat.append(t1 - t0)
            if keep_spans:
                spans.append((t0, t1))
            if status in ok:
                if on_ok is not None:
                    on_ok(k, status, body, gz)
            else:
                res.errors += 1
                if len(errors) < 3:
                    errors.append(f"{status} {plain(body, gz)[:200]!r}")
            if t1 >= deadline:
                return

    monitor = target.monitor
    if monitor is not None:
        monitor.start()
    meter = Meter(target.proc)
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        meter.finish(res)
        for c in conns:
            c.close()
        if monitor is not None:
            await monitor.stop()
    res.requests = len(lat)
    if monitor is not None:
        res.folds = monitor.folds
        if keep_spans:
            res.fold_max_ms, res.nofold_max_ms = fold_overlap_ms(monitor.windows, res.spans)
            res.fold_longest_ms = max((b - a for a, b in monitor.windows), default=0.0) * 1000
    if errors:
        res.note = "errors: " + "; ".join(errors)
    return res


def fold_overlap_ms(
    windows: list[tuple[float, float]], spans: list[tuple[float, float]]
) -> tuple[float, float]:
    """(longest request that overlapped a fold window, longest one that did not), in ms.
    A window counts from FOLD_LEAD_S before the fold became visible in the folder."""
    during = outside = 0.0
    for t0, t1 in spans:
        if any(t0 < b and t1 > a - FOLD_LEAD_S for a, b in windows):
            during = max(during, t1 - t0)
        else:
            outside = max(outside, t1 - t0)
    return during * 1000, outside * 1000


def _created(target: Target, names: dict[int, str]) -> Callable[[int, int, bytes, bool], None]:
    def on_ok(k: int, status: int, body: bytes, gz: bool) -> None:
        m = _ID_RE.search(plain(body, gz))
        if m:
            target.users.append((m.group(1).decode(), names.pop(k)))

    return on_ok


async def create(
    target: Target,
    concurrency: int,
    seconds: float,
    count: int | None = None,
    label: str = "create",
    keep_spans: bool = False,
) -> Result:
    names: dict[int, str] = {}
    base = target.next_i
    target.next_i += count if count is not None else MAX_REQUESTS

    def make(k: int) -> bytes:
        i = base + k
        names[k] = name = f"{target.prefix}{i}@example.com"
        return target.req.create(name, i)

    users_before = len(target.users)
    res = await drive(
        target,
        label,
        concurrency,
        seconds,
        make,
        ok=(201,),
        on_ok=_created(target, names),
        count=count,
        keep_spans=keep_spans,
    )
    res.users = users_before
    return res


async def seed(target: Target, total: int, concurrency: int) -> Result | None:
    """Create users over HTTP until ``total`` are stored (not a measured workload)."""
    missing = total - len(target.users)
    if missing <= 0:
        return None
    res = await create(
        target, max(concurrency, 16), 3600, count=missing, label=f"seed to {total:,}"
    )
    if len(target.users) < total:
        raise RuntimeError(f"seeding {target.name} stopped at {len(target.users)} users")
    return res


def shuffled(target: Target, seed: int) -> list[tuple[str, str]]:
    users = list(target.users)
    random.Random(seed).shuffle(users)
    return users


async def filter_eq(target: Target, concurrency: int, seconds: float) -> Result:
    users = shuffled(target, 1)
    reqs = [target.req.filter_user_name(name) for _, name in users[:5000]]
    return await drive(
        target, "filter userName eq", concurrency, seconds, lambda k: reqs[k % len(reqs)]
    )


async def pages(target: Target, concurrency: int, seconds: float) -> Result:
    n = len(target.users)
    rng = random.Random(2)
    reqs = [target.req.page(rng.randint(1, max(1, n - 99))) for _ in range(5000)]
    return await drive(target, "page of 100", concurrency, seconds, lambda k: reqs[k % len(reqs)])


async def get_by_id(target: Target, concurrency: int, seconds: float) -> Result:
    users = shuffled(target, 3)
    reqs = [target.req.by_id(rid) for rid, _ in users[:20000]]
    return await drive(target, "GET by id", concurrency, seconds, lambda k: reqs[k % len(reqs)])


async def deactivate(target: Target, concurrency: int, seconds: float) -> Result:
    users = shuffled(target, 4)  # each user once while the run is shorter than the list

    def make(k: int) -> bytes:
        return target.req.deactivate(users[k % len(users)][0])

    # 200 with the resource (ours, what Okta checks) or 204 (allowed by RFC 7644 §3.5.2).
    return await drive(target, "PATCH deactivate", concurrency, seconds, make, ok=(200, 204))


async def import_walk(target: Target, seconds: float, cap: float, max_walks: int = 10) -> Result:
    """Okta's import: one client, pages of 100 from startIndex 1 until totalResults; timed
    whole. Repeated while ``seconds`` last (at least once); one walk stops after ``cap`` s."""
    res = Result(target.name, "import walk (pages)", len(target.users), 1)
    (conn,) = await open_conns(target.proc.port, 1)
    perf = time.perf_counter
    meter, t_all = Meter(target.proc), perf()
    try:
        while len(res.walk_seconds) < max_walks:
            w0 = perf()
            start, total, seen, pages_done = 1, None, 0, 0
            while total is None or start <= total:
                t0 = perf()
                status, body, gz = await conn.request(target.req.page(start))
                t1 = perf()
                res.latencies.append(t1 - t0)
                pages_done += 1
                if status != 200:
                    res.errors += 1
                    res.note = f"errors: {status} {plain(body, gz)[:200]!r}"
                    break
                text = plain(body, gz)
                if total is None:
                    m = _TOTAL_RE.search(text)
                    total = int(m.group(1)) if m else 0
                m = _PER_PAGE_RE.search(text)
                seen += int(m.group(1)) if m else 0
                start += 100
                if t1 - w0 > cap:
                    break
            took = perf() - w0
            if total is not None and start <= total:  # stopped at the cap: project
                projected = took * ((total + 99) // 100) / pages_done
                res.note = f"walk stopped at the {cap:.0f} s cap after {pages_done} pages"
                res.walk_seconds.append(projected)
                break
            res.walk_seconds.append(took)
            if total is not None and seen != total:
                res.note = f"walk saw {seen} of {total} users"
            if perf() - t_all >= seconds:
                break
    finally:
        conn.close()
    meter.finish(res)
    res.requests = len(res.latencies)
    return res


# --- runs -------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def run_suite(target: Target, args: argparse.Namespace, n: int) -> list[Result]:
    """create (from empty), seed to n, then filter / page / walk / PATCH / GET."""
    s, c = args.seconds, args.concurrency
    out = []
    log(f"{target.name}: create for {s:g} s")
    out.append(await create(target, c, s, keep_spans=target.monitor is not None))
    log(f"{target.name}: seeding to {n:,} users over HTTP")
    t0 = time.perf_counter()
    seeded = await seed(target, n, c)
    if seeded is not None:
        log(f"{target.name}: seeded {seeded.requests:,} in {time.perf_counter() - t0:.1f} s")
    for fn in (filter_eq, pages):
        log(f"{target.name}: {fn.__name__}")
        out.append(await fn(target, c, s))
    log(f"{target.name}: import walk")
    out.append(await import_walk(target, s, args.walk_cap))
    for fn in (deactivate, get_by_id):
        log(f"{target.name}: {fn.__name__}")
        out.append(await fn(target, c, s))
    return out


async def run_ours(args: argparse.Namespace, tmp: Path) -> list[Result]:
    db = tmp / "ours" / "scim.json"
    db.parent.mkdir()
    proc = start_ours(db)
    # No fold monitor here: the fold targets are measured by --scale, and polling the folder
    # every 5 ms in this client would load only our side of the comparison.
    target = Target("scim-desktop", proc, Requests(proc.port, "/scim/v2", args.gzip), db=db)
    try:
        results = await run_suite(target, args, args.users)
        mem = proc.memory_mb()
        if mem:
            results[-1].note = f"RSS {mem[0]:.0f} MB (peak {mem[1]:.0f} MB)"
    finally:
        proc.stop()
    return results


class CatalogRequests(Requests):
    """Pages of a catalog endpoint instead of /Users (Okta's entitlement import)."""

    endpoint = "/Licenses"

    def page(self, start: int, count: int = 100) -> bytes:
        return self.get(f"{self.endpoint}?startIndex={start}&count={count}")


def write_catalog(path: Path, values: int) -> None:
    """A catalog file with one License type of ``values`` values."""
    import json

    resources = [
        {"id": f"lic-{i:06d}", "displayName": f"Seat {i:06d}", "type": "License"}
        for i in range(values)
    ]
    doc = {
        "resourceTypes": [
            {
                "id": "License",
                "name": "License",
                "endpoint": CatalogRequests.endpoint,
                "description": "Seats",
                "schema": "urn:okta:scim:schemas:core:1.0:Entitlement",
                "resources": resources,
            }
        ]
    }
    path.write_text(json.dumps(doc))


async def run_catalog(args: argparse.Namespace, tmp: Path) -> list[Result]:
    """Okta's entitlement import over a large catalog: random pages of 100 and whole walks."""
    folder = tmp / "catalog"
    folder.mkdir()
    catalog = folder / "catalog.json"
    write_catalog(catalog, args.catalog_values)
    proc = start_ours(folder / "scim.json", extra=("--catalog", str(catalog)))
    # "users" is the number of values on these rows.
    target = Target("ours: values", proc, CatalogRequests(proc.port, "/scim/v2", args.gzip))
    # pages() and import_walk() size their requests from the number of entries.
    target.users = [(f"lic-{i:06d}", "") for i in range(args.catalog_values)]
    try:
        log(f"{target.name}: pages of {args.catalog_values:,} values")
        results = [await pages(target, args.concurrency, args.seconds)]
        log(f"{target.name}: import walk")
        results.append(await import_walk(target, args.seconds, args.walk_cap))
    finally:
        proc.stop()
    return results


async def run_scim2(args: argparse.Namespace) -> list[Result]:
    proc = start_helper("scim2", "--token", TOKEN, "--http", args.scim2_http)
    target = Target("scim2-server", proc, Requests(proc.port, "/v2", args.gzip))
    try:
        return await run_suite(target, args, args.users)
    finally:
        proc.stop()


async def run_bare(args: argparse.Namespace, ids: list[tuple[str, str]]) -> list[Result]:
    proc = start_helper("bare")
    target = Target("bare Tornado", proc, Requests(proc.port, "/scim/v2", args.gzip))
    target.users = ids or [(f"{i:032x}", "") for i in range(1000)]
    try:
        log("bare Tornado: GET by id")
        return [await get_by_id(target, args.concurrency, args.seconds)]
    finally:
        proc.stop()


async def run_scale(args: argparse.Namespace, tmp: Path) -> tuple[list[Result], list[str]]:
    """Ours at 100,000 users: create at 1,000 vs 100,000, filter / page / GET, fold stalls,
    start-up time of the 100,000-user file, RSS."""
    big = args.scale_users
    s, c = args.seconds, args.concurrency
    db = tmp / "scale" / "scim.json"
    db.parent.mkdir()
    notes: list[str] = []
    empty = start_ours(tmp / "scale-empty.json")
    empty_start = empty.startup_seconds
    empty.stop()
    proc = start_ours(db)
    target = Target("scim-desktop", proc, Requests(proc.port, "/scim/v2", args.gzip), db=db)
    target.monitor = FoldMonitor(db)
    results: list[Result] = []
    try:
        log(f"scale: seeding to 1,000 users, create for {s:g} s")
        await seed(target, 1000, c)
        results.append(await create(target, c, s, label="create @1k", keep_spans=True))
        log(f"scale: seeding to {big:,} users over HTTP (folds happen meanwhile)")
        seeded = await create(
            target,
            c,
            3600,
            count=big - len(target.users),
            label=f"create (seed to {big // 1000}k)",
            keep_spans=True,
        )
        results.append(seeded)
        results.append(await create(target, c, s, label=f"create @{big // 1000}k", keep_spans=True))
        log("scale: waiting for the idle fold before the read workloads")
        await wait_for_fold(target, timeout=30)
        for fn in (filter_eq, pages, get_by_id):
            log(f"scale: {fn.__name__}")
            results.append(await fn(target, c, s))
        mem = proc.memory_mb()
        if mem:
            notes.append(f"RSS after the workloads: {mem[0]:.0f} MB (peak {mem[1]:.0f} MB)")
    finally:
        stop_s = proc.stop(60)
    notes.append(f"clean stop (final fold) of {len(target.users):,} users: {stop_s:.2f} s")
    size = db.stat().st_size / 1e6
    again = start_ours(db)
    try:
        mem = again.memory_mb()
        load = again.startup_seconds - empty_start
        notes.append(
            f"start-up with {len(target.users):,} users ({size:.0f} MB file): "
            f"{again.startup_seconds:.2f} s to listening, {empty_start:.2f} s with an empty "
            f"file, so loading takes ~{load:.2f} s"
        )
        if mem:
            notes.append(f"RSS right after start-up: {mem[0]:.0f} MB (peak {mem[1]:.0f} MB)")
    finally:
        again.stop(60)
    return results, notes


async def wait_for_fold(target: Target, timeout: float) -> None:
    """Wait until the journal is folded (no journal segment left) after writes stopped."""
    assert target.db is not None
    deadline = time.monotonic() + timeout
    prefix = target.db.name + ".journal."
    while time.monotonic() < deadline:
        if not any(p.name.startswith(prefix) for p in target.db.parent.iterdir()):
            return
        await asyncio.sleep(0.1)


# --- output -----------------------------------------------------------------------------------


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None or v != v else format(v, spec)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


def table(results: Sequence[Result]) -> str:
    head = (
        f"{'workload':<24}{'server':<14}{'users':>8}{'conc':>5}{'req/s':>10}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}{'n':>8}{'err':>5}{'cli':>6}{'srv':>6}{'other':>6}"
        f"{'srv us/req':>11}  notes"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        notes = [r.note] if r.note else []
        if r.walk_seconds:
            ws = r.walk_seconds
            notes.insert(0, f"walk {statistics.median(ws):.3f} s (median of {len(ws)})")
        if r.fold_max_ms is not None and r.folds:
            notes.append(
                f"{r.folds} fold(s) (longest {r.fold_longest_ms:.0f} ms); worst request "
                f"during a fold {r.fold_max_ms:.0f} ms, outside folds {r.nofold_max_ms:.0f} ms"
            )
        lines.append(
            f"{r.workload:<24}{r.server:<14}{r.users:>8,}{r.concurrency:>5}{r.rps:>10,.0f}"
            f"{_fmt(r.pct(50), '.2f'):>9}{_fmt(r.pct(99), '.2f'):>9}{_fmt(r.max_ms, '.1f'):>9}"
            f"{r.requests:>8,}{r.errors:>5}{_pct(r.client_cpu):>6}{_pct(r.server_cpu):>6}"
            f"{_pct(r.other_cpu):>6}{_fmt(r.cpu_us, ',.0f'):>11}"
            f"  {'; '.join(notes)}"
        )
    return "\n".join(lines)


def _by(results: Sequence[Result], server: str, workload: str) -> Result | None:
    return next((r for r in results if r.server == server and r.workload == workload), None)


def ratios(results: Sequence[Result]) -> str:
    rows = []
    specs = [
        ("create", "scim2-server", 4.0, "durable create"),
        ("filter userName eq", "scim2-server", 6.0, "filter by userName"),
        ("page of 100", "scim2-server", 250.0, "page of 100"),
        ("import walk (pages)", "scim2-server", None, "import walk"),
        ("PATCH deactivate", "scim2-server", None, "PATCH deactivate"),
        ("GET by id", "scim2-server", None, "GET by id"),
        ("GET by id", "bare Tornado", 0.75, "GET by id"),
    ]
    for workload, other, target, label in specs:
        ours, theirs = _by(results, "scim-desktop", workload), _by(results, other, workload)
        if ours is None or theirs is None or not theirs.rps:
            continue
        ratio = ours.rps / theirs.rps
        by_cpu = theirs.cpu_us / ours.cpu_us if ours.cpu_us and theirs.cpu_us is not None else None
        verdict = "" if target is None else ("ok" if ratio >= target else "MISSED")
        goal = "" if target is None else f">= {target:g}x"
        rows.append(
            f"{label:<22}{'vs ' + other:<18}{ours.rps:>10,.0f}{theirs.rps:>12,.0f}"
            f"{ratio:>10.2f}x{_fmt(by_cpu, '.2f') + 'x':>11}  {goal:<10}{verdict}"
        )
    walk = _by(results, "scim-desktop", "import walk (pages)")
    if walk and walk.walk_seconds:
        w = statistics.median(walk.walk_seconds)
        verdict = "ok" if w < 1.0 else "MISSED"
        if walk.users < 10_000:
            verdict = f"(the target is for 10,000 users: {verdict} here)"
        rows.append(
            f"{'full import walk':<22}{'absolute':<18}{w:>9.3f}s{'':>12}{'':>11}{'':>11}  "
            f"{'< 1 s':<10}{verdict}"
        )
    if not rows:
        return ""
    head = (
        f"{'ratio':<22}{'':<18}{'ours/s':>10}{'theirs/s':>12}{'ours/them':>11}"
        f"{'by CPU':>11}  target"
    )
    foot = (
        "ours/them: req/s ratio (the target); by CPU: their server CPU per request / ours, "
        "which other processes on the machine disturb less."
    )
    return "\n".join([head, "-" * len(head), *rows, foot])


def scale_table(base: Sequence[Result], scale: Sequence[Result], big: int, users: int) -> str:
    rows = [
        f"{'scale check':<34}{f'at {users // 1000}k / 1k':>12}{f'at {big // 1000}k':>12}"
        f"{'ratio':>9}  target"
    ]
    rows.append("-" * len(rows[0]))
    for wl in ("filter userName eq", "page of 100", "GET by id"):
        a, b = _by(base, "scim-desktop", wl), _by(scale, "scim-desktop", wl)
        if a and b and b.rps:
            r = a.rps / b.rps
            rows.append(
                f"{wl + ' (req/s)':<34}{a.rps:>12,.0f}{b.rps:>12,.0f}{r:>8.2f}x  "
                f"<= 1.5x slower: {'ok' if r <= 1.5 else 'MISSED'}"
            )
    a = _by(scale, "scim-desktop", "create @1k")
    b = _by(scale, "scim-desktop", f"create @{big // 1000}k")
    if a and b and a.rps:
        r = b.rps / a.rps
        rows.append(
            f"{'create (req/s)':<34}{a.rps:>12,.0f}{b.rps:>12,.0f}{r * 100:>8.0f}%  "
            f">= 70%: {'ok' if r >= 0.7 else 'MISSED'}"
        )
    folds = [r for r in scale if r.fold_max_ms is not None and r.folds]
    if folds:
        worst = max(r.fold_max_ms or 0.0 for r in folds)
        calm = max(r.nofold_max_ms or 0.0 for r in folds)
        rows.append(
            f"{'worst request during a fold (ms)':<34}{'':>12}{worst:>12.1f}{'':>9}  "
            f"<= 50 ms: {'ok' if worst <= 50 else 'MISSED'} "
            f"(worst outside folds {calm:.1f} ms; {sum(r.folds for r in folds)} folds)"
        )
    return "\n".join(rows)


# --- main -------------------------------------------------------------------------------------


async def amain(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    if args.proxy:
        await proxy_main(args)
        print(f"Total run time: {time.perf_counter() - t0:.1f} s")
        return
    results: list[Result] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="scim-bench-") as tmp_name:
        tmp = Path(tmp_name)
        ours = await run_ours(args, tmp)
        results += ours
        if args.catalog_values > 0:
            results += await run_catalog(args, tmp)
        if args.compare:
            results += await run_scim2(args)
            results += await run_bare(args, [])
        scale: list[Result] = []
        if args.scale:
            scale, notes = await run_scale(args, tmp)
    print()
    print(
        f"SCIM Desktop HTTP benchmark: {args.users:,} users, {args.seconds:g} s per workload, "
        f"{args.concurrency} keep-alive clients (import walk: 1), loopback, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
        f"{', gzip accepted' if args.gzip else ''}"
    )
    if args.compare:
        print(
            f"scim2-server {_version('scim2-server')}: its ASGI app + in-memory storage under "
            f"uvicorn {_version('uvicorn')} (1 worker, asyncio loop, {args.scim2_http}); "
            f"bare Tornado {_version('tornado')}: one handler, a fixed small JSON body"
        )
    print(table(results))
    r = ratios(results)
    if r:
        print()
        print(r)
    if scale:
        print()
        print(table(scale))
        print()
        print(scale_table(results, scale, args.scale_users, args.users))
        for note in notes:
            print(f"  {note}")
    busy = [r.other_cpu for r in [*results, *scale] if r.other_cpu is not None]
    if busy and statistics.mean(busy) > 0.25:
        print()
        print(
            f"WARNING: other processes used {statistics.mean(busy) * 100:.0f}% of a core on "
            f"average (up to {max(busy) * 100:.0f}%) while this ran: the figures are skewed; "
            "rerun on a quiet machine."
        )
    print()
    print(
        "cli / srv / other: CPU time per wall second of this client process, of the server "
        "process (all threads) and of every other process on the machine; 100% = one core."
    )
    print(f"Total run time: {time.perf_counter() - t0:.1f} s")


async def proxy_main(args: argparse.Namespace) -> None:
    """--proxy: the proxy vs the same upstream directly (tests/benchmarks/bench_proxy.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_proxy

    with tempfile.TemporaryDirectory(prefix="scim-bench-proxy-") as tmp_name:
        results = await bench_proxy.run(sys.modules[__name__], args, Path(tmp_name))
    print()
    print(
        f"SCIM Desktop proxy benchmark: upstream seeded with {args.users:,} users, "
        f"{args.seconds:g} s per workload, {args.concurrency} keep-alive clients and 1, "
        f"loopback, {os.cpu_count()} cores, Python {sys.version.split()[0]}; scim2-server "
        f"{_version('scim2-server')} under uvicorn {_version('uvicorn')} ({args.scim2_http})"
    )
    print(table(results))
    print()
    print(bench_proxy.verdicts(results))
    busy = [r.other_cpu for r in results if r.other_cpu is not None]
    if busy and statistics.mean(busy) > 0.25:
        print(
            f"NOTE: other processes (through the proxy: the upstream too) used "
            f"{statistics.mean(busy) * 100:.0f}% of a core on average while this ran."
        )


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="HTTP benchmark of scim-desktop serve (loopback only).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--users", type=int, default=10_000, help="users stored for reads")
    p.add_argument("--seconds", type=float, default=3.0, help="duration of each workload")
    p.add_argument("--concurrency", type=int, default=8, help="keep-alive client connections")
    p.add_argument("--compare", action="store_true", help="also scim2-server and bare Tornado")
    p.add_argument("--scale", action="store_true", help="also run ours at 100,000 users")
    p.add_argument("--scale-users", type=int, default=100_000, help=argparse.SUPPRESS)
    p.add_argument("--gzip", action="store_true", help="send Okta's Accept-Encoding: gzip")
    p.add_argument(
        "--proxy",
        action="store_true",
        help="only the proxy benchmark: create / GET by id / filter through scim-desktop proxy "
        "vs the same upstream directly (tests/benchmarks/bench_proxy.py)",
    )
    p.add_argument(
        "--proxy-upstream",
        default="both",
        choices=("scim2", "ours", "both"),
        help="with --proxy: the upstream(s) to put the proxy in front of",
    )
    p.add_argument(
        "--catalog-values",
        type=int,
        default=10_000,
        help="values in the served catalog for the entitlement page/walk rows (0: skip)",
    )
    p.add_argument(
        "--walk-cap", type=float, default=30.0, help="stop one import walk after this (s)"
    )
    p.add_argument(
        "--scim2-http",
        default="h11",
        choices=("h11", "httptools"),
        help="uvicorn's HTTP parser for scim2-server: h11 is pure Python like Tornado's "
        "(uvicorn's plain install); httptools is its C parser",
    )
    p.add_argument(
        "--max-minutes", type=float, default=20.0, help="stop everything after this long"
    )
    p.add_argument(
        "--log-format",
        default="text",
        choices=("text", "jsonl"),
        help="our server's request log (text is the command's default; jsonl also writes "
        "every body)",
    )
    args = p.parse_args(argv)
    global LOG_FORMAT
    LOG_FORMAT = args.log_format
    if args.users < 100 or args.concurrency < 1 or args.seconds <= 0:
        p.error("need --users >= 100, --concurrency >= 1, --seconds > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def on_signal(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    # Ctrl+C and SIGTERM end the run wherever it is; the finally below stops the servers.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, on_signal)
        signal.alarm(int(args.max_minutes * 60))
    try:
        asyncio.run(amain(args))
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"stopped early ({type(exc).__name__}); stopping the servers", file=sys.stderr)
        return 130
    finally:
        if hasattr(signal, "SIGALRM"):
            signal.alarm(0)
        stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
