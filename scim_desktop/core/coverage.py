"""Lifecycle coverage: Okta's OIN test plan and its other lifecycle steps, ticked off from traffic.

:class:`Coverage` holds a checklist (:data:`ITEMS`) and is fed answered requests one at a time
(:meth:`Coverage.add`), each as an :class:`Exchange`: the fields a request record carries
(``server/events.RequestRecord``, a ``--log jsonl`` line, a HAR entry), the Okta step id
included (``core/okta_steps.STEPS``). An item is proved by the steps it lists; each such request
is evidence, and an answer Okta would fail (a 4xx/5xx, a dropped connection, or a wrong answer:
a create answered 200 instead of 201, an existence check that is not a ListResponse, ...) marks
the item ``failed`` with the reason. What Okta expects of each step is judged once, in
``core/okta_expect.py``: every problem it finds fails the item except a 429 Okta will retry
(its test suites' findings count: the checklist is the OIN test plan). Items traffic cannot
prove (suspending a user in Okta sends nothing to the app) are ``manual``: the user ticks them
(:meth:`Coverage.tick`).

Every expectation comes from OKTA.md (its section is named beside the item). The module is pure:
no I/O, no clock, no Qt or Tornado; it is not thread-safe (feed it from one thread).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from scim_desktop.core.okta_expect import Problem, expect, is_failure
from scim_desktop.core.okta_expect_answers import json_or_none

__all__ = [
    "ITEMS",
    "MAX_EVIDENCE",
    "Coverage",
    "Evidence",
    "Exchange",
    "Item",
    "ItemState",
    "Status",
    "item_by_id",
    "problems_of",
]

Status = Literal["covered", "failed", "not_seen", "manual"]
#: Evidence kept per item and kind (passing / failing); the count goes on past it. A long import
#: proves its item with the first pages, and a session of hours must not grow without bound.
MAX_EVIDENCE = 50


@dataclass(frozen=True, slots=True)
class Exchange:
    """One answered request, as recorded (what the checklist needs of a RequestRecord)."""

    id: str  # the record's id, or its place in a file ("session.har#12")
    time: str  # RFC 3339, as recorded
    method: str
    path: str  # as requested (with the base path)
    query: str
    status: int  # 0: no answer was sent
    request_body: str
    response_body: str
    okta_step: str | None
    okta_label: str | None = None
    okta_explanation: str | None = None
    retry_gives_up: bool = False  # a 429 after which Okta stops retrying

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the checklist."""

    id: str
    title: str
    proof: str  # what in traffic proves it
    okta_needs: str  # what Okta needs of the app for it (OKTA.md)
    steps: tuple[str, ...] = ()  # the step ids that are its evidence; () for a manual item
    manual: bool = False


@dataclass(frozen=True, slots=True)
class Evidence:
    """A request that bears on an item: ``ok`` False when Okta would have failed it."""

    record_id: str
    time: str
    method: str
    target: str
    status: int
    label: str
    ok: bool
    reason: str = ""  # why it fails (empty when ok)
    okta_effect: str = ""  # what Okta does with that answer (core/okta_expect.Problem)
    fix: str = ""  # how to fix the server


@dataclass(frozen=True, slots=True)
class ItemState:
    item: Item
    status: Status
    evidence: tuple[Evidence, ...]  # failures first, then passes, each in arrival order
    count: int  # requests that bore on the item (evidence keeps at most MAX_EVIDENCE each)
    ticked: bool = False  # a manual item the user ticked

    @property
    def reason(self) -> str:
        """The first failure's reason (empty unless failed)."""
        return next((e.reason for e in self.evidence if not e.ok), "")


def _item(
    item_id: str, title: str, proof: str, needs: str, *steps: str, manual: bool = False
) -> Item:
    return Item(item_id, title, proof, needs, tuple(steps), manual)


