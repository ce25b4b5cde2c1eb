"""Append-only journal with group commit: a write is durable before its request is answered.

Each change is one JSON line::

    {"op":"put","t":"User","r":{...record...}}
    {"op":"del","t":"User","id":"..."}
    {"op":"clear"}
    {"op":"members","t":"Group","base":"W/\"6\"","r":{...,"members":null,...},
     "del":["<id>",...],"add":[{"value":"<id>","type":"User"},...]}

Entries carry the full new state of a record, so replaying a run of entries over a snapshot
taken at or after its end gives that snapshot again: replay is idempotent in order, which is
what makes folding safe (see :mod:`scim_desktop.store.tinydb_store`). The one exception is
``members`` (:data:`MEMBERS_OP`), a group's membership change: the group's full new state
except its members, which are the members of version ``base`` less ``del`` plus ``add``
(appended). A full group is ~4 MB at 100,000 members, which Okta's one-member changes wrote
each time. It is applied only over version ``base`` (``tinydb_file._apply_members``); over a
later snapshot it is skipped, so the rule above still holds.

**Group commit.** :meth:`Journal.append` only buffers (in memory, on the IOLoop thread).
:meth:`Journal.commit` returns once everything appended so far is written and fsynced. One
single-thread executor writes and fsyncs a batch; while it does, new entries collect for the
next batch, and every commit() waiting on a batch wakes when it is durable. So a burst of
concurrent requests costs one write + fsync, not one each (DESIGN.md: ~0.25 ms per batch).

**Segments.** The journal is a sequence of files beside the database, ``<db>.journal.<n>``
with ``n`` increasing. :meth:`Journal.rotate` sends new entries to a new segment; once the
database file holds a snapshot covering everything before the rotation point,
:meth:`Journal.drop_segments_before` deletes the older segments. A crash anywhere in between
leaves old segments that replay harmlessly over the newer snapshot.

Thread rule: every method is called on the IOLoop thread, except :meth:`Journal.close_sync`
(after the loop stopped). File handles are touched only on the journal's writer thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from scim_desktop.store.private import open_private

log = logging.getLogger(__name__)

Entry = dict[str, Any]

_SEGMENT_INFIX = ".journal."
#: The op of a group membership change entry (see the module docstring).
MEMBERS_OP = "members"
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def segment_path(db_path: Path, number: int) -> Path:
    """The file of journal segment ``number`` for the database at ``db_path``."""
    return db_path.with_name(f"{db_path.name}{_SEGMENT_INFIX}{number}")


def list_segments(db_path: Path) -> list[tuple[int, Path]]:
    """The journal segments beside ``db_path`` as (number, path), in replay order."""
    prefix = db_path.name + _SEGMENT_INFIX
    found: list[tuple[int, Path]] = []
    try:
        children = list(db_path.parent.iterdir())
    except FileNotFoundError:
        return []
    for child in children:
        name = child.name
        if name.startswith(prefix):
            suffix = name[len(prefix) :]
            if suffix.isdigit() and suffix.isascii():
                found.append((int(suffix), child))
    found.sort()
    return found


def encode_entry(entry: Mapping[str, Any]) -> bytes:
    """One journal line (with its newline). Raises ``TypeError`` (orjson.JSONEncodeError) for
    what JSON cannot hold, before anything is written."""
    return orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)


def fsync_dir(path: Path) -> None:
    """Make a created, renamed or deleted name in directory ``path`` durable (POSIX). Windows
    cannot open a directory for this and does not need it."""
    if sys.platform == "win32":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ReadResult(NamedTuple):
    """What :func:`read_entries` found in one segment file."""

    entries: list[Entry]
    #: Corrupt lines in the middle of the file, each skipped, in human words.
    warnings: list[str]
    #: True when the last line was incomplete or unreadable (a crash mid-write): ignored.
    torn_tail: bool


def read_entries(path: Path) -> ReadResult:
    """Parse one journal segment, in order.

    A torn or corrupt *last* line is what a crash in the middle of a write leaves (it was
    never fsynced, so never acknowledged): it is ignored and reported as ``torn_tail``. A
    corrupt line anywhere else is real damage: it is skipped and described in ``warnings``.
    Never raises for bad content; an unreadable file gives one warning.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return ReadResult([], [f"Could not read journal segment {path}: {exc}"], False)
    lines = data.split(b"\n")
    # The last line with any content: if that one is bad, a crash cut its write short (a
    # complete batch always ends with a newline; an unfinished one may end in garbage or in
    # the zero bytes some file systems leave in space allocated but never written).
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    entries: list[Entry] = []
    warnings: list[str] = []
    torn = False
    loads = orjson.loads
    for index in range(last + 1):
        line = lines[index]
        if not line.strip():
            continue
        try:
            entry = loads(line)
        except orjson.JSONDecodeError as exc:
            problem = f"not valid JSON ({exc})"
        else:
            if isinstance(entry, dict) and isinstance(entry.get("op"), str):
                entries.append(entry)
                continue
            problem = "not a journal entry"
        if index == last:
            torn = True
        else:
            warnings.append(
                f"Journal segment {path}, line {index + 1}: {problem}; that change was skipped."
            )
    return ReadResult(entries, warnings, torn)


