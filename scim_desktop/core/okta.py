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
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeAlias, TypeVar

from scim_desktop.core.errors import ScimError
from scim_desktop.core.filter import And, Compare, Filter, Not, Or, Present, ValuePath, parse
from scim_desktop.core.filter import parse_path as parse_patch_path
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

#: OKTA.md, "Connection and headers": Okta closes the socket after 60 s without an answer.
OKTA_TIMEOUT_S = 60.0
#: OKTA.md, "Errors, rate limits and retries": without a usable integer Retry-After Okta
#: waits 5 minutes.
DEFAULT_RETRY_WAIT_S = 300.0
#: OKTA.md, "Errors, rate limits and retries": "up to 10 attempts; then the task fails".
MAX_ATTEMPTS = 10
#: OKTA.md, "Okta's own test suites": the SPEC test's User-Agent (compared case-insensitively).
SPEC_USER_AGENT = "OKTA SCIM Integration"
#: OKTA.md, "Okta's own test suites": the SPEC test's last step reads this id, expecting 404.
SPEC_UNKNOWN_ID = "00919288221112222"
#: OKTA.md, "Import users": Okta's page size.
IMPORT_PAGE_SIZE = 100
#: A /Users listing with at most this count (and no filter) is the "Test API Credentials" call
#: (OKTA.md: "a small list call such as GET /Users?startIndex=1&count=2"); imports use 100.
TEST_CREDENTIALS_MAX_COUNT = 10
#: How long after the credentials test's GET /Users a GET /Groups page 1 still belongs to it.
TEST_CREDENTIALS_WINDOW_S = 30.0
#: How long after an existence check that found a user its GET / PUT count as the link
#: (OKTA.md, Create step 3: Okta links right away; retries keep their label on their own).
LINK_WINDOW_S = 300.0

_USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:user"
_GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:group"
_PAGE_HINT = "(Okta pages with count=100)"

