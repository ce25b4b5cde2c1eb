"""Where the server's CPU goes under one benchmark workload: py-spy samples ``scim-desktop
serve`` while bench_server.py's clients drive it, and this prints the functions with the most
samples, by own time and by inclusive time (issue 6: profile before optimising).

    python -m pip install py-spy
    python tests/benchmarks/profile_server.py get [--users 10000] [--seconds 8] [--top 40]

Workloads: create, filter, page, patch, get. Loopback only; prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server as bench

WORKLOADS = {
    "create": bench.create,
    "filter": bench.filter_eq,
    "page": bench.pages,
    "patch": bench.deactivate,
    "get": bench.get_by_id,
}


def summarize(raw: Path, top: int) -> str:
    """Own and inclusive sample counts per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    others: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        # "function (path/file.py:line)" -> "function (file.py)": one entry per function.
        frames = [
            f.split(" (", 1)[0] + " (" + f.rsplit("/", 1)[-1].rsplit(":", 1)[0] + ")"
            for f in stack.split(";")
        ]
        # Only the server's IOLoop thread: the request path (log flusher, journal fsync and
        # fold threads run beside it).
        if not any("_read_message" in f or "_run_once" in f for f in frames):
            # Another thread: where it spends its time (the innermost project or stdlib
            # frame that says what it does).
            others[" <- ".join(reversed(frames[-3:]))] += n
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples on the IOLoop thread", "", "own %   function"]
    lines += [f"{100 * c / total:5.1f}  {f}" for f, c in own.most_common(top)]
    lines += ["", "incl %  function"]
    lines += [f"{100 * c / total:5.1f}  {f}" for f, c in inclusive.most_common(top)]
    lines += ["", f"other threads: {sum(others.values())} samples (same scale: % of the above)"]
    lines += [f"{100 * c / total:5.1f}  {f}" for f, c in others.most_common(12)]
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="scim-profile-"))
    db = tmp / "scim.json"
    proc = bench.start_ours(db)
    try:
        target = bench.Target(
            "scim-desktop", proc, bench.Requests(proc.port, "/scim/v2", False), db=db
        )
        if args.workload != "create":
            await bench.seed(target, args.users, args.concurrency)
        raw = tmp / "profile.txt"
        spy = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--format",
                "raw",
                "--rate",
                "500",
                "--nonblocking",
                "-o",
                str(raw),
                "-d",
                str(int(args.seconds)),
                "-p",
                str(proc.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        res = await WORKLOADS[args.workload](target, args.concurrency, args.seconds)
        spy.wait(60)
        print(f"{res.workload}: {res.rps:,.0f} req/s, server {res.cpu_us or 0:,.0f} us/req")
        print(summarize(raw, args.top))
    finally:
        proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload", choices=sorted(WORKLOADS))
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--top", type=int, default=40)
    args = p.parse_args()
    if shutil.which("py-spy") is None:
        sys.exit("py-spy is not installed: python -m pip install py-spy")
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
