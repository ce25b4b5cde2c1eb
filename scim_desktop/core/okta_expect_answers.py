"""Okta insight: what Okta reads in a resource answer (creates, users, groups) and the words
``core/okta_expect.py`` builds its :class:`Problem` records from. Part of
:func:`~scim_desktop.core.okta_expect.expect` (import from there): the step dispatch, status
errors, list pages and the SPEC suite live in ``okta_expect``; this module needs nothing of it.

Pure: no I/O, no clock, no state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from scim_desktop.core.errors import ERROR_SCHEMA
from scim_desktop.core.okta_common import _eq_value, _operations, _patch_attr
from scim_desktop.core.paths import ci_get

#: fails: Okta fails the task (the admin sees it in Tasks); retries: Okta pauses and retries
#: (429); ignored: Okta silently drops or misreads data (skips a user, loses a member);
#: tooling: allowed by the RFC or coped with by Okta's client, but Okta's test suites (Runscope
#: SPEC / CRUD) or the OIN review flag it.
Effect = Literal["fails", "retries", "ignored", "tooling"]
#: Whose rule a problem is. okta: Okta's (its provisioning client; for a ``tooling`` effect, its
#: test suites and the OIN review); runscope: an assertion of Okta's Runscope SPEC test suite;
#: strict: Okta's provisioning client where it is stricter than the Runscope suites (a JSON type
#: they do not check: integer totalResults / itemsPerPage / startIndex, boolean active; issue
#: 15), so in a SPEC answer it stays the client's problem instead of a SPEC failure.
Source = Literal["okta", "strict", "runscope"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One way an answer differs from what Okta expects."""

    effect: Effect
    what: str  # what the server answered
    okta_effect: str  # what Okta does with it
    fix: str  # how to fix the server
    source: Source = "okta"  # whose rule it is


#: Reads whose answer Okta uses for what it sends next (the full PUT after a read).
_READ_STEPS = frozenset({"read_user", "link_user_read", "read_group"})
#: What fails, in Okta's words, when a step's task fails.
_TASK: dict[str, str] = {
    "test_credentials": "the Test API Credentials button reports an error and the admin cannot "
    "save the integration",
    "create_user_existence_check": "the user's create task fails",
    "create_user": "the create task fails",
    "import_users": "the user import fails",
    "import_groups": "the group import (or the push-group match) fails",
    "push_group_lookup": "the group push fails",
    "import_entitlements": "the entitlement import fails; Okta keeps the values it had",
    "read_resource_types": "enabling entitlement management fails",
    "read_extension_schemas": "enabling entitlement management fails",
    "grant_entitlement": "the grant stays pending until an admin retries it",
    "revoke_entitlement": "the revoke stays pending until an admin retries it",
}


def _in_tasks(body: Any) -> str:
    """Where the admin sees a failed task (OKTA.md, "Errors": Okta shows ``detail``)."""
    if _detail(body):
        return "the admin sees it under Dashboard → Tasks with the error's detail"
    return "the admin sees it under Dashboard → Tasks, with no reason (no SCIM Error detail)"


def _task(step: str) -> str:
    if step in _TASK:
        return _TASK[step]
    if step.startswith("push_group"):
        return "the group push task fails"
    return "the task fails"


# --- small readers --------------------------------------------------------------------------------
def json_or_none(text: str) -> Any:
    """A recorded body as JSON, or None when it is empty or not JSON (the checklist, the
    coverage command and the judgements all read recorded bodies this way)."""
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _shown(value: Any) -> str:
    """A JSON value as it appears in the answer (a string quoted, so "3" reads as a string)."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _has_schema(body: Any, urn: str) -> bool:
    schemas = ci_get(body, "schemas")
    return isinstance(schemas, list) and any(
        isinstance(s, str) and s.lower() == urn.lower() for s in schemas
    )


def _detail(body: Any) -> str:
    detail = ci_get(body, "detail")
    return detail if isinstance(detail, str) and detail else ""


def _quoted(text: str, limit: int = 160) -> str:
    """A message from the app, quoted and cut to a line's length."""
    return f'"{text}"' if len(text) <= limit else f'"{text[: limit - 1]}…"'


def _ids(values: Any) -> set[str]:
    """The ``value`` of each member object (or plain string) in a list."""
    out: set[str] = set()
    for item in values if isinstance(values, list) else []:
        value = ci_get(item, "value") if isinstance(item, dict) else item
        if isinstance(value, str):
            out.add(value)
    return out


