"""Filter limits and slicing (issue 12, section 1): figures, printed; asserts nothing.

    python tests/benchmarks/bench_filter_limits.py [--users 3000,100000] [--hostile 3]

For each user count: starts ``python -m scim_desktop serve`` (loopback, a free port, a
temporary database), creates the users over HTTP, then measures, while another client sends
``GET /Users/{id}`` in a loop on its own connection:

- the refusal of an over-limit filter (the issue's 40,000 ``displayName pr`` clauses, by
  ``POST /Users/.search``): status, scimType, the time to the answer;
- the largest filter the limits allow that costs the most: MAX_FILTER_CLAUSES clauses of
  ``title pr`` (no user has a title, so every clause is tested on every user);
- the same filter sent by ``--hostile`` clients at once (their slices take turns);
- a value filter of MAX_FILTER_CLAUSES clauses over a group of (up to) 3,000 members: one
  record that costs much on its own, evaluated in steps;
- ``sortBy=userName`` over all users (the sort runs in slices too);

and prints each one's time and the other client's longest wait (one GET by id) meanwhile,
beside its longest wait with the server otherwise idle. Reuses bench_server.py's server
process, seeding and connection code. Loopback only; the server is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scim_desktop.core.filter import MAX_FILTER_CLAUSES, MAX_FILTER_LENGTH
from scim_desktop.server.slices import SLICE_S
from tests.benchmarks import bench_server as bs

SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def search(req: bs.Requests, body: dict[str, Any]) -> bytes:
    return req.with_body("POST", "/Users/.search", dumps({"schemas": [SEARCH_SCHEMA], **body}))


class Waits:
    """A client that GETs users by id in a loop on its own connection: its longest wait."""

    def __init__(self, conn: bs.Conn, reqs: list[bytes]) -> None:
        self.conn = conn
        self.reqs = reqs
        self.longest = 0.0
        self.count = 0
        self._stop = False

    async def run(self) -> None:
        k = 0
        while not self._stop:
            t0 = time.perf_counter()
            status, _, _ = await self.conn.request(self.reqs[k % len(self.reqs)])
            elapsed = time.perf_counter() - t0
            if status != 200:
                raise RuntimeError(f"GET by id answered {status}")
            self.longest = max(self.longest, elapsed)
            self.count += 1
            k += 1

    async def during(self, work: Awaitable[Any]) -> tuple[Any, float, int]:
        """Run ``work`` while this client loops; (work's result, longest wait, GETs)."""
        self.longest, self.count, self._stop = 0.0, 0, False
        loop_task = asyncio.ensure_future(self.run())
        try:
            result = await work
        finally:
            self._stop = True
            await loop_task
        return result, self.longest, self.count


async def timed(conn: bs.Conn, raw: bytes) -> tuple[int, bytes, float]:
    t0 = time.perf_counter()
    status, body, gz = await conn.request(raw)
    return status, bs.plain(body, gz), time.perf_counter() - t0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


async def measure(users: int, hostile: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-filter-") as tmp:
        db = Path(tmp) / "scim.json"
        proc = bs.start_ours(db)
        try:
            target = bs.Target("scim-desktop", proc, bs.Requests(proc.port, "/scim/v2", False))
            t0 = time.perf_counter()
            await bs.seed(target, users, concurrency)
            print(f"\n{users:,} users (created in {time.perf_counter() - t0:.0f} s)")
            req = target.req
            conns = await bs.open_conns(proc.port, 2 + hostile)
            waits = Waits(conns[0], [req.by_id(rid) for rid, _ in target.users[:5000]])

            idle = await waits.during(asyncio.sleep(2.0))
            print(
                f"  GET by id, server otherwise idle: longest wait {ms(idle[1])} ({idle[2]} GETs)"
            )

            over = search(req, {"filter": " or ".join(["displayName pr"] * 40_000)})
            (status, body, took), longest, _ = await waits.during(timed(conns[1], over))
            detail = json.loads(body)
            print(
                f"  over the limit ({len(over) // 1024:,} KB, 40,000 clauses): {status} "
                f"{detail.get('scimType')} in {ms(took)}; other client's longest wait "
                f"{ms(longest)}\n    detail: {detail.get('detail', '')[-110:]}"
            )

            text = " or ".join(["title pr"] * MAX_FILTER_CLAUSES)
            biggest = search(req, {"filter": text, "count": 100})
            (status, body, took), longest, gets = await waits.during(timed(conns[1], biggest))
            total = json.loads(body).get("totalResults")
            print(
                f"  largest allowed filter ({MAX_FILTER_CLAUSES} x 'title pr', {len(text):,} "
                f"of {MAX_FILTER_LENGTH:,} characters): {status}, {total} results in "
                f"{ms(took)}; other client's longest wait {ms(longest)} ({gets} GETs)"
            )

            async def together() -> list[tuple[int, bytes, float]]:
                return await asyncio.gather(*(timed(c, biggest) for c in conns[1 : 1 + hostile]))

            results, longest, gets = await waits.during(together())
            slowest = max(t for _, _, t in results)
            statuses = sorted({s for s, _, _ in results})
            print(
                f"  {hostile} clients send it at once: statuses {statuses}, the last answered "
                f"after {ms(slowest)}; other client's longest wait {ms(longest)} ({gets} GETs)"
            )

            # One record that is costly on its own: a group of (up to) 3,000 members under a
            # value filter of all the clauses allowed (evaluated in steps, not in one go).
            members = [{"value": rid} for rid, _ in target.users[:3000]]
            group = {"schemas": [GROUP_SCHEMA], "displayName": "Everyone", "members": members}
            status, _, _ = await timed(conns[1], req.with_body("POST", "/Groups", dumps(group)))
            inner = " or ".join(f'value eq "missing-{k}"' for k in range(MAX_FILTER_CLAUSES - 1))
            value_filter = req.with_body(
                "POST",
                "/Groups/.search",
                dumps({"schemas": [SEARCH_SCHEMA], "filter": f"members[{inner}]"}),
            )
            (status, _, took), longest, gets = await waits.during(timed(conns[1], value_filter))
            print(
                f"  value filter of {MAX_FILTER_CLAUSES} clauses over a group of {len(members):,} "
                f"members: {status} in {ms(took)}; other client's longest wait {ms(longest)} "
                f"({gets} GETs)"
            )

            sort = req.get("/Users?sortBy=userName&sortOrder=descending&startIndex=1&count=100")
            (status, _, took), longest, gets = await waits.during(timed(conns[1], sort))
            print(
                f"  sortBy=userName over all users: {status} in {ms(took)}; other client's "
                f"longest wait {ms(longest)} ({gets} GETs)"
            )
            for conn in conns:
                conn.close()
        finally:
            proc.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="3000,100000", help="user counts, comma-separated")
    parser.add_argument("--hostile", type=int, default=3, help="clients sending it at once")
    parser.add_argument("--concurrency", type=int, default=16, help="connections for seeding")
    args = parser.parse_args(argv)
    print(
        f"Filter limits: {MAX_FILTER_LENGTH:,} characters, {MAX_FILTER_CLAUSES} clauses; "
        f"long requests run in slices of {SLICE_S * 1000:.0f} ms"
    )
    try:
        for users in (int(n) for n in args.users.split(",")):
            asyncio.run(measure(users, args.hostile, args.concurrency))
    finally:
        with contextlib.suppress(Exception):
            bs.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