class Journal:
    """Group-committed, segmented append-only journal for the database at ``db_path``.

    New entries go to segment ``segment`` (created on the first write). Call every method on
    the IOLoop thread, except :meth:`close_sync`.
    """

    def __init__(self, db_path: Path, segment: int = 1) -> None:
        self._db_path = Path(db_path)
        self._segment = segment
        # Entries of the current segment not yet handed to the writer.
        self._buffer: list[bytes] = []
        # Entries of older segments (sealed by rotate()) not yet handed to the writer.
        self._sealed: list[tuple[int, list[bytes]]] = []
        self._appended = 0  # entries appended, ever
        self._durable = 0  # entries written and fsynced, ever
        self._segment_entries = 0
        self._segment_bytes = 0
        self._buffer_future: asyncio.Future[None] | None = None  # for the next batch
        self._inflight_future: asyncio.Future[None] | None = None
        self._inflight_upto = 0
        self._writer_task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scim-journal")
        self._closed = False
        # Writer-thread state only.
        self._fds: dict[int, int] = {}
        self._sizes: dict[int, int] = {}
        #: Successful write+fsync batches (one per commit burst); for tests and benchmarks.
        self.batches_written = 0

    # --- properties ------------------------------------------------------------------------

    @property
    def segment(self) -> int:
        """The number of the segment new entries go to."""
        return self._segment

    @property
    def segment_entries(self) -> int:
        """Entries appended to the current segment since it was started."""
        return self._segment_entries

    @property
    def segment_bytes(self) -> int:
        """Bytes appended to the current segment since it was started."""
        return self._segment_bytes

    @property
    def pending(self) -> int:
        """Entries appended but not yet durable."""
        return self._appended - self._durable

    # --- appending and committing ----------------------------------------------------------

    def append(self, entry: Mapping[str, Any]) -> None:
        """Buffer one entry for the next batch (IOLoop thread). Durable after :meth:`commit`."""
        self.append_encoded(encode_entry(entry))

    def append_encoded(self, line: bytes) -> None:
        """Buffer one line made by :func:`encode_entry` (IOLoop thread)."""
        if self._closed:
            raise RuntimeError("the journal is closed")
        self._buffer.append(line)
        self._appended += 1
        self._segment_entries += 1
        self._segment_bytes += len(line)

    async def commit(self) -> None:
        """Return once every entry appended so far is written and fsynced (IOLoop thread).

        Concurrent callers share batches. If writing fails, every waiting caller gets the
        error and the entries stay queued: the next commit() writes them again.
        """
        future = self.commit_future()
        if future is not None:
            # Shield: one caller being cancelled must not cancel the batch others wait for.
            await asyncio.shield(future)

    def commit_future(self) -> asyncio.Future[None] | None:
        """The future of the batch that makes every entry appended so far durable, or None
        when they already are (IOLoop thread). Shared by every caller of that batch: add
        callbacks, never cancel it. What :meth:`commit` awaits; for callers that answer from
        a callback rather than a task (a task, two coroutines and a shield per request were
        measurable)."""
        target = self._appended
        if self._durable >= target:
            return None
        loop = asyncio.get_running_loop()
        if self._inflight_future is not None and target <= self._inflight_upto:
            future = self._inflight_future
        else:
            if self._buffer_future is None:
                self._buffer_future = _new_future(loop)
            future = self._buffer_future
        if self._writer_task is None:
            self._writer_task = loop.create_task(self._run_writer())
        return future

    def _take_batch(self) -> tuple[list[tuple[int, bytes]], int]:
        groups = [(seg, b"".join(lines)) for seg, lines in self._sealed]
        if self._buffer:
            groups.append((self._segment, b"".join(self._buffer)))
        self._sealed = []
        self._buffer = []
        return groups, self._appended

    async def _run_writer(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            # Group commit: take the first batch once a loop iteration passes without new
            # entries (the requests already read have appended theirs), after at most
            # GROUP_COMMIT_SPINS iterations. Idle, that costs two iterations (microseconds);
            # under 8 clients it made batches of ~6 entries rather than ~3.5, and each batch
            # costs an fsync and two thread hand-offs.
            seen = -1
            for _ in range(GROUP_COMMIT_SPINS):
                if self._appended == seen:
                    break
                seen = self._appended
                await asyncio.sleep(0)
            while self._sealed or self._buffer:
                groups, upto = self._take_batch()
                future = self._buffer_future or _new_future(loop)
                self._buffer_future = None
                self._inflight_future, self._inflight_upto = future, upto
                try:
                    await loop.run_in_executor(self._executor, self._write_groups, groups)
                except BaseException as exc:
                    # Keep the entries (in order, in front of newer ones) for the next
                    # commit, and fail everyone waiting: their outcome is unknown.
                    self._requeue(groups)
                    self._inflight_future = None
                    error = exc if isinstance(exc, Exception) else RuntimeError("cancelled")
                    for waiting in (future, self._buffer_future):
                        if waiting is not None and not waiting.done():
                            waiting.set_exception(_journal_error(error))
                    self._buffer_future = None
                    if not isinstance(exc, Exception):
                        raise
                    log.error("Journal write failed: %s", exc)
                    return
                self._durable = upto
                self.batches_written += 1
                self._inflight_future = None
                if not future.done():
                    future.set_result(None)
        finally:
            self._writer_task = None

    def _requeue(self, groups: list[tuple[int, bytes]]) -> None:
        current = [(self._segment, self._buffer)] if self._buffer else []
        merged: dict[int, list[bytes]] = {}
        for seg, data in groups:
            merged.setdefault(seg, []).append(data)
        for seg, lines in [*self._sealed, *current]:
            merged.setdefault(seg, []).extend(lines)
        self._buffer = merged.pop(self._segment, [])
        self._sealed = sorted(merged.items())

    # --- segments --------------------------------------------------------------------------

    def rotate(self) -> int:
        """Send new entries to a new segment; return its number (IOLoop thread).

        Every entry appended before this call is in a segment numbered lower than the result.
        """
        if self._buffer:
            self._sealed.append((self._segment, self._buffer))
            self._buffer = []
        self._segment += 1
        self._segment_entries = 0
        self._segment_bytes = 0
        return self._segment

    async def drop_segments_before(self, number: int) -> None:
        """Delete every segment numbered below ``number`` (IOLoop thread). Call only once the
        database file holds a snapshot covering them. Writes their pending entries first, so
        nothing can re-create a deleted segment."""
        await self.commit()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._drop_before, number)

    # --- closing ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Write what is pending, close the files and stop the writer thread (IOLoop thread).
        Idempotent. Raises if the pending entries cannot be written (the files are closed
        anyway)."""
        if self._closed:
            return
        try:
            await self.commit()
        finally:
            self._closed = True
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._close_fds)
            self._executor.shutdown(wait=True)

    def flush_sync(self) -> None:
        """Write and fsync what is pending from the calling thread, waiting for the writer
        thread. Only for use when the IOLoop is not running (see :meth:`close_sync`)."""
        if self._closed:
            return
        groups, upto = self._take_batch()
        if groups:
            try:
                self._executor.submit(self._write_groups, groups).result()
            except BaseException:
                self._requeue(groups)
                raise
            self._durable = upto
            self.batches_written += 1

    def close_sync(self, *, delete_segments_before: int | None = None) -> None:
        """Flush, close the files (optionally deleting segments numbered below
        ``delete_segments_before``) and stop the writer thread. For use after the IOLoop
        stopped; any thread. Idempotent."""
        if self._closed:
            return
        try:
            self.flush_sync()
        finally:
            self._closed = True

            def finish() -> None:
                self._close_fds()
                if delete_segments_before is not None:
                    self._drop_before(delete_segments_before)

            try:
                self._executor.submit(finish).result()
            finally:
                self._executor.shutdown(wait=True)

    # --- writer thread ---------------------------------------------------------------------

    def _fd_for(self, segment: int) -> int:
        fd = self._fds.get(segment)
        if fd is None:
            for older in [s for s in self._fds if s < segment]:
                os.close(self._fds.pop(older))
                self._sizes.pop(older, None)
            path = segment_path(self._db_path, segment)
            existed = path.exists()
            # 0600: a segment holds user details and password digests like the data file.
            fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_BINARY)
            self._fds[segment] = fd
            self._sizes[segment] = os.fstat(fd).st_size
            if not existed:
                fsync_dir(path.parent)  # the new file's name must survive a crash too
        return fd

    def _write_groups(self, groups: list[tuple[int, bytes]]) -> None:
        # Removes each group from ``groups`` once it is durable, so that after a failure the
        # caller requeues only what is not.
        while groups:
            segment, data = groups[0]
            fd = self._fd_for(segment)
            start = self._sizes[segment]
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            except BaseException:
                # Cut a partial write off again, so that a retry cannot leave a torn line
                # in the middle of the file.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
            self._sizes[segment] = start + len(data)
            del groups[0]

    def _close_fds(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self._sizes.clear()

    def _drop_before(self, number: int) -> None:
        for segment in [s for s in self._fds if s < number]:
            os.close(self._fds.pop(segment))
            self._sizes.pop(segment, None)
        removed = False
        for segment, path in list_segments(self._db_path):
            if segment >= number:
                break
            # Oldest first: what remains after a crash here is still a suffix of history.
            path.unlink(missing_ok=True)
            removed = True
        if removed:
            fsync_dir(self._db_path.parent)


class JournalWriteError(OSError):
    """Writing or fsyncing the journal failed; the entries stay queued for a retry."""


def _journal_error(exc: BaseException) -> JournalWriteError:
    error = JournalWriteError(f"could not write the journal: {exc}")
    error.__cause__ = exc
    return error


#: At most this many loop iterations wait for more entries before a batch is taken.
GROUP_COMMIT_SPINS = 4


def _new_future(loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    future: asyncio.Future[None] = loop.create_future()
    # Nobody may be left waiting when a batch fails; mark the error as seen so asyncio does
    # not log "exception was never retrieved" for it.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future
