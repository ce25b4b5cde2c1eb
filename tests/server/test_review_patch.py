"""Review of issue 12 §1 ("no single request holds the event loop"): PATCH work that grew as
operations x values. A run of ``remove members[value eq "..."]`` operations is applied in one
pass, and adding or removing a list of values looks each one up in a set; these tests hold
the new code to the old semantics (one operation at a time, values compared by scanning),
on generated inputs, and run a large PATCH against a real server. The figures (how long the
loop was held before and after) are printed by tests/hostile/patch_work.py."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from scim_desktop.core import patch, patch_ops
from scim_desktop.core.schemas import GROUP_TYPE, USER_TYPE
from tests.scim_client import ScimClient

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# Values that are equal across types (1, 1.0, True), differ only in case, or are not strings.
_SCALARS = st.sampled_from(["a", "A", "b", "B ", "c", 1, 1.0, True, None, ""])
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=2), st.just({"k": 1}))
_MEMBER = st.one_of(
    st.fixed_dictionaries({"value": _VALUES}, optional={"display": _SCALARS}),
    st.fixed_dictionaries({"Value": _SCALARS}),
    st.fixed_dictionaries({"display": _SCALARS}),
    _SCALARS,
)


def _literal(value: Any) -> str:
    return json.dumps(value)


_REMOVE = st.builds(
    lambda attr, value: {"op": "remove", "path": f"members[{attr} eq {_literal(value)}]"},
    st.sampled_from(["value", "VALUE", "display"]),
    _SCALARS,
)
_OTHER = st.one_of(
    st.builds(lambda m: {"op": "add", "path": "members", "value": m}, st.lists(_MEMBER)),
    st.builds(lambda m: {"op": "remove", "path": "members", "value": m}, st.lists(_MEMBER)),
    st.just({"op": "replace", "path": "displayName", "value": "renamed"}),
    st.just({"op": "remove", "path": 'members[value co "a"]'}),
)


def _one_at_a_time(resource: dict[str, Any], ops: list[dict[str, Any]]) -> Any:
    """The reference: each operation applied alone (a run of one takes the old code path)."""
    try:
        for op in ops:
            resource = patch.apply(resource, [op], GROUP_TYPE)
    except Exception as exc:  # the error, for comparing outcomes
        return type(exc)
    return resource


@settings(max_examples=300, deadline=None)
@given(
    members=st.lists(_MEMBER, max_size=8),
    ops=st.lists(st.one_of(_REMOVE, _REMOVE, _OTHER), min_size=1, max_size=8),
)
@example(  # caseExact false: "A" matches "a"
    members=[{"value": "A"}, {"value": "b"}, "a", {"value": ["a"]}],
    ops=[
        {"op": "remove", "path": 'members[value eq "a"]'},
        {"op": "remove", "path": 'members[value eq "c"]'},
    ],
)
def test_a_run_of_removes_is_what_they_do_one_at_a_time(
    members: list[Any], ops: list[dict[str, Any]]
) -> None:
    group = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g"}
    if members:
        group["members"] = members
    expected = _one_at_a_time(copy.deepcopy(group), ops)
    try:
        got: Any = patch.apply(group, ops, GROUP_TYPE)
    except Exception as exc:
        got = type(exc)
    assert got == expected


def _scan_add(existing: list[Any], new: list[Any], t: Any) -> list[Any]:
    out = list(existing)
    for element in new:
        if not patch_ops._contains(out, element, t):
            out.append(element)
    return out


def _scan_remove(existing: list[Any], doomed: list[Any], t: Any) -> list[Any]:
    return [e for e in existing if not any(patch_ops._same_value(e, d, t) for d in doomed)]


@settings(max_examples=300, deadline=None)
@given(
    existing=st.lists(_MEMBER, max_size=8),
    listed=st.lists(_MEMBER, max_size=8),
    members=st.booleans(),
)
def test_set_lookups_decide_as_the_scans_did(
    existing: list[Any], listed: list[Any], members: bool
) -> None:
    rtype = GROUP_TYPE if members else USER_TYPE
    name = "members" if members else "emails"
    t = patch_ops._resolve(name, "add", rtype)
    present = patch_ops._Present(list(existing), t)
    for element in listed:
        if element not in present:
            present.append(element)
    assert present.existing == _scan_add(existing, listed, t)
    doomed = patch_ops._Doomed(listed, t)
    assert [e for e in existing if not doomed.designates(e)] == _scan_remove(existing, listed, t)


def test_values_too_deep_to_freeze_are_scanned() -> None:
    deep: Any = "x"
    for _ in range(1200):
        deep = [deep]
    t = patch_ops._resolve("members", "add", GROUP_TYPE)
    present = patch_ops._Present([{"value": "a"}, {"value": deep}], t)
    assert not present.exact
    assert {"value": "a"} in present and {"value": "b"} not in present
    doomed = patch_ops._Doomed([{"value": deep}, {"value": "a"}], t)
    assert doomed.designates({"value": "a"}) and not doomed.designates({"value": "b"})


def test_a_patch_of_many_member_removes_on_a_real_server(client: ScimClient) -> None:
    """Okta's remove, one operation per member, about a thousand of them in one PATCH (the
    limit): exactly those members go, in one request, and the others stay."""
    ids = []
    for i in range(60):
        reply = client.post(
            "/Users",
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"u{i}@x"},
        )
        assert reply.status == 201
        ids.append(reply.body["id"])
    reply = client.post(
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "many",
            "members": [{"value": i} for i in ids],
        },
    )
    gid = reply.body["id"]
    doomed = ids[::2]
    ops = [{"op": "remove", "path": f'members[value eq "{i}"]'} for i in doomed * 33]
    ops.insert(10, {"op": "replace", "path": "displayName", "value": "fewer"})  # splits the run
    reply = client.patch(f"/Groups/{gid}", {"schemas": [PATCH_OP], "Operations": ops})
    assert reply.status == 200, reply.raw[:300]
    group = client.get(f"/Groups/{gid}").body
    assert group["displayName"] == "fewer"
    assert sorted(m["value"] for m in group["members"]) == sorted(ids[1::2])


_EMAIL = st.fixed_dictionaries(
    {"value": st.sampled_from(["a@x", "A@x", "b@x"])},
    optional={"primary": st.booleans(), "type": st.sampled_from(["work", "home"])},
)
_EMAIL_OP = st.one_of(
    st.builds(lambda v: {"op": "add", "path": "emails", "value": v}, st.lists(_EMAIL)),
    st.builds(lambda v: {"op": "add", "path": "emails", "value": v}, _EMAIL),
    st.builds(lambda v: {"op": "remove", "path": "emails", "value": v}, st.lists(_EMAIL)),
    st.builds(
        lambda v: {"op": "remove", "path": f'emails[value eq "{v}"]'},
        st.sampled_from(["a@x", "b@x"]),
    ),
    st.just({"op": "replace", "path": 'emails[type eq "work"].primary', "value": True}),
)


@settings(max_examples=300, deadline=None)
@given(emails=st.lists(_EMAIL, max_size=5), ops=st.lists(_EMAIL_OP, min_size=1, max_size=8))
def test_runs_of_email_adds_and_removes_keep_one_primary_as_before(
    emails: list[Any], ops: list[dict[str, Any]]
) -> None:
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u"}
    if emails:
        user["emails"] = emails
    expected: Any
    try:
        expected = copy.deepcopy(user)
        for op in ops:
            expected = patch.apply(expected, [op], USER_TYPE)
    except Exception as exc:
        expected = type(exc)
    try:
        got: Any = patch.apply(user, ops, USER_TYPE)
    except Exception as exc:
        got = type(exc)
    assert got == expected


_NAMES = ["members", "emails", "value", "VALUE", "a-b", "x_1", "and", "eq", "EQ", "or", "1a"]
_MARKS = ["$ref", "[", "]", " ", "  ", '"', '"id-1"', '""', '"a\\"b"', '"\x01"', ".", ":", "é"]
_PIECES = st.sampled_from([*_NAMES, *_MARKS, "\t"])


@settings(max_examples=1000, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=9).map("".join))
@example('members[value eq "2819c223-7f76-453a-919d-413861904646"]')
@example('members[VALUE EQ ""]')
def test_the_value_path_shortcut_parses_as_the_parser_does(text: str) -> None:
    """``attr[sub eq "text"]`` is parsed by one regular expression: it must build exactly
    what the full parser builds, and take nothing the parser refuses."""
    from scim_desktop.core import filter_parse as scim_filter

    fast = scim_filter._parse_simple_value_path(text)
    if fast is None:
        return
    assert fast == scim_filter._parse_path(text)
