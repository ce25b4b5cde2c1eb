"""The store of record: a TinyDB JSON file, kept current by folding the journal into it.

DESIGN.md ("Storage") has the numbers behind this shape. TinyDB rewrites its whole file per
write and rebuilds a whole table per insert, so it is never written per request. Instead:

- reads are served by :class:`~scim_desktop.store.memory.MemoryRepository`;
- each write is applied in memory and appended to the :class:`~scim_desktop.store.journal.
  Journal`, and :meth:`DurableStore.commit` makes it durable (group commit) before the
  request is answered;
- a *fold* writes a snapshot of memory as the TinyDB document, in one atomic replace
  (:class:`AtomicOrjsonStorage`), then deletes the journal segments the snapshot covers.

The file itself (its layout, the atomic storage, reading and repairing it at start-up) is
:mod:`scim_desktop.store.tinydb_file`; its public names are re-exported here, import them from
this module.

Folding safety: the journal rotates to a new segment at the moment the snapshot is taken, so
the older segments hold only changes the snapshot includes. They are deleted only after the
new file is in place; a crash before that leaves them to be replayed over the new snapshot,
which is idempotent (entries are full-state upserts and deletes, applied in order).

Threads (DESIGN.md, "Threads and ownership"): the IOLoop thread owns the memory and the
journal; one background worker thread, the only code that writes the TinyDB file, serializes
each snapshot. The snapshot is a shallow copy of the id -> record dicts, which is cheap and
safe because records are immutable.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinydb import TinyDB

from scim_desktop.core.repository import GROUP, Record
from scim_desktop.store.journal import (
    MEMBERS_OP,
    Journal,
    encode_entry,
    fsync_dir,
    list_segments,
    read_entries,
)
from scim_desktop.store.memory import RTYPES, MemoryRepository
from scim_desktop.store.private import secure_data_folder
from scim_desktop.store.tinydb_file import (
    CATALOG_TABLE,
    FORMAT_VERSION,
    META_TABLE,
    SYNC_EVERY_BYTES,
    TABLES,
    AtomicOrjsonStorage,
    StoreError,
    _apply_entries,
    _load_memory,
    _Loaded,
    _move_aside,
    _parse_document,
    _save_dropped,
    _Unusable,
    build_document,
)

__all__ = [
    "CATALOG_TABLE",
    "FORMAT_VERSION",
    "META_TABLE",
    "SYNC_EVERY_BYTES",
    "TABLES",
    "AtomicOrjsonStorage",
    "DurableStore",
    "FoldPolicy",
    "StoreError",
    "build_document",
]

log = logging.getLogger(__name__)

_REFREEZE_WRITES = 2_000  # see FoldPolicy.freeze_gc


# --- the fold policy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldPolicy:
    """When the running store folds the journal into the TinyDB file."""

    #: Fold once the current journal segment has this many entries ...
    max_entries: int = 20_000
    #: ... or this many bytes.
    max_bytes: int = 16 * 1024 * 1024
    #: Fold when writes have been quiet this long (None: only by size and at close).
    idle_seconds: float | None = 5.0
    #: After a failed fold, wait this long before the next try (doubling, up to a minute).
    retry_seconds: float = 5.0
    #: ``gc.freeze()`` the records after loading and after a fold that follows many writes,
    #: so that Python's full garbage collections (which walk every tracked object, ~2 ms
    #: per 1,000 users) do not stall the IOLoop. See :meth:`DurableStore.open`.
    freeze_gc: bool = True


# --- the store ---------------------------------------------------------------------------------


class DurableStore:
    """The server's repository: memory for reads, a group-committed journal for durability,
    and a TinyDB file as the store of record. Implements
    :class:`~scim_desktop.core.repository.Repository`.

    Create it with :meth:`open`. Every method is called on the IOLoop thread, except
    :meth:`open` (on the server thread before serving) and :meth:`close_sync` (after the
    IOLoop stopped).

    The owner's duties: ``await commit()`` after a request's writes and before answering
    (that calls :meth:`maybe_fold` itself); ``await close()`` (or ``close_sync()``) on stop.
    """

    def __init__(
        self,
        path: Path,
        memory: MemoryRepository,
        journal: Journal,
        warnings: list[str],
        extra_tables: dict[str, Any],
        policy: FoldPolicy,
        *,
        dirty: bool,
    ) -> None:
        """Use :meth:`open`."""
        self._path = path
        self._memory = memory
        self._journal = journal
        self._warnings = warnings
        self._extra_tables = extra_tables
        self._policy = policy
        self._db = TinyDB(path, storage=AtomicOrjsonStorage)
        self._fold_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scim-fold")
        self._fold_task: asyncio.Task[BaseException | None] | None = None
        self._dirty = dirty  # changes (or leftover segments) not yet in the TinyDB file
        self._last_write = time.monotonic()
        self._writes_since_freeze = 0
        self._idle_handle: asyncio.TimerHandle | None = None
        self._retry_at = 0.0
        self._fold_failures = 0
        self._closing = False
        self._closed = False
        self._close_task: asyncio.Task[None] | None = None
        #: Folds completed since open (start-up fold not counted).
        self.folds_completed = 0
        #: Seconds the last background fold took (worker time, plus deleting segments).
        self.last_fold_seconds: float | None = None
        #: Why the last fold failed, or None when it succeeded.
        self.fold_error: str | None = None

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, *, policy: FoldPolicy | None = None) -> DurableStore:
        """Open (or create) the store at ``path`` (server thread, before serving).

        Creates the parent folders, loads the TinyDB file once, replays the journal segments
        in order and folds them in, so that start-up leaves one clean file and no segments.
        A corrupt or unreadable file is moved aside (never deleted) and the store starts
        empty; :attr:`warnings` then says where the file went. Raises :class:`StoreError`
        only when going on would destroy data.

        The cyclic garbage collector is paused while loading (millions of new objects would
        trigger many useless collections: 2x the load time at 100,000 users) and, with
        ``policy.freeze_gc``, the loaded records are then moved out of its reach with
        ``gc.freeze()``: a full collection would otherwise walk all of them (~190 ms at
        100,000 users), stalling the IOLoop now and then. Records hold no reference cycles,
        so reference counting still frees them.
        """
        policy = policy or FoldPolicy()
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            store = cls._open(Path(path).absolute(), policy)
        finally:
            if was_enabled:
                gc.enable()
        if policy.freeze_gc:
            gc.freeze()
        return store

    @classmethod
    def _open(cls, path: Path, policy: FoldPolicy) -> DurableStore:
        # The folder 0700 and every file of the data 0600, also those an older version left
        # readable by others (they hold user details and password digests).
        secure_data_folder(path)
        warnings: list[str] = []
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            # Temp files of a fold that crashed before its os.replace.
            with contextlib.suppress(OSError):
                stale.unlink()

        storage = AtomicOrjsonStorage(path)
        loaded: _Loaded | None = None
        try:
            raw = storage.read()
            loaded = _parse_document({} if raw is None else raw)
            loaded.rewrite = loaded.rewrite and raw is not None
        except (OSError, ValueError, _Unusable) as exc:
            if isinstance(exc, _Unusable):
                reason = str(exc)
            elif isinstance(exc, ValueError):  # orjson.JSONDecodeError
                reason = f"it is not valid JSON: {exc}"
            else:
                reason = f"it could not be read: {exc}"
            warnings.append(_move_aside(path, reason))
            loaded = _Loaded({rtype: {} for rtype in RTYPES}, 1, {}, rewrite=True)

        segments = list_segments(path)
        for _number, segment in segments:
            result = read_entries(segment)
            warnings.extend(result.warnings)
            bad = _apply_entries(loaded.state, result.entries, loaded.extra_tables)
            if bad:
                warnings.append(
                    f"Journal segment {segment}: {bad} entries were not understood and were "
                    f"skipped."
                )
            if result.torn_tail:
                log.info("Journal segment %s ends in an unfinished write; ignored.", segment)

        memory = MemoryRepository()
        memory.advance_seq(loaded.next_seq)
        dropped = _load_memory(memory, loaded.state)
        if dropped:
            warnings.append(_save_dropped(path, dropped))
            loaded.rewrite = True

        # Start-up fold: one clean file, no segments.
        next_segment = 1
        dirty = False
        if segments or loaded.rewrite:
            try:
                document = build_document(
                    memory.snapshot(), memory.peek_next_seq(), loaded.extra_tables
                )
                storage.write(document)
                for _number, segment in segments:
                    segment.unlink(missing_ok=True)
                if segments:
                    fsync_dir(path.parent)
            except OSError as exc:
                warnings.append(
                    f"Could not write the database file {path} ({exc}). Changes are kept in "
                    f"the journal beside it and nothing is lost, but check the disk."
                )
                dirty = True
            remaining = list_segments(path)
            if remaining:
                next_segment = remaining[-1][0] + 1
        for message in warnings:
            log.warning("%s", message)
        journal = Journal(path, segment=next_segment)
        return cls(path, memory, journal, warnings, loaded.extra_tables, policy, dirty=dirty)

    # --- properties ------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The TinyDB file."""
        return self._path

    @property
    def warnings(self) -> list[str]:
        """Human-readable problems found at start-up (a file moved aside, skipped journal
        lines, ...); empty when all was well."""
        return self._warnings

    @property
    def journal(self) -> Journal:
        """The journal (read its counters; do not append to it directly)."""
        return self._journal

    @property
    def closed(self) -> bool:
        return self._closed

    # --- reads (Repository) ----------------------------------------------------------------

    def get(self, rtype: str, id: str) -> Record | None:
        """The record with this id, or None. IOLoop thread only."""
        return self._memory.get(rtype, id)

    def by_id(self, rtype: str) -> Mapping[str, Record]:
        """The id -> record table of ``rtype``, to read only (``MemoryRepository.by_id``).
        IOLoop thread only."""
        return self._memory.by_id(rtype)

    def ordered(self, rtype: str) -> Sequence[Record]:
        """All records of ``rtype`` in ``_seq`` order; valid until the next write. IOLoop
        thread only."""
        return self._memory.ordered(rtype)

    def count(self, rtype: str) -> int:
        """Number of records of ``rtype``. IOLoop thread only."""
        return self._memory.count(rtype)

    def find_user_by_username(self, user_name: str) -> Record | None:
        """The user with this userName ignoring case, or None. IOLoop thread only."""
        return self._memory.find_user_by_username(user_name)

    def find_by_external_id(self, rtype: str, external_id: str) -> list[Record]:
        """Records with exactly this externalId, in ``_seq`` order. IOLoop thread only."""
        return self._memory.find_by_external_id(rtype, external_id)

    def find_groups_by_display_name(self, display_name: str) -> list[Record]:
        """Groups with this displayName ignoring case, in ``_seq`` order. IOLoop thread
        only."""
        return self._memory.find_groups_by_display_name(display_name)

    def groups_of(self, member_id: str) -> list[Record]:
        """Groups listing ``member_id`` as a direct member, in ``_seq`` order. IOLoop thread
        only."""
        return self._memory.groups_of(member_id)

    @property
    def group_writes(self) -> int:
        """Changes whenever any user's derived ``groups`` may have (see MemoryRepository)."""
        return self._memory.group_writes

    def next_seq(self) -> int:
        """Reserve the next creation sequence number. IOLoop thread only."""
        return self._memory.next_seq()

    # --- writes (Repository) ---------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._closing:
            raise RuntimeError("the store is closed")

    def _wrote(self) -> None:
        self._dirty = True
        self._last_write = time.monotonic()
        self._writes_since_freeze += 1
        if self._policy.freeze_gc and self._writes_since_freeze >= _REFREEZE_WRITES:
            # Stored records live long: move them out of the cyclic collector's reach now
            # (an O(1) call), or a full collection walks them all on the loop thread (15-50
            # ms at 60-100k users, measured) and frees nothing.
            gc.freeze()
            self._writes_since_freeze = 0

    def put(self, rtype: str, record: Record) -> None:
        """Insert or replace a record: in memory now, durable after :meth:`commit`. IOLoop
        thread only. Raises (changing nothing) for a record that cannot be stored or
        encoded, or a userName another user has (``UserNameConflict``)."""
        self._check_writable()
        line = encode_entry({"op": "put", "t": rtype, "r": record})
        self._memory.put(rtype, record)
        self._journal.append_encoded(line)
        self._wrote()

    def put_group_members(
        self,
        record: Record,
        added: Iterable[str],
        removed: Iterable[str],
        *,
        appended: Sequence[Record] | None = None,
    ) -> None:
        """:meth:`put` of a group whose members changed by ``added`` / ``removed`` only (see
        ``MemoryRepository.put_group_members``): the membership index is updated for those
        members alone. With ``appended``, the caller's promise that ``record["members"]`` is
        the stored members without those whose ids are in ``removed``, followed by
        ``appended``: the journal then gets a ``members`` entry of that difference, not the
        full group (``store/journal.py``). IOLoop thread only."""
        self._check_writable()
        added, removed = list(added), list(removed)
        old = self._memory.get(GROUP, record["id"])
        base = old.get("meta", {}).get("version") if old is not None else None
        if appended is not None and isinstance(base, str):
            entry = {
                "op": MEMBERS_OP,
                "t": GROUP,
                "base": base,
                "r": {**record, "members": None},
                "del": sorted(removed),
                "add": list(appended),
            }
        else:
            entry = {"op": "put", "t": GROUP, "r": record}
        line = encode_entry(entry)
        self._memory.put_group_members(record, added, removed)
        self._journal.append_encoded(line)
        self._wrote()

    def delete(self, rtype: str, id: str) -> None:
        """Remove a record (no error when absent); durable after :meth:`commit`. IOLoop
        thread only."""
        self._check_writable()
        if self._memory.get(rtype, id) is None:
            return
        self._memory.delete(rtype, id)
        self._journal.append({"op": "del", "t": rtype, "id": id})
        self._wrote()

    @property
    def catalog_doc(self) -> dict[str, Any] | None:
        """The stored entitlement catalog (its file format, unchecked), or None. IOLoop
        thread only."""
        table = self._extra_tables.get(CATALOG_TABLE)
        doc = table.get("1") if isinstance(table, dict) else None
        return doc if isinstance(doc, dict) else None

    def put_catalog(self, doc: dict[str, Any] | None) -> None:
        """Store the entitlement catalog (None: remove it); durable after :meth:`commit`,
        in the data file from the next fold. IOLoop thread only."""
        self._check_writable()
        line = encode_entry({"op": "catalog", "c": doc})
        tables = {k: v for k, v in self._extra_tables.items() if k != CATALOG_TABLE}
        if doc is not None:
            tables[CATALOG_TABLE] = {"1": doc}
        # A new dict, never changed in place: a fold worker may be reading the old one.
        self._extra_tables = tables
        self._journal.append_encoded(line)
        self._wrote()
        self.freeze_long_lived()  # a catalog is large and lives until the next one

    def freeze_long_lived(self) -> None:
        """``gc.freeze()`` what is alive now, when the policy says so: long-lived data built
        outside the store (the entitlement catalog and its lookups: a 10,000-value catalog
        is ~100,000 objects) is kept out of full collections on the loop thread, as the
        records are (``freeze_gc``). O(1). IOLoop thread only."""
        if self._policy.freeze_gc:
            gc.freeze()

    def clear(self) -> None:
        """Remove every record (the catalog stays: it describes the app, not its data);
        durable after :meth:`commit`. IOLoop thread only."""
        self._check_writable()
        self._memory.clear()
        self._journal.append({"op": "clear"})
        self._wrote()

    async def commit(self) -> None:
        """Return once every write so far is durable (written and fsynced to the journal).
        Concurrent callers share one fsync. Cheap when nothing is pending. Then starts a
        background fold if the journal has grown past the policy (:meth:`maybe_fold`).
        IOLoop thread only. Raises ``JournalWriteError`` if the disk write failed (the
        outcome of the writes is then unknown; they are retried by the next commit)."""
        if self._journal.pending:
            await self._journal.commit()
        if not self._closing:
            self.maybe_fold()

    def commit_future(self) -> asyncio.Future[None] | None:
        """Like :meth:`commit`, for callers that answer from a callback: the future of the
        batch that makes every write so far durable (shared: add callbacks, never cancel
        it), or None when nothing is pending. Call :meth:`maybe_fold` once it is done.
        IOLoop thread only."""
        if self._journal.pending:
            return self._journal.commit_future()
        return None

    # --- folding ---------------------------------------------------------------------------

    def maybe_fold(self) -> bool:
        """Start a background fold if the current journal segment passed the size limits, and
        keep the idle timer armed (IOLoop thread only). True if a fold started. Cheap."""
        if self._closing:
            return False
        if self._dirty:
            self._arm_idle_timer()
        if self._fold_task is not None:
            return False
        journal = self._journal
        if (
            journal.segment_entries < self._policy.max_entries
            and journal.segment_bytes < self._policy.max_bytes
        ):
            return False
        if time.monotonic() < self._retry_at:
            return False
        self._start_fold()
        return True

    def fold_idle(self) -> bool:
        """Start a background fold if anything is not yet in the TinyDB file and no fold is
        running (IOLoop thread only; the idle timer calls it). True if a fold started."""
        if self._closing or self._fold_task is not None or not self._dirty:
            return False
        if time.monotonic() < self._retry_at:
            return False
        self._start_fold()
        return True

    async def fold(self) -> None:
        """Fold everything written so far into the TinyDB file and wait (IOLoop thread only).
        Waits for a running fold first. Raises if the fold fails."""
        while self._fold_task is not None:  # a finished fold may chain the next one
            await asyncio.shield(self._fold_task)
        self._check_writable()
        error = await asyncio.shield(self._start_fold())
        if error is not None:
            raise error

    @property
    def folding(self) -> bool:
        """True while a background fold runs."""
        return self._fold_task is not None

    def _arm_idle_timer(self) -> None:
        idle = self._policy.idle_seconds
        if idle is None or self._idle_handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._idle_handle = loop.call_later(idle, self._on_idle)

    def _on_idle(self) -> None:
        self._idle_handle = None
        idle = self._policy.idle_seconds
        if self._closing or idle is None or not self._dirty:
            return
        quiet = time.monotonic() - self._last_write
        wait = max(idle - quiet, self._retry_at - time.monotonic())
        if wait <= 0 and self.fold_idle():
            return
        # Not quiet yet or backing off: look again later. (A running fold re-arms the timer
        # itself when it ends.)
        if self._fold_task is None:
            loop = asyncio.get_running_loop()
            self._idle_handle = loop.call_later(max(wait, 0.05), self._on_idle)

    def _start_fold(self) -> asyncio.Task[BaseException | None]:
        """Take the snapshot and rotate the journal (on the IOLoop thread, a few ms at most),
        and hand the snapshot to the fold worker."""
        assert self._fold_task is None
        loop = asyncio.get_running_loop()
        snapshot = self._memory.snapshot()
        next_seq = self._memory.peek_next_seq()
        boundary = self._journal.rotate()
        self._dirty = False
        task = loop.create_task(self._run_fold(snapshot, next_seq, boundary))
        self._fold_task = task
        return task

    def _write_snapshot(self, snapshot: Mapping[str, Mapping[str, Record]], next_seq: int) -> None:
        """Fold worker thread: build and atomically write the TinyDB document."""
        document = build_document(snapshot, next_seq, self._extra_tables)
        self._db.storage.write(document)

    async def _run_fold(
        self, snapshot: dict[str, dict[str, Record]], next_seq: int, boundary: int
    ) -> BaseException | None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            await loop.run_in_executor(
                self._fold_executor, self._write_snapshot, snapshot, next_seq
            )
            # Only now, with the snapshot in place, may the segments it covers go.
            await self._journal.drop_segments_before(boundary)
        except Exception as exc:
            error = exc
            self._dirty = True
            self._fold_failures += 1
            backoff = min(self._policy.retry_seconds * 2 ** (self._fold_failures - 1), 60.0)
            self._retry_at = time.monotonic() + backoff
            self.fold_error = f"{type(exc).__name__}: {exc}"
            log.error(
                "Folding the journal into %s failed (%s); changes stay in the journal, "
                "retrying in %.0f s.",
                self._path,
                self.fold_error,
                backoff,
            )
        else:
            self._fold_failures = 0
            self._retry_at = 0.0
            self.fold_error = None
            self.folds_completed += 1
            self.last_fold_seconds = time.perf_counter() - started
            if self._policy.freeze_gc and self._writes_since_freeze >= _REFREEZE_WRITES:
                # Records written since the last freeze are long-lived now too (O(1) call).
                gc.freeze()
                self._writes_since_freeze = 0
        finally:
            self._fold_task = None
        if not self._closing:
            self.maybe_fold()  # the next segment may be full already; re-arms the idle timer
        return error

    # --- closing ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Commit pending writes, wait for a running fold, fold everything and delete the
        journal segments, then stop the worker threads (IOLoop thread). Idempotent. Does not
        raise for disk errors: they are logged, and whatever could not be folded stays in
        the journal for the next start."""
        if self._closed:
            return
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._close_task)

    async def _close(self) -> None:
        self._closing = True
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        try:
            await self._journal.commit()
        except Exception as exc:
            log.error("Could not write the journal while closing: %s", exc)
        if self._fold_task is not None:
            await asyncio.shield(self._fold_task)
        try:
            if self._dirty or list_segments(self._path):
                error = await self._start_fold()
                if error is not None:
                    log.error("The final fold failed; the journal is kept: %s", error)
        finally:
            try:
                await self._journal.aclose()
            except Exception as exc:
                log.error("Could not write the journal while closing: %s", exc)
            self._fold_executor.shutdown(wait=True)
            self._db.close()
            self._closed = True

    def close_sync(self) -> None:
        """:meth:`close` for when the IOLoop is no longer running (or never ran); any thread,
        but never while the loop runs. Idempotent. Does not raise for disk errors."""
        if self._closed:
            return
        self._closing = True
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        delete_before: int | None = None
        try:
            try:
                self._journal.flush_sync()
            except Exception as exc:
                log.error("Could not write the journal while closing: %s", exc)
            # The fold worker finishes a fold it started before taking this one (FIFO).
            snapshot = self._memory.snapshot()
            next_seq = self._memory.peek_next_seq()
            try:
                self._fold_executor.submit(self._write_snapshot, snapshot, next_seq).result()
            except Exception as exc:
                log.error("The final fold failed; the journal is kept: %s", exc)
            else:
                delete_before = self._journal.segment + 1
        finally:
            try:
                self._journal.close_sync(delete_segments_before=delete_before)
            except Exception as exc:
                log.error("Could not close the journal: %s", exc)
            self._fold_executor.shutdown(wait=True)
            self._db.close()
            self._closed = True
