"""Okta insight: which step of Okta's provisioning each request belongs to (see OKTA.md).

:class:`OktaClassifier` labels a request twice: :meth:`~OktaClassifier.classify` before the
answer is known (so a fault rule can match on the step id), and
:meth:`~OktaClassifier.note_response` after it, which records the exchange in a short history
and returns the final :class:`Step`: the same id and label with what Okta does next added to
the explanation (the retry schedule after a 429, "links instead of creating" after an
existence check that found the user, the failure Okta reports for an empty 201, ...).

Every rule below comes from OKTA.md; comments quote the section they implement. The module is
pure: no I/O, no clock (the request carries its time), no Tornado or Qt. It is not
thread-safe: the server calls it from its IOLoop thread only, once ``classify`` and once
``note_response`` per request, in arrival order.

What cannot be known from one request alone comes from the history, which is bounded
(``history_size`` requests and ``max_age_s`` seconds, 500 and 15 minutes by default):

* ``GET /Users/{id}`` after an existence check that found that user is the "link" read
  (OKTA.md, Create step 3), and a ``PUT`` after it the link write.
* An App Integration Wizard ``PUT`` with ``"active": false`` after a read that showed the user
  active is a deactivation (OKTA.md, "Two kinds of Okta app"); ``true`` after ``false`` a
  reactivation.
* A request identical to one answered 429 is a retry (OKTA.md, "Errors, rate limits and
  retries"); the 429 answer itself gets the wait Okta applies before retrying.
* ``GET /Groups?startIndex=1&count=100`` right after the small ``GET /Users`` of the "Test API
  Credentials" button belongs to that test, otherwise it is an import page.
* A ``PUT /Users/{id}`` whose ``roles`` or ``entitlements`` differ from the user as last seen
  grants or revokes them (OKTA.md, "Entitlements, roles and custom attributes").

The classifier is split by resource, each part a mixin of :class:`OktaClassifier` over the
shared history tables (``okta_common._State``): ``okta_users`` (/Users), ``okta_groups``
(/Groups), ``okta_spec`` (the SPEC test suite), ``okta_entitlements`` (discovery reads,
catalog imports, grants and revokes; :meth:`OktaClassifier.set_catalog`), ``okta_retry``
(429s and retries); ``okta_steps`` holds the step table and records. This module keeps the
public API: import from here.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any, TypeAlias

from scim_desktop.core.okta_common import (
    _int,
    _operations,
    _plural,
    _q,
    _Recent,
    _request_key,
    _shorten,
    _State,
    _target,
)
from scim_desktop.core.okta_entitlements import (
    ENTITLEMENT_STEPS,
    _CatalogTarget,
    _EntitlementSteps,
    grants_on_page,
)
from scim_desktop.core.okta_expect import Problem, reaction, timed_out
from scim_desktop.core.okta_groups import _GroupSteps
from scim_desktop.core.okta_retry import _RetryRules, _Throttle, retry_wait
from scim_desktop.core.okta_spec import _SpecSteps
from scim_desktop.core.okta_steps import (
    DEFAULT_RETRY_WAIT_S,
    IMPORT_PAGE_SIZE,
    LINK_WINDOW_S,
    MAX_ATTEMPTS,
    OKTA_TIMEOUT_S,
    SPEC_USER_AGENT,
    STEPS,
    OktaRequest,
    Seen,
    Step,
    _make,
    _not_okta,
)
from scim_desktop.core.okta_users import _UserSteps
from scim_desktop.core.paths import ci_get

__all__ = [
    "DEFAULT_RETRY_WAIT_S",
    "MAX_ATTEMPTS",
    "OKTA_TIMEOUT_S",
    "SPEC_USER_AGENT",
    "STEPS",
    "Exchange",
    "OktaClassifier",
    "OktaRequest",
    "Seen",
    "Step",
    "classify_sequence",
    "retry_wait",
]


# --- the classifier ----------------------------------------------------------------------------
class OktaClassifier(_UserSteps, _GroupSteps, _SpecSteps, _EntitlementSteps, _RetryRules, _State):
    """Labels requests with Okta lifecycle steps (OKTA.md) using a short, bounded history.

    Call :meth:`classify` when a request arrives and :meth:`note_response` once it is answered
    (also for 429s, faults and dropped connections: status 0). Not thread-safe.
    """

    def __init__(self, history_size: int = 500, max_age_s: float = 900.0) -> None:
        self._last_prune = float("-inf")
        size = max(1, history_size)
        self.history_size = size
        self.max_age_s = max_age_s
        self._history: deque[Seen] = deque(maxlen=size)
        # What the history taught, each bounded like the history itself.
        self._users: _Recent[str, dict[str, Any]] = _Recent(size, max_age_s)  # id -> last seen
        self._names: _Recent[str, str] = _Recent(size, max_age_s)  # id -> userName/displayName
        # id ("*": any id) -> userName, for the link that follows an existence check.
        self._links: _Recent[str, str] = _Recent(size, min(LINK_WINDOW_S, max_age_s))
        self._link_read: _Recent[str, bool] = _Recent(size, max_age_s)  # ids read for a link
        self._checked: _Recent[str, bool] = _Recent(size, max_age_s)  # lower userName checked
        # users / groups / a catalog endpoint (lower-case) -> totalResults
        self._totals: _Recent[str, int] = _Recent(64, max_age_s)
        self._last_test_credentials: float | None = None
        self._spec_users: _Recent[str, tuple[str, str]] = _Recent(size, max_age_s)
        self._spec_ids: _Recent[str, bool] = _Recent(size, max_age_s)
        # Entitlements: the catalog's endpoints (set_catalog) and the values' names.
        self._catalog: dict[str, tuple[str, str]] = {}
        self._catalog_targets: dict[str, _CatalogTarget | None] = {}
        self._values: _Recent[str, str] = _Recent(size, max_age_s)
        # Retries can come hours later (300 s doubled 9 times): entries expire on their own.
        self._throttled: _Recent[tuple[Any, ...], _Throttle] = _Recent(size, math.inf)

    @property
    def history(self) -> tuple[Seen, ...]:
        """The answered requests remembered, oldest first."""
        return tuple(self._history)

    # --- public API ----------------------------------------------------------------------------
    def classify(self, req: OktaRequest) -> Step:
        """The step ``req`` belongs to, before its answer is known. Changes no state."""
        self._prune(req.time)
        throttle = self._throttle_for(req)
        if throttle is not None:
            return self._retry_step(throttle, req.time)
        return self._classify(req)

    def note_response(
        self,
        req: OktaRequest,
        step: Step,
        status: int,
        retry_after: str | None,
        body: Any = None,
        *,
        duration_s: float | None = None,
    ) -> Step:
        """Record the answer to ``req`` (``step`` from :meth:`classify`) and return the final
        step, its explanation completed with what Okta does with this answer.

        ``status`` 0 means no answer was sent (a dropped connection); ``retry_after`` is the
        ``Retry-After`` header as sent (None when absent); ``body`` the decoded JSON answer;
        ``duration_s`` how long the answer took, if known.
        """
        now = req.time
        self._prune(now)
        final = step
        notes: list[str] = []
        if final.id == "spec_test":
            final, note = self._spec_result(req, final, status, duration_s)
            notes.append(note)
        if status == 429:
            final, note = self._note_429(_request_key(req), final, retry_after, now)
            notes.append(note)
        else:
            if self._throttled:
                self._throttled.pop(_request_key(req))
            if 200 <= status < 300:
                self._remember(req, final, body)
            if final.id not in ("spec_test", "not_okta", "discovery") or status == 0:
                # What Okta does with the answer; the SPEC test's expectations were noted above.
                notes.append(self._status_note(req, final, status, body))
        slow = timed_out(final.id, duration_s)
        if slow is not None:
            notes.append(_reaction_note(slow, 200, None))
        self._remember_request(req, final, status)
        self._history.append(Seen(now, req.method.upper(), req.path, final.id, status))
        text = " ".join(n for n in notes if n)
        if not text:
            return final
        # Built directly: dataclasses.replace inspects the fields on every call (per request).
        return Step(
            final.id,
            final.label,
            f"{final.explanation} {text}",
            final.page,
            final.retry,
            final.next_retry_in_s,
            final.retry_gives_up,
        )

    # --- history -------------------------------------------------------------------------------
    def _prune(self, now: float) -> None:
        # At most once a second: it walks every table, and runs for each request.
        if 0 <= now - self._last_prune < 1.0:
            return
        self._last_prune = now
        while self._history and now - self._history[0].time > self.max_age_s:
            self._history.popleft()
        for recent in (
            self._users,
            self._names,
            self._links,
            self._link_read,
            self._checked,
            self._totals,
            self._spec_users,
            self._spec_ids,
            self._values,
        ):
            recent.prune(now)
        for key in [k for k in self._throttled if self._expired(k, now)]:
            self._throttled.pop(key)

    def _remember_resource(self, kind: str, resource: Any, now: float) -> None:
        if not isinstance(resource, dict):
            return
        rid = ci_get(resource, "id")
        if not isinstance(rid, str) or not rid:
            return
        if kind == "users":
            self._users.put(rid, resource, now)
            name = ci_get(resource, "userName")
        else:
            name = ci_get(resource, "displayName")
        if isinstance(name, str) and name:
            self._names.put(rid, name, now)

    def _remember(self, req: OktaRequest, step: Step, body: Any) -> None:
        """What a successful (2xx) answer teaches."""
        now = req.time
        target = _target(req.path)
        sid = step.id
        if sid in ("import_entitlements", "read_entitlement_value"):
            self._remember_entitlements(req, step, body)
        if target.kind in ("users", "groups"):
            if isinstance(ci_get(body, "Resources"), list):
                for resource in ci_get(body, "Resources"):
                    self._remember_resource(target.kind, resource, now)
            else:
                self._remember_resource(target.kind, body, now)
            total = ci_get(body, "totalResults")
            if sid in ("import_users", "import_groups") and isinstance(total, int):
                self._totals.put(target.kind, total, now)
        if target.kind == "groups" and req.method.upper() in ("POST", "PUT", "PATCH"):
            # Member objects carry the user's name in "display" (OKTA.md, "Add members"):
            # remember it to name the user when Okta later removes it by id.
            values = [ci_get(req.body, "members")]
            values += [value for _op, _path, value in _operations(req.body) or []]
            for value in values:
                for member in value if isinstance(value, list) else []:
                    uid, name = ci_get(member, "value"), ci_get(member, "display")
                    if isinstance(uid, str) and isinstance(name, str) and uid and name:
                        self._names.put(uid, name, now)
        if target.kind == "users" and target.id is not None and not isinstance(body, dict):
            # 204 or an empty answer: assume the change was applied as asked.
            known = self._users.get(target.id, now)
            merged = dict(known or {})
            if sid in ("deactivate_user_patch", "reactivate_user_patch"):
                merged["active"] = sid == "reactivate_user_patch"
            elif req.method.upper() == "PUT" and isinstance(req.body, dict):
                merged = dict(req.body)
            if merged:
                self._users.put(target.id, merged, now)
        if sid == "create_user_existence_check":
            # OKTA.md, Create step 3: a found user is linked (GET then PUT), not created.
            resources = ci_get(body, "Resources")
            total = ci_get(body, "totalResults")
            user = self._filter_user(req) or ""
            ids = [
                ci_get(r, "id")
                for r in (resources if isinstance(resources, list) else [])
                if isinstance(ci_get(r, "id"), str)
            ]
            for rid in ids:
                self._links.put(rid, user, now)
            if not ids and isinstance(total, int) and total > 0:
                self._links.put("*", user, now)
        elif sid == "link_user_read" and target.id is not None:
            self._links.pop(target.id)
            self._links.pop("*")
            self._link_read.put(target.id, True, now)
        elif sid == "link_user_put" and target.id is not None:
            self._links.pop(target.id)
            self._links.pop("*")
            self._link_read.pop(target.id)
        elif sid == "test_credentials":
            self._last_test_credentials = now
        elif sid == "push_group_delete" and target.id is not None:
            self._names.pop(target.id)
        elif sid == "spec_test" and req.method.upper() == "POST" and target.kind == "users":
            user = ci_get(req.body, "userName")
            rid = ci_get(body, "id")
            if isinstance(user, str) and isinstance(rid, str):
                self._spec_users.put(user.lower(), (user, rid), now)
                self._spec_ids.put(rid, True, now)

    def _remember_request(self, req: OktaRequest, step: Step, status: int) -> None:
        """What any answered request teaches, whatever the status (except 429: not served)."""
        if status != 429 and step.id == "create_user_existence_check":
            user = self._filter_user(req)
            if user:
                self._checked.put(user.lower(), True, req.time)

    # --- what Okta does with the answer --------------------------------------------------------
    def _status_note(self, req: OktaRequest, step: Step, status: int, body: Any) -> str:
        """What Okta does with this answer. Its failures (no answer, 401, 4xx/5xx, an empty
        201, a 204 to a (de)activation) in core/okta_expect's words, the one place they live;
        what Okta does next after a good answer (link, create, page on) is the classifier's."""
        sid = step.id
        if status not in (0, 401) and status >= 300 and sid in ENTITLEMENT_STEPS:
            note = self._entitlement_error_note(req, step, status, body)
            if note:
                return note
        if status == 404 and sid == "create_user_existence_check":
            return (
                "404 is tolerated here as 'not found' (200 with totalResults 0 is expected): "
                "Okta creates the user next."
            )
        problem = reaction(sid, req.method, status, body)
        if problem is not None:
            return _reaction_note(problem, status, body)
        if 200 <= status < 300:
            return self._success_note(req, step, status, body)
        return ""

    def _success_note(self, req: OktaRequest, step: Step, status: int, body: Any) -> str:
        sid = step.id
        total = ci_get(body, "totalResults")
        if sid == "create_user_existence_check" and isinstance(total, int):
            if total == 0:
                return "Not found: Okta creates the user next (POST /Users)."
            return (
                f"Found {_plural(total, 'user')}: Okta links to the existing user "
                "(GET /Users/{id}, then PUT) instead of creating one."
            )
        if sid == "push_group_lookup" and isinstance(total, int):
            if total == 0:
                return "Not found: Okta creates the group next (POST /Groups)."
            return "Found: Okta links the push group to it and updates it by id."
        if sid in ("import_users", "import_groups", "import_entitlements"):
            notes: list[str] = []
            if isinstance(total, int):
                start = max(_int(_q(req.query, "startIndex")) or 1, 1)
                count = _int(_q(req.query, "count"))
                size = count if count is not None and count > 0 else IMPORT_PAGE_SIZE
                if start - 1 + size < total:
                    notes.append(
                        f"totalResults is {total}: Okta asks next for startIndex={start + size}."
                    )
                else:
                    notes.append(f"totalResults is {total}: this is the last page.")
            if sid == "import_users":
                notes.append(grants_on_page(body))
            elif sid == "import_entitlements":
                notes.append(self._entitlement_success_note(req, step, body))
            return " ".join(n for n in notes if n)
        if sid in ENTITLEMENT_STEPS:
            return self._entitlement_success_note(req, step, body)
        return ""

    # --- classification ------------------------------------------------------------------------
    def _classify(self, req: OktaRequest) -> Step:
        method = req.method.upper()
        target = _target(req.path)
        if self._catalog and target.kind in ("unknown", "discovery"):
            # Only while a catalog is served (OKTA.md, "Entitlements, ..."): Okta's
            # discovery reads and the catalog endpoints, whatever the User-Agent (Okta's
            # Runscope entitlements test sends the SPEC test's).
            found = self._entitlement_step(req, method, target)
            if found is not None:
                return found
        if SPEC_USER_AGENT.lower() in (req.user_agent or "").lower():
            return self._spec_step(self._spec_key(req, target), req, target)
        if target.kind == "discovery":
            return _make("discovery", what=target.name)
        if target.kind == "search":
            return _not_okta(
                f"{method} {target.name}",
                "it searches with GET and a filter, never with POST /.search.",
            )
        if target.kind == "bulk":
            return _not_okta(f"{method} {target.name}", "it never uses /Bulk.")
        if target.kind == "me":
            return _not_okta(f"{method} {target.name}", "it never uses /Me.")
        if target.kind in ("root", "unknown"):
            return _not_okta(
                f"{method} {target.name}",
                f"{target.name} is not an endpoint it calls (it appends /Users, /Groups, "
                "/Users/{id} and /Groups/{id} to the base URL).",
            )
        if target.kind == "users":
            if target.id is None:
                return self._users_collection(req, method, target)
            return self._user_resource(req, method, target.id)
        if target.id is None:
            return self._groups_collection(req, method, target)
        return self._group_resource(req, method, target.id)