# --- the steps ---------------------------------------------------------------------------------
#: Every step id with its label template and explanation template (``str.format`` fields in
#: braces). The explanation says what Okta is doing and what it expects back (OKTA.md). Ids are
#: stable: logs (``okta_step``) and fault rules (``step=push_group_*``) use them.
STEPS: dict[str, tuple[str, str]] = {
    # OKTA.md, "User lifecycle": Test API credentials.
    "test_credentials": (
        "Test API credentials",
        'The admin pressed "Test API Credentials" (AIW apps: "Test Connector Configuration") '
        "in Okta, which makes a small list call ({request}); it expects 200 with a SCIM "
        "ListResponse, and any error, 401 included, fails the test.",
    ),
    # OKTA.md, "User lifecycle": Create, step 1.
    "create_user_existence_check": (
        "Create user: existence check for {user}",
        "Before creating {user}, Okta looks it up with a userName eq filter; it expects 200 "
        "with totalResults 0 when absent (404 is tolerated), matched case-insensitively, and "
        "links to the user it finds instead of creating a second one.",
    ),
    # OKTA.md, "User lifecycle": Create, step 2.
    "create_user": (
        "Create user {user}",
        "Okta creates {user}, newly assigned to the app; it expects 201 with the full resource "
        'and its id. An empty body makes Okta fail with "Create new user returned empty user", '
        "a duplicate userName must get 409 (scimType uniqueness), and the password is never "
        "returned.",
    ),
    # OKTA.md, "User lifecycle": Create, step 3.
    "link_user_read": (
        "Create user: link to existing user (GET)",
        "The existence check found {who} already in the app, so Okta links to it instead of "
        "creating it: it reads the user and expects 200 with the resource, then sends a full PUT.",
    ),
    "link_user_put": (
        "Create user: link to existing user (PUT)",
        "Okta links {who}, found by the existence check, to its Okta user by writing the whole "
        "object with PUT; it expects 200 with the resource.",
    ),
    # OKTA.md, "Update profile" and "Two kinds of Okta app".
    "read_user": (
        "Read user",
        "Okta reads {who}, usually right before a full-object PUT (a profile update; App "
        "Integration Wizard apps also deactivate and sync passwords that way); it expects 200 "
        "with the resource.",
    ),
    "update_user_put": (
        "Update profile (PUT)",
        "Okta pushes a profile change for {who} as a full-object PUT after reading the user; it "
        "expects 200 with the updated resource.",
    ),
    "update_user_patch": (
        "Update user (PATCH, not usual for Okta)",
        "A PATCH changing {attrs} of {who}: Okta's catalog template apps use PATCH only to "
        "activate, deactivate and sync passwords and send every other update as PUT; AIW apps "
        "never PATCH users.",
    ),
    # OKTA.md, "Deactivate" and "Reactivate" (catalog template apps).
    "deactivate_user_patch": (
        "Deactivate (PATCH)",
        "Okta deactivates {who}, unassigned from the app or deactivated in Okta, with a "
        'PATCH replacing {{"active": false}} with no path; it expects 200 with the resource '
        "showing active false (204 is allowed by the RFC, but 200 with the body is what Okta's "
        "tooling checks).",
    ),
    "reactivate_user_patch": (
        "Reactivate (PATCH)",
        "Okta reactivates {who}, assigned again or reactivated in Okta, with the same "
        'path-less PATCH, {{"active": true}}; it expects 200 with the resource showing active '
        "true.",
    ),
    # OKTA.md, "Two kinds of Okta app" and "Deactivate": AIW apps send GET then PUT.
    "deactivate_user_put": (
        "Deactivate (AIW PUT)",
        "An App Integration Wizard app deactivates {who}: after reading the user Okta PUTs the "
        'whole object with "active": false; it expects 200 with the resource showing active '
        "false.",
    ),
    "reactivate_user_put": (
        "Reactivate (AIW PUT)",
        "An App Integration Wizard app reactivates {who}: after reading the user Okta PUTs the "
        'whole object with "active": true; it expects 200 with the resource showing active true.',
    ),
    # OKTA.md, "Password sync".
    "password_sync_patch": (
        "Password sync (PATCH)",
        "Okta pushes a new password for {who} with a PATCH replacing password (catalog template "
        "apps); it expects 200, and the password must never be returned.",
    ),
    "password_sync_put": (
        "Password sync (AIW PUT)",
        "Okta pushes a new password for {who} in a full-object PUT (App Integration Wizard "
        "apps); it expects 200 with the resource, and the password must never be returned.",
    ),
    # OKTA.md, "Import users".
    "import_users": (
        "Import users, page {page}",
        "Okta imports users page by page (startIndex={start}, count={count}) until totalResults "
        "is reached; it expects a ListResponse with a 1-based startIndex, JSON integers and the "
        "same order on every page, and skips users with active false.",
    ),
    # OKTA.md, "Group push": list, often with excludedAttributes=members.
    "import_groups": (
        "Import groups, page {page}",
        "Okta lists groups page by page (startIndex={start}, count={count}) to import them or to "
        "match push groups, often with excludedAttributes=members; it expects a ListResponse "
        "whose totalResults counts every group. The Test API Credentials button also sends "
        "GET /Groups?startIndex=1&count=100.",
    ),
    # OKTA.md, "Group push".
    "push_group_lookup": (
        'Push group: look up "{group}"',
        'Okta does not know the target id of push group "{group}", so it looks it up with a '
        "displayName eq filter; it expects 200 with a ListResponse (totalResults 0 when absent, "
        "and then it creates the group).",
    ),
    "push_group_create": (
        'Push group: create "{group}"',
        'Okta pushes group "{group}" for the first time ({members}); it expects 201 with the '
        "group and its id, which it uses for every later change.",
    ),
    "read_group": (
        "Read group",
        "Okta reads push group {group}; it expects 200 with the group.",
    ),
    "push_group_rename": (
        'Push group: rename to "{group}"',
        'Okta replaces {{"id", "displayName"}} of group {target} with no path; it sends this when '
        "the group is renamed and also after every membership change. It expects 200 (or 204) "
        "and members untouched.",
    ),
    "push_group_add_members": (
        "Push group: add {count} {members_word}",
        "Okta adds {added} to group {target} (op add, path members; member objects carry no "
        "type); it expects 200 (or 204) with the other members untouched.",
    ),
    "push_group_remove_members": (
        "Push group: remove {count} {members_word}",
        'Okta removes {removed} from group {target} (op remove, path members[value eq "<user '
        'id>"]); only that member may go, never all of them.',
    ),
    "push_group_replace_members": (
        "Push Now: replace members",
        '"Push Now" overwrites the members of group {target} with {members} (op replace, path '
        "members); it expects 200 (or 204) with exactly those members.",
    ),
    "push_group_put": (
        "Push group (AIW PUT)",
        'An App Integration Wizard app writes the whole group "{group}" ({members}) with PUT '
        "instead of PATCH; it expects 200 with the group.",
    ),
    "push_group_delete": (
        "Push group: delete",
        "An admin unlinked push group {group} and asked Okta to delete it in the app; Okta "
        "expects 204.",
    ),
    # OKTA.md, "Okta's own test suites".
    "spec_test": (
        "SPEC test: {what}",
        'Okta\'s SPEC test suite (User-Agent "OKTA SCIM Integration") {detail}',
    ),
    # OKTA.md, "Connection and headers".
    "discovery": (
        "Discovery: {what}",
        "A discovery endpoint: Okta never reads /ServiceProviderConfig, and reads /Schemas and "
        "/ResourceTypes only for apps with entitlements; a good server still serves them.",
    ),
    "not_okta": (
        "Not sent by Okta: {what}",
        "Okta's SCIM client does not send this; {why}",
    ),
}

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