#: Attributes never Okta's to push or empty: the server's (RFC 7643 §3.1, §4.1.2: id, meta and
#: groups are readOnly; password is never returned), and roles / entitlements, which a PUT
#: grants and revokes (OKTA.md, "Entitlements, roles and custom attributes").
_NOT_PUSHED = frozenset({"id", "meta", "schemas", "password", "groups", "roles", "entitlements"})


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def emptied_attrs(held: Any, sent: Any) -> list[str]:
    """The attributes (and sub-attributes of complex ones, ``name.middleName``) that ``held``
    has a value for and a full-object PUT body ``sent`` leaves out or sends empty (null, "",
    [], {}): how Okta pushes an emptied profile attribute (the OIN QA plan's "push empty
    values"; RFC 7644 §3.5.1: a PUT replaces the resource). Booleans have no empty value and
    are not counted (Okta sends active on every PUT). ``[]`` unless both are objects."""
    if not isinstance(held, dict) or not isinstance(sent, dict):
        return []
    new = {k.lower(): v for k, v in sent.items()}
    out: list[str] = []
    for key, value in held.items():
        if key.lower() in _NOT_PUSHED or _empty(value) or isinstance(value, bool):
            continue
        got = new.get(key.lower())
        if _empty(got):
            out.append(key)
        elif isinstance(value, dict) and isinstance(got, dict):
            sub = {k.lower(): v for k, v in got.items()}
            out += [
                f"{key}.{k}"
                for k, v in value.items()
                if not _empty(v) and not isinstance(v, bool) and _empty(sub.get(k.lower()))
            ]
    return out


def _active_type(resource: Any) -> list[Problem]:
    active = ci_get(resource, "active")
    if active is None or isinstance(active, bool):
        return []
    return [
        Problem(
            "ignored",
            f"active is {_shown(active)}, not a JSON boolean",
            "Okta's client reads active as a boolean: it misreads whether the user is active "
            "(and imports users it should skip)",
            "Send active as true or false (RFC 7643 §4.1.1).",
            source="strict",
        )
    ]


# --- creates, users and groups --------------------------------------------------------------------
def _created(step: str, status: int, body: Any, *, spec: bool) -> list[Problem]:
    """OKTA.md, Create step 2: 201 with the full resource and its id, never the password."""
    if step == "push_group_create":
        empty_effect = "Okta has no id for the group: the group push fails"
    else:
        empty_effect = 'the task fails with "Create new user returned empty user"'
    problems: list[Problem] = []
    if status != 201:
        problems.append(
            Problem(
                "tooling",
                f"answered {status} instead of 201",
                "Okta's SPEC and CRUD tests expect 201 Created",
                "Answer a create with 201 and the resource (RFC 7644 §3.3).",
            )
        )
    if not isinstance(body, dict) or not ci_get(body, "id"):
        problems.append(
            Problem(
                "fails",
                f"the {status} carries no resource with an id",
                empty_effect,
                "Return the created resource with its id (and meta) in the body.",
            )
        )
        return problems
    if step != "push_group_create" and ci_get(body, "password") is not None:
        problems.append(_password_echoed())
    if step == "create_user" or spec:
        problems += _active_type(body)
    return problems


def _password_echoed() -> Problem:
    return Problem(
        "tooling",
        "the answer returns the password",
        "Okta's client ignores it, but the OIN review flags a password leaving the app",
        'Never return password (RFC 7643 §4.1.1: returned "never").',
    )


def _duplicate_create(step: str, status: int, body: Any) -> list[Problem]:
    """A create of a resource that exists: 409 with scimType uniqueness (OKTA.md, Create)."""
    if status == 409:
        if ci_get(body, "scimType") == "uniqueness" and _has_schema(body, ERROR_SCHEMA):
            return []
        return [
            Problem(
                "tooling",
                "the duplicate create answered 409 without a SCIM Error of scimType uniqueness",
                "Okta fails the task either way, but its SPEC test checks the Error body",
                'Answer {"schemas": [Error], "status": "409", "scimType": "uniqueness", '
                '"detail": ...} (RFC 7644 §3.12).',
            )
        ]
    if 200 <= status < 300:
        return [
            Problem(
                "tooling",
                f"the duplicate create answered {status}: a second resource with the same "
                "unique name",
                "Okta's SPEC test (create the same user again -> 409) fails, and the app now "
                "holds two accounts for one person",
                "Refuse a create whose userName (or displayName) exists, matched "
                "case-insensitively, with 409 scimType uniqueness.",
            )
        ]
    what = f"the duplicate create answered {status} instead of 409"
    effect: Effect = "fails" if status >= 500 else "tooling"
    return [
        Problem(
            effect,
            what,
            f"{_task(step)} with a server error instead of the conflict ({_in_tasks(body)})"
            if status >= 500
            else "Okta fails the task; its SPEC test expects 409",
            "Answer 409 with scimType uniqueness (RFC 7644 §3.3, §3.12), not a 500.",
        )
    ]


