"""The PATCH operations Okta sends to a group, planned without touching every member.

Okta changes a group's membership one PATCH at a time (``add`` of ``members``, ``remove`` of
``members[value eq "<id>"]``) and follows every change with a path-less ``replace`` of
``{id, displayName}`` (OKTA.md). The general engine (``core/patch.py``) copies, patches and
re-validates the whole resource, which for a group of 100,000 members held the server's loop
for 2-3 s per request. :func:`plan_member_patch` recognises these shapes and works out the
result from the operations alone, looking members up in the repository's membership index;
:meth:`ScimService.patch` then builds the new record by list operations at C speed.

Anything else, and anything that would end in an error, gives None, and the request goes
through the general engine, which is the reference: results, errors and versions are the same
either way (``tests/core/test_resources_group_patch.py`` compares both on random operation
sequences).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from scim_desktop.core.projection import Projection
from scim_desktop.core.repository import GROUP, USER, Record, Repository
from scim_desktop.core.schemas import RESOURCE_TYPES

#: ``members[value eq "<id>"]`` as Okta writes it (no escapes in the id; anything fancier goes
#: through the general engine and its filter parser).
_MEMBER_BY_VALUE = re.compile(r'\s*members\s*\[\s*value\s+eq\s+"([^"\\]+)"\s*\]\s*', re.I)
_OP_KEYS = frozenset({"op", "path", "value"})
_MEMBER_KEYS = frozenset({"value", "display", "type"})
#: Below this many stored members the general engine costs little: keep one code path.
MIN_MEMBERS = 64
#: The general engine's operation limit (core/patch.py MAX_OPERATIONS) is enforced there.
MAX_FAST_OPERATIONS = 1000


@dataclass(slots=True)
class MemberPlan:
    """The effect of a PATCH on a group: the members it starts from (``base``: None for the
    stored ones, else the list a ``replace`` of ``members`` gave), the ids removed from them,
    members appended in order (``{"value", "type"}`` as ``_check_members`` stores them), and
    the new displayName (None: unchanged)."""

    removed: set[str] = field(default_factory=set)
    added: dict[str, dict[str, str]] = field(default_factory=dict)
    display_name: str | None = None
    base: list[dict[str, str]] | None = None
    base_ids: set[str] | None = None

    def has(self, repo: Repository, gid: str, mid: str) -> bool:
        """Whether ``mid`` is a member of group ``gid`` at this point of the operations."""
        if mid in self.added:
            return True
        if mid in self.removed:
            return False
        if self.base_ids is not None:
            return mid in self.base_ids
        return _is_member(repo, gid, mid)


def _is_member(repo: Repository, gid: str, mid: str) -> bool:
    # The repository's member -> groups index: O(groups of this member), not O(members).
    return any(g["id"] == gid for g in repo.groups_of(mid))


def _members(repo: Repository, gid: str, value: Any) -> list[dict[str, str]] | None:
    """The values of an ``add`` or ``replace`` of ``members`` as ``_check_members`` would
    store them (duplicates kept here), or None when it would refuse one (or might)."""
    if not isinstance(value, list) or not value:
        return None
    found_in = tables(repo)
    users, groups = found_in[USER], found_in[GROUP]
    out: list[dict[str, str]] = []
    for member in value:
        if not isinstance(member, dict) or not member.keys() <= _MEMBER_KEYS:
            return None
        mid, mtype, display = member.get("value"), member.get("type"), member.get("display")
        if not isinstance(mid, str) or not mid or mid == gid:
            return None
        if display is not None and not isinstance(display, str):
            return None
        if mtype is None:
            found = USER if mid in users else GROUP
        elif mtype in (USER, GROUP):
            found = mtype
        else:
            return None
        if mid not in (users if found == USER else groups):
            return None  # the general engine answers 400 invalidValue
        out.append({"value": mid, "type": found})
    return out


class _Lookup(Mapping[str, Record]):
    """A read-only id -> record mapping over a repository's ``get`` (see :func:`tables`)."""

    def __init__(self, repo: Repository, rtype: str) -> None:
        self._repo, self._rtype = repo, rtype

    def __getitem__(self, key: str) -> Record:
        record = self._repo.get(self._rtype, key)
        if record is None:
            raise KeyError(key)
        return record

    def __iter__(self) -> Iterator[str]:
        return (r["id"] for r in self._repo.ordered(self._rtype))

    def __len__(self) -> int:
        return self._repo.count(self._rtype)


def member_ids(members: Any) -> set[str]:
    """The ids a group's stored ``members`` list (what the membership index holds; values
    that are not strings, from a hand-edited data file, are not indexed)."""
    if not isinstance(members, list):
        return set()
    return {m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)}


def tables(repo: Repository) -> dict[str, Mapping[str, Record]]:
    """The id -> record tables of Users and Groups, to read only: the stores' own dicts
    (``by_id``, in ``store/``) when the repository lends them, else mappings over ``get``.
    For loops over many ids (rendering or checking 100,000 members), where a ``get`` call
    per id was most of the time."""
    by_id = getattr(repo, "by_id", None)
    if by_id is not None:
        return {USER: by_id(USER), GROUP: by_id(GROUP)}
    return {USER: _Lookup(repo, USER), GROUP: _Lookup(repo, GROUP)}


def _add(plan: MemberPlan, repo: Repository, gid: str, value: Any) -> bool:
    members = _members(repo, gid, value)
    if members is None:
        return False
    for member in members:
        mid = member["value"]
        if not plan.has(repo, gid, mid):  # else nothing to add (RFC 7644 §3.5.2.1)
            plan.added[mid] = member
    return True