# --- data --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OktaRequest:
    method: str  # upper-case
    path: str  # relative to the SCIM base, e.g. "/Users", "/Users/abc", "/ServiceProviderConfig"
    query: dict[str, str]  # decoded query parameters (first value of each)
    body: Any  # decoded JSON body or None
    user_agent: str
    time: float  # seconds (monotonic or epoch; only differences matter)
    client: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    id: str  # a key of STEPS
    label: str
    explanation: str
    page: int | None = None
    retry: int | None = None  # k for "retry k" of a request that was answered 429
    next_retry_in_s: float | None = None  # set by note_response for a 429 Okta will retry
    retry_gives_up: bool = False


@dataclass(frozen=True, slots=True)
class Seen:
    """One answered request in the classifier's history."""

    time: float
    method: str
    path: str
    step_id: str
    status: int


@dataclass(slots=True)
class _Throttle:
    base: Step  # the step as first classified, without retry marks
    count: int  # 429 answers so far (attempts made)
    last_time: float
    wait: float  # what Okta waits after the last 429


@dataclass(frozen=True, slots=True)
class _Target:
    """Which endpoint a path names."""

    kind: str  # users | groups | discovery | search | me | bulk | root | unknown
    id: str | None = None
    name: str = ""  # the path as written, for messages


_K = TypeVar("_K")
_V = TypeVar("_V")


class _Recent(Generic[_K, _V]):
    """A map that forgets: at most ``size`` keys, each kept ``max_age`` seconds since its last
    ``put``. Insertion-ordered, so the oldest entry is evicted first."""

    def __init__(self, size: int, max_age: float) -> None:
        self.size = size
        self.max_age = max_age
        self._data: OrderedDict[_K, tuple[float, _V]] = OrderedDict()

    def put(self, key: _K, value: _V, now: float) -> None:
        self._data.pop(key, None)
        self._data[key] = (now, value)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def get(self, key: _K, now: float) -> _V | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if now - hit[0] > self.max_age:
            del self._data[key]
            return None
        return hit[1]

    def pop(self, key: _K) -> None:
        self._data.pop(key, None)

    def prune(self, now: float) -> None:
        while self._data:
            key, (t, _value) = next(iter(self._data.items()))
            if now - t <= self.max_age:
                break
            del self._data[key]

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[_K]:
        return iter(self._data)


# --- small helpers -----------------------------------------------------------------------------
def retry_wait(attempt: int, retry_after: str | None) -> tuple[float, str]:
    """Okta's wait after the ``attempt``-th 429 for one request, and why (OKTA.md, "Errors,
    rate limits and retries"): an integer ``Retry-After`` is honoured; a missing one, an
    HTTP-date or anything else not an integer means 5 minutes; each further 429 doubles it."""
    text = (retry_after or "").strip()
    if text.isascii() and text.isdigit():
        base, why = float(int(text)), f"Retry-After: {text} honoured"
    elif retry_after is None:
        base, why = DEFAULT_RETRY_WAIT_S, "no Retry-After, so 5 minutes"
    elif _is_http_date(text):
        base, why = (
            DEFAULT_RETRY_WAIT_S,
            "Retry-After is an HTTP-date, which Okta does not honour: 5 minutes",
        )
    else:
        base, why = DEFAULT_RETRY_WAIT_S, f"Retry-After {text!r} is not an integer: 5 minutes"
    if attempt > 1:
        why += f", doubled {attempt - 1} time{'s' if attempt > 2 else ''}"
    return base * 2 ** (attempt - 1), why


