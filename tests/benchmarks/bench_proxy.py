"""``bench_server.py --proxy`` (issue 14): the proxy against the same upstream directly.

For each upstream (scim2-server under uvicorn, and our own mock ``serve``), in one run: the
upstream is seeded with ``--users`` users over HTTP, then create / GET by id / filter
``userName eq`` are driven for ``--seconds`` each, directly and through ``scim-desktop proxy
--upstream <it>`` (transparent: the client's bearer token goes through), at ``--concurrency``
connections (throughput) and at one connection (latency: what the proxy adds to a request's
median). Directly and through the proxy alternate per workload, so both see the same data.

Targets (issue 14): through the proxy >= 0.9x of direct throughput for an upstream of
scim2-server's speed, and < 1 ms added at the median on loopback. The machine's 2 cores are
shared by this client, the proxy and the upstream: through the proxy a third busy process
competes, which the "srv us/req" column (the proxy's own CPU per request) separates out.

Not imported by bench_server at load: it calls :func:`run` with itself, so the servers this
starts are in bench_server's list and always stopped.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any


async def _pair(
    bs: ModuleType,
    direct: Any,
    proxied: Any,
    name: str,
    fn: Callable[..., Awaitable[Any]],
    concurrency: int,
    seconds: float,
) -> list[Any]:
    out = []
    for target in (direct, proxied):
        bs.log(f"{target.name}: {name} at concurrency {concurrency}")
        res = await fn(target, concurrency, seconds)
        res.workload = f"{name} c={concurrency}"
        out.append(res)
    return out


async def _compare(
    bs: ModuleType,
    args: argparse.Namespace,
    upstream: Any,
    base_path: str,
    label: str,
    short: str,
) -> list[Any]:
    """Seed ``upstream``, start a proxy in front of it, run the pairs; both stopped after."""
    direct = bs.Target(label, upstream, bs.Requests(upstream.port, base_path, args.gzip))
    direct.prefix = "d"
    bs.log(f"{label}: seeding to {args.users:,} users over HTTP")
    await bs.seed(direct, args.users, args.concurrency)
    cmd = [
        bs.sys.executable,
        "-m",
        "scim_desktop",
        "proxy",
        "--upstream",
        f"http://{bs.HOST}:{upstream.port}{base_path}",
        "--host",
        bs.HOST,
        "--port",
        "0",
        "--db",
        str(args.proxy_tmp / f"proxy-{upstream.port}.json"),
        "--log",
        bs.LOG_FORMAT,
    ]
    stream = "stderr" if bs.LOG_FORMAT == "jsonl" else "stdout"
    proxy = bs.ServerProc("proxy", cmd, r"Base URL:\s+http://[^:]+:(\d+)/", stream).wait_ready(60)
    proxied = bs.Target(f"proxy>{short}", proxy, bs.Requests(proxy.port, "/scim/v2", args.gzip))
    proxied.prefix = "p"
    proxied.users = direct.users  # one list: both sides read the upstream's users
    proxied.next_i = direct.next_i = 10_000_000
    results: list[Any] = []

    async def creates(target: Any, c: int, s: float) -> Any:
        target.next_i += 1_000_000  # distinct user names on each side
        return await bs.create(target, c, s)

    try:
        for c in (args.concurrency, 1):
            for name, fn in (
                ("create", creates),
                ("GET by id", bs.get_by_id),
                ("filter eq", bs.filter_eq),
            ):
                results += await _pair(bs, direct, proxied, name, fn, c, args.seconds)
    finally:
        proxy.stop()
    return results


def verdicts(results: list[Any]) -> str:
    """Through the proxy vs directly, per upstream and workload (results come in pairs:
    direct, then through the proxy)."""
    head = (
        f"{'proxy vs direct':<30}{'direct/s':>10}{'proxy/s':>10}{'ratio':>8}"
        f"{'p50 direct':>12}{'p50 proxy':>11}{'added':>9}  targets"
    )
    rows = [head, "-" * len(head)]
    for r, proxied in zip(results[::2], results[1::2], strict=True):
        if not r.rps:
            continue
        ratio = proxied.rps / r.rps
        added = proxied.pct(50) - r.pct(50)
        if r.workload.endswith("c=1"):
            goal = f"added < 1 ms: {'ok' if added < 1.0 else 'MISSED'}"
        else:
            goal = ">= 0.9x: " + ("ok" if ratio >= 0.9 else "MISSED")
            if r.server != "scim2-server":
                goal = f"({goal}; the target is for scim2-server's speed)"
        rows.append(
            f"{r.server + ' ' + r.workload:<30}{r.rps:>10,.0f}{proxied.rps:>10,.0f}"
            f"{ratio:>7.2f}x{r.pct(50):>12.2f}{proxied.pct(50):>11.2f}{added:>9.2f}  {goal}"
        )
    cpu = [r.cpu_us for r in results[1::2] if r.cpu_us]
    if cpu:
        rows.append(
            f"the proxy's own CPU per request: median {statistics.median(cpu):,.0f} us "
            f"(range {min(cpu):,.0f}-{max(cpu):,.0f})"
        )
    return "\n".join(rows)


async def run(bs: ModuleType, args: argparse.Namespace, tmp: Path) -> list[Any]:
    args.proxy_tmp = tmp
    results: list[Any] = []
    if args.proxy_upstream in ("scim2", "both"):
        upstream = bs.start_helper("scim2", "--token", bs.TOKEN, "--http", args.scim2_http)
        try:
            results += await _compare(bs, args, upstream, "/v2", "scim2-server", "scim2")
        finally:
            upstream.stop()
    if args.proxy_upstream in ("ours", "both"):
        db = tmp / "upstream" / "scim.json"
        db.parent.mkdir()
        upstream = bs.start_ours(db)
        try:
            results += await _compare(bs, args, upstream, "/scim/v2", "scim-desktop", "ours")
        finally:
            upstream.stop()
    return results