def _replace(plan: MemberPlan, repo: Repository, gid: str, value: Any) -> bool:
    """Push Now: all members replaced (RFC 7644 §3.5.2.3), most often by the same list."""
    members = _members(repo, gid, value)
    if members is None:
        return False
    base: dict[str, dict[str, str]] = {}
    for member in members:
        base.setdefault(member["value"], member)  # the first of duplicates, as stored
    plan.base = list(base.values())
    plan.base_ids = set(base)
    plan.removed = set()
    plan.added = {}
    return True


def _remove(plan: MemberPlan, repo: Repository, gid: str, mid: str, stored: list[Any]) -> bool:
    if mid in plan.added:
        del plan.added[mid]
        return True
    if plan.has(repo, gid, mid):
        plan.removed.add(mid)
        return True
    # Not a member (Okta retries removals): the filter matches nothing and nothing is
    # removed, as in the general engine -- unless a member's id equals this one ignoring case
    # ("value" is not caseExact, RFC 7643 §2.2), which the general engine would remove. That
    # takes one pass over the members, only in this rare case.
    folded = mid.lower()
    current = plan.base if plan.base is not None else stored
    values = (m.get("value") for m in current if isinstance(m, dict))
    candidates = itertools.chain(values, plan.added)
    return not any(isinstance(v, str) and v.lower() == folded for v in candidates)


def plan_member_patch(previous: Record, operations: Any, repo: Repository) -> MemberPlan | None:
    """The plan for these PATCH ``Operations`` on the stored group ``previous``, or None when
    they are not only Okta's membership changes and renames (or would fail)."""
    gid = previous["id"]
    stored = previous.get("members")
    if not isinstance(stored, list) or len(stored) < MIN_MEMBERS:
        return None
    if not isinstance(operations, list) or not 0 < len(operations) <= MAX_FAST_OPERATIONS:
        return None
    plan = MemberPlan()
    for operation in operations:
        if not isinstance(operation, dict) or not operation.keys() <= _OP_KEYS:
            return None
        op, path, value = operation.get("op"), operation.get("path"), operation.get("value")
        op = op.lower() if isinstance(op, str) else None
        if op == "add" and isinstance(path, str) and path.strip().lower() == "members":
            if not _add(plan, repo, gid, value):
                return None
        elif op == "replace" and isinstance(path, str) and path.strip().lower() == "members":
            if not _replace(plan, repo, gid, value):
                return None
        elif op == "remove" and isinstance(path, str) and "value" not in operation:
            match = _MEMBER_BY_VALUE.fullmatch(path)
            if match is None or not _remove(plan, repo, gid, match.group(1), stored):
                return None
        elif op == "replace" and path is None and isinstance(value, dict):
            # Okta's rename: {"id": <this group>, "displayName": ...}.
            if not value.keys() <= {"id", "displayName"} or value.get("id", gid) != gid:
                return None
            if "displayName" in value and not _display_name(plan, value["displayName"]):
                return None
        elif op == "replace" and isinstance(path, str) and path.strip().lower() == "displayname":
            if not _display_name(plan, value):
                return None
        else:
            return None
    current = plan.base if plan.base is not None else stored
    if len(plan.removed) >= len(current) and not plan.added:
        return None  # an emptied group: the general engine decides what remains
    return plan


def _display_name(plan: MemberPlan, value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    plan.display_name = value
    return True


@dataclass(slots=True)
class MemberResult:
    """A group's members after a :class:`MemberPlan`, and how they differ from the stored
    ones: the ids added and removed (for the membership index), the members appended to the
    kept ones (None after a Push Now, whose list is new: the durable store then journals the
    whole group), whether the name changed, and whether anything did."""

    members: list[dict[str, Any]]
    added_ids: Collection[str]
    removed_ids: Collection[str]
    appended: list[dict[str, str]] | None
    renamed: bool
    changed: bool


def apply_plan(previous: Record, plan: MemberPlan) -> MemberResult:
    """The members of the stored group ``previous`` after ``plan``: list operations at C
    speed, plus one pass to filter when members are removed."""
    renamed = plan.display_name is not None and plan.display_name != previous.get("displayName")
    stored: list[dict[str, Any]] = previous["members"]
    members = stored if plan.base is None else plan.base
    if plan.removed:
        removed = plan.removed
        members = [m for m in members if m["value"] not in removed]
    members = members + list(plan.added.values())
    if plan.base is None:
        added_ids: Collection[str] = plan.added.keys()
        removed_ids: Collection[str] = plan.removed
        appended: list[dict[str, str]] | None = list(plan.added.values())
    else:  # Push Now: the difference of the two lists (sets: C speed)
        before, after = member_ids(stored), member_ids(members)
        added_ids, removed_ids, appended = after - before, before - after, None
    changed = renamed or members != stored
    return MemberResult(members, added_ids, removed_ids, appended, renamed, changed)


def members_wanted(projection: Projection) -> bool:
    """Whether a group's ``members`` survive ``projection`` (RFC 7644 §3.9): not when
    excluded, nor when ``attributes`` lists neither them nor a sub-attribute of them."""

    def names_members(path: Any) -> bool:
        return path.attr.lower() == "members" and (
            path.urn is None or path.urn.lower() == RESOURCE_TYPES[GROUP].schema.id.lower()
        )

    if projection.include:
        return any(names_members(p) or p.attr == "" for p in projection.include)
    return not any(names_members(p) and p.sub is None for p in projection.exclude)