def _user_answer(
    step: str, method: str, request_body: str, status: int, body: Any
) -> list[Problem]:
    """Reads, updates, (de)activations and password syncs of one user: OKTA.md, "Update
    profile", "Deactivate", "Reactivate", "Password sync"."""
    if status == 204 and method == "PATCH":
        if step in ("deactivate_user_patch", "reactivate_user_patch"):
            verb = step.split("_")[0]
            return [
                Problem(
                    "tooling",
                    f"PATCH {verb} answered 204 where Okta expects 200 with the user",
                    "RFC 7644 allows 204 and Okta's client copes, but Okta's tooling checks 200 "
                    "with the user: its CRUD test reads active from the answer and fails",
                    "Answer PATCH with 200 and the updated user (RFC 7644 §3.5.2).",
                )
            ]
        return []
    if status != 200:
        read = step in _READ_STEPS
        return [
            Problem(
                "fails" if read else "tooling",
                f"answered {status} instead of 200",
                "Okta needs the user from the read for the PUT it sends next: " + _task(step)
                if read
                else "Okta expects 200 with the resource; its test suites flag anything else",
                "Answer 200 with the resource (RFC 7644 §3.4.1, §3.5.1).",
            )
        ]
    if not isinstance(body, dict) or not ci_get(body, "id"):
        read = step in _READ_STEPS
        return [
            Problem(
                "fails" if read else "tooling",
                "the 200 carries no user",
                "Okta needs the user from the read for the PUT it sends next: " + _task(step)
                if read
                else "Okta expects the updated user; its test suites read it",
                "Return the resource with its id in the body.",
            )
        ]
    problems: list[Problem] = []
    want = {
        "deactivate_user_patch": False,
        "deactivate_user_put": False,
        "reactivate_user_patch": True,
        "reactivate_user_put": True,
    }.get(step)
    active = ci_get(body, "active")
    if want is not None and isinstance(active, bool) and active is not want:
        problems.append(
            Problem(
                "ignored",
                f"the answer shows active {str(active).lower()}, not {str(want).lower()}",
                "Okta records the user as "
                + ("deactivated" if not want else "active")
                + " but the app did not change it (its CRUD test fails)",
                'Apply a path-less replace {"active": ...} to active, false included '
                "(RFC 7644 §3.5.2.3).",
            )
        )
    problems += _active_type(body)
    if ci_get(body, "password") is not None:
        problems.append(_password_echoed())
    if step in ("grant_entitlement", "revoke_entitlement"):
        problems += _grant_shown(step, request_body, body)
    if step == "push_empty_values_put":
        problems += _still_shown(request_body, body)
    return problems


def _still_shown(request_body: str, body: Any) -> list[Problem]:
    """A PUT that empties attributes must leave them empty in the answer (the OIN QA plan's
    "push empty values": the attribute is empty in the app afterwards)."""
    kept = emptied_attrs(body, json_or_none(request_body))
    if not kept:
        return []
    listed = ", ".join(kept[:5]) + (" …" if len(kept) > 5 else "")
    return [
        Problem(
            "ignored",
            f"the answer still shows {listed}, which the PUT left out or sent empty",
            "Okta records the attribute as emptied but the app keeps the old value: the two "
            'profiles differ, and the OIN test plan\'s "push empty values" fails',
            "Treat a PUT as replacing the whole user (RFC 7644 §3.5.1): clear the attributes it "
            'leaves out or sends empty (null, "", []).',
        )
    ]


