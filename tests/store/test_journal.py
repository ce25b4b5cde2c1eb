"""Journal: group commit, segments, and reading back what a crash leaves."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import orjson
import pytest

from scim_desktop.store.journal import (
    Journal,
    JournalWriteError,
    list_segments,
    read_entries,
    segment_path,
)


def put(i: int) -> dict[str, object]:
    return {"op": "put", "t": "User", "r": {"id": f"u{i}", "_seq": i, "userName": f"user{i}"}}


def test_append_commit_and_read_back(tmp_path: Path) -> None:
    db = tmp_path / "db.json"

    async def main() -> Journal:
        journal = Journal(db)
        journal.append(put(1))
        journal.append({"op": "del", "t": "User", "id": "u1"})
        journal.append({"op": "clear"})
        assert journal.pending == 3
        assert not segment_path(db, 1).exists() or segment_path(db, 1).stat().st_size == 0
        await journal.commit()
        assert journal.pending == 0
        assert journal.batches_written == 1
        await journal.commit()  # nothing pending: no batch
        assert journal.batches_written == 1
        await journal.aclose()
        return journal

    journal = asyncio.run(main())
    assert journal.segment_entries == 3
    result = read_entries(segment_path(db, 1))
    assert result.entries == [put(1), {"op": "del", "t": "User", "id": "u1"}, {"op": "clear"}]
    assert result.warnings == [] and not result.torn_tail
    # One JSON document per line.
    lines = segment_path(db, 1).read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == result.entries


def test_acknowledged_means_durable_with_requests_arriving_at_random(tmp_path: Path) -> None:
    db = tmp_path / "db.json"

    async def main() -> Journal:
        journal = Journal(db)
        rnd = random.Random(1)
        appended = 0

        async def request(i: int) -> None:
            nonlocal appended
            await asyncio.sleep(rnd.random() * 0.02)  # requests arriving over ~20 ms
            journal.append(put(i))
            appended += 1
            mine = appended
            await journal.commit()
            # Acknowledged: only entries appended after this one may still be pending.
            assert journal.pending <= appended - mine

        await asyncio.gather(*(request(i) for i in range(1, 201)))
        await journal.aclose()
        return journal

    journal = asyncio.run(main())
    entries = read_entries(segment_path(db, 1)).entries
    assert sorted(e["r"]["id"] for e in entries) == sorted(f"u{i}" for i in range(1, 201))
    assert 1 <= journal.batches_written <= 200


def test_group_commit_batches_concurrent_committers(tmp_path: Path) -> None:
    """200 requests in 10 bursts of 20: each burst shares one write + fsync, whether or not
    the previous burst's fsync is still running when it arrives."""

    async def main() -> tuple[Journal, int]:
        journal = Journal(tmp_path / "db.json")
        commits = 0

        async def request(i: int, go: asyncio.Event) -> None:
            nonlocal commits
            await go.wait()
            journal.append(put(i))
            await journal.commit()
            commits += 1

        tasks = []
        for burst in range(10):
            go = asyncio.Event()
            tasks += [asyncio.ensure_future(request(burst * 20 + i, go)) for i in range(20)]
            await asyncio.sleep(0)  # let them start waiting
            go.set()
            await asyncio.sleep(0.0005 * burst)  # bursts spaced from 0 to 4.5 ms apart
        await asyncio.gather(*tasks)
        await journal.aclose()
        return journal, commits

    journal, commits = asyncio.run(main())
    assert commits == 200
    assert journal.batches_written <= 10, journal.batches_written


def test_every_waiter_of_a_batch_is_released_together(tmp_path: Path) -> None:
    async def main() -> Journal:
        journal = Journal(tmp_path / "db.json")

        async def request(i: int) -> None:
            journal.append(put(i))
            await journal.commit()

        # All append before the writer runs: exactly one batch.
        await asyncio.gather(*(request(i) for i in range(200)))
        await journal.aclose()
        return journal

    assert asyncio.run(main()).batches_written == 1


