"""The TinyDB data file behind :class:`~scim_desktop.store.tinydb_store.DurableStore`: its
layout, the storage that writes it atomically, and reading and repairing it at start-up.

Imported only by :mod:`scim_desktop.store.tinydb_store`, which re-exports the public names
here (importers use it); the running store (memory, journal, folds, closing) lives there.

The file is a normal TinyDB document: tables ``Users`` and ``Groups`` (doc ids "1", "2", ...
-> records, including ``_seq`` and ``_password``) and ``_meta`` (doc "1": ``format`` and
``next_seq``), and ``_catalog`` (doc "1": the entitlement catalog in its file format,
``core/catalog.py``; absent without one). Tables this version does not know are kept as they
are. :class:`AtomicOrjsonStorage` writes it (one atomic replace, a thousand records per line,
:func:`_encode_document`) and reads it back a line at a time (:func:`_read_lines`);
:func:`build_document` turns a snapshot of memory into the document; it runs on the fold
worker thread.

Start-up (``DurableStore.open``) uses the rest: :func:`_parse_document` checks the document's
shape, :func:`_apply_entries` replays journal entries over it, :func:`_load_memory` fills the
:class:`~scim_desktop.store.memory.MemoryRepository`; an unusable file is moved aside
(:func:`_move_aside`) and records that cannot be loaded are saved beside it
(:func:`_save_dropped`), never deleted.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from tinydb.storages import Storage

from scim_desktop.core.repository import GROUP, USER, Record
from scim_desktop.store.journal import MEMBERS_OP, fsync_dir
from scim_desktop.store.memory import RTYPES, MemoryRepository
from scim_desktop.store.private import make_private_dir, open_private

#: Version of the file layout, stored in ``_meta``. A file with a higher one is not read.
FORMAT_VERSION = 1
#: TinyDB table per resource type.
TABLES: dict[str, str] = {USER: "Users", GROUP: "Groups"}
META_TABLE = "_meta"
#: The entitlement catalog's table: doc "1" is the catalog (``Catalog.to_json()``).
CATALOG_TABLE = "_catalog"

_seq_of = itemgetter("_seq")
_CHUNK_RECORDS = 1000  # records serialized per orjson call; see AtomicOrjsonStorage.write


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


# --- start-up: reading, replaying, repairing ---------------------------------------------------


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
        elif op == MEMBERS_OP and rtype == GROUP:
            if _apply_members(state[GROUP], entry):
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


def _apply_members(groups: dict[str, Record], entry: dict[str, Any]) -> bool:
    """Replay a ``members`` entry (``store/journal.py``): the group's new state without its
    members, the version it was made from, the member ids removed and the members appended.
    Applied only to that very version: over a snapshot that already holds the change (the
    segments a fold covered, still there after a crash before their deletion) the group has
    a later version and the entry is skipped, so replay stays exact and idempotent in order.
    False for an entry that is not understood."""
    record, base = entry.get("r"), entry.get("base")
    removed, added = entry.get("del"), entry.get("add")
    if not (
        isinstance(record, dict)
        and isinstance(record.get("id"), str)
        and isinstance(base, str)
        and isinstance(removed, list)
        and isinstance(added, list)
    ):
        return False
    old = groups.get(record["id"])
    meta = old.get("meta") if old is not None else None
    if not isinstance(meta, dict) or meta.get("version") != base:
        return True  # the snapshot holds this change already (or the group is gone)
    members = old.get("members") if old is not None else None
    if not isinstance(members, list):
        return False
    doomed = set(removed)
    new = dict(record)  # "members" is in it (null), where the stored record has it
    new["members"] = [
        m
        for m in members
        if not (isinstance(m, dict) and isinstance(m.get("value"), str) and m["value"] in doomed)
    ] + added
    groups[record["id"]] = new
    return True


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
