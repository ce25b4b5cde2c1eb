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
either way (``tests/core/test_group_patch.py`` compares both on random operation sequences).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from scim_desktop.core.repository import GROUP, USER, Record, Repository

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
    """The effect of a PATCH on a group: members removed (ids of stored members), members
    appended in order (``{"value", "type"}`` as ``_check_members`` stores them), and the new
    displayName (None: unchanged)."""

    removed: set[str] = field(default_factory=set)
    added: dict[str, dict[str, str]] = field(default_factory=dict)
    display_name: str | None = None


def _is_member(repo: Repository, gid: str, mid: str) -> bool:
    # The repository's member -> groups index: O(groups of this member), not O(members).
    return any(g["id"] == gid for g in repo.groups_of(mid))


def _add(plan: MemberPlan, repo: Repository, gid: str, value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    for member in value:
        if not isinstance(member, dict) or not member.keys() <= _MEMBER_KEYS:
            return False
        mid, mtype, display = member.get("value"), member.get("type"), member.get("display")
        if not isinstance(mid, str) or not mid or mid == gid:
            return False
        if display is not None and not isinstance(display, str):
            return False
        if mtype is None:
            found = USER if repo.get(USER, mid) is not None else GROUP
        elif mtype in (USER, GROUP):
            found = mtype
        else:
            return False
        if repo.get(found, mid) is None:
            return False  # the general engine answers 400 invalidValue
        if mid in plan.added:
            continue
        if mid not in plan.removed and _is_member(repo, gid, mid):
            continue  # already a member: nothing to add (RFC 7644 §3.5.2.1)
        plan.added[mid] = {"value": mid, "type": found}
    return True


def _remove(plan: MemberPlan, repo: Repository, gid: str, mid: str) -> bool:
    if mid in plan.added:
        del plan.added[mid]
        return True
    if mid in plan.removed or not _is_member(repo, gid, mid):
        return False  # no target: the general engine answers 400 noTarget
    plan.removed.add(mid)
    return True


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
        elif op == "remove" and isinstance(path, str) and "value" not in operation:
            match = _MEMBER_BY_VALUE.fullmatch(path)
            if match is None or not _remove(plan, repo, gid, match.group(1)):
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
    if len(plan.removed) >= len(stored) and not plan.added:
        return None  # an emptied group: the general engine decides what remains
    return plan


def _display_name(plan: MemberPlan, value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    plan.display_name = value
    return True
