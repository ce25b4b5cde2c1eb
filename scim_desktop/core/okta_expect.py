"""Okta insight: what Okta expects back for each of its steps, and what it does when the answer
differs (OKTA.md). One answered request in, every :class:`Problem` with it out.

:func:`expect` judges one exchange against the step the classifier gave it (an id of
``core/okta_steps.STEPS``): the status, then the body Okta reads (a ListResponse with JSON
integers for lists and imports, the resource with its ``id`` for creates, ``active`` as asked
for (de)activations, the member asked for in group pushes, ...). Each problem says what the
server answered, what Okta does with it (:data:`Effect`, and in words) and how to fix the
server, and whose rule it is (:data:`Source`: Okta's, a Runscope SPEC assertion, or Okta's
client where it is stricter than Runscope). It is the one place that knowledge lives: the
lifecycle checklist (``core/coverage.py``) fails an item on it, the proxy's detail pane and
``scim-desktop check`` print it, and the classifier's explanation (``core/okta.py``) says what
Okta does with a failed answer in its words (:func:`reaction`, :func:`timed_out`,
:func:`rate_limited`).

Only what one exchange shows is judged: a stable order between import pages, or whether a
member remove wiped the others, needs the requests around it. The SPEC test's expected statuses
depend on the steps before (a second create of the same user wants 409): the classifier decides
them (``core/okta_spec.py``) and its explanation says so; pass it as ``explanation``. Without
it, only what the request itself shows is checked.

What Okta reads in a resource answer (creates, users, groups) is in
``core/okta_expect_answers.py``; import everything from here.

Pure: no I/O, no clock, no state.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from scim_desktop.core.errors import ERROR_SCHEMA, ScimError
from scim_desktop.core.filter import parse as parse_filter
from scim_desktop.core.okta_common import _eq_value, _int, _q
from scim_desktop.core.okta_expect_answers import (
    Effect,
    Problem,
    Source,
    _active_type,
    _created,
    _detail,
    _duplicate_create,
    _group_patch,
    _group_read_or_put,
    _has_schema,
    _in_tasks,
    _is_int,
    _quoted,
    _replaces_with_empty,
    _shown,
    _task,
    _user_answer,
    json_or_none,
)
from scim_desktop.core.okta_spec import _SPEC_STEPS
from scim_desktop.core.okta_steps import MAX_ATTEMPTS, OKTA_TIMEOUT_S, SPEC_UNKNOWN_ID
from scim_desktop.core.paths import ci_get
from scim_desktop.core.schemas import LIST_RESPONSE_SCHEMA

__all__ = [
    "EFFECT_TEXT",
    "Effect",
    "Problem",
    "Source",
    "expect",
    "is_failure",
    "rate_limited",
    "reaction",
    "timed_out",
]

#: A few words per effect, for a column or a badge.
EFFECT_TEXT: dict[str, str] = {
    "fails": "Okta fails the task",
    "retries": "Okta retries",
    "ignored": "Okta silently loses data",
    "tooling": "Okta's tests flag it",
}


def is_failure(problems: list[Problem]) -> bool:
    """Whether an answer with these problems fails an OIN test-plan item: anything but a 429
    Okta will retry (its own test suites count as failing)."""
    return any(p.effect != "retries" for p in problems)


# --- steps by what Okta reads back ----------------------------------------------------------------
_LIST_STEPS = frozenset(
    {
        "test_credentials",
        "create_user_existence_check",
        "import_users",
        "import_groups",
        "push_group_lookup",
        "import_entitlements",
    }
)
_CREATE_STEPS = frozenset({"create_user", "push_group_create"})
_USER_STEPS = frozenset(
    {
        "read_user",
        "link_user_read",
        "link_user_put",
        "update_user_put",
        "update_user_patch",
        "push_empty_values_put",
        "deactivate_user_patch",
        "reactivate_user_patch",
        "deactivate_user_put",
        "reactivate_user_put",
        "password_sync_patch",
        "password_sync_put",
        "grant_entitlement",
        "revoke_entitlement",
    }
)
_GROUP_PATCH_STEPS = frozenset(
    {
        "push_group_rename",
        "push_group_add_members",
        "push_group_remove_members",
        "push_group_replace_members",
    }
)
_COLLECTION = re.compile(r"/(users|groups)(?:/([^/]+))?/?$", re.IGNORECASE)


# --- the judgement --------------------------------------------------------------------------------
def expect(
    step: str | None,
    method: str,
    query: str,
    request_body: str,
    status: int,
    response_body: str,
    *,
    retry_gives_up: bool = False,
    path: str = "",
    explanation: str | None = None,
    duplicate: bool = False,
    duration_s: float | None = None,
) -> list[Problem]:
    """Every way this answer differs from what Okta expects for ``step`` (an id from
    ``core/okta_steps.STEPS``); ``[]`` when Okta is happy.

    ``status`` 0 means no answer was sent; ``query`` is the raw query string; bodies are the
    texts as sent. Optional: ``retry_gives_up`` for a 429 after which Okta stops retrying (the
    classifier's ``Step.retry_gives_up``); ``path`` the request path (the SPEC test's steps are
    told apart by it); ``explanation`` the classifier's explanation (its SPEC verdicts);
    ``duplicate`` when the request creates a resource that already exists (the caller knows:
    the SPEC test's second create, ``check``'s duplicate create), which Okta needs answered 409;
    ``duration_s`` how long the answer took (Okta gives up after 60 s).
    """
    method = method.upper()
    slow = timed_out(step, duration_s)
    if slow is not None:
        return [slow]
    if status == 0:
        return [_dropped(step)]
    if status == 429:
        return [rate_limited(retry_gives_up)]
    if step is None or step in ("not_okta", "discovery"):
        return []  # Okta does not send these: it expects nothing of them
    query_map = dict(parse_qsl(query, keep_blank_values=True))
    body = json_or_none(response_body)
    if step == "spec_test":
        return _spec(method, path, query_map, status, body, explanation, duplicate, duration_s)
    if status == 401:
        return [_unauthorized(step, body)]
    if step in _CREATE_STEPS and duplicate:
        return _duplicate_create(step, status, body)
    if status >= 300:
        return _error_status(step, method, request_body, status, body)
    if step in _LIST_STEPS:
        return _list_problems(step, query_map, status, body)
    if step in _CREATE_STEPS:
        return _created(step, status, body, spec=False)
    if step in _USER_STEPS:
        return _user_answer(step, method, request_body, status, body)
    if step == "read_group" or step == "push_group_put":
        return _group_read_or_put(step, method, request_body, status, body)
    if step in _GROUP_PATCH_STEPS:
        return _group_patch(step, request_body, status, body)
    if step in ("read_resource_types", "read_extension_schemas", "read_entitlement_value"):
        return _status_is(step, method, status, 200)
    if step == "push_group_delete":
        # OKTA.md: "Delete: DELETE /Groups/{id} → 204"; RFC 7644 §3.6: "SHALL return ... 204".
        return _status_is(step, method, status, 204)
    return []


# --- what Okta does with an answer's status: also the classifier's words (core/okta.py) ---------
def reaction(step: str, method: str, status: int, body: Any) -> Problem | None:
    """The problem Okta's client reacts to in an answer's status and shape alone, as
    :func:`expect` reports it: no answer (status 0), 401, a 4xx or 5xx (not the existence
    check's tolerated 404), a create's 2xx without the resource, a (de)activation PATCH answered
    204. ``body`` is the decoded answer. The classifier's explanation says what Okta does next
    in these words, so the two never disagree. None when the answer is none of these."""
    method = method.upper()
    if status == 0:
        return _dropped(step)
    if status == 401:
        return _unauthorized(step, body)
    if status >= 400 and status != 429:
        return next(iter(_error_status(step, method, "", status, body)), None)
    if step in _CREATE_STEPS and 200 <= status < 300:
        return next(
            (p for p in _created(step, status, body, spec=False) if p.effect == "fails"), None
        )
    if status == 204 and method == "PATCH" and step in _USER_STEPS:
        return next(iter(_user_answer(step, method, "", status, body)), None)
    return None


def timed_out(step: str | None, duration_s: float | None) -> Problem | None:
    """An answer slower than Okta waits (OKTA.md: "Okta closes the socket when a response takes
    longer than 60 s"); None when it was in time or the time is unknown."""
    if duration_s is None or duration_s < OKTA_TIMEOUT_S:
        return None
    return Problem(
        "fails",
        f"the answer took {duration_s:.0f} s",
        f"Okta closes the connection after 60 s, never sees the answer and {_task(step or '')}",
        "Answer within a few seconds; do slow work after answering.",
    )


def _dropped(step: str | None) -> Problem:
    return Problem(
        "fails",
        "no answer was sent (the connection was dropped)",
        f"Okta sees a connection error and {_task(step or '')}",
        "Answer every request, with a SCIM Error (RFC 7644 §3.12) when it fails.",
    )


def rate_limited(gives_up: bool) -> Problem:
    """A 429 (OKTA.md, "Errors, rate limits and retries"); ``gives_up`` after the last attempt.
    The classifier notes the wait of each retry itself (it knows the attempt and Retry-After)
    and says Okta giving up in these words."""
    fix = (
        "Send Retry-After as an integer number of seconds (Okta ignores an HTTP-date) and size "
        "the limit for Okta's bursts (imports, group pushes)."
    )
    if gives_up:
        return Problem(
            "fails",
            "answered 429 and Okta gave up retrying",
            f"Okta gives up after {MAX_ATTEMPTS} attempts; the task fails for good and an admin "
            "must retry it",
            fix,
        )
    return Problem(
        "retries",
        "answered 429 (rate limited)",
        "Okta pauses the task and retries after an integer Retry-After (5 minutes without "
        f"one), doubling the wait each time, up to {MAX_ATTEMPTS} attempts",
        fix,
    )


def _unauthorized(step: str, body: Any) -> Problem:
    what = "answered 401"
    if _detail(body):
        what += f": {_quoted(_detail(body))}"
    # The Test button shows its error in the app's settings, not in Tasks.
    where = (
        "the credentials test fails and the admin cannot save the integration"
        if step == "test_credentials"
        else f"{_task(step)} ({_in_tasks(body)})"
    )
    return Problem(
        "fails",
        what,
        f"Okta reports the credentials as invalid: {where}",
        "Accept the credential configured in Okta (the bearer token after 'Bearer ', Basic "
        "user and password, or the OAuth access token) on every endpoint.",
    )


def _error_body_note(body: Any) -> str:
    if _has_schema(body, ERROR_SCHEMA) and _detail(body):
        return ""
    return " Answer errors with a SCIM Error body carrying detail (RFC 7644 §3.12): Okta shows it."


def _error_status(
    step: str, method: str, request_body: str, status: int, body: Any
) -> list[Problem]:
    what = f"answered {status}" + (" instead of 200" if step in _LIST_STEPS else "")
    if _detail(body):
        what += f": {_quoted(_detail(body))}"
    note = _error_body_note(body)
    if status == 404 and step == "create_user_existence_check":
        return []  # OKTA.md, Create step 1: "404 is tolerated"
    if status == 501 and method == "PATCH":
        # OKTA.md, "Two kinds of Okta app": "If PATCH is answered with 501, the task fails".
        return [
            Problem(
                "fails",
                "PATCH " + what,
                f"{_task(step)}; Okta does not fall back to PUT ({_in_tasks(body)})",
                "Implement PATCH (RFC 7644 §3.5.2) for what Okta sends: path-less replace of "
                "active and password on users, members add / remove / replace on groups.",
            )
        ]
    if status >= 500:
        return [
            Problem(
                "fails",
                what,
                f"Okta documents no automatic retry for 5xx: {_task(step)} and an admin must "
                f"retry it ({_in_tasks(body)})",
                "Find the server error in the app's log; answer bad input with a 4xx SCIM "
                "Error, never a 500." + note,
            )
        ]
    if status == 409 and step == "create_user":
        return [
            Problem(
                "fails",
                what + " (the userName exists)",
                f"{_task(step)}: the existence check (userName eq) should have found the user, "
                "and Okta would have linked to it",
                "Match userName case-insensitively in filters (RFC 7643 caseExact false) so the "
                "existence check finds the user." + note,
            )
        ]
    fix = "Accept the request as Okta sends it (OKTA.md)." + note
    if step in ("deactivate_user_patch", "reactivate_user_patch", "password_sync_patch"):
        fix = (
            'Accept a PATCH "replace" with no path whose value is an object of attributes '
            '(RFC 7644 §3.5.2.3), such as {"active": false}.' + note
        )
    elif step == "push_group_remove_members":
        fix = (
            'Accept op remove with path members[value eq "<id>"] (RFC 7644 §3.5.2.2) and '
            "remove only that member." + note
        )
    elif step == "push_group_replace_members":
        if _replaces_with_empty(request_body):
            what += " to a replace of members with []"
        fix = (
            "Accept op replace on members with any list, [] included, which empties the "
            "group (RFC 7644 §3.5.2.3)." + note
        )
    elif step == "push_group_add_members":
        fix = (
            'Accept op add on members whose member objects carry only "value" and "display" '
            '(no "type").' + note
        )
    elif status == 404:
        fix = "Keep the ids you returned: Okta uses them for every later request." + note
    return [Problem("fails", what, f"{_task(step)} ({_in_tasks(body)})", fix)]


def _status_is(step: str, method: str, status: int, want: int) -> list[Problem]:
    if status == want:
        return []
    return [
        Problem(
            "tooling",
            f"answered {status} instead of {want}",
            f"Okta expects {want} to {method} here; its test suites flag anything else",
            f"Answer {want} (RFC 7644 §3.4-3.6).",
        )
    ]


# --- lists and imports ----------------------------------------------------------------------------
def _list_problems(step: str, query: dict[str, str], status: int, body: Any) -> list[Problem]:
    """A ListResponse Okta pages through (RFC 7644 §3.4.2): OKTA.md, "Import users"."""
    task = _task(step)
    if status != 200:
        return [
            Problem(
                "fails",
                f"answered {status} instead of 200",
                f"Okta reads the list from a 200: {task}",
                "Answer 200 with a ListResponse, totalResults 0 when nothing matches.",
            )
        ]
    if not isinstance(body, dict) or not _has_schema(body, LIST_RESPONSE_SCHEMA):
        got = "a bare array" if isinstance(body, list) else "no ListResponse"
        return [
            Problem(
                "fails",
                f"the answer is not a ListResponse ({got})",
                f"Okta cannot read it: {task}",
                'Answer {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], '
                '"totalResults", "startIndex", "itemsPerPage", "Resources"} (RFC 7644 §3.4.2).',
            )
        ]
    problems: list[Problem] = []
    total = ci_get(body, "totalResults")
    for name in ("totalResults", "itemsPerPage", "startIndex"):
        value = ci_get(body, name)
        if (name == "totalResults" or value is not None) and not _is_int(value):
            problems.append(
                Problem(
                    "fails",
                    f"{name} is {_shown(value)}, not a JSON integer",
                    f"Okta's client reads {name} as a JSON integer: {task}",
                    f"Send {name} as a number, not a string (RFC 7644 §3.4.2).",
                    source="strict",
                )
            )
    resources = ci_get(body, "Resources")
    if resources is not None and not isinstance(resources, list):
        problems.append(
            Problem(
                "fails",
                f"Resources is {_shown(resources)}, not a list",
                f"Okta cannot read the page: {task}",
                "Send Resources as a JSON array.",
            )
        )
        return problems
    page = resources or []
    if _is_int(total) and total > 0 and resources is None:
        problems.append(
            Problem(
                "ignored",
                f"totalResults is {total} but the answer has no Resources",
                "Okta finds nothing on the page: those resources are never imported or matched",
                "Send the page's resources in Resources.",
            )
        )
    asked_start = _int(_q(query, "startIndex"))
    asked_count = _int(_q(query, "count"))
    start = ci_get(body, "startIndex")
    want_start = max(asked_start if asked_start is not None else 1, 1)
    if page and _is_int(start) and start != want_start:
        zero = " (0-based)" if start == 0 else ""
        problems.append(
            Problem(
                "ignored",
                f"answered startIndex {start}{zero} to startIndex={want_start}",
                "Okta pages by startIndex: it imports some resources twice and never sees others",
                "Honour startIndex, 1-based, and echo it in the answer (RFC 7644 §3.4.2.4).",
            )
        )
    if _is_int(total) and page and total < want_start - 1 + len(page):
        problems.append(
            Problem(
                "ignored",
                f"totalResults is {total} on a page holding items {want_start} to "
                f"{want_start - 1 + len(page)}",
                "Okta stops paging at totalResults: the resources after it are never imported",
                "totalResults counts every match, not only this page (RFC 7644 §3.4.2).",
            )
        )
    if asked_count is not None and asked_count >= 0 and len(page) > asked_count:
        problems.append(
            Problem(
                "tooling",
                f"returned {len(page)} resources for count={asked_count}",
                "Okta's client copes, but it breaks RFC 7644 §3.4.2.4 and its tests flag it",
                "Return at most count resources.",
            )
        )
    per_page = ci_get(body, "itemsPerPage")
    if step == "import_entitlements" and asked_count == 1 and _is_int(total) and total >= 1:
        # OKTA.md: Okta's Runscope entitlements test "requires itemsPerPage == 1".
        if per_page != 1:
            problems.append(
                Problem(
                    "tooling",
                    f"itemsPerPage is {_shown(per_page)} for count=1, not 1",
                    "Okta's Runscope entitlements test fails",
                    "Answer count=1 with one value and itemsPerPage 1 (the real page size).",
                )
            )
    elif _is_int(per_page) and isinstance(resources, list) and per_page != len(resources):
        problems.append(
            Problem(
                "tooling",
                f"itemsPerPage is {per_page} but the page holds {len(resources)}",
                "Okta pages by totalResults, but its tests check itemsPerPage is the page size",
                "Set itemsPerPage to the number of resources on the page (RFC 7644 §3.4.2).",
            )
        )
    problems += _filter_match(step, query, page)
    if step == "import_users":
        problems += [p for user in page for p in _active_type(user)][:1]
    return problems


def _filter_match(step: str, query: dict[str, str], page: list[Any]) -> list[Problem]:
    """An existence check or group lookup whose answer holds another resource than asked for:
    the filter was ignored, and Okta would link to the wrong one."""
    attr = {"create_user_existence_check": "username", "push_group_lookup": "displayname"}.get(step)
    text = _q(query, "filter")
    if attr is None or not text:
        return []
    try:
        wanted = _eq_value(parse_filter(text), attr, "")
    except ScimError:
        return []
    if wanted is None:
        return []
    for resource in page:
        got = ci_get(resource, attr)
        if isinstance(got, str) and got.lower() != wanted.lower():
            name = "userName" if attr == "username" else "displayName"
            return [
                Problem(
                    "ignored",
                    f'the filter {name} eq "{wanted}" answered {name} "{got}"',
                    "Okta takes the first match as the same resource: it links to the wrong "
                    + ("user" if attr == "username" else "group"),
                    f"Apply the filter (RFC 7644 §3.4.2.2); match {name} case-insensitively.",
                )
            ]
    return []


# --- Okta's SPEC test suite -----------------------------------------------------------------------
_SPEC_FAIL = re.compile(r"Expected (\d{3}), got (\d{3}): this SPEC step fails")
_SPEC_SLOW = re.compile(r"It took (\d+) ms; the SPEC test allows 600 ms")
_SPEC_LIST_ATTRS = ("id", "name.givenName", "name.familyName", "userName", "active")


def _spec(
    method: str,
    path: str,
    query: dict[str, str],
    status: int,
    body: Any,
    explanation: str | None,
    duplicate: bool,
    duration_s: float | None,
) -> list[Problem]:
    """Okta's SPEC test (OKTA.md, "Okta's own test suites"). Its assertions are ``tooling``
    problems of ``source="runscope"``: the suite fails, Okta's provisioning client is not
    involved; a JSON type it does not check but Okta's client does keeps ``source="strict"``
    and the client's effect (issue 15: "say which is which")."""
    problems: list[Problem] = []
    found = _COLLECTION.search(path)
    kind = found.group(1).lower() if found else ""
    rid = found.group(2) if found else None
    verdict = _SPEC_FAIL.search(explanation or "")
    if verdict:
        # core/okta_spec.py decided it from the steps before (create vs create again, ...).
        problems.append(_spec_problem(f"Expected {verdict[1]}, got {verdict[2]}"))
    elif explanation is None and status != 401:
        # Only what this request shows (a second create needs ``duplicate``).
        key = _spec_key(method, kind, rid, duplicate)
        allowed = {_SPEC_STEPS[k][1] for k in key}
        if key and status not in allowed:
            want = " or ".join(str(s) for s in sorted(s for s in allowed if s is not None))
            problems.append(_spec_problem(f"Expected {want}, got {status}"))
    slow = _SPEC_SLOW.search(explanation or "")
    took = int(slow[1]) if slow else None
    if took is None and duration_s is not None and kind == "groups" and rid is None:
        took = round(duration_s * 1000) if duration_s > 0.6 else None
    if took is not None:
        problems.append(_spec_problem(f"GET /Groups took {took} ms; the SPEC test allows 600 ms"))
    if status in (401, 404, 409) and not (_has_schema(body, ERROR_SCHEMA) and _detail(body)):
        problems.append(_spec_problem(f"the {status} has no SCIM Error body with detail"))
    if (
        status == 409
        and _has_schema(body, ERROR_SCHEMA)
        and ci_get(body, "scimType") != ("uniqueness")
    ):
        problems.append(_spec_problem("the 409 has no scimType uniqueness"))
    if status == 200 and method == "GET" and rid is None and kind:
        listed = _list_problems("spec_test", query, status, body)
        problems += [_as_spec(p) for p in listed]
        if not listed and _int(_q(query, "count")) == 1 and kind == "users":
            first = (ci_get(body, "Resources") or [None])[0]
            missing = [a for a in _SPEC_LIST_ATTRS if _dotted(first, a) is None]
            emails = ci_get(first, "emails")
            if not (isinstance(emails, list) and emails and ci_get(emails[0], "value")):
                missing.append("emails[0].value")
            if missing:
                problems.append(
                    _spec_problem(f"Resources[0] lacks {', '.join(missing)}")
                    if first is not None
                    else _spec_problem("the list is empty (at least one user must exist)")
                )
    if status == 201:
        problems += [_as_spec(p) for p in _created("create_user", status, body, spec=True)]
    return problems


def _spec_key(method: str, kind: str, rid: str | None, duplicate: bool) -> tuple[str, ...]:
    """The SPEC steps this request can be, from the request alone (``okta_spec._SPEC_STEPS``)."""
    if kind == "users" and rid is None and method == "POST":
        return ("create_again",) if duplicate else ("create", "create_again")
    if kind == "users" and rid is None and method == "GET":
        return ("list_users",)
    if kind == "users" and method == "GET":
        return ("fixed_unknown_id",) if rid == SPEC_UNKNOWN_ID else ("get_user", "unknown_id")
    if kind == "groups" and rid is None and method == "GET":
        return ("list_groups",)
    return ()


def _dotted(resource: Any, name: str) -> Any:
    value = resource
    for part in name.split("."):
        value = ci_get(value, part)
    return value


def _spec_problem(what: str) -> Problem:
    return Problem(
        "tooling",
        what,
        "Okta's SPEC test suite (Runscope) fails this step, which the OIN submission needs",
        "Answer as OKTA.md's SPEC test steps say (status and SCIM Error bodies).",
        source="runscope",
    )


def _as_spec(problem: Problem) -> Problem:
    """A problem of Okta's client met in a SPEC answer. A JSON type (``source="strict"``) is
    not one the Runscope suite checks: it stays the client's problem, with its effect; the rest
    fail the SPEC step."""
    if problem.source == "strict":
        return replace(
            problem,
            okta_effect="Runscope's SPEC test does not check JSON types, but Okta's client "
            "does: " + problem.okta_effect,
        )
    return Problem(
        "tooling",
        problem.what,
        "Okta's SPEC test suite fails this step (Okta's own client would: "
        + problem.okta_effect
        + ")",
        problem.fix,
        source="runscope",
    )
