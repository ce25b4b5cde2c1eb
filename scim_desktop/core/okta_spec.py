"""Okta insight: Okta's SPEC test suite (User-Agent "OKTA SCIM Integration"), its 12 steps
recognised from the request and checked against the status each expects (OKTA.md, "Okta's own
test suites").
"""

from __future__ import annotations

from dataclasses import replace

from scim_desktop.core.okta_common import _q, _State, _Target, _target
from scim_desktop.core.okta_steps import SPEC_UNKNOWN_ID, OktaRequest, Step, _make
from scim_desktop.core.paths import ci_get

# SPEC test sub-steps: label part, expected status (None: no fixed expectation), what it checks.
# OKTA.md, "Okta's own test suites": the 12 steps.
_SPEC_STEPS: dict[str, tuple[str, int | None, str]] = {
    "list_users": (
        "list users",
        200,
        "lists users with count=1&startIndex=1 and expects 200 with Resources[0] carrying id, "
        "name.givenName, name.familyName, userName, active and emails[0].value (at least one "
        "user must exist before it starts).",
    ),
    "get_user": ("get a user by id", 200, "reads a user by id and expects 200 with it."),
    "filter_absent": (
        "filter for a non-existent userName",
        200,
        "filters for a userName that does not exist and expects 200 with totalResults 0.",
    ),
    "filter_created": (
        "filter for the created user",
        200,
        "filters for the user it created and expects 200 with it.",
    ),
    "filter_upper": (
        "filter with the userName upper-cased",
        200,
        "filters with the userName upper-cased and expects 200 with the user: userName is "
        "matched case-insensitively (RFC 7643 caseExact false).",
    ),
    "unknown_id": (
        "unknown id -> 404",
        404,
        "reads a user id that does not exist and expects 404 with a SCIM Error body carrying "
        "detail.",
    ),
    "fixed_unknown_id": (
        f"GET /Users/{SPEC_UNKNOWN_ID} -> 404",
        404,
        f"reads the made-up id {SPEC_UNKNOWN_ID} and expects 404 with a SCIM Error body.",
    ),
    "create": (
        "create a user",
        201,
        "creates a user with realistic values and expects 201 with the resource and its id.",
    ),
    "read_back": (
        "read back the created user",
        200,
        "reads back the user it created and expects 200 with the same values.",
    ),
    "create_again": (
        "create the same user again -> 409",
        409,
        "creates the same user a second time and expects 409 with a SCIM Error body "
        "(scimType uniqueness).",
    ),
    "list_groups": ("list groups", 200, "lists groups and expects 200 within 600 ms."),
    "bad_auth": (
        "bad Authorization -> 401",
        401,
        "sends a bad Authorization value and expects 401 with a SCIM Error body.",
    ),
    "other": ("{what}", None, "sends a request outside its 12 documented steps."),
}


class _SpecSteps(_State):
    """The SPEC-test part of :class:`~scim_desktop.core.okta.OktaClassifier`."""

    # SPEC test (OKTA.md, "Okta's own test suites")
    def _spec_key(self, req: OktaRequest, target: _Target) -> str:
        now = req.time
        method = req.method.upper()
        if target.kind == "users" and target.id is None:
            if method == "POST":
                user = ci_get(req.body, "userName")
                known = isinstance(user, str) and self._spec_users.get(user.lower(), now)
                return "create_again" if known else "create"
            if method == "GET":
                user = self._filter_user(req)
                if user is None:
                    return "other" if _q(req.query, "filter") else "list_users"
                created = self._spec_users.get(user.lower(), now)
                if created is not None and created[0] == user:
                    return "filter_created"
                if created is not None or (user == user.upper() and user != user.lower()):
                    return "filter_upper"
                return "filter_absent"
        if target.kind == "users" and target.id is not None and method == "GET":
            if target.id == SPEC_UNKNOWN_ID:
                return "fixed_unknown_id"
            if self._spec_ids.get(target.id, now):
                return "read_back"
            return "get_user"
        if target.kind == "groups" and target.id is None and method == "GET":
            return "list_groups"
        return "other"

    @staticmethod
    def _spec_step(key: str, req: OktaRequest, target: _Target) -> Step:
        what, _expected, detail = _SPEC_STEPS[key]
        what = what.format(what=f"{req.method.upper()} {target.name}")
        return _make("spec_test", what=what, detail=detail)

    def _spec_result(
        self, req: OktaRequest, step: Step, status: int, duration_s: float | None
    ) -> tuple[Step, str]:
        target = _target(req.path)
        key = self._spec_key(req, target)
        if status == 401:
            key = "bad_auth"
        elif status == 404 and key == "get_user":
            key = "unknown_id"
        if step.retry is None:
            fresh = self._spec_step(key, req, target)
            step = replace(step, label=fresh.label, explanation=fresh.explanation)
        expected = _SPEC_STEPS[key][1]
        if expected is None or status in (0, 429):
            note = ""
        elif status == expected:
            note = f"Answered {status} as the SPEC test expects."
        else:
            note = f"Expected {expected}, got {status}: this SPEC step fails."
        if key == "list_groups" and duration_s is not None and duration_s > 0.6:
            note += f" It took {duration_s * 1000:.0f} ms; the SPEC test allows 600 ms."
        return step, note