def _reaction_note(problem: Problem, status: int, body: Any) -> str:
    """A problem of core/okta_expect as a sentence of the explanation: "503: <what Okta does>."
    for an error status, "<what the server answered>: <what Okta does>." otherwise; the error's
    detail quoted (OKTA.md, "Errors": Okta shows it to the admin)."""
    effect = problem.okta_effect
    if status == 0:
        return f"No answer (connection closed): {effect}."
    if status < 300:
        return f"{problem.what[:1].upper()}{problem.what[1:]}: {effect}."
    detail = ci_get(body, "detail")
    shown = f' Okta shows the admin: "{_shorten(str(detail))}".' if detail else ""
    return f"{status}: {effect}.{shown}"


#: ``(request, status, retry_after)`` or ``(request, status, retry_after, response body)``.
Exchange: TypeAlias = tuple[OktaRequest, int, str | None] | tuple[OktaRequest, int, str | None, Any]


def classify_sequence(
    requests: Sequence[Exchange],
    classifier: OktaClassifier | None = None,
) -> list[Step]:
    """Classify and note each ``(request, status, retry_after[, response body])`` in order,
    as the server does; return the final steps. For tests and replaying logs."""
    engine = classifier if classifier is not None else OktaClassifier()
    steps: list[Step] = []
    for item in requests:
        req, status, retry_after = item[0], item[1], item[2]
        body = item[3] if len(item) > 3 else None
        step = engine.classify(req)
        steps.append(engine.note_response(req, step, status, retry_after, body))
    return steps