def test_a_cancelled_committer_does_not_cancel_the_batch(tmp_path: Path) -> None:
    db = tmp_path / "db.json"

    async def main() -> None:
        journal = Journal(db)
        journal.append(put(1))
        impatient = asyncio.ensure_future(journal.commit())
        patient = asyncio.ensure_future(journal.commit())
        await asyncio.sleep(0)
        impatient.cancel()
        await patient
        assert journal.pending == 0
        await journal.aclose()

    asyncio.run(main())
    assert len(read_entries(segment_path(db, 1)).entries) == 1


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "db.json.journal.1"
    good = b"".join(orjson.dumps(put(i)) + b"\n" for i in range(3))
    path.write_bytes(good + orjson.dumps(put(3))[:17])
    result = read_entries(path)
    assert [e["r"]["id"] for e in result.entries] == ["u0", "u1", "u2"]
    assert result.torn_tail and result.warnings == []

    # Zero bytes where a file system extended the file but the data never arrived.
    path.write_bytes(good + b"\0" * 300)
    result = read_entries(path)
    assert len(result.entries) == 3 and result.torn_tail and result.warnings == []

    # A complete file has no torn tail.
    path.write_bytes(good)
    assert not read_entries(path).torn_tail
    # An empty file is fine.
    path.write_bytes(b"")
    assert read_entries(path) == ([], [], False)


def test_garbage_in_the_middle_is_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "db.json.journal.4"
    lines = [orjson.dumps(put(i)) for i in range(4)]
    lines[1] = b'{"op":"put","t":"Us\xff garbage'
    lines[2] = b"[1, 2, 3]"  # valid JSON, not an entry
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = read_entries(path)
    assert [e["r"]["id"] for e in result.entries] == ["u0", "u3"]
    assert not result.torn_tail
    assert len(result.warnings) == 2
    assert "line 2" in result.warnings[0] and str(path) in result.warnings[0]
    assert "line 3" in result.warnings[1]


def test_unreadable_segment_gives_a_warning_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "db.json.journal.1"
    path.mkdir()
    result = read_entries(path)
    assert result.entries == [] and len(result.warnings) == 1


def test_segments_are_listed_in_numeric_order(tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    for n in (10, 2, 1):
        segment_path(db, n).write_bytes(b"")
    (tmp_path / "db.json.journal.x").write_bytes(b"")
    (tmp_path / "other.json.journal.3").write_bytes(b"")
    assert [n for n, _ in list_segments(db)] == [1, 2, 10]
    assert list_segments(tmp_path / "missing" / "db.json") == []


def test_rotate_and_drop_segments(tmp_path: Path) -> None:
    db = tmp_path / "db.json"

    async def main() -> None:
        journal = Journal(db)
        journal.append(put(1))
        await journal.commit()
        journal.append(put(2))  # appended, not yet written, before the rotation
        assert journal.rotate() == 2
        assert journal.segment_entries == 0 and journal.segment_bytes == 0
        journal.append(put(3))
        await journal.commit()
        assert [e["r"]["id"] for e in read_entries(segment_path(db, 1)).entries] == ["u1", "u2"]
        assert [e["r"]["id"] for e in read_entries(segment_path(db, 2)).entries] == ["u3"]

        journal.rotate()
        journal.append(put(4))
        await journal.drop_segments_before(3)
        assert [n for n, _ in list_segments(db)] == [3]
        journal.append(put(5))
        await journal.aclose()

    asyncio.run(main())
    assert [e["r"]["id"] for e in read_entries(segment_path(db, 3)).entries] == ["u4", "u5"]


def test_a_failed_write_is_reported_and_retried(tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    blocker = segment_path(db, 1)
    blocker.mkdir()  # the segment cannot be opened for writing: a real OS error

    async def main() -> None:
        journal = Journal(db)
        journal.append(put(1))
        first = asyncio.ensure_future(journal.commit())
        second = asyncio.ensure_future(journal.commit())
        for waiter in (first, second):
            with pytest.raises(JournalWriteError):
                await waiter
        journal.append(put(2))
        with pytest.raises(JournalWriteError):
            await journal.commit()
        assert journal.pending == 2

        blocker.rmdir()
        await journal.commit()  # the queued entries are written now, once, in order
        assert journal.pending == 0
        await journal.aclose()

    asyncio.run(main())
    assert [e["r"]["id"] for e in read_entries(blocker).entries] == ["u1", "u2"]


def test_close_sync_writes_what_is_pending(tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    journal = Journal(db)
    journal.append(put(1))
    journal.append(put(2))
    journal.close_sync()
    journal.close_sync()  # idempotent
    assert len(read_entries(segment_path(db, 1)).entries) == 2
    with pytest.raises(RuntimeError):
        journal.append(put(3))


def test_unencodable_entry_is_refused_before_buffering(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "db.json")
    with pytest.raises(TypeError):
        journal.append({"op": "put", "t": "User", "r": {"id": "x", "bad": object()}})
    assert journal.pending == 0
    journal.close_sync()
