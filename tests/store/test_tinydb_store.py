"""DurableStore: round trips, crashes (including a real SIGKILL), folding and bad files."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from tinydb import TinyDB

from scim_desktop.core.repository import GROUP, USER, Record, Repository
from scim_desktop.store import (
    AtomicOrjsonStorage,
    DurableStore,
    FoldPolicy,
    MemoryRepository,
    UserNameConflict,
)
from scim_desktop.store.journal import encode_entry, list_segments, segment_path
from scim_desktop.store.tinydb_store import FORMAT_VERSION, SYNC_EVERY_BYTES

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_BACKGROUND_FOLDS = FoldPolicy(max_entries=10**9, max_bytes=10**12, idle_seconds=None)

T = TypeVar("T")


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(fn())  # type: ignore[arg-type]


def new_user(store: DurableStore, rid: str, **extra: Any) -> Record:
    record: Record = {"id": rid, "userName": rid, "_seq": store.next_seq(), **extra}
    store.put(USER, record)
    return record


def new_group(store: DurableStore, rid: str, members: list[str]) -> Record:
    record: Record = {
        "id": rid,
        "displayName": rid.upper(),
        "members": [{"value": m} for m in members],
        "_seq": store.next_seq(),
    }
    store.put(GROUP, record)
    return record


def read_json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def user_ids(store: DurableStore) -> list[str]:
    return [r["id"] for r in store.ordered(USER)]


def test_both_repositories_implement_the_protocol(tmp_path: Path) -> None:
    wanted = {n for n in vars(Repository) if not n.startswith("_")}
    assert wanted >= {"get", "ordered", "put", "delete", "clear", "groups_of", "next_seq"}
    for cls in (MemoryRepository, DurableStore):
        assert wanted <= set(dir(cls)), wanted - set(dir(cls))
    store = DurableStore.open(tmp_path / "scim.json")
    repo: Repository = store  # and for type checkers
    assert repo.count(USER) == 0
    store.close_sync()


def test_commit_with_nothing_pending_writes_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        store = DurableStore.open(tmp_path / "scim.json", policy=NO_BACKGROUND_FOLDS)
        await store.commit()
        new_user(store, "u1")
        await store.commit()
        await store.commit()
        assert store.journal.batches_written == 1
        await store.close()

    run(main)


# --- the storage -------------------------------------------------------------------------------


def test_atomic_storage_works_with_tinydb_tables(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "plain.json"
    db = TinyDB(path, storage=AtomicOrjsonStorage)
    db.table("Users").insert({"id": "a", "userName": "ann"})
    db.table("Users").insert({"id": "b", "userName": "bob"})
    db.close()
    again = TinyDB(path, storage=AtomicOrjsonStorage)
    assert [d["id"] for d in again.table("Users").all()] == ["a", "b"]
    assert read_json(path) == {
        "Users": {"1": {"id": "a", "userName": "ann"}, "2": {"id": "b", "userName": "bob"}}
    }
    assert [p.name for p in path.parent.iterdir()] == ["plain.json"]  # no temp files left


def test_atomic_storage_chunked_encoding_equals_orjson(tmp_path: Path) -> None:
    storage = AtomicOrjsonStorage(tmp_path / "big.json")
    data = {
        "Users": {str(i): {"id": f"u{i}", "n": i, "s": 'é\n"x'} for i in range(1, 2600)},
        "Empty": {},
        "_meta": {"1": {"format": 1}},
    }
    storage.write(data)
    raw = (tmp_path / "big.json").read_bytes()
    assert json.loads(raw) == data  # plain JSON for any reader
    # "{", "Users":{, three lines of up to 1,000 users, "}," , "Empty", "_meta", "}"
    assert raw.count(b"\n") == 9
    assert storage.read() == data
    assert AtomicOrjsonStorage(tmp_path / "missing.json").read() is None


def test_atomic_storage_syncs_a_large_file_as_it_writes_it(tmp_path: Path) -> None:
    """A data file of several MB is synced along the way (so the journal's fsyncs do not wait
    behind one large flush) and is still one complete document."""
    assert SYNC_EVERY_BYTES <= 4 * 1024 * 1024
    storage = AtomicOrjsonStorage(tmp_path / "large.json")
    pad = "x" * 1000
    data = {"Users": {str(i): {"id": f"u{i}", "pad": pad} for i in range(1, 6001)}}
    storage.write(data)
    path = tmp_path / "large.json"
    assert path.stat().st_size > SYNC_EVERY_BYTES  # more than one sync was needed
    assert storage.read() == data and json.loads(path.read_bytes()) == data


@pytest.mark.parametrize(
    "text",
    [
        # An older file (one line), TinyDB's own layout, a file pretty-printed by hand.
        lambda d: orjson.dumps(d),
        lambda d: json.dumps(d).encode(),
        lambda d: json.dumps(d, indent=2).encode(),
        lambda d: b"\n" + json.dumps(d, indent=1).encode() + b"\n\n",
    ],
)
def test_storage_reads_any_json_layout(tmp_path: Path, text) -> None:
    data = {
        "_meta": {"1": {"format": 1}},
        "Users": {str(i): {"id": f"u{i}", "s": "a,\nb}"} for i in range(1, 1500)},
    }
    path = tmp_path / "x.json"
    path.write_bytes(text(data))
    assert AtomicOrjsonStorage(path).read() == data


@pytest.mark.parametrize("cut", [-2, -3, -30, 20_000, 3])
def test_storage_refuses_a_cut_or_padded_file(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "x.json"
    data = {"Users": {str(i): {"id": f"u{i}"} for i in range(1, 2500)}, "Groups": {}}
    AtomicOrjsonStorage(path).write(data)
    raw = path.read_bytes()
    path.write_bytes(raw[:cut])
    with pytest.raises(orjson.JSONDecodeError):
        AtomicOrjsonStorage(path).read()
    path.write_bytes(raw + b'{"more": 1}')
    with pytest.raises(orjson.JSONDecodeError):
        AtomicOrjsonStorage(path).read()


# --- round trips -------------------------------------------------------------------------------


def test_round_trip_write_close_reopen(tmp_path: Path) -> None:
    path = tmp_path / "data" / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path)
        assert store.warnings == [] and store.path == path.absolute()
        new_user(store, "u1", externalId="e1", _password="hash")
        new_user(store, "u2")
        new_user(store, "u3")
        new_group(store, "g1", ["u1", "u3"])
        store.put(USER, {**store.get(USER, "u2"), "userName": "Second"})  # type: ignore[dict-item]
        store.delete(USER, "u3")
        store.delete(USER, "never-there")
        await store.commit()
        await store.close()
        await store.close()  # idempotent
        assert store.closed
        with pytest.raises(RuntimeError):
            new_user(store, "late")

    run(write)
    assert list_segments(path) == []
    doc = read_json(path)
    assert doc["_meta"] == {"1": {"format": FORMAT_VERSION, "next_seq": 5}}
    assert [r["id"] for r in doc["Users"].values()] == ["u1", "u2"]
    assert list(doc["Users"]) == ["1", "2"]
    assert doc["Users"]["1"]["_password"] == "hash"
    # A normal TinyDB document: plain TinyDB can read it.
    plain = TinyDB(path, access_mode="r")
    assert [d["id"] for d in plain.table("Groups").all()] == ["g1"]
    plain.close()

    store = DurableStore.open(path)
    assert store.warnings == []
    assert user_ids(store) == ["u1", "u2"]
    assert store.find_user_by_username("SECOND")["id"] == "u2"  # type: ignore[index]
    assert [r["id"] for r in store.find_by_external_id(USER, "e1")] == ["u1"]
    assert [g["id"] for g in store.groups_of("u1")] == ["g1"]
    assert [g["id"] for g in store.find_groups_by_display_name("g1")] == ["g1"]
    assert store.count(USER) == 2 and store.count(GROUP) == 1
    assert store.next_seq() == 5  # continues, even after the highest was deleted
    store.close_sync()


def test_clear_survives_reopen_and_sequence_keeps_counting(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path)
        for i in range(5):
            new_user(store, f"u{i}")
        await store.commit()
        await store.fold()
        store.clear()
        new_user(store, "after")
        await store.commit()
        # crash: no close

    run(write)
    store = DurableStore.open(path)
    assert user_ids(store) == ["after"]
    assert store.get(USER, "after")["_seq"] == 6  # type: ignore[index]
    assert store.next_seq() == 7
    store.close_sync()


def test_refused_writes_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path)
        new_user(store, "u1")
        with pytest.raises(UserNameConflict):
            store.put(USER, {"id": "u2", "userName": "U1", "_seq": store.next_seq()})
        with pytest.raises(TypeError):  # cannot be encoded as JSON
            store.put(USER, {"id": "u3", "userName": "x", "_seq": 9, "bad": {1, 2}})
        assert user_ids(store) == ["u1"]
        assert store.journal.pending == 1
        await store.commit()
        await store.close()

    run(write)
    store = DurableStore.open(path)
    assert user_ids(store) == ["u1"]
    store.close_sync()


# --- crashes -----------------------------------------------------------------------------------


def test_committed_writes_survive_a_crash_without_close(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path, policy=NO_BACKGROUND_FOLDS)
        for i in range(50):
            new_user(store, f"u{i}")
        new_group(store, "g", ["u1"])
        await store.commit()
        store.delete(USER, "u7")
        await store.commit()
        # The process "dies" here: no close, no fold; only the journal has the data.

    run(write)
    assert not path.exists()
    assert [n for n, _ in list_segments(path)] == [1]

    store = DurableStore.open(path)
    assert store.warnings == []
    assert user_ids(store) == [f"u{i}" for i in range(50) if i != 7]
    assert [g["id"] for g in store.groups_of("u1")] == ["g"]
    # Start-up folded: one clean file, no segments.
    assert list_segments(path) == []
    assert len(read_json(path)["Users"]) == 49
    store.close_sync()


def test_torn_journal_tail_from_a_crash_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path, policy=NO_BACKGROUND_FOLDS)
        new_user(store, "u1")
        await store.commit()

    run(write)
    segment = segment_path(path, 1)
    torn = encode_entry({"op": "put", "t": USER, "r": {"id": "u2", "_seq": 2}})[:-9]
    with open(segment, "ab") as f:
        f.write(torn)
    store = DurableStore.open(path)
    assert store.warnings == []
    assert user_ids(store) == ["u1"]
    store.close_sync()


def test_corrupt_journal_line_in_the_middle_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"
    lines = [
        encode_entry({"op": "put", "t": USER, "r": {"id": "a", "userName": "a", "_seq": 1}}),
        b"#### garbage ####\n",
        encode_entry({"op": "put", "t": USER, "r": {"id": "b", "userName": "b", "_seq": 2}}),
        encode_entry({"op": "frobnicate"}),
        encode_entry({"op": "put", "t": "Widget", "r": {"id": "w"}}),
    ]
    segment_path(path, 1).write_bytes(b"".join(lines))
    store = DurableStore.open(path)
    assert user_ids(store) == ["a", "b"]
    assert len(store.warnings) == 2
    assert "line 2" in store.warnings[0]
    assert "2 entries were not understood" in store.warnings[1]
    store.close_sync()


def test_crash_in_the_middle_of_a_fold(tmp_path: Path) -> None:
    """The new file is in place but the old segments were not deleted yet: replaying them
    over the newer snapshot must give the same state (renames that swap userNames included,
    whose intermediate states conflict with the snapshot)."""
    path = tmp_path / "scim.json"
    saved = tmp_path / "saved"
    saved.mkdir()

    async def write() -> None:
        store = DurableStore.open(path, policy=NO_BACKGROUND_FOLDS)
        a = new_user(store, "a", userName="x")
        new_user(store, "c")
        store.put(USER, {**a, "userName": "y"})
        b = new_user(store, "b", userName="x")
        store.delete(USER, "c")
        new_group(store, "g", ["a", "b"])
        await store.commit()
        for _, segment in list_segments(path):
            shutil.copy2(segment, saved / segment.name)
        await store.fold()  # writes the file, deletes segment 1
        store.put(USER, {**b, "title": "after the fold"})
        await store.commit()
        # crash

    run(write)
    for copy in saved.iterdir():  # "the deletion never happened"
        shutil.copy2(copy, tmp_path / copy.name)
    assert [n for n, _ in list_segments(path)] == [1, 2]

    store = DurableStore.open(path)
    assert store.warnings == []
    assert user_ids(store) == ["a", "b"]
    assert store.find_user_by_username("x")["id"] == "b"  # type: ignore[index]
    assert store.find_user_by_username("y")["id"] == "a"  # type: ignore[index]
    assert store.get(USER, "b")["title"] == "after the fold"  # type: ignore[index]
    assert [g["id"] for g in store.groups_of("b")] == ["g"]
    assert list_segments(path) == []
    store.close_sync()


def test_crash_before_the_replace_leaves_old_file_and_a_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path, policy=NO_BACKGROUND_FOLDS)
        new_user(store, "u1")
        await store.commit()
        await store.fold()
        new_user(store, "u2")
        await store.commit()

    run(write)
    stale = tmp_path / ".scim.json.deadbeef.tmp"
    stale.write_bytes(b'{"Users": {"1": {"id": "partial')  # what a killed fold leaves
    store = DurableStore.open(path)
    assert user_ids(store) == ["u1", "u2"]
    assert not stale.exists()
    store.close_sync()


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from scim_desktop.store import DurableStore, FoldPolicy

    async def main() -> None:
        store = DurableStore.open(
            Path(sys.argv[1]), policy=FoldPolicy(max_entries=250, idle_seconds=0.05)
        )
        start = store.count("User")
        print("ready", flush=True)
        counter = 0

        async def worker(w: int) -> None:
            nonlocal counter
            while True:
                counter += 1
                rid = f"r{sys.argv[2]}-{counter}"
                store.put("User", {"id": rid, "userName": rid, "_seq": store.next_seq(),
                                   "payload": "x" * 300})
                await store.commit()
                print("+" + rid, flush=True)
                if counter % 5 == 0:
                    print("?" + rid, flush=True)  # about to delete: outcome unknown until "-"
                    store.delete("User", rid)
                    await store.commit()
                    print("-" + rid, flush=True)

        await asyncio.gather(*(worker(w) for w in range(8)))

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    present: set[str] = set()
    deleted: set[str] = set()
    for round_, delay in enumerate((0.5, 0.3, 0.7)):
        # A file, not a pipe: a full pipe would block the child instead of letting it run.
        out_path = tmp_path / f"child-{round_}.out"
        with open(out_path, "wb") as out:
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(path), str(round_)], stdout=out, env=env
            )
        deadline = time.monotonic() + 20
        while not out_path.read_bytes().startswith(b"ready\n"):
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        output = out_path.read_bytes()
        unknown: set[str] = set()
        for line in output.split(b"\n")[:-1]:  # complete lines only
            text = line.decode()
            if text.startswith("+"):
                present.add(text[1:])
            elif text.startswith("?"):
                unknown.add(text[1:])
            elif text.startswith("-"):
                unknown.discard(text[1:])
                deleted.add(text[1:])
        present -= deleted | unknown

        doc = read_json(path) if path.exists() else {}  # valid JSON at every instant
        assert isinstance(doc, dict)
        store = DurableStore.open(path)
        assert store.warnings == []
        missing = [rid for rid in present if store.get(USER, rid) is None]
        assert missing == []
        resurrected = [rid for rid in deleted if store.get(USER, rid) is not None]
        assert resurrected == []
        assert len(present) > 100 * (round_ + 1)  # the child really did work
        store.close_sync()
        assert list_segments(path) == []


# --- folding -----------------------------------------------------------------------------------


def test_background_folds_during_writes_keep_everything(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"
    policy = FoldPolicy(max_entries=40, idle_seconds=None)

    async def write() -> DurableStore:
        store = DurableStore.open(path, policy=policy)
        files_seen = 0

        async def writer(w: int) -> None:
            nonlocal files_seen
            for i in range(150):
                record = new_user(store, f"w{w}-{i}")
                if i % 3 == 0:
                    store.put(USER, {**record, "title": "updated"})
                if i % 10 == 9:
                    store.delete(USER, f"w{w}-{i - 1}")
                await store.commit()
                if path.exists():  # valid JSON whenever looked at
                    assert isinstance(read_json(path), dict)
                    files_seen += 1
                if i % 20 == 0:
                    await asyncio.sleep(0.001)

        await asyncio.gather(*(writer(w) for w in range(6)))
        assert store.folds_completed >= 3, store.folds_completed
        assert files_seen > 0
        # Crash right here, possibly with a fold half done.
        return store

    before = run(write)
    # A fold may still be running on the worker thread; a real crash would stop it, here it
    # must at least finish before the file is opened again.
    before._fold_executor.shutdown(wait=True)
    expected = user_ids(before)
    assert len(expected) == 6 * (150 - 15)
    store = DurableStore.open(path)
    assert store.warnings == []
    assert user_ids(store) == expected
    assert store.get(USER, "w0-0")["title"] == "updated"  # type: ignore[index]
    store.close_sync()


def test_fold_writes_seq_ordered_tinydb_file_and_drops_segments(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path, policy=NO_BACKGROUND_FOLDS)
        for i in range(30):
            new_user(store, f"u{i}")
        await store.commit()
        assert [n for n, _ in list_segments(path)] == [1]
        await store.fold()
        assert list_segments(path) == []
        assert [r["id"] for r in read_json(path)["Users"].values()] == [f"u{i}" for i in range(30)]
        # Replacing the first record keeps its place (_seq order), not last-written order.
        store.put(USER, {**store.get(USER, "u0"), "title": "t"})  # type: ignore[dict-item]
        await store.commit()
        await store.fold()
        users = list(read_json(path)["Users"].values())
        assert users[0]["id"] == "u0" and users[0]["title"] == "t"
        assert store.folds_completed == 2 and store.last_fold_seconds is not None
        await store.close()

    run(write)


def test_idle_fold_after_writes_go_quiet(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path, policy=FoldPolicy(idle_seconds=0.1))
        new_user(store, "u1")
        await store.commit()
        assert list_segments(path) != []
        for _ in range(100):
            await asyncio.sleep(0.02)
            if store.folds_completed:
                break
        assert store.folds_completed == 1
        assert list_segments(path) == [] and not store.folding
        assert [r["id"] for r in read_json(path)["Users"].values()] == ["u1"]
        await asyncio.sleep(0.3)  # nothing new: no further folds
        assert store.folds_completed == 1
        await store.close()

    run(write)


def test_a_failed_fold_keeps_the_journal_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path, policy=NO_BACKGROUND_FOLDS)
        new_user(store, "u1")
        await store.commit()
        path.mkdir()  # the atomic replace now fails: a real OS error
        (path / "keep").write_bytes(b"")
        with pytest.raises(OSError):
            await store.fold()
        assert store.fold_error is not None
        assert [n for n, _ in list_segments(path)] == [1]  # nothing lost
        new_user(store, "u2")
        await store.commit()
        shutil.rmtree(path)
        await store.close()  # the final fold succeeds now
        assert store.fold_error is None

    run(write)
    assert list_segments(path) == []
    store = DurableStore.open(path)
    assert user_ids(store) == ["u1", "u2"]
    store.close_sync()


def test_close_sync_after_the_loop_stopped(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"
    holder: list[DurableStore] = []

    async def write() -> None:
        store = DurableStore.open(path)
        holder.append(store)
        new_user(store, "u1")
        await store.commit()
        new_user(store, "u2")  # appended, never committed on the loop

    run(write)
    store = holder[0]
    store.close_sync()
    store.close_sync()
    assert list_segments(path) == []
    assert [r["id"] for r in read_json(path)["Users"].values()] == ["u1", "u2"]


# --- bad database files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"Users": {"1": {"id": "a", "userName"', "not valid JSON"),
        (b"[1, 2, 3]", "JSON list"),
        (b'{"Users": [1, 2]}', "'Users' table"),
        (b'{"Users": {"1": {"userName": "no id"}}}', "without an 'id'"),
        (b'{"_meta": {"1": {"format": 99}}, "Users": {}}', "newer SCIM Desktop"),
    ],
)
def test_corrupt_file_is_moved_aside_with_a_warning(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "scim.json"
    path.write_bytes(content)
    store = DurableStore.open(path)
    assert store.count(USER) == 0 and store.count(GROUP) == 0
    assert len(store.warnings) == 1
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("scim.json.corrupt-")]
    assert len(moved) == 1
    assert moved[0].read_bytes() == content  # never deleted, byte for byte
    assert str(moved[0]) in store.warnings[0] and reason in store.warnings[0]
    assert read_json(path)["Users"] == {}  # a clean file in its place
    store.close_sync()

    # A second bad file the same second does not overwrite the first one moved aside.
    path.write_bytes(content)
    DurableStore.open(path).close_sync()
    assert len([p for p in tmp_path.iterdir() if ".corrupt-" in p.name]) == 2


def test_corrupt_file_with_journal_recovers_what_the_journal_has(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"
    path.write_bytes(b"\x00\x00\x00")
    entry = {"op": "put", "t": USER, "r": {"id": "j", "userName": "j", "_seq": 3}}
    segment_path(path, 1).write_bytes(encode_entry(entry))
    store = DurableStore.open(path)
    assert user_ids(store) == ["j"]
    assert len(store.warnings) == 1 and "moved to" in store.warnings[0]
    store.close_sync()


def test_plain_tinydb_file_and_bad_records_are_handled(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"
    path.write_bytes(
        orjson.dumps(
            {
                "Users": {
                    "1": {"id": "a", "userName": "Dup", "_seq": 1},
                    "2": {"id": "b", "userName": "dup", "_seq": 2},
                    "3": {"id": "c", "userName": "hand-made"},
                },
                "Notes": {"1": {"text": "kept"}},
            }
        )
    )
    store = DurableStore.open(path)
    assert user_ids(store) == ["a", "c"]
    assert store.get(USER, "c")["_seq"] == 3  # type: ignore[index]
    assert len(store.warnings) == 1 and "1 stored records could not be loaded" in store.warnings[0]
    dropped = [p for p in tmp_path.iterdir() if ".dropped-" in p.name]
    assert len(dropped) == 1
    assert read_json(dropped[0]) == {"User": [{"id": "b", "userName": "dup", "_seq": 2}]}
    store.close_sync()
    doc = read_json(path)
    assert doc["Notes"] == {"1": {"text": "kept"}}
    assert doc["_meta"]["1"]["format"] == FORMAT_VERSION


# --- membership changes journalled as differences (op "members") ---------------------------------


def change_members(
    store: DurableStore, gid: str, removed: list[str], appended: list[str]
) -> Record:
    """What ScimService does for Okta's one-member PATCH: the stored members less
    ``removed`` plus ``appended``, version + 1, journalled as a ``members`` entry."""
    old = store.get(GROUP, gid)
    assert old is not None
    version = int(old["meta"]["version"][3:-1]) + 1
    added = [{"value": m, "type": "User"} for m in appended]
    record = {
        **old,
        "members": [m for m in old["members"] if m["value"] not in removed] + added,
        "meta": {**old["meta"], "version": f'W/"{version}"'},
    }
    store.put_group_members(record, appended, removed, appended=added)
    return record


def versioned_group(store: DurableStore, gid: str, members: list[str]) -> Record:
    record: Record = {
        "id": gid,
        "displayName": gid.upper(),
        "members": [{"value": m, "type": "User"} for m in members],
        "meta": {"resourceType": "Group", "version": 'W/"1"'},
        "_seq": store.next_seq(),
    }
    store.put(GROUP, record)
    return record


def journal_ops(path: Path) -> list[str]:
    ops = []
    for _, segment in list_segments(path):
        ops += [orjson.loads(line)["op"] for line in segment.read_bytes().splitlines() if line]
    return ops


def test_member_changes_are_journalled_small_and_replay_exactly(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"
    expected: dict[str, Any] = {}

    async def write() -> None:
        store = DurableStore.open(path, policy=NO_BACKGROUND_FOLDS)
        for i in range(30):
            new_user(store, f"u{i}")
        versioned_group(store, "g", [f"u{i}" for i in range(20)])
        change_members(store, "g", ["u3"], [])
        change_members(store, "g", [], ["u25"])
        change_members(store, "g", ["u0", "u25"], ["u3", "u26"])
        change_members(store, "g", ["u7"], ["u25"])
        await store.commit()
        expected.update(store.get(GROUP, "g"))  # type: ignore[arg-type]
        sizes = [len(line) for _, s in list_segments(path) for line in s.read_bytes().splitlines()]
        assert max(sizes[-4:]) < 400, "a difference, not the whole group"
        # The process "dies" here.

    run(write)
    assert journal_ops(path)[-4:] == ["members"] * 4
    store = DurableStore.open(path)
    assert store.warnings == []
    assert store.get(GROUP, "g") == expected
    assert [g["id"] for g in store.groups_of("u26")] == ["g"]
    assert store.groups_of("u7") == [] and store.groups_of("u0") == []
    store.close_sync()
    # The start-up fold wrote the full group into the file.
    store = DurableStore.open(path)
    assert store.get(GROUP, "g") == expected
    store.close_sync()


def test_member_changes_replayed_over_a_newer_snapshot_are_skipped(tmp_path: Path) -> None:
    """A crash after a fold's replace but before it deleted the segments it covered: their
    ``members`` entries meet a group with a later version and are skipped, so the members
    keep the snapshot's members (applying them again would list u9 twice)."""
    path = tmp_path / "scim.json"
    saved = tmp_path / "saved"
    saved.mkdir()
    expected: dict[str, Any] = {}

    async def write() -> None:
        store = DurableStore.open(path, policy=NO_BACKGROUND_FOLDS)
        for i in range(10):
            new_user(store, f"u{i}")
        versioned_group(store, "g", ["u1", "u2", "u5"])
        await store.commit()
        await store.fold()  # the full group is in the file; segment 2 holds only differences
        change_members(store, "g", [], ["u9"])
        change_members(store, "g", ["u5"], [])
        change_members(store, "g", [], ["u5"])
        await store.commit()
        for _, segment in list_segments(path):
            shutil.copy2(segment, saved / segment.name)
        await store.fold()
        change_members(store, "g", ["u1"], ["u4"])
        await store.commit()
        expected.update(store.get(GROUP, "g"))  # type: ignore[arg-type]
        # crash

    run(write)
    for copy in saved.iterdir():  # "the deletion never happened"
        shutil.copy2(copy, tmp_path / copy.name)
    assert [n for n, _ in list_segments(path)] == [2, 3]
    assert journal_ops(path) == ["members"] * 4
    store = DurableStore.open(path)
    assert store.warnings == []
    assert store.get(GROUP, "g") == expected
    assert [m["value"] for m in expected["members"]] == ["u2", "u9", "u5", "u4"]
    store.close_sync()


def test_malformed_member_entries_are_reported_not_applied(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path, policy=NO_BACKGROUND_FOLDS)
        new_user(store, "u1")
        versioned_group(store, "g", ["u1"])
        await store.commit()

    run(write)
    (_, segment), *_ = list_segments(path)
    with segment.open("ab") as f:
        f.write(encode_entry({"op": "members", "t": "Group", "r": {"id": "g"}}))
        f.write(encode_entry({"op": "members", "t": "Group", "base": 'W/"1"', "r": "x"}))
        f.write(encode_entry({"op": "put", "t": "User", "r": {"id": "u2", "_seq": 9}}))
    store = DurableStore.open(path)
    assert any("2 entries were not understood" in w for w in store.warnings)
    assert store.get(GROUP, "g")["members"] == [{"value": "u1", "type": "User"}]  # type: ignore[index]
    assert store.get(USER, "u2") is not None
    store.close_sync()
