"""Okta's group PATCHes through core/group_patch.py give what the general engine gives.

Two services over two repositories built the same way: one takes the fast path for large
groups, the other (``fast_group_patch = False``) always the general PATCH engine. Random
sequences of Okta's operations (and near misses: unknown ids, ids that are not members, odd
casing, ``display``, types, self-membership) must leave both with the same answers, errors,
versions, changes and stored records, and the same membership index.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim_desktop.core.errors import ScimError
from scim_desktop.core.group_patch import MIN_MEMBERS, plan_member_patch, tables
from scim_desktop.core.projection import make_projection
from scim_desktop.core.repository import GROUP, USER
from scim_desktop.core.resources import ScimService
from scim_desktop.core.schemas import RESOURCE_TYPES
from scim_desktop.store.memory import MemoryRepository

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BASE = "https://example.test/scim/v2"
USERS = 80
MEMBERS = MIN_MEMBERS + 6


#: The time both services read: the test moves it on before each request (a clock that
#: ticked per call would differ between the two paths, which read it a different number of
#: times for a request that changes nothing).
CLOCK = [0]


def build(fast: bool) -> tuple[ScimService, list[str], list[str]]:
    """Users u000..u079, group A listing the first MEMBERS of them, group B (small)."""
    counter = itertools.count()
    service = ScimService(
        MemoryRepository(),
        new_id=lambda: f"id{next(counter):04d}",
        now=lambda: f"2026-01-01T00:{CLOCK[0] // 60 % 60:02d}:{CLOCK[0] % 60:02d}.000Z",
    )
    service.fast_group_patch = fast
    users = [
        service.create(
            USER,
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": f"u{i:03d}@example.com",
                "displayName": f"User {i}" if i % 3 else None,
            },
            BASE,
        ).resource["id"]  # type: ignore[index]
        for i in range(USERS)
    ]
    groups = []
    for name, members in (("A", users[:MEMBERS]), ("B", users[:3])):
        outcome = service.create(
            GROUP,
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": name,
                "members": [{"value": m} for m in members],
            },
            BASE,
        )
        groups.append(outcome.resource["id"])  # type: ignore[index]
    return service, users, groups


def run(service: ScimService, gid: str, ops: list[dict[str, Any]], query: str | None) -> Any:
    projection = None
    if query is not None:
        projection = make_projection(None, query, RESOURCE_TYPES[GROUP])
    try:
        outcome = service.patch(
            GROUP, gid, {"schemas": [PATCH], "Operations": ops}, BASE, None, projection
        )
    except ScimError as exc:
        return ("error", type(exc).__name__, exc.status, str(exc))
    return ("ok", outcome.resource, outcome.version, outcome.changes)


def member_ids(users: list[str], groups: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(users),
        st.sampled_from(groups),
        st.sampled_from(["nobody", users[0].upper(), ""]),
    )


def operations(users: list[str], groups: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    ids = member_ids(users, groups)
    member = st.builds(
        lambda v, t, d: {"value": v, **({"type": t} if t else {}), **({"display": d} if d else {})},
        ids,
        st.sampled_from([None, None, "User", "Group", "user", "Robot"]),
        st.sampled_from([None, "Some Name"]),
    )
    add = st.builds(
        lambda path, value: {"op": "add", "path": path, "value": value},
        st.sampled_from(["members", "Members"]),
        st.lists(member, min_size=1, max_size=3),
    )
    remove = st.builds(
        lambda path, v: {"op": "remove", "path": path.format(v)},
        st.sampled_from(['members[value eq "{}"]', 'Members[Value EQ "{}"]', "members"]),
        ids,
    )
    rename = st.builds(
        lambda name, with_id: {
            "op": "replace",
            "value": {**({"id": groups[0]} if with_id else {}), "displayName": name},
        },
        st.sampled_from(["A", "A renamed", "", "B"]),
        st.booleans(),
    )
    replace_name = st.builds(
        lambda name: {"op": "Replace", "path": "displayName", "value": name},
        st.sampled_from(["A", "Other", 7]),
    )
    # Push Now: the whole list again, a reordering, a subset, with duplicates or unknowns.
    listed = st.builds(
        lambda picks, extra, reverse: [
            {"value": v} for v in (picks[::-1] if reverse else picks) + extra
        ],
        st.sampled_from([users[:MEMBERS], users[2 : MEMBERS + 5], users[:3]]),
        st.lists(ids, max_size=2),
        st.booleans(),
    )
    push = st.builds(lambda value: {"op": "replace", "path": "members", "value": value}, listed)
    return st.one_of(add, remove, rename, replace_name, push)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fast_and_general_paths_agree(data: st.DataObject) -> None:
    fast, users, groups = build(True)
    slow, _, _ = build(False)
    for _ in range(data.draw(st.integers(1, 4))):
        ops = data.draw(st.lists(operations(users, groups), min_size=1, max_size=4))
        query = data.draw(st.sampled_from([None, "members", "displayName"]))
        CLOCK[0] += 1
        assert run(fast, groups[0], ops, query) == run(slow, groups[0], ops, query)
        for gid in groups:
            assert fast.repo.get(GROUP, gid) == slow.repo.get(GROUP, gid)
        # The membership index, changed by differences only, is what a full load builds.
        fresh = MemoryRepository()
        fresh.load({rtype: list(fast.repo.ordered(rtype)) for rtype in (USER, GROUP)})
        for uid in [*users, *groups]:
            assert fast.user_groups(uid) == slow.user_groups(uid)
            assert fast.repo.groups_of(uid) == slow.repo.groups_of(uid) == fresh.groups_of(uid)


def test_okta_shapes_take_the_fast_path() -> None:
    """The shapes Okta sends are planned (not left to the general engine)."""
    service, users, groups = build(True)
    stored = service.repo.get(GROUP, groups[0])
    assert stored is not None
    okta = [
        [{"op": "add", "path": "members", "value": [{"value": users[-1], "display": "x"}]}],
        [{"op": "remove", "path": f'members[value eq "{users[0]}"]'}],
        [{"op": "replace", "value": {"id": groups[0], "displayName": "A"}}],
    ]
    for ops in okta:
        assert plan_member_patch(stored, ops, service.repo) is not None
    # Removing a non-member (Okta retries removals) is planned as nothing to do...
    retry = [{"op": "remove", "path": f'members[value eq "{users[-1]}"]'}]
    plan = plan_member_patch(stored, retry, service.repo)
    assert plan is not None and not plan.removed and not plan.added
    # ...unless a member's id equals it ignoring case; an unknown user is the general
    # engine's to refuse (400).
    shout = [{"op": "remove", "path": f'members[value eq "{users[0].upper()}"]'}]
    assert plan_member_patch(stored, shout, service.repo) is None
    unknown = [{"op": "add", "path": "members", "value": [{"value": "nobody"}]}]
    assert plan_member_patch(stored, unknown, service.repo) is None


def test_excluded_members_are_not_rendered_but_the_rest_is() -> None:
    service, users, groups = build(True)
    ops = [{"op": "add", "path": "members", "value": [{"value": users[-1]}]}]
    out = run(service, groups[0], ops, "members")
    assert out[0] == "ok"
    assert "members" not in out[1]
    assert out[1]["displayName"] == "A" and out[1]["meta"]["version"] == 'W/"2"'
    stored = service.repo.get(GROUP, groups[0])
    assert stored is not None and stored["members"][-1] == {"value": users[-1], "type": USER}
    full = service.get(GROUP, groups[0], BASE).resource
    assert full is not None and len(full["members"]) == MEMBERS + 1


class _NoTables:
    """A repository that lends no id -> record tables (only the Repository protocol)."""

    def __init__(self, repo: MemoryRepository) -> None:
        self._repo = repo

    def __getattr__(self, name: str) -> Any:
        if name in ("by_id", "put_group_members"):
            raise AttributeError(name)
        return getattr(self._repo, name)


def test_repositories_without_tables_give_the_same_results() -> None:
    fast, users, groups = build(True)
    plain, _, _ = build(True)
    plain.repo = _NoTables(plain.repo)  # type: ignore[assignment]
    looked_up = tables(plain.repo)[USER]
    assert users[0] in looked_up and "nobody" not in looked_up
    assert len(looked_up) == USERS and list(looked_up)[:2] == users[:2]
    operations = [
        [{"op": "add", "path": "members", "value": [{"value": users[-1]}, {"value": groups[1]}]}],
        [{"op": "remove", "path": f'members[value eq "{users[5]}"]'}],
        [{"op": "replace", "path": "members", "value": [{"value": u} for u in users[:MEMBERS]]}],
        [{"op": "replace", "value": {"id": groups[0], "displayName": "Renamed"}}],
    ]
    for ops in operations:
        CLOCK[0] += 1
        assert run(fast, groups[0], ops, None) == run(plain, groups[0], ops, None)
    # A PUT stores through put_group_members too (the difference of the two lists).
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Put",
        "members": [{"value": u} for u in users[10:20]],
    }
    assert fast.replace(GROUP, groups[0], body, BASE).resource == (
        plain.replace(GROUP, groups[0], body, BASE).resource
    )
    for uid in users[:25]:
        assert fast.repo.groups_of(uid) == plain.repo.groups_of(uid)
    assert fast.repo.get(GROUP, groups[0]) == plain.repo.get(GROUP, groups[0])