# --- the checklist (OKTA.md sections in comments) ------------------------------------------------
ITEMS: tuple[Item, ...] = (
    # "User lifecycle": Test API credentials.
    _item(
        "test_credentials",
        "Test API credentials",
        "the small GET /Users (and GET /Groups) of the Test button",
        "200 with a SCIM ListResponse",
        "test_credentials",
    ),
    # "User lifecycle": Create, steps 1-3.
    _item(
        "existence_check",
        "Existence check before create (userName eq)",
        "GET /Users?filter=userName eq ...",
        "200 with a ListResponse (totalResults 0 when absent; 404 is tolerated)",
        "create_user_existence_check",
    ),
    _item(
        "create_user",
        "Assign a new user: create",
        "POST /Users",
        "201 with the full resource and its id; the password never returned",
        "create_user",
    ),
    _item(
        "link_user",
        "User already in the app: link",
        "GET /Users/{id} then PUT after an existence check that found the user",
        "200 with the resource",
        "link_user_read",
        "link_user_put",
    ),
    _item(
        "read_user",
        "Read a user",
        "GET /Users/{id}",
        "200 with the resource",
        "read_user",
    ),
    # "Update profile".
    _item(
        "update_profile",
        "Update user profile",
        "GET /Users/{id} then a full-object PUT",
        "200 with the updated resource",
        "update_user_put",
    ),
    # "Deactivate" / "Reactivate" (template apps PATCH, AIW apps PUT).
    _item(
        "deactivate_user",
        "Deactivate / remove assignment",
        'PATCH {"active": false} with no path, or PUT with "active": false (AIW)',
        "200 with the resource showing active false (a PATCH answered 501 fails the task)",
        "deactivate_user_patch",
        "deactivate_user_put",
    ),
    _item(
        "reactivate_user",
        "Reactivate / assign again",
        'PATCH {"active": true} with no path, or PUT with "active": true (AIW)',
        "200 with the resource showing active true",
        "reactivate_user_patch",
        "reactivate_user_put",
    ),
    # "Password sync".
    _item(
        "password_sync",
        "Sync password",
        "PATCH replacing password, or a PUT carrying it (AIW)",
        "200, the password never returned",
        "password_sync_patch",
        "password_sync_put",
    ),
    # "Okta's own test suites": the OIN QA plan's "push empty values".
    _item(
        "push_empty_values",
        "Push empty values",
        "a full PUT after the read that leaves out (or empties) an attribute the user had",
        "200 with the resource no longer showing the emptied attributes",
        "push_empty_values_put",
    ),
    _item(
        "suspend_user",
        "Suspend and unsuspend in Okta",
        "nothing: Okta sends no request when it suspends a user",
        "nothing (the user stays active in the app)",
        manual=True,
    ),
    # "Import users".
    _item(
        "import_users",
        "Import users",
        "GET /Users?startIndex=1&count=100, then the next pages",
        "ListResponses with 1-based startIndex and totalResults counting every user",
        "import_users",
    ),
    _item(
        "import_groups",
        "Import groups",
        "GET /Groups?startIndex=1&count=100 and the next pages",
        "ListResponses whose totalResults counts every group",
        "import_groups",
    ),
    _item(
        "import_counts_match",
        "Imported counts match the app",
        "compare the counts Okta shows after an import with the app's Users and Groups",
        "totalResults and every page right",
        manual=True,
    ),
    _item(
        "profile_sourcing",
        "Profile sourcing (app as profile master)",
        "configured in Okta; imports then update Okta profiles",
        "imports that return current profiles",
        manual=True,
    ),
    # "Group push".
    _item(
        "push_group_lookup",
        "Group push: look up / link an existing group",
        "GET /Groups?filter=displayName eq ...",
        "200 with a ListResponse (totalResults 0 when absent)",
        "push_group_lookup",
    ),
    _item(
        "push_group_create",
        "Group push: create",
        "POST /Groups",
        "201 with the group and its id",
        "push_group_create",
    ),
    _item(
        "read_group",
        "Read a group",
        "GET /Groups/{id}",
        "200 with the group",
        "read_group",
    ),
    _item(
        "push_group_rename",
        "Group push: rename",
        'PATCH {"op": "replace", "value": {"id", "displayName"}} with no path',
        "200 (or 204), members untouched",
        "push_group_rename",
    ),
    _item(
        "push_group_rename_off",
        "Group push with rename off",
        "set in Okta's Push Groups options; renames then send nothing",
        "nothing",
        manual=True,
    ),
    _item(
        "push_group_add_members",
        "Group push: add members",
        'PATCH {"op": "add", "path": "members", ...}',
        "200 (or 204), the other members untouched",
        "push_group_add_members",
    ),
    _item(
        "push_group_remove_members",
        "Group push: remove a member",
        'PATCH {"op": "remove", "path": "members[value eq ...]"}',
        "200 (or 204), only that member removed",
        "push_group_remove_members",
    ),
    _item(
        "push_now",
        "Push Now (replace members)",
        'PATCH {"op": "replace", "path": "members", ...}, or a full PUT (AIW)',
        "200 (or 204) with exactly those members",
        "push_group_replace_members",
        "push_group_put",
    ),
    _item(
        "push_empty_group",
        "Push an empty group",
        # Not a create: Okta creates every group with "members": [] (OKTA.md), so that would
        # prove nothing; Push Now of a group whose members were all removed does.
        "a replace of members with [] (or a full PUT with no members)",
        "200 (or 204) and the group emptied, not an error",
        "push_group_replace_members",
        "push_group_put",
    ),
    _item(
        "push_by_rule",
        "Group push by rule",
        "configured in Okta; sends the same requests as a group push",
        "the group push requests answered",
        manual=True,
    ),
    _item(
        "unlink_delete_group",
        "Unlink a push group and delete it in the app",
        "DELETE /Groups/{id}",
        "204",
        "push_group_delete",
    ),
    _item(
        "unlink_keep_group",
        "Unlink a push group and keep it in the app",
        "nothing: Okta sends no request",
        "nothing (the group stays in the app)",
        manual=True,
    ),
    # "Entitlements, roles and custom attributes (Okta Identity Governance)".
    _item(
        "read_resource_types",
        "Entitlements: read resource types",
        "GET /ResourceTypes (served with a catalog)",
        "200 with the resource types",
        "read_resource_types",
    ),
    _item(
        "read_extension_schemas",
        "Entitlements: read extension schemas",
        "GET /Schemas",
        "200 with the schemas",
        "read_extension_schemas",
    ),
    _item(
        "import_entitlements",
        "Entitlements: import values",
        "GET {endpoint}?count=1&startIndex=1, then pages of 100",
        "ListResponses; itemsPerPage 1 for count=1",
        "import_entitlements",
    ),
    _item(
        "grant_entitlement",
        "Entitlements: grant",
        "PATCH add on roles / entitlements, or a PUT with a new value",
        "200 with the user showing the grant",
        "grant_entitlement",
    ),
    _item(
        "revoke_entitlement",
        "Entitlements: revoke",
        "PATCH remove with a value filter, or a PUT without the value",
        "200 with the user no longer showing it",
        "revoke_entitlement",
    ),
    # "Okta's own test suites".
    _item(
        "spec_test",
        "Okta SPEC test suite",
        'requests with User-Agent "OKTA SCIM Integration"',
        "each step's expected status (200, 201, 404, 409, 401)",
        "spec_test",
    ),
)

