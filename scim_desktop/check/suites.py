"""The checker's suites (issue 15): ``spec`` (Okta's 12 SPEC-test steps), ``crud`` (the user
lifecycle Okta drives), ``groups`` (group push) and ``entitlements`` (Okta Identity Governance
discovery, when /ResourceTypes declares Okta's types).

Each check sends Okta's requests through the runner's client (``okta_sim``: Okta's exact headers
and bodies), has every answer judged by ``core/okta_expect`` for the Okta step it plays, and adds
what only a sequence shows (the checker's own: a user found by its upper-cased userName, members
read back after a PATCH answered 204, an import walk that reaches totalResults).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scim_desktop.check.runner import Finding, Runner, own
from scim_desktop.core.okta_spec import _SPEC_STEPS
from scim_desktop.okta_sim import (
    SimResult,
    active_ops,
    add_members_ops,
    entitlement_types,
    grant_ops,
    member_values,
    objects,
    remove_member_ops,
    rename_ops,
    replace_members_ops,
    resources_of,
    revoke_ops,
    total_of,
    user_body,
    without_meta,
)

#: The SPEC steps in Runscope's order (okta_sim.OktaSimulator.spec_suite sends them).
SPEC_ORDER = (
    "list_users",
    "get_user",
    "filter_absent",
    "unknown_id",
    "create",
    "read_back",
    "filter_created",
    "filter_upper",
    "create_again",
    "list_groups",
    "bad_auth",
    "fixed_unknown_id",
)


# --- reading answers -----------------------------------------------------------------------------
def _dict(res: SimResult) -> dict[str, Any]:
    return res.body if isinstance(res.body, dict) else {}


def _id(res: SimResult) -> str | None:
    rid = _dict(res).get("id")
    return rid if isinstance(rid, str) and rid else None


def _members(res: SimResult) -> set[str]:
    values = {m.get("value") for m in objects(_dict(res).get("members"))}
    return {v for v in values if isinstance(v, str)}


def _absent_found(res: SimResult, attribute: str, okta_effect: str) -> list[Finding]:
    """A lookup for a name that does not exist must find nothing (RFC 7644 §3.4.2.2): the
    finding when it did (the crud and groups suites' first lookups)."""
    if res.status != 200 or total_of(res) in (None, 0):
        return []
    return [
        own(
            f"totalResults is {total_of(res)} for a {attribute} that does not exist",
            okta_effect,
            "Apply the filter (RFC 7644 §3.4.2.2).",
        )
    ]


def _answer(res: SimResult) -> str:
    """A few words on an answer, for a passing check's detail."""
    if res.status == 0:
        return f"no answer ({res.error})"
    total = total_of(res)
    if total is not None:
        return f"{res.status}, totalResults {total}"
    return f"{res.status}" + (" with the resource" if _id(res) else "")


# --- spec ----------------------------------------------------------------------------------------
def spec(r: Runner) -> None:
    """Okta's SPEC test (OKTA.md, "Okta's own test suites"): the 12 steps as Runscope sends
    them (User-Agent "OKTA SCIM Integration", plain JSON), its assertions, and where Okta's
    provisioning client is stricter (JSON integers and booleans), that too."""
    user_name = r.user_name("spec")
    seeded: list[str] = []

    def seed() -> None:
        # The SPEC test needs one user before it starts: an empty server gets one of ours.
        name = r.user_name("seed")
        r.track(r.sim.post_user(user_body("Seed", "User", user_name=name)))
        seeded.append(name)

    steps = r.sim.spec_suite(user_name, "Spec", "Tester", seed=seed)
    seen: set[str] = set()
    created: str | None = None
    while True:
        check = r.begin("spec", "")
        try:
            key, res = next(steps)
        except StopIteration:
            r.discard(check)
            break
        for missing in SPEC_ORDER[: SPEC_ORDER.index(key)]:
            if missing not in seen:
                seen.add(missing)
                r.skip("spec", _spec_name(missing), _spec_skip_reason(missing))
        seen.add(key)
        check.name = _spec_name(key)
        if key == "create":
            created = r.track(res)
        elif key == "create_again":
            r.track(res)
        want = _SPEC_STEPS[key][1]
        verdict = ""
        if want is not None and res.status not in (0, 429, want):
            verdict = f"Expected {want}, got {res.status}: this SPEC step fails."
        findings = r.judge("spec_test", explanation=verdict, duplicate=key == "create_again")
        findings += _spec_own(key, res, user_name, created)
        passed = _answer(res)
        if key == "list_groups":
            passed += f" in {res.duration_s * 1000:.0f} ms (the SPEC test allows 600 ms)"
        if key == "list_users" and seeded:
            passed += f"; the server had no user, so the checker created {seeded[0]} first"
        r.finish(check, findings, passed)
    for missing in SPEC_ORDER:
        if missing not in seen:
            r.skip("spec", _spec_name(missing), _spec_skip_reason(missing))


def _spec_name(key: str) -> str:
    what = _SPEC_STEPS[key][0].format(what=key)
    return f"SPEC {SPEC_ORDER.index(key) + 1:>2}: {what}"


def _spec_skip_reason(key: str) -> str:
    if key == "get_user":
        return "the list returned no user with an id to read"
    if key == "read_back":
        return "the create returned no id to read back"
    return "not sent"


def _spec_own(key: str, res: SimResult, user_name: str, uid: str | None) -> list[Finding]:
    """Runscope's assertions beyond the status (``source="spec"``), and the checker's own."""
    if res.status != 200:
        return []
    found = resources_of(res)
    if key == "filter_absent" and total_of(res) not in (None, 0):
        return [
            own(
                f"totalResults is {total_of(res)} for a userName that does not exist",
                "the SPEC step fails; Okta's existence check would link a new user to another",
                "Apply the filter (RFC 7644 §3.4.2.2): no match is totalResults 0.",
                "spec",
            )
        ]
    names = {str(u.get("userName", "")).lower() for u in found}
    if key == "filter_created" and user_name.lower() not in names:
        return [
            own(
                "the user just created is not in the answer",
                "the SPEC step fails; Okta's existence check would not find users",
                'Support filter=userName eq "..." (RFC 7644 §3.4.2.2).',
                "spec",
            )
        ]
    if key == "filter_upper" and user_name.lower() not in names:
        return [
            own(
                "the user is not found by its upper-cased userName",
                "Okta matches userName case-insensitively: when the case differs it does not "
                "find the user, creates it again and fails on the 409 (or makes a second "
                "account)",
                "Compare userName case-insensitively (RFC 7643 §4.1.1: caseExact false).",
            )
        ]
    if key == "read_back" and uid is not None and _id(res) != uid:
        return [
            own(
                f"the read back answered id {_id(res)!r}, not {uid!r}",
                "the SPEC step fails",
                "Answer GET /Users/{id} with that resource.",
                "spec",
            )
        ]
    return []


# --- crud ----------------------------------------------------------------------------------------
def crud(r: Runner) -> None:
    """The user lifecycle Okta drives (OKTA.md, "User lifecycle" and "Two kinds of Okta app")."""
    sim = r.sim
    check = r.begin("crud", "Test API credentials (GET /Users, GET /Groups)")
    users, groups_page = sim.test_credentials()
    findings = r.judge_as(check, ("test_credentials", "test_credentials"))
    r.finish(check, findings, f"{users.status} and {groups_page.status}")

    name = r.user_name("crud")
    check = r.begin("crud", "existence check before create (userName eq, absent)")
    res = sim.existence_check(name)
    findings = r.judge("create_user_existence_check")
    findings += _absent_found(
        res,
        "userName",
        "Okta links the new assignment to the user it found instead of creating one",
    )
    r.finish(check, findings, _answer(res))

    check = r.begin("crud", "create user (POST /Users)")
    body = user_body("Check", "Crud", user_name=name)
    res = sim.post_user(body)
    uid = r.track(res)
    r.finish(check, r.judge("create_user"), _answer(res))
    if uid is None:
        for what in (
            "existence check finds the user (upper-cased userName)",
            "read user (GET /Users/{id})",
            "update profile (GET, then PUT)",
            "deactivate (PATCH, no path)",
            "reactivate (PATCH, no path)",
            "password sync (PATCH)",
            "deactivate (AIW: GET, then PUT)",
        ):
            r.skip("crud", what, "the create returned no user id")
    else:
        _crud_user(r, uid, name)
    check = r.begin("crud", "duplicate create -> 409")
    res = sim.post_user(body)
    r.track(res)
    r.finish(check, r.judge("create_user", duplicate=True), _answer(res))
    _import_walk(r, name)


def _crud_user(r: Runner, uid: str, name: str) -> None:
    sim = r.sim
    check = r.begin("crud", "existence check finds the user (upper-cased userName)")
    res = sim.existence_check(name.upper())
    findings = r.judge("create_user_existence_check")
    if res.status == 200 and uid not in {u.get("id") for u in resources_of(res)}:
        findings.append(
            own(
                "the existence check with the userName upper-cased finds nothing",
                "Okta matches userName case-insensitively: it creates the user again and the "
                "create fails with 409 (or the app gets a second account)",
                "Compare userName case-insensitively (RFC 7643 §4.1.1: caseExact false).",
            )
        )
    r.finish(check, findings, _answer(res))

    check = r.begin("crud", "read user (GET /Users/{id})")
    res = sim.get_user(uid)
    findings = r.judge("read_user")
    if res.status == 200 and str(_dict(res).get("userName", "")).lower() != name.lower():
        findings.append(
            own(
                f"userName is {_dict(res).get('userName')!r}, not {name!r}",
                "Okta's CRUD test reads the user back and fails",
                "Store userName as sent and return it.",
            )
        )
    r.finish(check, findings, _answer(res))

    check = r.begin("crud", "update profile (GET, then PUT)")
    res = sim.update_profile({"id": uid}, name={"givenName": "Changed", "familyName": "Crud"})
    findings = r.judge_as(check, ("read_user", "update_user_put"))
    name_now = _dict(res).get("name") if res else None
    given = name_now.get("givenName") if isinstance(name_now, dict) else None
    if res is not None and res.status == 200 and given != "Changed":
        findings.append(
            own(
                f"name.givenName is {given!r} after a PUT setting it to 'Changed'",
                "Okta's CRUD test (change the first name) fails; the app keeps the old name",
                "Replace the whole resource with the PUT body (RFC 7644 §3.5.1).",
            )
        )
    r.finish(check, findings, _answer(res) if res else "the read failed")

    for active, step, what in (
        (False, "deactivate_user_patch", "deactivate (PATCH, no path)"),
        (True, "reactivate_user_patch", "reactivate (PATCH, no path)"),
    ):
        check = r.begin("crud", what)
        res = sim.patch_user(uid, active_ops(active))
        findings = r.judge(step)
        findings += _active_after(r, uid, active, res)
        r.finish(check, findings, _answer(res))

    check = r.begin("crud", "password sync (PATCH)")
    res = sim.password_sync({"id": uid})
    r.finish(check, r.judge("password_sync_patch"), _answer(res))

    check = r.begin("crud", "deactivate (AIW: GET, then PUT)")
    current = sim.get_user(uid)
    findings = r.judge("read_user")
    if isinstance(current.body, dict):
        res = sim.put_user(uid, {**without_meta(current.body), "active": False})
        findings += r.judge("deactivate_user_put")
        r.finish(check, findings, _answer(res))
    else:
        r.finish(check, findings, _answer(current))


def _active_after(r: Runner, uid: str, active: bool, res: SimResult) -> list[Finding]:
    """A PATCH answered 204 shows nothing: read the user back (the checker's own)."""
    if res.status != 204:
        return []
    back = r.sim.get_user(uid)
    shown = _dict(back).get("active")
    if back.status == 200 and shown is not active:
        return [
            own(
                f"after the 204 the user shows active {shown!r}, not {active}",
                "Okta records the user as "
                + ("active" if active else "deactivated")
                + " but the app did not change it",
                'Apply a path-less replace {"active": ...}, false included (RFC 7644 §3.5.2.3).',
            )
        ]
    return []


def _import_walk(r: Runner, name: str) -> None:
    """OKTA.md, "Import users": pages of 100 until totalResults, 1-based, stable."""
    check = r.begin("crud", "import users (count=100 pages to totalResults)")
    pages = r.sim.import_users()
    findings = r.judge_as(check, ("import_users",) * len(pages))
    ids = [u.get("id") for page in pages for u in resources_of(page)]
    total = total_of(pages[-1]) if pages else None
    if pages and pages[-1].status == 200 and total is not None:
        if len(ids) != len(set(ids)):
            findings.append(
                own(
                    f"{len(ids) - len(set(ids))} users came twice over {len(pages)} pages",
                    "Okta imports them twice and misses others: the order is not stable",
                    "Sort pages by a stable key (the id) and honour startIndex (RFC 7644 "
                    "§3.4.2.4).",
                )
            )
        elif len(ids) < total and not r.sim.walk_cut:
            findings.append(
                own(
                    f"the walk ended at {len(ids)} users of totalResults {total}",
                    "Okta imports only the users it was given",
                    "Return every page up to totalResults.",
                )
            )
    names = {str(u.get("userName", "")).lower() for p in pages for u in resources_of(p)}
    detail = f"{len(pages)} page(s), {len(ids)} users, totalResults {total}"
    if r.sim.walk_cut:  # the checker's own limit (okta_sim.MAX_IMPORT_PAGES, MAX_IMPORT_BYTES)
        detail += f"; the checker stopped {r.sim.walk_cut}"
    elif pages and not findings and name.lower() not in names:
        detail += "; the checker's user was not in it (inactive users may be left out)"
    r.finish(check, findings, detail)


# --- groups --------------------------------------------------------------------------------------
def groups(r: Runner) -> None:
    """Group push (OKTA.md, "Group push"): lookup, create, add, remove by value filter, Push Now
    with [], rename, delete; members read back after each change."""
    sim = r.sim
    name = r.group_name("group")
    check = r.begin("groups", "group lookup (displayName eq, absent)")
    res = sim.lookup_group(name)
    findings = r.judge("push_group_lookup")
    findings += _absent_found(
        res, "displayName", "Okta links the push group to the group it found instead of creating it"
    )
    r.finish(check, findings, _answer(res))

    check = r.begin("groups", "create group (POST /Groups)")
    res = sim.create_group(name)
    gid = r.track(res, "group")
    r.finish(check, r.judge("push_group_create"), _answer(res))
    later = (
        "add members (PATCH add members)",
        "remove a member (PATCH remove members[value eq ...])",
        "Push Now with no members (PATCH replace members [])",
        "rename (PATCH replace {id, displayName}, no path)",
        "delete group (DELETE /Groups/{id})",
    )
    if gid is None:
        for what in later:
            r.skip("groups", what, "the create returned no group id")
        return

    check = r.begin("groups", later[0])
    users = []
    for n in ("member-1", "member-2"):
        made = sim.post_user(user_body("Check", n.title(), user_name=r.user_name(n)))
        if r.track(made):
            users.append(made.body)
    if len(users) < 2:
        r.skip("groups", later[0], "could not create the two users to add", check)
        r.skip("groups", later[1], "no members to remove")
    else:
        values = member_values(users)
        res = sim.patch_group(gid, add_members_ops(values))
        findings = r.judge("push_group_add_members")
        sim.patch_group(gid, rename_ops(gid, name))  # Okta sends it after every change
        findings += r.judge("push_group_rename")
        findings += _members_now(r, gid, {u["id"] for u in users}, "after adding two")
        r.finish(check, findings, _answer(res))

        check = r.begin("groups", later[1])
        res = sim.patch_group(gid, remove_member_ops(users[1]["id"]))
        findings = r.judge("push_group_remove_members")
        findings += _members_now(r, gid, {users[0]["id"]}, "after removing one of two")
        r.finish(check, findings, _answer(res))

    check = r.begin("groups", later[2])
    res = sim.patch_group(gid, replace_members_ops([]))
    findings = r.judge("push_group_replace_members")
    findings += _members_now(r, gid, set(), "after Push Now with []")
    r.finish(check, findings, _answer(res))

    check = r.begin("groups", later[3])
    renamed = r.group_name("renamed")
    res = sim.patch_group(gid, rename_ops(gid, renamed))
    findings = r.judge("push_group_rename")
    found = sim.lookup_group(renamed)
    findings += r.judge("push_group_lookup")
    if found.status == 200 and gid not in {g.get("id") for g in resources_of(found)}:
        findings.append(
            own(
                "the group is not found by its new displayName",
                "Okta's next push looks the group up by name and creates a second one",
                "Apply a path-less replace of displayName (RFC 7644 §3.5.2.3).",
            )
        )
    r.finish(check, findings, _answer(res))

    check = r.begin("groups", later[4])
    res = sim.delete_group(gid)
    findings = r.judge("push_group_delete")
    if 200 <= res.status < 300:
        r.group_ids.pop(gid, None)  # gone: nothing for cleanup to delete or keep
        gone = sim.get_group(gid)
        if gone.status != 404:
            findings.append(
                own(
                    f"GET /Groups/{{id}} answered {gone.status} after the delete",
                    "the group Okta unlinked and deleted stays in the app",
                    "Delete the group and answer 404 for its id afterwards (RFC 7644 §3.6).",
                )
            )
    r.finish(check, findings, _answer(res))


def _members_now(r: Runner, gid: str, want: set[str], when: str) -> list[Finding]:
    """Read the group back: a 204 shows nothing, and a remove that wiped every member is
    the bug OKTA.md warns of."""
    res = r.sim.get_group(gid)
    findings = r.judge("read_group")
    if res.status == 200 and ("members" in _dict(res) or want):
        have = _members(res)
        if have != want:
            findings.append(
                own(
                    f"{when} the group holds {len(have)} member(s), not {len(want)}",
                    "Okta records the push as done; the app's members differ from Okta's",
                    "Apply member add, remove by value filter and replace exactly as sent "
                    "(RFC 7644 §3.5.2).",
                )
            )
    return findings


# --- entitlements --------------------------------------------------------------------------------
def entitlements(r: Runner) -> None:
    """Okta Identity Governance (OKTA.md, "Entitlements, roles and custom attributes"): run only
    when /ResourceTypes declares Okta's Role or Entitlement types."""
    sim = r.sim
    check = r.begin("entitlements", "resource types (GET /ResourceTypes)")
    res = sim.request("GET", "/ResourceTypes")
    types = entitlement_types(res.body)
    if not types:
        why = (
            f"GET /ResourceTypes answered {res.status}"
            if res.status != 200
            else "/ResourceTypes declares no type with schema urn:okta:scim:schemas:core:1.0:Role "
            "or ...:Entitlement"
        )
        r.skip("entitlements", check.name, why + ": Okta's entitlement tests do not apply", check)
        return
    r.finish(
        check,
        r.judge("read_resource_types"),
        ", ".join(f"{t.get('name') or t.get('id')} at {t['endpoint']}" for t in types),
    )
    check = r.begin("entitlements", "schemas (GET /Schemas)")
    res = sim.request("GET", "/Schemas")
    r.finish(check, r.judge("read_extension_schemas"), _answer(res))

    values: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for rtype in types:
        endpoint = "/" + rtype["endpoint"].lstrip("/")
        check = r.begin("entitlements", f"{endpoint}?count=1&startIndex=1 -> itemsPerPage 1")
        res = sim.request("GET", f"{endpoint}?count=1&startIndex=1")
        r.finish(check, r.judge("import_entitlements"), _answer(res))
        check = r.begin("entitlements", f"import {endpoint} (pages of 100)")
        found = sim.import_values(endpoint)
        findings = r.judge_as(check, ("import_entitlements",) * len(check.requests))
        bad = [v for v in found if not v.get("id") or not v.get("displayName")]
        if bad:
            findings.append(
                own(
                    f"{len(bad)} value(s) without id or displayName",
                    "Okta cannot show or grant a value without them",
                    "Give every value an id and a displayName.",
                )
            )
        r.finish(check, findings, f"{len(found)} value(s)")
        grantable = [v for v in found if isinstance(v.get("id"), str) and v["id"]]
        values += [(rtype, grantable[0])] if grantable else []
    _grant_and_revoke(r, values)


def _grant_and_revoke(r: Runner, values: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    names = ("grant by PATCH add", "revoke by PATCH remove with a value filter")
    if not values:
        for what in names:
            r.skip("entitlements", what, "no entitlement value to grant")
        return
    rtype, value = values[0]
    check = r.begin("entitlements", names[0])
    made = r.sim.post_user(user_body("Check", "Grants", user_name=r.user_name("grants")))
    uid = r.track(made)
    if uid is None:
        r.skip("entitlements", names[0], "could not create a user to grant to", check)
        r.skip("entitlements", names[1], "no user")
        return
    attr = "roles" if "Role" in str(rtype.get("schema")) else "entitlements"
    res = r.sim.patch_user(uid, grant_ops(rtype, value))
    findings = r.judge("grant_entitlement") + _holds(r, uid, attr, value["id"], True, res)
    r.finish(check, findings, _answer(res))
    check = r.begin("entitlements", names[1])
    res = r.sim.patch_user(uid, revoke_ops(rtype, value))
    findings = r.judge("revoke_entitlement") + _holds(r, uid, attr, value["id"], False, res)
    r.finish(check, findings, _answer(res))


def _holds(r: Runner, uid: str, attr: str, value: str, want: bool, res: SimResult) -> list[Finding]:
    if res.status != 204:
        return []
    back = r.sim.get_user(uid)
    have = {g.get("value") for g in objects(_dict(back).get(attr))}
    if back.status == 200 and (value in have) is not want:
        return [
            own(
                f"after the 204 the user's {attr} {'lack' if want else 'still hold'} {value}",
                "Okta records the change as done; the app's user differs from Okta's",
                f"Apply the PATCH on {attr} as sent.",
            )
        ]
    return []


SUITE_FUNCTIONS: dict[str, Callable[[Runner], None]] = {
    "spec": spec,
    "crud": crud,
    "groups": groups,
    "entitlements": entitlements,
}
