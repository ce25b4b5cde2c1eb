"""In-memory repository: records by id plus the indexes SCIM lookups need.

Every read is answered from dicts and sets in time proportional to the answer, never by
scanning all records (DESIGN.md, "Storage"): the only O(n) step is rebuilding the cached
``_seq``-ordered list after a delete, and that happens lazily on the next ``ordered()``.

Records are never copied: the repository stores and returns the caller's dicts, which
everyone treats as immutable (see :mod:`scim_desktop.core.repository`). That is also why a
snapshot for the background writer is just a shallow copy of the id -> record dicts.

Thread rule: like every Repository, this one is used on the server's IOLoop thread only.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from scim_desktop.core.repository import GROUP, USER, Record

#: The resource types this repository stores.
RTYPES: tuple[str, str] = (USER, GROUP)

_seq_of = itemgetter("_seq")


def _folded(value: Any) -> str | None:
    """The case-insensitive index key of a userName / displayName (None: not indexed)."""
    # Lower-cased like the core's other case-insensitive comparisons (core/paths.py).
    return value.lower() if isinstance(value, str) else None


def _member_ids(group: Record) -> set[str]:
    members = group.get("members")
    if not isinstance(members, list):
        return set()
    return {m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)}


def validate_record(rtype: str, record: Any) -> None:
    """Raise ValueError unless ``record`` can be stored: a dict with a non-empty string
    ``id`` and an integer ``_seq``."""
    if rtype not in RTYPES:
        raise ValueError(f"unknown resource type {rtype!r}")
    if not isinstance(record, dict):
        raise ValueError(f"a {rtype} record must be a dict, not {type(record).__name__}")
    rid = record.get("id")
    if not isinstance(rid, str) or not rid:
        raise ValueError(f"a {rtype} record needs a non-empty string 'id'")
    seq = record.get("_seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ValueError(f"{rtype} {rid!r} needs an integer '_seq'")


class UserNameConflict(ValueError):
    """A put would give two users the same userName (ignoring case).

    The core checks uniqueness first and answers 409 (RFC 7644 §3.3); this is the store's
    guard that keeps the unique index true if that check is ever missed.
    """


class MemoryRepository:
    """The :class:`~scim_desktop.core.repository.Repository` for "User" and "Group", in memory.

    Indexes, all kept exact by :meth:`put`, :meth:`delete` and :meth:`clear`:

    - lower-cased userName -> user id (unique),
    - externalId -> ids, per resource type (exact: caseExact true),
    - lower-cased Group displayName -> group ids,
    - member id -> ids of the groups whose ``members[].value`` lists it.

    Call every method on the server's IOLoop thread only.
    """

    #: See __init__.
    group_writes: int = 0

    def __init__(self) -> None:
        # Insertion-ordered; records are stored as given (never copied).
        self._records: dict[str, dict[str, Record]] = {USER: {}, GROUP: {}}
        # Cached ``_seq``-ordered lists; None = invalid, rebuilt on the next ordered().
        self._ordered: dict[str, list[Record] | None] = {USER: [], GROUP: []}
        self._user_names: dict[str, str] = {}
        # externalId -> the id holding it, or a set of ids when several do (a set per entry
        # was ~200 bytes per user: 20 MB at 100,000 users, for a value that is nearly always
        # unique).
        self._external_ids: dict[str, dict[str, str | set[str]]] = {USER: {}, GROUP: {}}
        self._display_names: dict[str, set[str]] = {}
        self._groups_by_member: dict[str, set[str]] = {}
        self._next_seq = 1
        #: Counts writes that can change any user's derived ``groups`` (every group put or
        #: delete, and clear): while it stands still, no membership changed.
        self.group_writes = 0

    # --- reads -----------------------------------------------------------------------------

    def _table(self, rtype: str) -> dict[str, Record]:
        try:
            return self._records[rtype]
        except KeyError:
            raise ValueError(f"unknown resource type {rtype!r}") from None

    def get(self, rtype: str, id: str) -> Record | None:
        """The record with this id, or None. IOLoop thread only."""
        return self._table(rtype).get(id)

    def by_id(self, rtype: str) -> Mapping[str, Record]:
        """The id -> record table of ``rtype`` itself, to read only (IOLoop thread only): for
        loops over many ids, such as rendering a group of 100,000 members, where a
        :meth:`get` call per id was most of the time."""
        return self._table(rtype)

    def ordered(self, rtype: str) -> Sequence[Record]:
        """All records of ``rtype`` in ascending ``_seq`` order (IOLoop thread only).

        The list is the cache itself: read it, slice it, never change it. It is valid until
        the next write: a put may append to or replace in it; a delete drops it (a list
        already handed out stays as it was).
        """
        cached = self._ordered.get(rtype)
        if cached is None:
            # Dict order is nearly always _seq order already, so this sort is ~O(n).
            cached = sorted(self._table(rtype).values(), key=_seq_of)
            self._ordered[rtype] = cached
        return cached

    def count(self, rtype: str) -> int:
        """How many records of ``rtype`` there are. IOLoop thread only."""
        return len(self._table(rtype))

    def _by_seq(self, table: dict[str, Record], ids: Iterable[str]) -> list[Record]:
        found = [table[i] for i in ids if i in table]
        found.sort(key=_seq_of)
        return found

    def find_user_by_username(self, user_name: str) -> Record | None:
        """The user whose userName equals ``user_name`` ignoring case, or None. IOLoop thread
        only."""
        key = _folded(user_name)
        rid = self._user_names.get(key) if key is not None else None
        return self._records[USER].get(rid) if rid is not None else None

    def find_by_external_id(self, rtype: str, external_id: str) -> list[Record]:
        """Records of ``rtype`` whose externalId equals ``external_id`` exactly, in ``_seq``
        order. IOLoop thread only."""
        table = self._table(rtype)
        ids = self._external_ids[rtype].get(external_id, ())
        return self._by_seq(table, (ids,) if isinstance(ids, str) else ids)

    def find_groups_by_display_name(self, display_name: str) -> list[Record]:
        """Groups whose displayName equals ``display_name`` ignoring case, in ``_seq`` order.
        IOLoop thread only."""
        key = _folded(display_name)
        ids = self._display_names.get(key, ()) if key is not None else ()
        return self._by_seq(self._records[GROUP], ids)

    def groups_of(self, member_id: str) -> list[Record]:
        """Groups listing ``member_id`` as a direct member, in ``_seq`` order. IOLoop thread
        only."""
        return self._by_seq(self._records[GROUP], self._groups_by_member.get(member_id, ()))

    def next_seq(self) -> int:
        """Reserve the next creation sequence number. IOLoop thread only."""
        seq = self._next_seq
        self._next_seq = seq + 1
        return seq

    def peek_next_seq(self) -> int:
        """The number :meth:`next_seq` would return, without reserving it."""
        return self._next_seq

    def advance_seq(self, next_seq: int) -> None:
        """Make :meth:`next_seq` return at least ``next_seq`` (for a loaded ``_meta``)."""
        if next_seq > self._next_seq:
            self._next_seq = next_seq

    # --- writes ----------------------------------------------------------------------------

    def put(self, rtype: str, record: Record) -> None:
        """Insert or replace the record with ``record["id"]`` (IOLoop thread only).

        Raises ValueError for a record without a string ``id`` or an integer ``_seq``, and
        :class:`UserNameConflict` when another user already has this userName ignoring case;
        in both cases nothing changes.
        """
        validate_record(rtype, record)
        table = self._records[rtype]
        rid: str = record["id"]
        if rtype == USER:
            key = _folded(record.get("userName"))
            if key is not None:
                holder = self._user_names.get(key)
                if holder is not None and holder != rid:
                    raise UserNameConflict(
                        f"userName {record['userName']!r} is already used by user {holder!r}"
                    )
        old = table.get(rid)
        if old is not None:
            self._unindex(rtype, old)
        table[rid] = record
        if rtype == GROUP:
            self.group_writes += 1
        self._index(rtype, record)
        self._replaced_in_order(rtype, old, record)

    def put_group_members(
        self,
        record: Record,
        added: Iterable[str],
        removed: Iterable[str],
        *,
        appended: Sequence[Record] | None = None,
    ) -> None:
        """Replace a stored group with ``record`` whose members are the stored ones less
        ``removed`` plus ``added`` (member ids), the caller's promise: only those members'
        index entries change, so a one-member change to a group of 100,000 costs O(1) here,
        not O(members) as :meth:`put` does. ``appended`` is for the durable store's journal
        (``DurableStore.put_group_members``). IOLoop thread only; raises like :meth:`put`,
        and KeyError when the group is not stored."""
        validate_record(GROUP, record)
        rid: str = record["id"]
        table = self._records[GROUP]
        old = table[rid]
        self._unindex(GROUP, old, members=False)
        table[rid] = record
        self.group_writes += 1
        self._index(GROUP, record, members=False)
        by_member = self._groups_by_member
        for member in removed:
            _discard(by_member, member, rid)
        for member in added:
            by_member.setdefault(member, set()).add(rid)
        self._replaced_in_order(GROUP, old, record)

    def _replaced_in_order(self, rtype: str, old: Record | None, record: Record) -> None:
        """Keep the ``_seq``-ordered cache right after ``old`` was replaced by ``record``."""
        seq: int = record["_seq"]
        cache = self._ordered[rtype]
        if cache is not None:
            if old is None:
                if not cache or cache[-1]["_seq"] < seq:
                    cache.append(record)  # the usual case: a new record, the highest _seq
                else:
                    self._ordered[rtype] = None
            elif old.get("_seq") == seq:
                i = bisect_left(cache, seq, key=_seq_of)
                if i < len(cache) and cache[i] is old:
                    cache[i] = record
                else:  # duplicate _seq values: not worth a search, rebuild later
                    self._ordered[rtype] = None
            else:
                self._ordered[rtype] = None
        if seq >= self._next_seq:
            self._next_seq = seq + 1

    def delete(self, rtype: str, id: str) -> None:
        """Remove the record with this id; no error when absent. IOLoop thread only."""
        old = self._table(rtype).pop(id, None)
        if old is not None:
            self._unindex(rtype, old)
            self._ordered[rtype] = None
            if rtype == GROUP:
                self.group_writes += 1

    def clear(self) -> None:
        """Remove every record of every type. Sequence numbers keep counting up (they are
        unique across restarts). IOLoop thread only."""
        for rtype in RTYPES:
            self._records[rtype] = {}
            self._ordered[rtype] = []
            self._external_ids[rtype] = {}
        self._user_names = {}
        self._display_names = {}
        self._groups_by_member = {}
        self.group_writes += 1

    def load(self, records: Mapping[str, Iterable[Record]]) -> None:
        """Bulk insert (start-up): ``{rtype: records}``, each type put in ``_seq`` order so
        the ordered cache is built by appends. Raises like :meth:`put`; records before the
        failing one stay stored."""
        for rtype, recs in records.items():
            for record in sorted(recs, key=_seq_of):
                self.put(rtype, record)

    def snapshot(self) -> dict[str, dict[str, Record]]:
        """Shallow copies of the id -> record dicts (cheap: the records are shared, which is
        safe because they are immutable). For the background writer."""
        return {rtype: dict(table) for rtype, table in self._records.items()}

    # --- indexes ---------------------------------------------------------------------------

    def _index(self, rtype: str, record: Record, *, members: bool = True) -> None:
        rid: str = record["id"]
        ext = record.get("externalId")
        if isinstance(ext, str):
            index = self._external_ids[rtype]
            holder = index.get(ext)
            if holder is None or holder == rid:
                index[ext] = rid
            elif isinstance(holder, str):
                index[ext] = {holder, rid}
            else:
                holder.add(rid)
        if rtype == USER:
            key = _folded(record.get("userName"))
            if key is not None:
                self._user_names[key] = rid
        else:
            key = _folded(record.get("displayName"))
            if key is not None:
                self._display_names.setdefault(key, set()).add(rid)
            for member in _member_ids(record) if members else ():
                self._groups_by_member.setdefault(member, set()).add(rid)

    def _unindex(self, rtype: str, record: Record, *, members: bool = True) -> None:
        rid: str = record["id"]
        ext = record.get("externalId")
        if isinstance(ext, str):
            index = self._external_ids[rtype]
            holder = index.get(ext)
            if holder == rid:
                del index[ext]
            elif isinstance(holder, set):
                holder.discard(rid)
                if len(holder) == 1:
                    index[ext] = holder.pop()
        if rtype == USER:
            key = _folded(record.get("userName"))
            if key is not None and self._user_names.get(key) == rid:
                del self._user_names[key]
        else:
            key = _folded(record.get("displayName"))
            if key is not None:
                _discard(self._display_names, key, rid)
            for member in _member_ids(record) if members else ():
                _discard(self._groups_by_member, member, rid)


def _discard(index: dict[str, set[str]], key: str, rid: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(rid)
        if not ids:
            del index[key]
