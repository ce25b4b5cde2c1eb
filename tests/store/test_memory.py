"""MemoryRepository: indexes and the ordered cache stay exact through every kind of write."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from scim_desktop.core.repository import GROUP, USER, Record
from scim_desktop.store.memory import MemoryRepository, UserNameConflict


def user(rid: str, seq: int, user_name: str | None = None, **extra: Any) -> Record:
    record: Record = {"id": rid, "_seq": seq, **extra}
    if user_name is not None:
        record["userName"] = user_name
    return record


def group(
    rid: str, seq: int, name: str | None = None, members: Sequence[str] = (), **extra: Any
) -> Record:
    record: Record = {"id": rid, "_seq": seq, "members": [{"value": m} for m in members], **extra}
    if name is not None:
        record["displayName"] = name
    return record


def ids(records: Any) -> list[str]:
    return [r["id"] for r in records]


def test_get_returns_the_stored_dict_itself() -> None:
    repo = MemoryRepository()
    record = user("a", 1, "alice")
    repo.put(USER, record)
    assert repo.get(USER, "a") is record
    assert repo.find_user_by_username("ALICE") is record
    assert repo.ordered(USER)[0] is record
    assert repo.get(USER, "missing") is None
    assert repo.get(GROUP, "a") is None
    assert repo.count(USER) == 1 and repo.count(GROUP) == 0


def test_username_index_is_case_insensitive_and_follows_renames() -> None:
    repo = MemoryRepository()
    repo.put(USER, user("a", 1, "Alice@Example.com"))
    assert repo.find_user_by_username("alice@example.com")["id"] == "a"  # type: ignore[index]
    assert repo.find_user_by_username("ALICE@EXAMPLE.COM")["id"] == "a"  # type: ignore[index]

    repo.put(USER, user("a", 1, "alice2"))  # rename
    assert repo.find_user_by_username("alice@example.com") is None
    assert repo.find_user_by_username("Alice2")["id"] == "a"  # type: ignore[index]

    # The freed name can be taken by someone else.
    repo.put(USER, user("b", 2, "ALICE@example.com"))
    assert repo.find_user_by_username("alice@example.com")["id"] == "b"  # type: ignore[index]

    repo.delete(USER, "a")
    assert repo.find_user_by_username("alice2") is None
    assert repo.find_user_by_username("alice@example.com")["id"] == "b"  # type: ignore[index]

    repo.put(USER, user("c", 3))  # no userName at all: not indexed, no error
    repo.clear()
    assert repo.find_user_by_username("alice@example.com") is None


def test_username_conflict_raises_and_changes_nothing() -> None:
    repo = MemoryRepository()
    repo.put(USER, user("a", 1, "bob"))
    repo.put(USER, user("b", 2, "carol"))
    before = repo.get(USER, "b")
    with pytest.raises(UserNameConflict):
        repo.put(USER, user("b", 2, "BOB", externalId="x"))
    assert repo.get(USER, "b") is before
    assert repo.find_user_by_username("carol") is before
    assert repo.find_by_external_id(USER, "x") == []
    with pytest.raises(UserNameConflict):
        repo.put(USER, user("c", 3, "Bob"))
    assert repo.get(USER, "c") is None
    assert ids(repo.ordered(USER)) == ["a", "b"]
    # Re-putting the holder itself with another case is fine.
    repo.put(USER, user("a", 1, "BOB"))
    assert repo.find_user_by_username("bob")["userName"] == "BOB"  # type: ignore[index]


def test_external_id_index_is_exact_and_per_type() -> None:
    repo = MemoryRepository()
    repo.put(USER, user("u1", 1, "a", externalId="ext"))
    repo.put(USER, user("u2", 2, "b", externalId="ext"))
    repo.put(USER, user("u3", 3, "c", externalId="EXT"))
    repo.put(GROUP, group("g1", 4, "G", externalId="ext"))
    assert ids(repo.find_by_external_id(USER, "ext")) == ["u1", "u2"]
    assert ids(repo.find_by_external_id(USER, "EXT")) == ["u3"]
    assert ids(repo.find_by_external_id(GROUP, "ext")) == ["g1"]
    assert repo.find_by_external_id(GROUP, "EXT") == []

    repo.put(USER, user("u1", 1, "a", externalId="other"))
    assert ids(repo.find_by_external_id(USER, "ext")) == ["u2"]
    assert ids(repo.find_by_external_id(USER, "other")) == ["u1"]
    repo.put(USER, user("u2", 2, "b"))  # externalId removed
    assert repo.find_by_external_id(USER, "ext") == []
    repo.delete(GROUP, "g1")
    assert repo.find_by_external_id(GROUP, "ext") == []


def test_display_name_index_is_case_insensitive_and_seq_ordered() -> None:
    repo = MemoryRepository()
    repo.put(GROUP, group("g3", 30, "Admins"))
    repo.put(GROUP, group("g1", 10, "admins"))
    repo.put(GROUP, group("g2", 20, "Sales"))
    assert ids(repo.find_groups_by_display_name("ADMINS")) == ["g1", "g3"]
    repo.put(GROUP, group("g1", 10, "Former admins"))
    assert ids(repo.find_groups_by_display_name("admins")) == ["g3"]
    assert ids(repo.find_groups_by_display_name("former ADMINS")) == ["g1"]
    repo.delete(GROUP, "g3")
    assert repo.find_groups_by_display_name("admins") == []
    # Users' displayName is not in the group index.
    repo.put(USER, user("u", 40, "u", displayName="Sales"))
    assert ids(repo.find_groups_by_display_name("sales")) == ["g2"]


def test_membership_index_follows_member_changes() -> None:
    repo = MemoryRepository()
    repo.put(GROUP, group("g2", 2, "B", ["u1", "u2"]))
    repo.put(GROUP, group("g1", 1, "A", ["u1", "u1"]))  # duplicate member listed twice
    repo.put(GROUP, group("g3", 3, "C"))
    assert ids(repo.groups_of("u1")) == ["g1", "g2"]
    assert ids(repo.groups_of("u2")) == ["g2"]
    assert repo.groups_of("nobody") == []

    repo.put(GROUP, group("g2", 2, "B", ["u2", "u3"]))  # u1 removed, u3 added
    assert ids(repo.groups_of("u1")) == ["g1"]
    assert ids(repo.groups_of("u3")) == ["g2"]

    repo.put(GROUP, group("g1", 1, "A"))  # members emptied
    assert repo.groups_of("u1") == []
    repo.delete(GROUP, "g2")
    assert repo.groups_of("u2") == [] and repo.groups_of("u3") == []

    # Malformed members do not break indexing.
    repo.put(GROUP, {"id": "g4", "_seq": 4, "members": [{"value": 5}, "x", {"display": "y"}]})
    repo.put(GROUP, {"id": "g5", "_seq": 5, "members": "not a list"})
    assert repo.count(GROUP) == 4
    repo.put(GROUP, group("g6", 6, "D", ["u9"]))
    repo.clear()
    assert repo.groups_of("u9") == []
    assert repo.count(GROUP) == 0


def test_ordered_is_seq_order_and_cached() -> None:
    repo = MemoryRepository()
    for i in range(1, 6):
        repo.put(USER, user(f"u{i}", i * 10))
    first = repo.ordered(USER)
    assert ids(first) == ["u1", "u2", "u3", "u4", "u5"]
    assert repo.ordered(USER) is first  # cached

    # A new record with a higher _seq is appended to the same list.
    repo.put(USER, user("u6", 60))
    assert repo.ordered(USER) is first
    assert ids(first)[-1] == "u6"

    # A replace updates the cached list in place, at the right position.
    replacement = user("u3", 30, "renamed")
    repo.put(USER, replacement)
    assert repo.ordered(USER) is first
    assert first[2] is replacement
    assert ids(first) == ["u1", "u2", "u3", "u4", "u5", "u6"]

    # A delete drops the cache; the list handed out before stays as it was.
    repo.delete(USER, "u2")
    after = repo.ordered(USER)
    assert after is not first
    assert ids(after) == ["u1", "u3", "u4", "u5", "u6"]
    assert ids(first) == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert after[1] is replacement

    # Inserting below the highest _seq still gives _seq order.
    repo.put(USER, user("u0", 5))
    repo.put(USER, user("u25", 25))
    assert ids(repo.ordered(USER)) == ["u0", "u1", "u25", "u3", "u4", "u5", "u6"]

    # A replace that changes _seq (not done by the core, but must stay correct).
    repo.put(USER, user("u0", 100))
    assert ids(repo.ordered(USER)) == ["u1", "u25", "u3", "u4", "u5", "u6", "u0"]

    repo.clear()
    assert list(repo.ordered(USER)) == []
    repo.put(USER, user("n", 200))
    assert ids(repo.ordered(USER)) == ["n"]


def test_ordered_types_are_independent() -> None:
    repo = MemoryRepository()
    repo.put(USER, user("u1", 1))
    repo.put(GROUP, group("g1", 2))
    repo.put(USER, user("u2", 3))
    assert ids(repo.ordered(USER)) == ["u1", "u2"]
    assert ids(repo.ordered(GROUP)) == ["g1"]
    repo.delete(USER, "u1")
    assert ids(repo.ordered(GROUP)) == ["g1"]


def test_next_seq_continues_after_the_highest_loaded() -> None:
    repo = MemoryRepository()
    assert repo.next_seq() == 1
    repo.load({USER: [user("a", 41), user("b", 7)], GROUP: [group("g", 99)]})
    assert ids(repo.ordered(USER)) == ["b", "a"]
    assert repo.next_seq() == 100
    assert repo.next_seq() == 101
    repo.advance_seq(50)  # lower than current: ignored
    assert repo.peek_next_seq() == 102
    repo.clear()
    assert repo.next_seq() == 102  # unique across clears


def test_invalid_records_are_refused() -> None:
    repo = MemoryRepository()
    with pytest.raises(ValueError):
        repo.put(USER, {"_seq": 1})
    with pytest.raises(ValueError):
        repo.put(USER, {"id": "", "_seq": 1})
    with pytest.raises(ValueError):
        repo.put(USER, {"id": "a"})
    with pytest.raises(ValueError):
        repo.put(USER, {"id": "a", "_seq": True})
    with pytest.raises(ValueError):
        repo.put("Widget", {"id": "a", "_seq": 1})
    with pytest.raises(ValueError):
        repo.get("Widget", "a")
    assert repo.count(USER) == 0
    repo.delete(USER, "absent")  # no error


def test_snapshot_is_a_shallow_independent_copy() -> None:
    repo = MemoryRepository()
    a = user("a", 1, "a")
    repo.put(USER, a)
    snap = repo.snapshot()
    repo.put(USER, user("b", 2, "b"))
    repo.delete(USER, "a")
    assert list(snap[USER]) == ["a"]
    assert snap[USER]["a"] is a
    assert snap[GROUP] == {}


def _check_against_model(repo: MemoryRepository, model: dict[str, dict[str, Record]]) -> None:
    """Compare every index with a brute-force answer from ``model``."""
    for rtype in (USER, GROUP):
        expected = sorted(model[rtype].values(), key=lambda r: r["_seq"])
        assert ids(repo.ordered(rtype)) == ids(expected)
        assert repo.count(rtype) == len(expected)
        for ext in {r.get("externalId") for r in expected} | {"missing"}:
            if isinstance(ext, str):
                want = [r for r in expected if r.get("externalId") == ext]
                assert ids(repo.find_by_external_id(rtype, ext)) == ids(want)
    users = model[USER].values()
    for name in {r["userName"] for r in users} | {"nobody"}:
        want = [r for r in users if r["userName"].lower() == name.lower()]
        got = repo.find_user_by_username(name.upper())
        assert (got["id"] if got else None) == (want[0]["id"] if want else None)
    groups = sorted(model[GROUP].values(), key=lambda r: r["_seq"])
    for name in {g["displayName"] for g in groups}:
        want = [g for g in groups if g["displayName"].lower() == name.lower()]
        assert ids(repo.find_groups_by_display_name(name.swapcase())) == ids(want)
    for member in [f"u{i}" for i in range(30)]:
        want = [g for g in groups if member in {m["value"] for m in g["members"]}]
        assert ids(repo.groups_of(member)) == ids(want)


def test_random_operations_keep_every_index_exact() -> None:
    rnd = random.Random(7)
    repo = MemoryRepository()
    model: dict[str, dict[str, Record]] = {USER: {}, GROUP: {}}
    seqs: dict[str, int] = {}
    for step in range(3000):
        action = rnd.random()
        rtype = USER if rnd.random() < 0.6 else GROUP
        rid = f"{rtype[0].lower()}{rnd.randrange(30)}"
        if action < 0.65:
            seq = seqs.get(rid) or repo.next_seq()
            seqs[rid] = seq
            ext = rnd.choice([None, "e1", "E1", "e2"])
            extra = {"externalId": ext} if ext else {}
            if rtype == USER:
                record = user(rid, seq, f"Name{rnd.randrange(40)}", **extra)
                taken = repo.find_user_by_username(record["userName"])
                if taken is not None and taken["id"] != rid:
                    with pytest.raises(UserNameConflict):
                        repo.put(rtype, record)
                    continue
            else:
                members = [f"u{rnd.randrange(30)}" for _ in range(rnd.randrange(4))]
                record = group(rid, seq, rnd.choice(["Ops", "OPS", "dev"]), members, **extra)
            repo.put(rtype, record)
            model[rtype][rid] = record
        elif action < 0.95:
            repo.delete(rtype, rid)
            model[rtype].pop(rid, None)
            seqs.pop(rid, None)
        elif action < 0.96:
            repo.clear()
            model = {USER: {}, GROUP: {}}
            seqs.clear()
        if step % 7 == 0 or rnd.random() < 0.1:
            _check_against_model(repo, model)
    _check_against_model(repo, model)


def test_external_id_shared_then_released() -> None:
    """One holder, then three sharing the value, then back down to one and none."""
    repo = MemoryRepository()
    for i, rid in enumerate(("u1", "u2", "u3"), start=1):
        repo.put(USER, user(rid, i, rid, externalId="ext"))
    repo.put(USER, user("u2", 2, "u2", externalId="ext"))  # re-put with the same value
    assert ids(repo.find_by_external_id(USER, "ext")) == ["u1", "u2", "u3"]
    repo.delete(USER, "u2")
    repo.put(USER, user("u3", 3, "u3", externalId="moved"))
    assert ids(repo.find_by_external_id(USER, "ext")) == ["u1"]
    assert ids(repo.find_by_external_id(USER, "moved")) == ["u3"]
    repo.put(USER, user("u4", 4, "u4", externalId="ext"))
    assert ids(repo.find_by_external_id(USER, "ext")) == ["u1", "u4"]
    repo.delete(USER, "u1")
    repo.delete(USER, "u4")
    assert repo.find_by_external_id(USER, "ext") == []


def test_put_group_members_keeps_every_index_exact() -> None:
    """A group replaced through put_group_members (the members removed and added named by
    the caller) leaves the same indexes as a full put, mixed with puts and deletes."""
    rnd = random.Random(11)
    repo = MemoryRepository()
    model: dict[str, dict[str, Record]] = {USER: {}, GROUP: {}}
    for i in range(5):
        record = group(f"g{i}", repo.next_seq(), "Ops", [f"u{j}" for j in range(i, i + 8)])
        repo.put(GROUP, record)
        model[GROUP][record["id"]] = record
    for step in range(2000):
        gid = f"g{rnd.randrange(6)}"
        old = model[GROUP].get(gid)
        if old is None or rnd.random() < 0.1:
            seq = old["_seq"] if old else repo.next_seq()
            record = group(gid, seq, "Dev", [f"u{rnd.randrange(40)}" for _ in range(5)])
            repo.put(GROUP, record)
            model[GROUP][gid] = record
        elif rnd.random() < 0.05:
            repo.delete(GROUP, gid)
            del model[GROUP][gid]
        else:
            current = [m["value"] for m in old["members"]]
            removed = set(rnd.sample(current, min(len(set(current)), rnd.randrange(3))))
            added = [m for m in {f"u{rnd.randrange(40)}" for _ in range(3)} if m not in current]
            members = [m for m in current if m not in removed] + added
            name = rnd.choice([old.get("displayName"), "OPS", "qa"])
            record = group(gid, old["_seq"], name, members, externalId=rnd.choice(["e", "f"]))
            repo.put_group_members(record, added, removed)
            model[GROUP][gid] = record
        if step % 5 == 0:
            _check_against_model(repo, model)
    _check_against_model(repo, model)
    with pytest.raises(KeyError):
        repo.put_group_members(group("missing", 99, "X", ["u1"]), ["u1"], ())
    assert repo.get(GROUP, "missing") is None