_BY_ID = {item.id: item for item in ITEMS}


# --- judging one answer ---------------------------------------------------------------------------
def _members_value(request_body: str) -> list[Any] | None:
    """The member list a replace / PUT / create sets (None when it sets none)."""
    body = json_or_none(request_body)
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("members"), list):
        return body["members"]
    ops = body.get("Operations")
    if isinstance(ops, list):
        for op in ops:
            if (
                isinstance(op, dict)
                and str(op.get("op", "")).lower() == "replace"
                and str(op.get("path", "")).lower() == "members"
            ):
                value = op.get("value")
                return value if isinstance(value, list) else []
    return None


def problems_of(ex: Exchange) -> list[Problem]:
    """What Okta makes of this answer for its step (core/okta_expect.py); [] when happy."""
    return expect(
        ex.okta_step,
        ex.method,
        ex.query,
        ex.request_body,
        ex.status,
        ex.response_body,
        retry_gives_up=ex.retry_gives_up,
        path=ex.path,
        explanation=ex.okta_explanation,
    )


def _judge(ex: Exchange) -> tuple[str, str, str]:
    """Why this answer fails the items of its step, what Okta does with it and the fix (empty
    strings: it fails nothing). The judgement is the step's (okta_expect), so every item a
    request bears on gets the same verdict; a 429 Okta will retry fails nothing (yet)."""
    problems = problems_of(ex)
    if not is_failure(problems):
        return "", "", ""
    failing = [p for p in problems if p.effect != "retries"]
    return (
        "; ".join(p.what for p in failing),
        "; ".join(dict.fromkeys(p.okta_effect for p in failing)),
        " ".join(dict.fromkeys(p.fix for p in failing)),
    )


