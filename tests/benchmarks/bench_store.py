"""Storage benchmark: prints figures, asserts nothing (DESIGN.md, "Conventions").

    python tests/benchmarks/bench_store.py [--quick]

Measures, at 1,000 / 10,000 / 100,000 stored users: open() time, durable creates per second
with concurrent committers (each create answered only after its fsync), and the worst IOLoop
stall meanwhile; at 100,000 users also the snapshot copy, a background fold, and open()
replaying a full journal segment. Runs in a temporary folder, in well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scim_desktop.core.repository import USER, Record
from scim_desktop.store import AtomicOrjsonStorage, DurableStore, FoldPolicy
from scim_desktop.store.tinydb_store import build_document

SIZES = (1_000, 10_000, 100_000)


def make_user(i: int) -> Record:
    """A user about the size Okta provisions (~600 bytes as JSON)."""
    rid = f"{i:08x}-5d1c-4b7e-9a41-{i:012x}"
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": rid,
        "externalId": f"00u{i:017d}",
        "userName": f"user{i}@example.com",
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i}", "formatted": f"G{i} F{i}"},
        "displayName": f"Given{i} Family{i}",
        "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}],
        "active": True,
        "meta": {
            "resourceType": "User",
            "created": "2025-01-01T00:00:00Z",
            "lastModified": "2025-01-01T00:00:00Z",
            "location": f"https://localhost:8443/scim/v2/Users/{rid}",
            "version": 'W/"1"',
        },
        "_seq": i,
        "_password": "hmac_sha256$c2FsdHNhbHRzYWx0$" + "A" * 44,
    }


def write_db(path: Path, n: int) -> None:
    users = {u["id"]: u for u in (make_user(i) for i in range(1, n + 1))}
    AtomicOrjsonStorage(path).write(build_document({USER: users}, n + 1))


class LagProbe:
    """Measures how late the IOLoop runs a 1 ms timer: its worst stall."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lag = time.perf_counter() - start - 0.001
            self.samples.append(lag)
            self.worst = max(self.worst, lag)

    def __enter__(self) -> LagProbe:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()


async def durable_creates(
    store: DurableStore,
    seconds: float,
    committers: int,
    until: asyncio.Future[None] | None = None,
) -> dict[str, Any]:
    """Creates from ``committers`` concurrent tasks, each answered after its commit, for
    ``seconds`` (or until ``until`` is done)."""
    next_id = store.count(USER) + 1_000_000
    done = 0
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    def running() -> bool:
        return not until.done() if until is not None else time.perf_counter() < stop_at

    batches_before = store.journal.batches_written

    async def committer() -> None:
        nonlocal next_id, done
        while running():
            next_id += 1
            record = make_user(next_id)
            record["_seq"] = store.next_seq()
            start = time.perf_counter()
            store.put(USER, record)
            await store.commit()
            latencies.append(time.perf_counter() - start)
            done += 1

    with LagProbe() as probe:
        started = time.perf_counter()
        await asyncio.gather(*(committer() for _ in range(committers)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "per_s": done / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "batches": store.journal.batches_written - batches_before,
        "done": done,
        "stall_ms": probe.worst * 1000,
    }


async def bench_size(folder: Path, n: int, seconds: float) -> None:
    path = folder / f"bench-{n}.json"
    write_db(path, n)
    started = time.perf_counter()
    store = DurableStore.open(path, policy=FoldPolicy(idle_seconds=None))
    open_s = time.perf_counter() - started
    assert store.count(USER) == n
    size_mb = path.stat().st_size / 1e6
    print(f"\n{n:>7,} users  open(): {open_s * 1000:7.0f} ms  (file {size_mb:.1f} MB)")
    if n == max(SIZES):
        await bench_fold(store)
    for committers in (1, 16, 64):
        r = await durable_creates(store, seconds, committers)
        print(
            f"  {committers:>3} committers: {r['per_s']:7.0f} durable creates/s  "
            f"p50 {r['p50_ms']:5.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
            f"{r['done'] / max(r['batches'], 1):5.1f} creates/fsync  "
            f"worst loop stall {r['stall_ms']:5.1f} ms"
        )
    if n == max(SIZES):
        r = await durable_creates(store, seconds * 4, 16)
        print(
            f"  sustained, 16 committers for {seconds * 4:.0f} s (background folds every 20,000 "
            f"entries): {r['per_s']:.0f} creates/s, p99 {r['p99_ms']:.2f} ms, worst loop "
            f"stall {r['stall_ms']:.1f} ms, {store.folds_completed} folds"
        )
    await store.close()
    del store
    if n == max(SIZES):
        await bench_replay(folder, n)


async def bench_fold(store: DurableStore) -> None:
    memory = store._memory  # the benchmark looks inside on purpose
    copies = []
    for _ in range(5):
        started = time.perf_counter()
        memory.snapshot()
        copies.append(time.perf_counter() - started)
    print(f"  snapshot copy on the loop thread: {statistics.median(copies) * 1000:.2f} ms")

    for label in ("idle", "under writes"):
        store.put(USER, {**store.ordered(USER)[0], "title": label})
        with LagProbe() as probe:
            started = time.perf_counter()
            if label == "idle":
                await store.fold()
                r = None
            else:
                fold = asyncio.ensure_future(store.fold())
                r = await durable_creates(store, 0, 16, until=fold)
            elapsed = time.perf_counter() - started
        extra = f", meanwhile {r['per_s']:.0f} creates/s (p99 {r['p99_ms']:.1f} ms)" if r else ""
        print(
            f"  fold at {store.count(USER):,} users ({label}): {elapsed * 1000:6.0f} ms on the "
            f"worker, worst loop stall {probe.worst * 1000:5.1f} ms{extra}"
        )


async def bench_replay(folder: Path, n: int) -> None:
    """open() of n users plus one full journal segment (20,000 entries) left by a crash."""
    path = folder / f"replay-{n}.json"
    write_db(path, n)
    store = DurableStore.open(path, policy=FoldPolicy(idle_seconds=None, max_entries=10**9))
    for i in range(1, 20_001):
        store.put(USER, {**make_user(i), "_seq": i, "title": "replayed"})
        if i % 1000 == 0:
            await store.commit()
    await store.commit()
    store.journal.close_sync()  # "crash": the journal is not folded into the file
    store._fold_executor.shutdown()
    del store
    started = time.perf_counter()
    reopened = DurableStore.open(path)
    elapsed = time.perf_counter() - started
    assert reopened.get(USER, make_user(7)["id"])["title"] == "replayed"  # type: ignore[index]
    print(
        f"\n{reopened.count(USER):>7,} users  open() replaying 20,000 journal entries and "
        f"folding: {elapsed * 1000:.0f} ms"
    )
    reopened.close_sync()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    seconds = 0.5 if args.quick else 1.5
    print(f"Python {sys.version.split()[0]}, {seconds} s per concurrency level")
    with tempfile.TemporaryDirectory(prefix="scim-bench-") as folder:
        for n in SIZES:
            await bench_size(Path(folder), n, seconds)


if __name__ == "__main__":
    overall = time.perf_counter()
    asyncio.run(main())
    print(f"\ntotal {time.perf_counter() - overall:.1f} s")