def _is_http_date(text: str) -> bool:
    try:
        parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return False
    return True


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.0005 else "under 1 ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{round(seconds)} s"
    if seconds < 7200:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h" + (f" {rest // 60} min" if rest >= 60 else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _q(query: dict[str, str], name: str) -> str | None:
    """A query parameter, its name matched case-insensitively."""
    value = query.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in query.items():
        if key.lower() == lowered:
            return val
    return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _bool(value: Any) -> bool | None:
    """A boolean, also as the strings "true" / "false" some clients send."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


_TARGETS: dict[str, _Target] = {}


def _target(path: str) -> _Target:
    """What ``path`` (relative to the SCIM base) names. Resource endpoints are matched
    case-insensitively, as the server routes them. Remembered for recent paths: each
    request asks twice (before and after its answer)."""
    found = _TARGETS.get(path)
    if found is None:
        found = _parse_target(path)
        if len(_TARGETS) >= 1024:
            _TARGETS.clear()
        _TARGETS[path] = found
    return found


def _parse_target(path: str) -> _Target:
    clean = path.split("?", 1)[0].rstrip("/")
    if clean.lower().startswith("/scim/v2/") or clean.lower() == "/scim/v2":
        clean = clean[len("/scim/v2") :]  # tolerate the conventional base path
    parts = [p for p in clean.split("/") if p]
    if not parts:
        return _Target("root", None, path or "/")
    head = parts[0].lower()
    rest = parts[1:]
    if head in ("users", "groups"):
        if not rest:
            return _Target(head, None, clean)
        if len(rest) == 1:
            if rest[0].lower() == ".search":
                return _Target("search", None, clean)
            return _Target(head, rest[0], clean)
        return _Target("unknown", None, clean)
    if head in ("serviceproviderconfig", "serviceproviderconfigs", "schemas", "resourcetypes"):
        return _Target("discovery", None, "/" + parts[0])
    if head == ".search" and not rest:
        return _Target("search", None, clean)
    if head in ("me", "bulk"):
        return _Target(head, None, clean)
    return _Target("unknown", None, clean)


def _eq_value(node: Filter, attr: str, schema: str) -> str | None:
    """The string of ``attr eq "..."`` when the filter is exactly that, else None."""
    if (
        isinstance(node, Compare)
        and node.op == "eq"
        and isinstance(node.value, str)
        and node.path.attr.lower() == attr
        and node.path.sub is None
        and (node.path.urn is None or node.path.urn.lower() == schema)
    ):
        return node.value
    return None


def _filter_attrs(node: Filter) -> set[str]:
    """Every attribute name (lower-case, "attr.sub") a filter mentions."""
    if isinstance(node, (Compare, Present)):
        return {str(node.path).lower().rsplit(":", 1)[-1]}
    if isinstance(node, (And, Or)):
        return _filter_attrs(node.left) | _filter_attrs(node.right)
    if isinstance(node, Not):
        return _filter_attrs(node.expr)
    if isinstance(node, ValuePath):
        return {str(node.path).lower()} | _filter_attrs(node.filter)
    return set()


def _member_ids(node: Filter | None) -> list[str]:
    """The user ids named by a ``members[value eq "..."]`` filter (or a chain of them)."""
    if isinstance(node, Compare) and node.op == "eq" and node.path.attr.lower() == "value":
        return [str(node.value)]
    if isinstance(node, (And, Or)):
        return _member_ids(node.left) + _member_ids(node.right)
    return []


def _operations(body: Any) -> list[tuple[str, str | None, Any]] | None:
    """``(op lower-case, path or None, value)`` for each PatchOp operation (RFC 7644 §3.5.2),
    or None when the body is not a PatchOp."""
    ops = ci_get(body, "Operations")
    if not isinstance(ops, list):
        return None
    out: list[tuple[str, str | None, Any]] = []
    for op in ops:
        if not isinstance(op, dict):
            continue
        name = ci_get(op, "op")
        path = ci_get(op, "path")
        out.append(
            (
                name.lower() if isinstance(name, str) else "",
                path if isinstance(path, str) and path.strip() else None,
                ci_get(op, "value"),
            )
        )
    return out


def _patch_attr(path: str) -> tuple[str, Filter | None]:
    """The lower-case attribute a PATCH path names (without schema URN) and its value filter."""
    try:
        parsed = parse_patch_path(path)
    except ScimError:
        return path.strip().lower(), None
    name = parsed.attr.attr.lower()
    if parsed.attr.sub:
        name += "." + parsed.attr.sub.lower()
    return name, parsed.filter


def _canonical(body: Any) -> str:
    if body is None:
        return ""
    try:
        return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return repr(body)


def _request_key(req: OktaRequest) -> tuple[str, str, tuple[tuple[str, str], ...], str]:
    """Same method, path, query and body: what makes a request a retry of another."""
    return (
        req.method.upper(),
        req.path.rstrip("/") or "/",
        tuple(sorted(req.query.items())),
        _canonical(req.body),
    )


def _members_text(value: Any) -> str:
    if not isinstance(value, list):
        return "no members"
    if not value:
        return "no members"
    return _plural(len(value), "member")


def _member_names(value: Any, limit: int = 3) -> str:
    """``jane@example.com, 00u2...`` for member objects ``{"value", "display"}``."""
    if not isinstance(value, list):
        return "no members"
    names: list[str] = []
    for member in value:
        shown = ci_get(member, "display") or ci_get(member, "value")
        names.append(str(shown) if shown is not None else "?")
    text = ", ".join(names[:limit])
    if len(names) > limit:
        text += f" and {len(names) - limit} more"
    return text or "no members"


def _changed_attrs(before: dict[str, Any] | None, after: Any) -> list[str]:
    """Top-level (and one level of sub-) attributes whose value differs, ignoring id/meta/
    schemas/password; empty when unknown."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    skip = {"id", "meta", "schemas", "password"}
    old = {k.lower(): v for k, v in before.items()}
    changed: list[str] = []
    for key, value in after.items():
        low = key.lower()
        if low in skip:
            continue
        prev = old.get(low)
        if isinstance(value, dict) and isinstance(prev, dict):
            prev_sub = {k.lower(): v for k, v in prev.items()}
            changed += [f"{key}.{k}" for k, v in value.items() if prev_sub.get(k.lower()) != v]
        elif prev != value:
            changed.append(key)
    return changed


# --- the classifier ----------------------------------------------------------------------------
class OktaClassifier:
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
        self._totals: _Recent[str, int] = _Recent(4, max_age_s)  # users/groups -> totalResults
        self._last_test_credentials: float | None = None
        self._spec_users: _Recent[str, tuple[str, str]] = _Recent(size, max_age_s)
        self._spec_ids: _Recent[str, bool] = _Recent(size, max_age_s)
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
        if duration_s is not None and duration_s >= OKTA_TIMEOUT_S:
            notes.append(
                f"The answer took {duration_s:.0f} s: Okta closes the connection after 60 s, "
                "so it never saw it and the task fails."
            )
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
        ):
            recent.prune(now)
        for key in [k for k in self._throttled if self._expired(k, now)]:
            self._throttled.pop(key)

    def _expired(self, key: tuple[Any, ...], now: float) -> bool:
        entry = self._throttled.get(key, now)
        # Okta retries after entry.wait; allow for its scheduling (and a paused task) before
        # treating an identical request as a new one.
        return entry is None or now - entry.last_time > entry.wait * 2 + self.max_age_s

    def _throttle_for(self, req: OktaRequest) -> _Throttle | None:
        if not self._throttled:
            return None  # nothing answered 429 lately: skip building the key (a JSON dump)
        key = _request_key(req)
        if self._expired(key, req.time):
            return None
        return self._throttled.get(key, req.time)

    def _who(self, user_id: str, now: float) -> str:
        name = self._names.get(user_id, now)
        return f"{name} (id {user_id})" if name else f"user {user_id}"

    def _group(self, group_id: str, now: float) -> str:
        name = self._names.get(group_id, now)
        return f'"{name}" (id {group_id})' if name else group_id

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

    @staticmethod
    def _filter_user(req: OktaRequest) -> str | None:
        text = _q(req.query, "filter")
        if not text:
            return None
        try:
            return _eq_value(parse(text), "username", _USER_SCHEMA)
        except ScimError:
            return None

    # --- 429 and retries (OKTA.md, "Errors, rate limits and retries") --------------------------
    def _retry_step(self, throttle: _Throttle, now: float) -> Step:
        k = throttle.count
        base = throttle.base
        waited = now - throttle.last_time
        timing = (
            f"Okta's rules said to wait {_duration(throttle.wait)}; "
            f"it came after {_duration(max(waited, 0.0))}."
        )
        return replace(
            base,
            label=f"{base.label} (retry {k})",
            explanation=(
                f"Retry {k} (attempt {k + 1} of {MAX_ATTEMPTS}) of a request answered 429: "
                f"{timing} {base.explanation}"
            ),
            retry=k,
            next_retry_in_s=None,
            retry_gives_up=False,
        )

    def _note_429(
        self, key: tuple[Any, ...], step: Step, retry_after: str | None, now: float
    ) -> tuple[Step, str]:
        entry = None if self._expired(key, now) else self._throttled.get(key, now)
        if entry is None:
            base = replace(step, retry=None, next_retry_in_s=None, retry_gives_up=False)
            if step.retry is not None:
                # The retry chain was forgotten meanwhile: start a new one from the plain label.
                suffix = f" (retry {step.retry})"
                label = step.label.removesuffix(suffix)
                base = replace(base, label=label, explanation=STEPS[step.id][1])
            entry = _Throttle(base, 0, now, 0.0)
        entry.count += 1
        k = entry.count
        if k >= MAX_ATTEMPTS:
            self._throttled.pop(key)
            note = (
                f"Answered 429 to attempt {k}: Okta gives up after {MAX_ATTEMPTS} attempts; "
                "the task fails for good and an admin must retry it."
            )
            return replace(step, next_retry_in_s=None, retry_gives_up=True), note
        wait, why = retry_wait(k, retry_after)
        entry.wait = wait
        entry.last_time = now
        self._throttled.put(key, entry, now)
        note = (
            f"Answered 429 (attempt {k} of {MAX_ATTEMPTS}): Okta pauses the task and sends "
            f"retry {k} in {_duration(wait)} ({why})."
        )
        return replace(step, next_retry_in_s=wait, retry_gives_up=False), note

    # --- what Okta does with the answer --------------------------------------------------------
    def _status_note(self, req: OktaRequest, step: Step, status: int, body: Any) -> str:
        sid = step.id
        method = req.method.upper()
        detail = ci_get(body, "detail")
        shown = f' Okta shows the admin: "{_shorten(str(detail))}".' if detail else ""
        if status == 0:
            return "No answer (connection closed): Okta sees a connection error and the task fails."
        if 200 <= status < 300:
            return self._success_note(req, step, status, body)
        if status == 401:
            return "401: Okta reports the credentials as invalid." + shown
        if status == 404 and sid == "create_user_existence_check":
            return (
                "404 is tolerated here as 'not found' (200 with totalResults 0 is expected): "
                "Okta creates the user next."
            )
        if status == 409 and sid == "create_user":
            return (
                "409: the userName already exists, so the task fails; the existence check "
                "should have found the user (Okta would then have linked to it)." + shown
            )
        if status == 501 and method == "PATCH":
            return "501: the task fails; Okta does not fall back to PUT." + shown
        if status >= 500:
            return (
                f"{status}: Okta documents no automatic retry for 5xx; the task fails and an "
                "admin must retry it." + shown
            )
        if status >= 400:
            return f"{status}: the task fails." + shown
        return ""

    def _success_note(self, req: OktaRequest, step: Step, status: int, body: Any) -> str:
        sid = step.id
        total = ci_get(body, "totalResults")
        if sid == "create_user":
            if not isinstance(body, dict) or not ci_get(body, "id"):
                # OKTA.md, Create step 2.
                return (
                    f"The {status} carries no resource with an id: Okta fails the task with "
                    '"Create new user returned empty user".'
                )
            return ""
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
        if sid in ("import_users", "import_groups") and isinstance(total, int):
            start = max(_int(_q(req.query, "startIndex")) or 1, 1)
            count = _int(_q(req.query, "count"))
            size = count if count is not None and count > 0 else IMPORT_PAGE_SIZE
            if start - 1 + size < total:
                return f"totalResults is {total}: Okta asks next for startIndex={start + size}."
            return f"totalResults is {total}: this is the last page."
        if status == 204 and sid.endswith("_user_patch"):
            return "204 is allowed by the RFC, but Okta's tooling checks 200 with the resource."
        return ""

    # --- classification ------------------------------------------------------------------------
    def _classify(self, req: OktaRequest) -> Step:
        method = req.method.upper()
        target = _target(req.path)
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

    # /Users
    def _users_collection(self, req: OktaRequest, method: str, target: _Target) -> Step:
        now = req.time
        if method == "POST":
            user = ci_get(req.body, "userName")
            user_text = user if isinstance(user, str) and user else "(no userName)"
            note = ""
            if isinstance(user, str) and user and not self._checked.get(user.lower(), now):
                note = "No existence check for it was seen first, which Okta always sends."
            return _make("create_user", note, user=user_text)
        if method != "GET":
            return _not_okta(
                f"{method} /Users", f"{method} on /Users without an id is not a SCIM operation."
            )
        text = _q(req.query, "filter")
        start = _int(_q(req.query, "startIndex"))
        count = _int(_q(req.query, "count"))
        if text is not None:
            try:
                node = parse(text)
            except ScimError as exc:
                return _not_okta(
                    "GET /Users?filter=…",
                    f'the filter does not parse ({exc.detail}); it only sends userName eq "...".',
                )
            user = _eq_value(node, "username", _USER_SCHEMA)
            if user is not None:
                return _make("create_user_existence_check", user=user)
            if any(a.startswith("meta.") for a in _filter_attrs(node)):
                why = "it never filters on meta.lastModified (or any meta attribute)."
            else:
                why = 'it filters users only with userName eq "..." (the existence check).'
            return _not_okta("GET /Users?filter=…", why)
        if (
            (start is None or start <= 1)
            and count is not None
            and count <= TEST_CREDENTIALS_MAX_COUNT
        ):
            return _make("test_credentials", request=f"GET /Users?startIndex=1&count={count}")
        return self._import_page(req, "users", start, count)

    def _import_page(
        self, req: OktaRequest, kind: str, start: int | None, count: int | None
    ) -> Step:
        """OKTA.md, "Import users": page = (startIndex - 1) // count + 1, startIndex 1-based."""
        first = max(start if start is not None else 1, 1)
        size = count if count is not None and count > 0 else IMPORT_PAGE_SIZE
        page = (first - 1) // size + 1
        notes: list[str] = []
        total = self._totals.get(kind, req.time)
        if total is not None and page > 1:
            notes.append(f"Page {page} of {max(math.ceil(total / size), 1)}.")
        if start is None or count is None:
            notes.append(f"Okta always sends startIndex and count {_PAGE_HINT}.")
        elif count != IMPORT_PAGE_SIZE:
            notes.append(f"count={count} is not Okta's page size {_PAGE_HINT}.")
        step_id = "import_users" if kind == "users" else "import_groups"
        return _make(step_id, " ".join(notes), page=page, start=first, count=size)

    # /Users/{id}
    def _user_resource(self, req: OktaRequest, method: str, user_id: str) -> Step:
        now = req.time
        who = self._who(user_id, now)
        linking = self._links.get(user_id, now) is not None or self._links.get("*", now) is not None
        if method == "GET":
            if linking:
                return _make("link_user_read", who=who)
            return _make("read_user", who=who)
        if method == "PUT":
            return self._user_put(req, user_id, who, linking)
        if method == "PATCH":
            return self._user_patch(req, who)
        if method == "DELETE":
            return _not_okta(
                "DELETE /Users/{id}",
                "it never deletes users: it deactivates them (PATCH or PUT with active "
                "false), and suspending a user in Okta sends nothing.",
            )
        return _not_okta(f"{method} /Users/{{id}}", f"{method} is not a SCIM operation on a user.")

    def _user_put(self, req: OktaRequest, user_id: str, who: str, linking: bool) -> Step:
        now = req.time
        body = req.body if isinstance(req.body, dict) else {}
        active = _bool(ci_get(body, "active"))
        password = ci_get(body, "password") is not None
        before = self._users.get(user_id, now)
        was = _bool(ci_get(before, "active"))
        if linking or self._link_read.get(user_id, now):
            notes = []
            if active is True and was is False:
                notes.append("It also reactivates the user (active was false).")
            if password:
                notes.append("It also sets the password.")
            return _make("link_user_put", " ".join(notes), who=who)
        if active is False and was is not False:
            note = (
                ""
                if was is True
                else "No earlier read of this user was seen; a PUT with active false is how "
                "AIW apps deactivate."
            )
            return _make("deactivate_user_put", note, who=who)
        if active is True and was is False:
            return _make("reactivate_user_put", who=who)
        if password:
            return _make("password_sync_put", who=who)
        changed = _changed_attrs(before, body)
        note = ""
        if changed:
            note = f"Changed: {', '.join(changed[:6])}{' …' if len(changed) > 6 else ''}."
        elif before is None:
            note = "No earlier read of this user was seen (Okta reads before it PUTs)."
        return _make("update_user_put", note, who=who)

    def _user_patch(self, req: OktaRequest, who: str) -> Step:
        ops = _operations(req.body)
        if not ops:
            return _not_okta(
                "PATCH /Users/{id}", "the body carries no PatchOp Operations (RFC 7644 §3.5.2)."
            )
        active: bool | None = None
        active_path = False
        password = False
        others: list[str] = []
        for op, path, value in ops:
            if path is None:
                # OKTA.md, "Deactivate": path-less replace with value {"active": false}.
                for key, val in value.items() if isinstance(value, dict) else ():
                    low = key.lower().rsplit(":", 1)[-1]
                    if low == "active" and _bool(val) is not None and op != "remove":
                        active = _bool(val)
                    elif low == "password" and op != "remove":
                        password = True
                    else:
                        others.append(key)
                continue
            attr, _flt = _patch_attr(path)
            if attr == "active" and op != "remove" and _bool(value) is not None:
                active, active_path = _bool(value), True
            elif attr == "password" and op != "remove":
                password = True
            else:
                others.append(path)
        notes: list[str] = []
        if active_path:
            notes.append('Here with path "active"; Okta itself sends the value with no path.')
        if others and (active is not None or password):
            notes.append(f"It also changes {', '.join(others[:5])}.")
        if active is False:
            return _make("deactivate_user_patch", " ".join(notes), who=who)
        if active is True:
            return _make("reactivate_user_patch", " ".join(notes), who=who)
        if password:
            return _make("password_sync_patch", " ".join(notes), who=who)
        return _make("update_user_patch", attrs=", ".join(others[:5]) or "nothing", who=who)

    # /Groups
    def _groups_collection(self, req: OktaRequest, method: str, target: _Target) -> Step:
        now = req.time
        if method == "POST":
            name = ci_get(req.body, "displayName")
            return _make(
                "push_group_create",
                group=name if isinstance(name, str) else "(no displayName)",
                members=_members_text(ci_get(req.body, "members")),
            )
        if method != "GET":
            return _not_okta(
                f"{method} /Groups", f"{method} on /Groups without an id is not a SCIM operation."
            )
        text = _q(req.query, "filter")
        start = _int(_q(req.query, "startIndex"))
        count = _int(_q(req.query, "count"))
        if text is not None:
            try:
                node = parse(text)
            except ScimError as exc:
                return _not_okta(
                    "GET /Groups?filter=…",
                    f"the filter does not parse ({exc.detail}); it only sends "
                    'displayName eq "...".',
                )
            name = _eq_value(node, "displayname", _GROUP_SCHEMA)
            if name is not None:
                return _make("push_group_lookup", group=name)
            return _not_okta(
                "GET /Groups?filter=…",
                'it filters groups only with displayName eq "..." (the push group lookup).',
            )
        first_page = start is None or start <= 1
        if first_page and count is not None and count <= TEST_CREDENTIALS_MAX_COUNT:
            return _make("test_credentials", request=f"GET /Groups?startIndex=1&count={count}")
        if (
            first_page
            and _q(req.query, "excludedAttributes") is None
            and self._last_test_credentials is not None
            and 0 <= now - self._last_test_credentials <= TEST_CREDENTIALS_WINDOW_S
        ):
            # OKTA.md, "Test API credentials": GET /Users?startIndex=1&count=2 and
            # GET /Groups?startIndex=1&count=100 come together.
            return _make(
                "test_credentials", request=f"GET /Groups?startIndex=1&count={count or 100}"
            )
        return self._import_page(req, "groups", start, count)

    # /Groups/{id}
    def _group_resource(self, req: OktaRequest, method: str, group_id: str) -> Step:
        now = req.time
        group = self._group(group_id, now)
        if method == "GET":
            return _make("read_group", group=group)
        if method == "DELETE":
            return _make("push_group_delete", group=group)
        if method == "PUT":
            name = ci_get(req.body, "displayName")
            return _make(
                "push_group_put",
                group=name if isinstance(name, str) else group,
                members=_members_text(ci_get(req.body, "members")),
            )
        if method == "PATCH":
            return self._group_patch(req, group)
        return _not_okta(
            f"{method} /Groups/{{id}}", f"{method} is not a SCIM operation on a group."
        )

    def _group_patch(self, req: OktaRequest, group: str) -> Step:
        """OKTA.md, "Group push": rename, add, remove, Push Now replace. Several operations in
        one request are labelled by the most significant: replace > remove > add > rename."""
        ops = _operations(req.body)
        if not ops:
            return _not_okta(
                "PATCH /Groups/{id}", "the body carries no PatchOp Operations (RFC 7644 §3.5.2)."
            )
        rename: str | None = None
        replaced: list[Any] | None = None
        added: list[Any] = []
        removed: list[str] = []
        remove_all = False
        others: list[str] = []
        for op, path, value in ops:
            if path is None:
                if not isinstance(value, dict):
                    others.append(f"{op} without path")
                    continue
                for key, val in value.items():
                    low = key.lower()
                    if low == "displayname" and isinstance(val, str) and op != "remove":
                        rename = val
                    elif low == "members" and op == "replace":
                        replaced = val if isinstance(val, list) else []
                    elif low == "members" and op == "add" and isinstance(val, list):
                        added += val
                    elif low not in ("id", "schemas"):
                        others.append(key)
                continue
            attr, flt = _patch_attr(path)
            if attr == "members":
                if op == "add":
                    added += value if isinstance(value, list) else [value]
                elif op == "replace":
                    replaced = value if isinstance(value, list) else []
                elif op == "remove":
                    if flt is not None:
                        removed += _member_ids(flt) or ["(filtered members)"]
                    elif isinstance(value, list) and value:
                        removed += [str(ci_get(m, "value") or "?") for m in value]
                    else:
                        remove_all = True
                else:
                    others.append(path)
            elif attr == "displayname" and op in ("replace", "add") and isinstance(value, str):
                rename = value
            else:
                others.append(path)
        extra: list[str] = []
        if rename is not None and (replaced is not None or added or removed or remove_all):
            extra.append(f'It also renames the group to "{rename}".')
        if others:
            extra.append(
                f"Okta's group push only renames and changes members; it never sends "
                f"{', '.join(others[:5])}."
            )
        if replaced is not None:
            if not replaced:
                extra.insert(0, "The list is empty: the group must be emptied, not refused.")
            if added or removed:
                extra.append("It also adds or removes members.")
            return _make(
                "push_group_replace_members",
                " ".join(extra),
                target=group,
                members=_members_text(replaced),
            )
        if removed or remove_all:
            if remove_all:
                extra.insert(
                    0,
                    "This remove has no member filter, so it would remove every member; Okta "
                    "always names the member it removes.",
                )
            if added:
                extra.append(f"It also adds {_member_names(added)}.")
            n = len(removed)
            return _make(
                "push_group_remove_members",
                " ".join(extra),
                count=n if not remove_all else "all",
                members_word="member" if n == 1 and not remove_all else "members",
                removed=", ".join(self._who(m, req.time) for m in removed[:3])
                + (f" and {len(removed) - 3} more" if len(removed) > 3 else "")
                if removed
                else "every member",
                target=group,
            )
        if added:
            n = len(added)
            return _make(
                "push_group_add_members",
                " ".join(extra),
                count=n,
                members_word="member" if n == 1 else "members",
                added=_member_names(added),
                target=group,
            )
        if rename is not None:
            return _make("push_group_rename", " ".join(extra), group=rename, target=group)
        return _not_okta(
            "PATCH /Groups/{id}",
            "its group push only renames and changes members"
            + (f", never {', '.join(others[:5])}." if others else "."),
        )

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


def _make(step_id: str, note: str = "", *, page: int | None = None, **fields: Any) -> Step:
    """A step from its STEPS templates; ``note`` is appended to the explanation."""
    if page is not None:
        fields["page"] = page
    label_t, explanation_t = STEPS[step_id]
    label = label_t.format(**fields)
    explanation = explanation_t.format(**fields)
    if note:
        explanation = f"{explanation} {note}"
    return Step(step_id, label, explanation, page=page)


def _not_okta(what: str, why: str) -> Step:
    return _make("not_okta", what=what, why=why)


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