def _applies(item: Item, ex: Exchange) -> bool:
    """Whether a request of one of the item's steps bears on it (most always do)."""
    if item.id == "push_empty_group":
        members = _members_value(ex.request_body)
        return members is not None and not members
    return True


# --- the checklist --------------------------------------------------------------------------------
@dataclass(slots=True)
class _Tally:
    passes: list[Evidence] = field(default_factory=list)
    failures: list[Evidence] = field(default_factory=list)
    count: int = 0


class Coverage:
    """The checklist, fed answered requests in arrival order (:meth:`add`)."""

    def __init__(self, items: tuple[Item, ...] = ITEMS) -> None:
        self.items = items
        self._items = {item.id: item for item in items}
        self._tallies: dict[str, _Tally] = {item.id: _Tally() for item in items}
        self._ticked: set[str] = set()
        self._by_step: dict[str, list[Item]] = {}
        for item in items:
            for step in item.steps:
                self._by_step.setdefault(step, []).append(item)

    def wants(self, step: str | None) -> bool:
        """Whether a request of this step bears on some item (so a caller can skip building
        the :class:`Exchange` of one that does not)."""
        return step is not None and step in self._by_step

    def add(self, ex: Exchange) -> list[str]:
        """Take one answered request; returns the ids of the items it bore on."""
        touched: list[str] = []
        items = self._by_step.get(ex.okta_step or "", ())
        reason, effect, fix = _judge(ex) if items else ("", "", "")
        for item in items:
            if not _applies(item, ex):
                continue
            evidence = Evidence(
                record_id=ex.id,
                time=ex.time,
                method=ex.method.upper(),
                target=ex.target,
                status=ex.status,
                label=ex.okta_label or ex.okta_step or "",
                ok=not reason,
                reason=reason,
                okta_effect=effect,
                fix=fix,
            )
            tally = self._tallies[item.id]
            tally.count += 1
            kept = tally.failures if reason else tally.passes
            if len(kept) < MAX_EVIDENCE:
                kept.append(evidence)
            touched.append(item.id)
        return touched

    def tick(self, item_id: str, done: bool = True) -> None:
        """Tick (or untick) a manual item by hand. Raises KeyError for an unknown id and
        ValueError for an item that traffic proves."""
        item = self._items[item_id]
        if not item.manual:
            raise ValueError(f"{item_id} is proved by traffic, not ticked by hand")
        if done:
            self._ticked.add(item_id)
        else:
            self._ticked.discard(item_id)

    def reset(self) -> None:
        """Forget every request and tick."""
        for item_id in self._tallies:
            self._tallies[item_id] = _Tally()
        self._ticked.clear()

    def state(self, item_id: str) -> ItemState:
        """One item's status and evidence (KeyError for an unknown id)."""
        item = self._items[item_id]
        tally = self._tallies[item.id]
        ticked = item.manual and item.id in self._ticked
        status: Status
        if item.manual:
            status = "covered" if ticked else "manual"
        elif tally.failures:
            status = "failed"
        elif tally.passes:
            status = "covered"
        else:
            status = "not_seen"
        return ItemState(
            item, status, tuple(tally.failures + tally.passes), tally.count, ticked=ticked
        )

    def snapshot(self) -> list[ItemState]:
        """Every item with its status and evidence, in checklist order."""
        return [self.state(item.id) for item in self.items]


def item_by_id(item_id: str) -> Item:
    """The checklist item with that id (KeyError when unknown)."""
    return _BY_ID[item_id]
