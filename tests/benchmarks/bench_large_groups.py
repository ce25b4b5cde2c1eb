"""Okta's group operations on very large groups: prints figures, asserts nothing.

    python tests/benchmarks/bench_large_groups.py [--sizes 10000,100000] [--profile]

A real server (``ServerThread`` on an ephemeral port, a real TinyDB file in a temporary
folder) starts on a data file written directly (N users and one group listing all N; creating
them over HTTP would take minutes), then times, over HTTP, what Okta sends for a group:

- add one member, remove one member by value filter (``members[value eq "<id>"]``),
- the path-less rename Okta sends after every membership change,
- Push Now: ``replace`` of ``members`` with the same list,
- ``GET`` with ``excludedAttributes=members``, and a full ``PUT`` of the group,

and, for each, the longest wait of a second client doing ``GET /Users/{id}`` in a loop
meanwhile (what "the server froze" looks like from Okta's other tasks). ``--profile`` runs
cProfile on the server's IOLoop thread during each operation and prints the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.core.repository import GROUP, USER, Record
from scim_desktop.server.runner import ServerThread
from scim_desktop.store import AtomicOrjsonStorage
from scim_desktop.store.tinydb_store import build_document
from tests.benchmarks.bench_store import make_user
from tests.scim_client import ScimClient

TOKEN = "bench-token-0123456789"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
GROUP_ID = "g-large-0000-0000-0000-000000000001"


def write_db(path: Path, n: int) -> list[str]:
    """N users (plus one spare, not a member) and one group listing the N. Returns user ids."""
    users = [make_user(i) for i in range(1, n + 2)]
    members = [{"value": u["id"], "type": USER} for u in users[:n]]
    group: Record = {
        "schemas": [GROUP_SCHEMA],
        "id": GROUP_ID,
        "displayName": "Everyone",
        "members": members,
        "meta": {
            "resourceType": GROUP,
            "created": "2025-01-01T00:00:00Z",
            "lastModified": "2025-01-01T00:00:00Z",
            "version": 'W/"1"',
        },
        "_seq": n + 2,
    }
    for u in users:
        u["meta"].pop("location", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = build_document({USER: {u["id"]: u for u in users}, GROUP: {GROUP_ID: group}}, n + 3)
    AtomicOrjsonStorage(path).write(doc)
    return [u["id"] for u in users]


class StallProbe:
    """A second client: GET /Users/{id} in a loop; the longest single wait is the stall."""

    def __init__(self, base_url: str, user_id: str) -> None:
        self._client = ScimClient(base_url, token=TOKEN)
        self._path = f"/Users/{user_id}"
        self._stop = threading.Event()
        self.worst = 0.0
        self.count = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            self._client.get(self._path)
            self.worst = max(self.worst, time.perf_counter() - start)
            self.count += 1

    def __enter__(self) -> StallProbe:
        self._thread.start()
        time.sleep(0.05)
        self.worst = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()


def profile_on_loop(server: ServerThread, enable: bool, prof: cProfile.Profile) -> None:
    """Turn cProfile on or off on the server's IOLoop thread (cProfile is per thread)."""
    done = threading.Event()

    def flip() -> None:
        prof.enable() if enable else prof.disable()
        done.set()

    assert server._loop is not None
    server._loop.add_callback(flip)
    done.wait(5)


