"""The store of record: a TinyDB JSON file, kept current by folding the journal into it.

DESIGN.md ("Storage") has the numbers behind this shape. TinyDB rewrites its whole file per
write and rebuilds a whole table per insert, so it is never written per request. Instead:

- reads are served by :class:`~scim_desktop.store.memory.MemoryRepository`;
- each write is applied in memory and appended to the :class:`~scim_desktop.store.journal.
  Journal`, and :meth:`DurableStore.commit` makes it durable (group commit) before the
  request is answered;
- a *fold* writes a snapshot of memory as the TinyDB document, in one atomic replace
  (:class:`AtomicOrjsonStorage`), then deletes the journal segments the snapshot covers.

The file is a normal TinyDB document: tables ``Users`` and ``Groups`` (doc ids "1", "2", ...
-> records, including ``_seq`` and ``_password``) and ``_meta`` (doc "1": ``format`` and
``next_seq``), and ``_catalog`` (doc "1": the entitlement catalog in its file format,
``core/catalog.py``; absent without one). Tables this version does not know are kept as they
are.

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
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from tinydb import TinyDB
from tinydb.storages import Storage

from scim_desktop.core.repository import GROUP, USER, Record
from scim_desktop.store.journal import (
    Journal,
    encode_entry,
    fsync_dir,
    list_segments,
    read_entries,
)
from scim_desktop.store.memory import RTYPES, MemoryRepository
from scim_desktop.store.private import make_private_dir, open_private, secure_data_folder

log = logging.getLogger(__name__)

#: Version of the file layout, stored in ``_meta``. A file with a higher one is not read.
FORMAT_VERSION = 1
#: TinyDB table per resource type.
TABLES: dict[str, str] = {USER: "Users", GROUP: "Groups"}
META_TABLE = "_meta"
#: The entitlement catalog's table: doc "1" is the catalog (``Catalog.to_json()``).
CATALOG_TABLE = "_catalog"

_seq_of = itemgetter("_seq")
_CHUNK_RECORDS = 1000  # records serialized per orjson call; see AtomicOrjsonStorage.write
_REFREEZE_WRITES = 2_000  # see FoldPolicy.freeze_gc


class StoreError(RuntimeError):
    """The store cannot start without destroying data (e.g. a corrupt file that can be
    neither moved nor copied aside)."""


# --- the TinyDB storage ------------------------------------------------------------------------


#: While a fold writes the data file, its data is synced every this many bytes: one fsync of
#: a 70 MB file at the end made the journal's own fsyncs (every acknowledged write) wait
#: behind it on the same disk.
SYNC_EVERY_BYTES = 1024 * 1024
_datasync = getattr(os, "fdatasync", os.fsync)


class AtomicOrjsonStorage(Storage):
    """TinyDB storage: orjson, and writes that replace the file atomically.

    ``write`` serializes to a temporary file in the same folder, flushes and fsyncs it,
    ``os.replace``-s it over the file and fsyncs the folder, so the file is a complete JSON
    document at every instant, also across a crash or power loss.

    Serialization is done a thousand records at a time, giving up the GIL in between: a
    single ``orjson.dumps`` of 100,000 users holds it for ~100 ms, which would stall the
    IOLoop thread while a background fold runs.
    """

    def __init__(self, path: str | os.PathLike[str], create_dirs: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        if create_dirs:
            make_private_dir(self.path.parent, tighten_existing=False)

    def read(self) -> dict[str, dict[str, Any]] | None:
        """The document, or None when the file is missing or empty. Raises OSError or
        ``orjson.JSONDecodeError`` for an unreadable file.

        Files this storage wrote are read a line (a thousand records) at a time: one
        ``orjson.loads`` of the whole file builds a parse tree beside the Python objects,
        and at 100,000 users (a 61 MB file) that lifted the start-up peak by ~170 MB. Any
        other JSON (an older file, TinyDB's own layout, a file edited by hand) is read in
        one piece, as before."""
        try:
            with open(self.path, "rb") as f:
                document = _read_lines(f)
        except FileNotFoundError:
            return None
        if document is not None:
            return document
        data = self.path.read_bytes()
        if not data.strip():
            return None
        return orjson.loads(data)  # type: ignore[no-any-return]

    def write(self, data: Mapping[str, Any]) -> None:
        """Replace the file with ``data`` atomically (see the class docstring)."""
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
        try:
            # Created 0600 (it becomes the data file): never readable by others, not even
            # while it is written.
            fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            with open(fd, "wb") as f:
                unsynced = 0
                for piece in _encode_document(data):
                    f.write(piece)
                    unsynced += len(piece)
                    if unsynced >= SYNC_EVERY_BYTES:
                        f.flush()
                        _datasync(f.fileno())
                        unsynced = 0
                f.flush()
                os.fsync(f.fileno())
            _replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(self.path.parent)

    def close(self) -> None:
        pass


def _encode_document(data: Mapping[str, Any]) -> Iterator[bytes]:
    """The JSON bytes of ``{table: {doc_id: doc}}`` in pieces, yielding the GIL between them.

    The layout, which :func:`_read_lines` reads back a line at a time (it is plain JSON for
    every other reader, TinyDB's included)::

        {
        "_meta":{"1":{...}},               a table of up to _CHUNK_RECORDS docs: one line
        "Users":{                          a larger table: opened on its own line,
        "1":{...},"2":{...},...            a line per _CHUNK_RECORDS docs
        ,"1001":{...},...
        }
        }

    JSON strings never hold a raw line break (orjson escapes them), so no document spans
    lines.
    """
    yield b"{\n"
    last = len(data) - 1
    for t, (name, table) in enumerate(data.items()):
        end = b",\n" if t < last else b"\n"
        key = orjson.dumps(name)
        if not isinstance(table, Mapping) or len(table) <= _CHUNK_RECORDS:
            yield key + b":" + orjson.dumps(table) + end
            continue
        yield key + b":{\n"
        items = iter(table.items())
        first = True
        while chunk := dict(islice(items, _CHUNK_RECORDS)):
            body = orjson.dumps(chunk)[1:-1]
            yield body if first else b"\n," + body
            first = False
            time.sleep(0)  # let the IOLoop thread take the GIL
        yield b"\n}" + end
    yield b"}\n"


def _members(line: bytes) -> dict[str, Any]:
    """``"k":v,"k":v`` (with a leading or trailing comma) as a dict."""
    body = line.strip(b", \t\r\n")
    parsed = orjson.loads(b"{" + body + b"}")
    if not isinstance(parsed, dict):  # pragma: no cover - braces make it an object
        raise ValueError("not members")
    return parsed


def _read_lines(f: Any) -> dict[str, Any] | None:
    """The document of a file in :func:`_encode_document`'s layout, read a line at a time;
    None when the file is not in that layout (or not valid), for the caller to parse it
    whole (and report what is wrong with it)."""
    if f.readline().strip() != b"{":
        return None
    document: dict[str, Any] = {}
    table: dict[str, Any] | None = None
    try:
        for raw in f:
            line = raw.strip(b", \t\r\n")
            if not line:
                continue
            if line == b"}":
                if table is None:  # the end of the document: nothing may follow
                    return document if not f.read().strip() else None
                table = None
                continue
            if table is not None:
                table.update(_members(line))
            elif line.endswith(b":{"):
                name = orjson.loads(line[:-2])
                if not isinstance(name, str):
                    return None
                table = document[name] = {}
            else:
                document.update(_members(line))
    except ValueError:  # orjson.JSONDecodeError included
        return None
    return None  # ended before the document closed


def _replace(src: Path, dst: Path) -> None:
    # On Windows a reader (an editor, a virus scanner) holding the file open makes replace
    # fail for a moment; retry briefly before giving up.
    for attempt in range(10):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if sys.platform != "win32" or attempt == 9:
                raise
            time.sleep(0.05 * (attempt + 1))


def build_document(
    snapshot: Mapping[str, Mapping[str, Record]],
    next_seq: int,
    extra_tables: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The TinyDB document for a snapshot ``{rtype: {id: record}}``: doc ids in ``_seq``
    order. Runs on the fold worker thread."""
    doc: dict[str, Any] = dict(extra_tables or {})
    doc[META_TABLE] = {"1": {"format": FORMAT_VERSION, "next_seq": next_seq}}
    for rtype, table_name in TABLES.items():
        records = list(snapshot.get(rtype, {}).values())
        records.sort(key=_seq_of)  # C speed; nearly sorted input is linear (timsort)
        table: dict[str, Record] = {}
        for start in range(0, len(records), _CHUNK_RECORDS):
            for i in range(start, min(start + _CHUNK_RECORDS, len(records))):
                table[str(i + 1)] = records[i]
            time.sleep(0)  # pure Python over every record: let the IOLoop thread in
        doc[table_name] = table
    return doc


# --- loading -----------------------------------------------------------------------------------


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


class _Unusable(Exception):
    """The database file cannot be used as it is; it must be moved aside."""


@dataclass
class _Loaded:
    state: dict[str, dict[str, Record]]
    next_seq: int
    extra_tables: dict[str, Any]
    #: The file needs rewriting even without journal entries (upgrade, repairs).
    rewrite: bool


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _free_name(path: Path, suffix: str) -> Path:
    candidate = path.with_name(f"{path.name}{suffix}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}{suffix}-{n}")
    return candidate


def _parse_document(raw: Any) -> _Loaded:
    """Check the shape of a TinyDB document and pull out the records. Raises _Unusable."""
    if not isinstance(raw, dict):
        raise _Unusable(f"it holds a JSON {type(raw).__name__}, not a TinyDB document")
    next_seq = 1
    rewrite = False
    meta_table = raw.get(META_TABLE)
    meta = meta_table.get("1") if isinstance(meta_table, dict) else None
    if isinstance(meta, dict):
        version = meta.get("format")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise _Unusable(
                f"it was written by a newer SCIM Desktop (format {version}; this version "
                f"reads format {FORMAT_VERSION})"
            )
        seq = meta.get("next_seq")
        if isinstance(seq, int) and not isinstance(seq, bool):
            next_seq = seq
    else:
        rewrite = True
    state: dict[str, dict[str, Record]] = {}
    for rtype, table_name in TABLES.items():
        table = raw.get(table_name, {})
        if not isinstance(table, dict):
            raise _Unusable(f"its {table_name!r} table is a JSON {type(table).__name__}")
        records: dict[str, Record] = {}
        for doc in table.values():
            if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
                raise _Unusable(f"its {table_name!r} table holds an entry without an 'id'")
            records[doc["id"]] = doc
        state[rtype] = records
    extra = {k: v for k, v in raw.items() if k not in (META_TABLE, *TABLES.values())}
    return _Loaded(state, next_seq, extra, rewrite)


def _move_aside(path: Path, reason: str) -> str:
    """Move an unusable database file out of the way (never delete it); the warning text."""
    target = _free_name(path, f".corrupt-{_utc_stamp()}")
    try:
        os.replace(path, target)
    except OSError as move_error:
        try:
            shutil.copy2(path, target)
        except OSError as copy_error:
            raise StoreError(
                f"The database file {path} cannot be used ({reason}) and could not be moved "
                f"aside ({move_error}) nor copied aside ({copy_error}). Move it away by "
                f"hand and start again."
            ) from copy_error
        how = "copied"
    else:
        how = "moved"
    with contextlib.suppress(OSError):
        fsync_dir(path.parent)
    return (
        f"The database file could not be used ({reason}). It was {how} to {target} "
        f"(nothing was deleted) and the server started with no users or groups."
    )


def _apply_entries(
    state: dict[str, dict[str, Record]],
    entries: Sequence[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> int:
    """Replay journal entries over ``state`` (and the catalog over ``extra``, the other
    tables); the number not understood (skipped)."""
    bad = 0
    for entry in entries:
        op = entry.get("op")
        if op == "catalog" and extra is not None:
            catalog = entry.get("c")
            if isinstance(catalog, dict):
                extra[CATALOG_TABLE] = {"1": catalog}
            else:
                extra.pop(CATALOG_TABLE, None)
            continue
        rtype = entry.get("t")
        if op == "put" and rtype in RTYPES:
            record = entry.get("r")
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                state[rtype][record["id"]] = record
                continue
        elif op == "del" and rtype in RTYPES and isinstance(entry.get("id"), str):
            state[rtype].pop(entry["id"], None)
            continue
        elif op == "clear":
            for table in state.values():
                table.clear()
            continue
        bad += 1
    return bad


def _load_memory(
    memory: MemoryRepository, state: dict[str, dict[str, Record]]
) -> dict[str, list[Record]]:
    """Put the replayed records into ``memory`` in ``_seq`` order; the ones that could not
    be stored, by type."""
    dropped: dict[str, list[Record]] = {}
    unnumbered: list[tuple[str, Record]] = []
    for rtype, table in state.items():
        numbered: list[Record] = []
        for record in table.values():
            seq = record.get("_seq")
            if isinstance(seq, int) and not isinstance(seq, bool):
                numbered.append(record)
            else:
                unnumbered.append((rtype, record))
        numbered.sort(key=_seq_of)
        if numbered:  # past dropped records' numbers too: they may come back by hand
            memory.advance_seq(numbered[-1]["_seq"] + 1)
        for record in numbered:
            try:
                memory.put(rtype, record)
            except ValueError:
                dropped.setdefault(rtype, []).append(record)
    for rtype, record in unnumbered:
        # A hand-edited record without a sequence number: number it after all the others.
        try:
            memory.put(rtype, {**record, "_seq": memory.next_seq()})
        except ValueError:
            dropped.setdefault(rtype, []).append(record)
    return dropped


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


def _save_dropped(path: Path, dropped: dict[str, list[Record]]) -> str:
    """Keep records that could not be loaded in a side file; the warning text."""
    target = _free_name(path, f".dropped-{_utc_stamp()}.json")
    count = sum(len(v) for v in dropped.values())
    ids = ", ".join(str(r.get("id")) for v in dropped.values() for r in v[:5])
    try:
        fd = open_private(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with open(fd, "wb") as f:
            f.write(orjson.dumps(dropped, option=orjson.OPT_INDENT_2))
            f.flush()
            os.fsync(f.fileno())
        where = f"they were saved to {target}"
    except OSError as exc:
        where = f"saving them to {target} failed ({exc})"
    return (
        f"{count} stored records could not be loaded (a duplicate userName or a bad record: "
        f"{ids}{', ...' if count > 5 else ''}); {where}."
    )