def _grant_shown(step: str, request_body: str, body: Any) -> list[Problem]:
    """A PATCH add on roles / entitlements must show the value afterwards; a remove with a value
    filter must not (OKTA.md, "Entitlements, roles and custom attributes")."""
    for op, path, value in _operations(json_or_none(request_body)) or []:
        if path is None:
            continue
        attr, value_filter = _patch_attr(path)
        if attr not in ("roles", "entitlements"):
            continue
        have = _ids(ci_get(body, attr))
        if step == "grant_entitlement" and op == "add":
            missing = sorted(_ids(value) - have)
            if missing:
                return [_grant_problem(attr, missing[0], granted=True)]
        if step == "revoke_entitlement" and op == "remove" and value_filter is not None:
            gone = _eq_value(value_filter, "value", "") if value_filter else None
            if gone is not None and gone in have:
                return [_grant_problem(attr, gone, granted=False)]
    return []


def _grant_problem(attr: str, value: str, *, granted: bool) -> Problem:
    return Problem(
        "ignored",
        f"the answer's {attr} {'lack' if granted else 'still hold'} {value}",
        f"Okta records the {'grant' if granted else 'revoke'} as done; the app's user does not "
        "match what Okta shows on the Governance tab",
        f"Apply the PATCH {'add' if granted else 'remove'} on {attr} and return the updated user.",
    )


def _group_read_or_put(
    step: str, method: str, request_body: str, status: int, body: Any
) -> list[Problem]:
    if status != 200:
        read = step == "read_group"
        return [
            Problem(
                "fails" if read else "tooling",
                f"answered {status} instead of 200",
                _task(step) if read else "Okta expects 200 with the group",
                "Answer 200 with the group (RFC 7644 §3.4.1, §3.5.1).",
            )
        ]
    if not isinstance(body, dict) or not ci_get(body, "id"):
        return [
            Problem(
                "fails" if step == "read_group" else "tooling",
                "the 200 carries no group",
                "Okta expects the group with its id",
                "Return the group with its id in the body.",
            )
        ]
    if step == "push_group_put":
        sent = json_or_none(request_body)
        members = ci_get(sent, "members")
        if isinstance(members, list) and "members" in {k.lower() for k in body}:
            return _members_differ(step, _ids(members), _ids(ci_get(body, "members")))
    return []


def _group_patch(step: str, request_body: str, status: int, body: Any) -> list[Problem]:
    """Group push PATCHes: 200 (or 204) and the members as asked (OKTA.md, "Group push")."""
    if status not in (200, 204):
        return [
            Problem(
                "tooling",
                f"answered {status} instead of 200 or 204",
                "Okta expects 200 (or 204) to a group PATCH",
                "Answer 204, or 200 with the group (RFC 7644 §3.5.2).",
            )
        ]
    if status == 204 or not isinstance(body, dict):
        return []
    if "members" not in {k.lower() for k in body}:
        return []  # members not returned (excluded, or the answer is minimal): nothing to see
    have = _ids(ci_get(body, "members"))
    ops = _operations(json_or_none(request_body)) or []
    for op, path, value in ops:
        attr, value_filter = _patch_attr(path) if path else ("", None)
        if attr != "members":
            continue
        if op == "add" and (_ids(value) - have):
            missing = sorted(_ids(value) - have)[0]
            return [_member_problem(f"the added member {missing} is not in the answer")]
        if op == "remove" and value_filter is not None:
            gone = _eq_value(value_filter, "value", "")
            if gone is not None and gone in have:
                return [_member_problem(f"the removed member {gone} is still in the answer")]
        if op == "replace":
            return _members_differ(step, _ids(value), have)
    return []


def _members_differ(step: str, sent: set[str], have: set[str]) -> list[Problem]:
    if sent == have:
        return []
    if not sent:
        return [_member_problem(f"members replaced with [] but {len(have)} remain")]
    return [
        _member_problem(
            f"members replaced with {len(sent)} but the answer holds {len(have)} "
            f"({len(sent - have)} missing, {len(have - sent)} extra)"
        )
    ]


def _member_problem(what: str) -> Problem:
    return Problem(
        "ignored",
        what,
        "Okta records the push as done; the group's members in the app differ from Okta's",
        "Apply member add, remove by value filter and replace (with [] too) exactly as sent "
        "(RFC 7644 §3.5.2).",
    )


def _replaces_with_empty(request_body: str) -> bool:
    for op, path, value in _operations(json_or_none(request_body)) or []:
        if op == "replace" and path is not None and path.strip().lower() == "members":
            return not value
    return False