def run_size(n: int, profile: bool, top: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "data" / "scim.json"
        started = time.perf_counter()
        ids = write_db(db, n)
        written = time.perf_counter() - started
        # A PUT or Push Now of 100,000 members is a ~5 MB body, over the default --max-body.
        config = ServerConfig(
            host="127.0.0.1",
            port=0,
            db_path=db,
            auth=AuthConfig("bearer", token=TOKEN),
            max_body_bytes=64 * 1024 * 1024,
        )
        server = ServerThread(config)
        started = time.perf_counter()
        server.start(timeout=300)
        print(
            f"\n== group of {n:,} members (data file {db.stat().st_size / 1e6:.1f} MB written"
            f" in {written:.1f} s, server started in {time.perf_counter() - started:.1f} s)"
        )
        client = ScimClient(server.base_url, token=TOKEN, timeout=300)
        path = f"/Groups/{GROUP_ID}"
        spare, victim = ids[-1], ids[n // 2]
        ops: list[tuple[str, Callable[[], Any]]] = [
            (
                "add 1 member (PATCH add members)",
                lambda: client.patch(path, patch_body("add", "members", [{"value": spare}])),
            ),
            (
                'remove 1 member (PATCH remove members[value eq "id"])',
                lambda: client.patch(
                    path, patch_body("remove", f'members[value eq "{spare}"]', None)
                ),
            ),
            (
                "remove 1 member from the middle",
                lambda: client.patch(
                    path, patch_body("remove", f'members[value eq "{victim}"]', None)
                ),
            ),
            (
                "add 1 member, ?excludedAttributes=members",
                lambda: client.patch(
                    path + "?excludedAttributes=members",
                    patch_body("add", "members", [{"value": spare}]),
                ),
            ),
            (
                "remove 1 member, ?excludedAttributes=members",
                lambda: client.patch(
                    path + "?excludedAttributes=members",
                    patch_body("remove", f'members[value eq "{spare}"]', None),
                ),
            ),
            (
                "Okta's follow-up replace {id, displayName}, same name",
                lambda: client.patch(
                    path,
                    patch_body("replace", None, {"id": GROUP_ID, "displayName": "Everyone"}),
                ),
            ),
            (
                "rename (path-less replace {id, displayName})",
                lambda: client.patch(
                    path,
                    patch_body("replace", None, {"id": GROUP_ID, "displayName": "Everyone 2"}),
                ),
            ),
            (
                "Push Now (replace members with the same list)",
                lambda: client.patch(
                    path,
                    patch_body(
                        "replace", "members", [{"value": i} for i in ids[:n] if i != victim]
                    ),
                ),
            ),
            (
                "GET excludedAttributes=members",
                lambda: client.get(path + "?excludedAttributes=members"),
            ),
            ("GET the whole group", lambda: client.get(path)),
            (
                "PUT the whole group",
                lambda: client.put(
                    path,
                    {
                        "schemas": [GROUP_SCHEMA],
                        "id": GROUP_ID,
                        "displayName": "Everyone",
                        "members": [{"value": i} for i in ids[:n]],
                    },
                ),
            ),
        ]
        print(f"{'operation':<55} {'status':>6} {'answer':>9} {'bytes':>11} {'stall':>9}")
        for label, op in ops:
            prof = cProfile.Profile()
            with StallProbe(server.base_url, ids[0]) as probe:
                if profile:
                    profile_on_loop(server, True, prof)
                start = time.perf_counter()
                resp = op()
                took = time.perf_counter() - start
                if profile:
                    profile_on_loop(server, False, prof)
                time.sleep(0.02)
            print(
                f"{label:<55} {resp.status:>6} {took * 1000:>7.1f}ms {len(resp.raw):>11,}"
                f" {probe.worst * 1000:>7.1f}ms"
            )
            if profile:
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
                print("\n".join("    " + line for line in out.getvalue().splitlines()[6:]))
        sequence(server, client, path, ids[n : n + 1] + ids[:20])
        client.close()
        started = time.perf_counter()
        server.stop()
        print(f"stop (fold) {time.perf_counter() - started:.1f} s")


def sequence(server: ServerThread, client: ScimClient, path: str, users: list[str]) -> None:
    """What Okta sends for 20 membership changes (remove or add, each followed by the
    path-less {id, displayName}), answered without members: the journal grows by a full group
    per change, so folds run meanwhile."""
    assert server.store is not None
    folds = server.store.folds_completed
    worst = 0.0
    with StallProbe(server.base_url, users[-1]) as probe:
        started = time.perf_counter()
        for i, user in enumerate(users[:20]):
            op = (
                patch_body("remove", f'members[value eq "{user}"]', None)
                if i % 2 == 0
                else patch_body("add", "members", [{"value": users[i - 1]}])
            )
            for body in (op, patch_body("replace", None, {"id": GROUP_ID, "displayName": "E"})):
                start = time.perf_counter()
                resp = client.patch(path + "?excludedAttributes=members", body)
                worst = max(worst, time.perf_counter() - start)
                assert resp.status == 200, resp.raw[:200]
        took = time.perf_counter() - started
        time.sleep(0.05)
    print(
        f"20 Okta membership changes + follow-ups (40 PATCHes, excludedAttributes=members):"
        f" {took:.2f} s, slowest answer {worst * 1000:.0f} ms, longest stall of another"
        f" client {probe.worst * 1000:.0f} ms, folds {server.store.folds_completed - folds}"
    )


def patch_body(op: str, path: str | None, value: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"op": op}
    if path is not None:
        operation["path"] = path
    if value is not None:
        operation["value"] = value
    return {"schemas": [PATCH_SCHEMA], "Operations": [operation]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--profile", action="store_true", help="cProfile the IOLoop thread")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        run_size(n, args.profile, args.top)


if __name__ == "__main__":
    main()
