"""Okta insight, the vocabulary: the constants taken from OKTA.md, the request and step records
and the step table ``STEPS`` with :func:`_make`, which fills a step from it. Part of the
classifier in ``core/okta.py`` (see its docstring); no code here keeps state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    # OKTA.md, "Okta's own test suites": the OIN QA plan's "push empty values".
    "push_empty_values_put": (
        "Push empty values (PUT)",
        "Okta pushes a profile change that empties {emptied} of {who}: after reading the user "
        "it PUTs the whole object leaving {it} out (or sending {it} empty); it expects 200 with "
        'the resource no longer showing {it} (the OIN test plan\'s "push empty values": the '
        "attribute must be empty in the app afterwards).",
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
    # OKTA.md, "Entitlements, roles and custom attributes (Okta Identity Governance)". These
    # steps are given only while the server serves a catalog (OktaClassifier.set_catalog).
    "read_resource_types": (
        "Okta reads the app's resource types{which}",
        "With entitlement management on, Okta starts by reading the resource types the app "
        "declares (GET /ResourceTypes, RFC 7643 §6): each type whose schema is "
        "urn:okta:scim:schemas:core:1.0:Role or ...:Entitlement becomes a category on the app's "
        "Governance tab (its name shown, its id used), whose endpoint Okta then imports; "
        "extension URNs it does not know it reads from /Schemas first. It expects 200 with the "
        "resource types.",
    ),
    "read_extension_schemas": (
        "Okta reads the extension schemas{which}",
        "Okta reads the schemas of the extensions it does not already know (it knows Role, "
        "Entitlement, core User and Enterprise User; RFC 7643 §7): the attributes of a user "
        "extension become attributes of the app's user profile (with user-schema discovery on, "
        "admins can no longer add attributes in the Profile Editor), and a type's extension "
        "object is read from its values. It expects 200 with the schemas.",
    ),
    "import_entitlements": (
        "Okta imports {type} values, page {page}",
        "Okta imports the values of {type} from {endpoint} page by page (startIndex={start}, "
        "count={count}) until totalResults is reached, like a user import; each value (id, "
        "displayName, optional description) becomes a value of {type} on the app's Governance "
        "tab that admins and access requests can grant. It expects a ListResponse with a 1-based "
        "startIndex, JSON integers, itemsPerPage the real page size and the same order on every "
        "page.",
    ),
    "read_entitlement_value": (
        "Okta reads {type} value {value}",
        "Okta reads one value of {type} ({endpoint}/{{id}}); it expects 200 with the value (id, "
        "displayName, schemas naming the type's URN), or 404 with a SCIM Error when it is gone.",
    ),
    "grant_entitlement": (
        "Okta grants {values} to {user}",
        "Okta grants {what} to {who} ({how}); the grant comes from an admin, an access request "
        "or a policy in Okta Identity Governance. It expects 200 with the user showing the grant "
        "in {attrs}.",
    ),
    "revoke_entitlement": (
        "Okta revokes {values} from {user}",
        "Okta revokes {what} from {who} ({how}); the grant was removed in Okta (by an admin, an "
        "access certification or an expired request). It expects 200 with the user no longer "
        "showing it in {attrs}.",
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
