"""Burst benchmark for the desktop window: does a flood of requests freeze it?

Opens the real main window offscreen with its embedded server, fires a burst of Okta-like
requests (creates, existence checks, PATCH deactivations, import pages) at full speed from a
separate process over loopback, and measures how late a 5 ms timer on the GUI thread fires:
the longest and the 99th-percentile event-loop stall. Also prints the peak memory, and the
memory after a second burst with the row cap reached.

    python tests/benchmarks/bench_gui_burst.py [--requests 5000] [--concurrency 8] [--cap N]

Bounded: loopback only, a fixed number of requests, stops by itself.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.gui.widgets.main_window import MainWindow

CLIENT = textwrap.dedent(
    """
    import http.client, json, sys, threading, urllib.parse
    host, port, total, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    H = {"User-Agent": "Okta SCIM Client 1.0.0", "Accept": "application/scim+json",
         "Content-Type": "application/scim+json; charset=utf-8", "Authorization": "Bearer b"}
    lock = threading.Lock(); counter = [0]
    def take():
        with lock:
            if counter[0] >= total: return None
            counter[0] += 1; return counter[0]
    def work(w):
        c = http.client.HTTPConnection(host, port, timeout=30); ids = []
        while (n := take()) is not None:
            kind = n % 4
            if kind == 0 or not ids:
                name = f"burst{n}@example.com"
                body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": name, "name": {"givenName": "B", "familyName": str(n)},
                        "emails": [{"primary": True, "value": name, "type": "work"}],
                        "active": True}
                c.request("POST", "/scim/v2/Users", json.dumps(body), H)
                r = c.getresponse(); data = r.read()
                if r.status == 201: ids.append(json.loads(data)["id"])
            elif kind == 1:
                f = urllib.parse.quote(f'userName eq "burst{n}@example.com"', safe="")
                c.request("GET", f"/scim/v2/Users?filter={f}&startIndex=1&count=100", None, H)
                c.getresponse().read()
            elif kind == 2:
                op = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "value": {"active": n % 8 == 2}}]}
                c.request("PATCH", f"/scim/v2/Users/{ids[-1]}", json.dumps(op), H)
                c.getresponse().read()
            else:
                c.request("GET", "/scim/v2/Users?startIndex=1&count=100", None, H)
                c.getresponse().read()
        c.close()
    ts = [threading.Thread(target=work, args=(i,)) for i in range(conc)]
    [t.start() for t in ts]; [t.join() for t in ts]
    """
)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def burst(app: QApplication, window: MainWindow, n: int, conc: int) -> tuple[list[float], float]:
    """Run one burst; returns the event-loop stalls (ms) seen meanwhile and the wall time."""
    server = window.controller.server
    assert server is not None
    stalls: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]
    interval_ms = 5

    def tick() -> None:
        now = clock.nsecsElapsed()
        stalls.append(max(0.0, (now - last[0]) / 1e6 - interval_ms))
        last[0] = now

    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(tick)
    timer.start()
    before = window.requests.model.rowCount()
    started = time.perf_counter()
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, "127.0.0.1", str(server.port), str(n), str(conc)]
    )
    while client.poll() is None:
        app.processEvents()
        time.sleep(0.001)
    # Wait until the window has shown every request (bounded).
    deadline = time.monotonic() + 30
    target = min(before + n, window.requests.model.row_cap)
    while window.requests.model.rowCount() < target and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    timer.stop()
    return stalls, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--cap", type=int, default=10_000, help="request log row cap")
    parser.add_argument(
        "--sorted",
        action="store_true",
        help="sort the Users tab by userName first (new users then move to their place)",
    )
    args = parser.parse_args()

    app = QApplication(sys.argv[:1])
    tmp = tempfile.TemporaryDirectory()
    config = ServerConfig(
        port=0, db_path=Path(tmp.name) / "burst.json", auth=AuthConfig("bearer", token="b")
    )
    settings = QSettings(str(Path(tmp.name) / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(config, settings=settings, persist=False, row_cap=args.cap)
    window.resize(1440, 900)
    window.show()
    window.start_server(wait=True)
    deadline = time.monotonic() + 20
    while window.controller.state != "listening" and time.monotonic() < deadline:
        app.processEvents()
    base_rss = rss_mb()
    if args.sorted:
        window.users.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    print(
        f"Burst of {args.requests:,} requests, {args.concurrency} connections, window offscreen"
        f"{', Users tab sorted by userName' if args.sorted else ''}"
    )
    for label in ("first burst", "second burst (row cap reached)"):
        stalls, elapsed = burst(app, window, args.requests, args.concurrency)
        print(
            f"  {label:<32} {args.requests / elapsed:7,.0f} req/s shown   "
            f"longest stall {max(stalls, default=0):6.1f} ms   "
            f"p99 stall {percentile(stalls, 99):5.1f} ms   "
            f"rows {window.requests.model.rowCount():,}   RSS {rss_mb():6.1f} MB"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  memory: {base_rss:.1f} MB before, peak {peak:.1f} MB (row cap {args.cap:,})")
    print(f"  bridge batches delivered: {window.sink.batches_delivered:,}")
    window.close()
    tmp.cleanup()


if __name__ == "__main__":
    main()
