"""How long the Users table model takes with 10,000 users: load, sort, and batches of events.

The same steps as tests/gui/test_resources.py::test_ten_thousand_users_and_a_batch_of_1000_updates
(which checks the results and asserts no timings); this script prints the figures.

    python tests/benchmarks/bench_gui_models.py [--users 10000] [--runs 3]

Bounded: in-process, no server, no window; a few seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtWidgets import QApplication

from scim_desktop.gui.models.resource_table import ResourceFilterProxy
from scim_desktop.gui.models.resources import UsersModel
from tests.gui.test_resources import created, deleted, updated, user


def run(count: int) -> dict[str, float]:
    """One run; milliseconds for each step."""
    users = [user(i, groups=[("g1", "Sales")]) for i in range(count)]
    model = UsersModel()
    proxy = ResourceFilterProxy()
    proxy.setSourceModel(model)
    marks = [time.perf_counter()]
    model.load(users)
    marks.append(time.perf_counter())
    proxy.sort(UsersModel.USERNAME)
    marks.append(time.perf_counter())
    model.apply_events([updated(user(i, active=False)) for i in range(0, count, 10)])
    marks.append(time.perf_counter())
    model.apply_events([created(user(i)) for i in range(count, count + count // 10)])
    marks.append(time.perf_counter())
    model.apply_events([deleted(f"u{i:05d}") for i in range(0, count, 100)])
    marks.append(time.perf_counter())
    steps = ("load", "sort", "updates", "creations", "deletions")
    return {step: 1000 * (b - a) for step, a, b in zip(steps, marks, marks[1:], strict=False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    _app = QApplication.instance() or QApplication([])
    print(
        f"{args.users:,} users; batches of {args.users // 10:,} updates and creations, "
        f"{args.users // 100:,} deletions (ms)"
    )
    for n in range(1, args.runs + 1):
        figures = run(args.users)
        print(f"run {n}: " + ", ".join(f"{k} {v:.0f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
