"""Okta insight (core/okta.py): request sequences written from OKTA.md, one fixture per flow.

Each fixture is named after the Okta flow it replays and is a list of exchanges
``(request, status, Retry-After, response body)`` built from the exact URLs and bodies OKTA.md
gives. Query strings are written URL-encoded, as Okta sends them, and decoded here.
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from scim_desktop.core.okta import (
    DEFAULT_RETRY_WAIT_S,
    MAX_ATTEMPTS,
    STEPS,
    OktaClassifier,
    OktaRequest,
    Step,
    classify_sequence,
    retry_wait,
)

OKTA_UA = "Okta SCIM Client 1.0.0"
SPEC_UA = "OKTA SCIM Integration"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"

JANE_ID = "2819c223-7f76-453a-919d-413861904646"
BOB_ID = "9b1a2c3d-0000-4000-8000-000000000002"
SALES_ID = "e9e30dba-f08f-4109-8486-d5c6a331660a"
Exchange = tuple[OktaRequest, int, str | None, Any]

_clock = itertools.count(1_000)


def okta(
    method: str, url: str, body: Any = None, *, t: float | None = None, ua: str = OKTA_UA
) -> OktaRequest:
    """A request as Okta sends it; ``url`` is relative to the SCIM base, query URL-encoded."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return OktaRequest(method, parts.path, query, body, ua, float(next(_clock) if t is None else t))


def list_response(resources: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": len(resources) if total is None else total,
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def error(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


# OKTA.md, "Create", step 2: the body Okta posts.
JANE_CREATE = {
    "schemas": [USER_SCHEMA],
    "userName": "jane@example.com",
    "name": {"givenName": "Jane", "familyName": "Doe"},
    "emails": [{"primary": True, "value": "jane@example.com", "type": "work"}],
    "displayName": "Jane Doe",
    "locale": "en-US",
    "externalId": "00u1abcd...",
    "groups": [],
    "password": "<placeholder>",
    "active": True,
}


def jane(**changes: Any) -> dict[str, Any]:
    """Jane as the server renders her (no password, with id and meta)."""
    resource = {k: v for k, v in JANE_CREATE.items() if k not in ("password", "groups")}
    resource.update(id=JANE_ID, meta={"resourceType": "User"})
    resource.update(changes)
    return resource


def full_put(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The whole object Okta PUTs back (AIW apps and profile updates)."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    body.update(changes)
    return body


EXISTENCE_CHECK = "/Users?filter=userName%20eq%20%22jane%40example.com%22&startIndex=1&count=100"
# OKTA.md, "Deactivate": no path.
DEACTIVATE = {
    "schemas": [PATCH_SCHEMA],
    "Operations": [{"op": "replace", "value": {"active": False}}],
}
REACTIVATE = {
    "schemas": [PATCH_SCHEMA],
    "Operations": [{"op": "replace", "value": {"active": True}}],
}


def ids(steps: list[Step]) -> list[str]:
    return [s.id for s in steps]


# --- flows (OKTA.md, "User lifecycle") ---------------------------------------------------------
@pytest.fixture
def test_credentials_flow() -> list[Exchange]:
    # OKTA.md: "a small list call such as GET /Users?startIndex=1&count=2 and
    # GET /Groups?startIndex=1&count=100".
    return [
        (okta("GET", "/Users?startIndex=1&count=2"), 200, None, list_response([jane()], 7)),
        (okta("GET", "/Groups?startIndex=1&count=100"), 200, None, list_response([], 0)),
    ]


@pytest.fixture
def create_user_flow() -> list[Exchange]:
    return [
        (okta("GET", EXISTENCE_CHECK), 200, None, list_response([])),
        (okta("POST", "/Users", JANE_CREATE), 201, None, jane()),
    ]


@pytest.fixture
def link_existing_user_flow() -> list[Exchange]:
    # OKTA.md, Create step 3: the existence check finds the user; Okta links with GET then PUT.
    return [
        (okta("GET", EXISTENCE_CHECK), 200, None, list_response([jane()])),
        (okta("GET", f"/Users/{JANE_ID}"), 200, None, jane()),
        (okta("PUT", f"/Users/{JANE_ID}", full_put(jane())), 200, None, jane()),
    ]


@pytest.fixture
def update_profile_flow() -> list[Exchange]:
    # OKTA.md, "Update profile": GET /Users/{id}, then PUT with the whole object.
    renamed = {"givenName": "Janet", "familyName": "Doe"}
    return [
        (okta("GET", f"/Users/{JANE_ID}"), 200, None, jane()),
        (okta("PUT", f"/Users/{JANE_ID}", full_put(jane(), name=renamed)), 200, None, jane()),
    ]


@pytest.fixture
def push_empty_values_flow() -> list[Exchange]:
    # OIN QA plan (OKTA.md, "Okta's own test suites"): "push empty values". An attribute set
    # by an earlier update is emptied in Okta: the full PUT after the read leaves it out.
    held = jane(title="VP Sales")
    return [
        (okta("GET", f"/Users/{JANE_ID}"), 200, None, held),
        (okta("PUT", f"/Users/{JANE_ID}", full_put(jane())), 200, None, jane()),
    ]


@pytest.fixture
def deactivate_flow() -> list[Exchange]:
    return [(okta("PATCH", f"/Users/{JANE_ID}", DEACTIVATE), 200, None, jane(active=False))]


@pytest.fixture
def reactivate_flow() -> list[Exchange]:
    return [(okta("PATCH", f"/Users/{JANE_ID}", REACTIVATE), 200, None, jane())]


@pytest.fixture
def aiw_deactivate_flow() -> list[Exchange]:
    # OKTA.md: "AIW apps send GET then PUT with "active": false".
    return [
        (okta("GET", f"/Users/{JANE_ID}"), 200, None, jane()),
        (
            okta("PUT", f"/Users/{JANE_ID}", full_put(jane(), active=False)),
            200,
            None,
            jane(active=False),
        ),
    ]


@pytest.fixture
def aiw_reactivate_flow() -> list[Exchange]:
    return [
        (okta("GET", f"/Users/{JANE_ID}"), 200, None, jane(active=False)),
        (okta("PUT", f"/Users/{JANE_ID}", full_put(jane(), active=True)), 200, None, jane()),
    ]


@pytest.fixture
def password_sync_patch_flow() -> list[Exchange]:
    # OKTA.md, "Password sync": a PATCH replacing password (template apps).
    body = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "value": {"password": "n3w-Secret!"}}],
    }
    return [(okta("PATCH", f"/Users/{JANE_ID}", body), 200, None, jane())]


@pytest.fixture
def aiw_password_sync_flow() -> list[Exchange]:
    # OKTA.md, "Password sync": ... or PUT (AIW).
    return [
        (okta("GET", f"/Users/{JANE_ID}"), 200, None, jane()),
        (
            okta("PUT", f"/Users/{JANE_ID}", full_put(jane(), password="n3w-Secret!")),
            200,
            None,
            jane(),
        ),
    ]


@pytest.fixture
def import_users_flow() -> list[Exchange]:
    # OKTA.md, "Import users": startIndex=1, 101, ... until totalResults (here 250: 3 pages).
    return [
        (okta("GET", f"/Users?startIndex={start}&count=100"), 200, None, list_response([], 250))
        for start in (1, 101, 201)
    ]


@pytest.fixture
def import_groups_flow() -> list[Exchange]:
    # OKTA.md, "Group push": list GET /Groups?startIndex=1&count=100 with
    # excludedAttributes=members.
    return [
        (
            okta("GET", f"/Groups?startIndex={start}&count=100&excludedAttributes=members"),
            200,
            None,
            list_response([], 150),
        )
        for start in (1, 101)
    ]


@pytest.fixture
def crud_test_flow() -> list[Exchange]:
    # OKTA.md, "CRUD test": create and assign, change first name, deactivate, reactivate,
    # remove the assignment (deactivate again), from a catalog template app.
    renamed = {"givenName": "Janet", "familyName": "Doe"}
    return [
        (okta("GET", EXISTENCE_CHECK), 200, None, list_response([])),
        (okta("POST", "/Users", JANE_CREATE), 201, None, jane()),
        (okta("GET", f"/Users/{JANE_ID}"), 200, None, jane()),
        (okta("PUT", f"/Users/{JANE_ID}", full_put(jane(), name=renamed)), 200, None, jane()),
        (okta("PATCH", f"/Users/{JANE_ID}", DEACTIVATE), 200, None, jane(active=False)),
        (okta("PATCH", f"/Users/{JANE_ID}", REACTIVATE), 200, None, jane()),
        (okta("PATCH", f"/Users/{JANE_ID}", DEACTIVATE), 200, None, jane(active=False)),
    ]


# --- flows (OKTA.md, "Group push") -------------------------------------------------------------
def sales(members: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "schemas": [GROUP_SCHEMA],
        "id": SALES_ID,
        "displayName": "Sales",
        "members": members or [],
        "meta": {"resourceType": "Group"},
    }


def group_patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


RENAME_SALES = group_patch({"op": "replace", "value": {"id": SALES_ID, "displayName": "Sales"}})
ADD_JANE_BOB = group_patch(
    {
        "op": "add",
        "path": "members",
        "value": [
            {"value": JANE_ID, "display": "jane@example.com"},
            {"value": BOB_ID, "display": "bob@example.com"},
        ],
    }
)
REMOVE_JANE = group_patch({"op": "remove", "path": f'members[value eq "{JANE_ID}"]'})


@pytest.fixture
def group_push_flow() -> list[Exchange]:
    lookup = "/Groups?filter=displayName%20eq%20%22Sales%22&startIndex=1&count=100"
    create = {"schemas": [GROUP_SCHEMA], "displayName": "Sales", "members": []}
    return [
        (okta("GET", lookup), 200, None, list_response([])),
        (okta("POST", "/Groups", create), 201, None, sales()),
        (okta("PATCH", f"/Groups/{SALES_ID}", ADD_JANE_BOB), 204, None, None),
        # OKTA.md: the rename is "sent after every membership change too".
        (okta("PATCH", f"/Groups/{SALES_ID}", RENAME_SALES), 204, None, None),
        (okta("GET", f"/Groups/{SALES_ID}"), 200, None, sales([{"value": JANE_ID}])),
        (okta("PATCH", f"/Groups/{SALES_ID}", REMOVE_JANE), 204, None, None),
        (okta("PATCH", f"/Groups/{SALES_ID}", RENAME_SALES), 204, None, None),
    ]


@pytest.fixture
def push_now_flow() -> list[Exchange]:
    body = group_patch(
        {
            "op": "replace",
            "path": "members",
            "value": [{"value": JANE_ID, "display": "jane@example.com"}],
        }
    )
    return [(okta("PATCH", f"/Groups/{SALES_ID}", body), 204, None, None)]


@pytest.fixture
def push_now_empty_flow() -> list[Exchange]:
    # OKTA.md: the list "can be empty ([]) and must then empty the group, not fail".
    body = group_patch({"op": "replace", "path": "members", "value": []})
    return [(okta("PATCH", f"/Groups/{SALES_ID}", body), 204, None, None)]


@pytest.fixture
def aiw_group_push_flow() -> list[Exchange]:
    body = {
        "schemas": [GROUP_SCHEMA],
        "id": SALES_ID,
        "displayName": "Sales",
        "members": [{"value": JANE_ID, "display": "jane@example.com"}],
    }
    return [
        (okta("GET", f"/Groups/{SALES_ID}"), 200, None, sales()),
        (okta("PUT", f"/Groups/{SALES_ID}", body), 200, None, sales([{"value": JANE_ID}])),
    ]


@pytest.fixture
def group_delete_flow() -> list[Exchange]:
    return [
        (okta("GET", f"/Groups/{SALES_ID}"), 200, None, sales()),
        (okta("DELETE", f"/Groups/{SALES_ID}"), 204, None, None),
    ]


# --- flows (OKTA.md, "Okta's own test suites") -------------------------------------------------
@pytest.fixture
def spec_test_flow() -> list[Exchange]:
    # The SPEC test's steps in order, with the answers a good server gives.
    created = {
        "schemas": [USER_SCHEMA],
        "userName": "Runscope.Tester+1@atko.com",
        "name": {"givenName": "Runscope", "familyName": "Tester"},
        "emails": [{"primary": True, "value": "Runscope.Tester+1@atko.com", "type": "work"}],
        "active": True,
        "password": "1mP0ss1bl3!",
    }
    new_id = "b7c3e0d2-1111-4222-8333-444455556666"
    rendered = {**{k: v for k, v in created.items() if k != "password"}, "id": new_id}
    absent = "/Users?filter=userName%20eq%20%22Runscope.Absent%40atko.com%22"
    upper = "/Users?filter=userName%20eq%20%22RUNSCOPE.TESTER%2B1%40ATKO.COM%22"
    not_found = error(404, "User not found")
    return [
        (
            okta("GET", "/Users?count=1&startIndex=1", ua=SPEC_UA),
            200,
            None,
            list_response([jane()]),
        ),
        (okta("GET", f"/Users/{JANE_ID}", ua=SPEC_UA), 200, None, jane()),
        (okta("GET", absent, ua=SPEC_UA), 200, None, list_response([])),
        (okta("GET", "/Users/010101001010101010", ua=SPEC_UA), 404, None, not_found),
        (okta("POST", "/Users", created, ua=SPEC_UA), 201, None, rendered),
        (okta("GET", f"/Users/{new_id}", ua=SPEC_UA), 200, None, rendered),
        (
            okta("POST", "/Users", created, ua=SPEC_UA),
            409,
            None,
            error(409, "exists", "uniqueness"),
        ),
        (okta("GET", upper, ua=SPEC_UA), 200, None, list_response([rendered])),
        (okta("GET", "/Groups", ua=SPEC_UA), 200, None, list_response([])),
        (okta("GET", "/Users", ua=SPEC_UA), 401, None, error(401, "Authentication failed")),
        (okta("GET", "/Users/00919288221112222", ua=SPEC_UA), 404, None, not_found),
    ]


# --- flows (OKTA.md, "Errors, rate limits and retries") ----------------------------------------
@pytest.fixture
def rate_limited_create_flow() -> list[Exchange]:
    # 429 with Retry-After: 30, then without it, then as an HTTP-date, then served.
    # Okta's schedule: 30 s, then 5 min doubled once (10 min), then twice (20 min).
    times = [0, 30, 630, 1830]
    answers = [(429, "30"), (429, None), (429, HTTP_DATE), (201, None)]
    flow: list[Exchange] = [(okta("GET", EXISTENCE_CHECK, t=-5), 200, None, list_response([]))]
    for t, (status, retry_after) in zip(times, answers, strict=True):
        body = jane() if status == 201 else error(429, "Too many requests")
        flow.append((okta("POST", "/Users", JANE_CREATE, t=t), status, retry_after, body))
    return flow


@pytest.fixture
def rate_limited_give_up_flow() -> list[Exchange]:
    # Every attempt answered 429 with Retry-After: 1 (waits 1, 2, 4, ... s); the 10th fails.
    flow: list[Exchange] = []
    t = 0.0
    for k in range(MAX_ATTEMPTS):
        flow.append((okta("PATCH", f"/Users/{JANE_ID}", DEACTIVATE, t=t), 429, "1", None))
        t += 2**k
    return flow


@pytest.fixture
def not_okta_flow() -> list[Exchange]:
    # OKTA.md: Okta never sends DELETE /Users/{id} and does not use /Bulk, /Me, POST /.search
    # or meta.lastModified filters.
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    return [
        (okta("DELETE", f"/Users/{JANE_ID}"), 204, None, None),
        (okta("POST", "/Bulk", {"Operations": []}), 501, None, None),
        (okta("GET", "/Me"), 501, None, None),
        (okta("POST", "/.search", search), 200, None, list_response([])),
        (okta("POST", "/Users/.search", search), 200, None, list_response([])),
        (
            okta("GET", "/Users?filter=meta.lastModified%20gt%20%222011-05-13T04%3A42%3A34Z%22"),
            200,
            None,
            list_response([]),
        ),
        (okta("GET", "/Users?filter=emails%20co%20%22example.com%22"), 200, None, None),
        (okta("PUT", "/Users", JANE_CREATE), 405, None, None),
        (okta("GET", "/Widgets"), 404, None, None),
        (okta("PATCH", f"/Users/{JANE_ID}", {"schemas": [PATCH_SCHEMA]}), 400, None, None),
    ]


@pytest.fixture
def discovery_flow() -> list[Exchange]:
    return [
        (okta("GET", "/ServiceProviderConfig"), 200, None, None),
        (okta("GET", "/Schemas"), 200, None, None),
        (okta("GET", f"/Schemas/{USER_SCHEMA}"), 200, None, None),
        (okta("GET", "/ResourceTypes"), 200, None, None),
    ]


# --- tests: user lifecycle ---------------------------------------------------------------------
def test_test_credentials(test_credentials_flow: list[Exchange]) -> None:
    users, groups = classify_sequence(test_credentials_flow)
    assert users.id == groups.id == "test_credentials"
    assert users.label == "Test API credentials"
    assert "count=2" in users.explanation and "Test API Credentials" in users.explanation
    assert "GET /Groups?startIndex=1&count=100" in groups.explanation


def test_groups_page_one_alone_is_an_import() -> None:
    # Without the credentials test's GET /Users just before, it is an import page.
    (step,) = classify_sequence([(okta("GET", "/Groups?startIndex=1&count=100"), 200, None)])
    assert (step.id, step.label, step.page) == ("import_groups", "Import groups, page 1", 1)


def test_create_user(create_user_flow: list[Exchange]) -> None:
    check, create = classify_sequence(create_user_flow)
    assert check.id == "create_user_existence_check"
    assert check.label == "Create user: existence check for jane@example.com"
    assert "totalResults 0" in check.explanation
    assert "Not found: Okta creates the user next" in check.explanation
    assert create.id == "create_user"
    assert create.label == "Create user jane@example.com"
    assert "201" in create.explanation
    assert "No existence check" not in create.explanation


def test_create_without_existence_check_is_noted() -> None:
    (step,) = classify_sequence([(okta("POST", "/Users", JANE_CREATE), 201, None, jane())])
    assert step.id == "create_user"
    assert "No existence check for it was seen first" in step.explanation


def test_create_answered_empty(create_user_flow: list[Exchange]) -> None:
    # OKTA.md: "An empty body makes Okta fail with "Create new user returned empty user"".
    check, (req, _status, _ra, _body) = create_user_flow
    steps = classify_sequence([check, (req, 201, None, None)])
    assert "Create new user returned empty user" in steps[1].explanation


def test_create_duplicate_409(create_user_flow: list[Exchange]) -> None:
    check, (req, _status, _ra, _body) = create_user_flow
    dup = error(409, "userName jane@example.com is already taken", "uniqueness")
    steps = classify_sequence([check, (req, 409, None, dup)])
    assert "409" in steps[1].explanation
    assert 'Okta shows the admin: "userName jane@example.com is already taken"' in (
        steps[1].explanation
    )


def test_existence_check_404_is_tolerated() -> None:
    (step,) = classify_sequence([(okta("GET", EXISTENCE_CHECK), 404, None, error(404, "x"))])
    assert step.id == "create_user_existence_check"
    assert "404 is tolerated" in step.explanation


def test_existence_check_variants() -> None:
    # Without paging, with a schema-qualified attribute and any case of the operator.
    for url in (
        "/Users?filter=userName%20eq%20%22jane%40example.com%22",
        "/Users?filter=urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Acore%3A2.0%3AUser%3AuserName"
        "%20EQ%20%22jane%40example.com%22",
    ):
        (step,) = classify_sequence([(okta("GET", url), 200, None, list_response([]))])
        assert step.id == "create_user_existence_check", url
        assert "jane@example.com" in step.label


def test_link_existing_user(link_existing_user_flow: list[Exchange]) -> None:
    check, read, put = classify_sequence(link_existing_user_flow)
    assert check.id == "create_user_existence_check"
    assert "Found 1 user: Okta links to the existing user" in check.explanation
    assert read.id == "link_user_read"
    assert read.label.startswith("Create user: link to existing user")
    assert "jane@example.com" in read.explanation
    assert put.id == "link_user_put"
    assert put.label.startswith("Create user: link to existing user")


def test_link_is_used_once(link_existing_user_flow: list[Exchange]) -> None:
    steps = classify_sequence(
        [*link_existing_user_flow, (okta("GET", f"/Users/{JANE_ID}"), 200, None, jane())]
    )
    assert steps[-1].id == "read_user"


def test_link_when_the_check_returns_no_ids() -> None:
    # A found user with no Resources (e.g. attributes=id trimmed away): the next read links.
    steps = classify_sequence(
        [
            (
                okta("GET", EXISTENCE_CHECK),
                200,
                None,
                {"schemas": [LIST_SCHEMA], "totalResults": 1},
            ),
            (okta("GET", f"/Users/{JANE_ID}"), 200, None, jane()),
        ]
    )
    assert steps[1].id == "link_user_read"


def test_link_window_is_short() -> None:
    # OKTA.md, Create step 3: Okta links right after the check; much later it is a plain read.
    steps = classify_sequence(
        [
            (okta("GET", EXISTENCE_CHECK, t=0), 200, None, list_response([jane()])),
            (okta("GET", f"/Users/{JANE_ID}", t=600), 200, None, jane()),
        ]
    )
    assert steps[1].id == "read_user"


def test_update_profile(update_profile_flow: list[Exchange]) -> None:
    read, put = classify_sequence(update_profile_flow)
    assert (read.id, read.label) == ("read_user", "Read user")
    assert "full-object PUT" in read.explanation
    assert (put.id, put.label) == ("update_user_put", "Update profile (PUT)")
    assert "name.givenName" in put.explanation  # what changed since the read


def test_push_empty_values(push_empty_values_flow: list[Exchange]) -> None:
    read, put = classify_sequence(push_empty_values_flow)
    assert read.id == "read_user"
    assert (put.id, put.label) == ("push_empty_values_put", "Push empty values (PUT)")
    assert put.explanation.startswith(
        f"Okta pushes a profile change that empties title of jane@example.com (id {JANE_ID}): "
        "after reading the user it PUTs the whole object leaving it out (or sending it empty); "
        "it expects 200 with the resource no longer showing it"
    )


def test_a_put_sending_attributes_empty_pushes_empty_values_too() -> None:
    held = jane(
        title="VP Sales", name={"givenName": "Jane", "middleName": "Q", "familyName": "Doe"}
    )
    sent = full_put(held, title="", name={"givenName": "Janet", "familyName": "Doe"}, locale=None)
    _read, put = classify_sequence(
        [
            (okta("GET", f"/Users/{JANE_ID}"), 200, None, held),
            (okta("PUT", f"/Users/{JANE_ID}", sent), 200, None, jane()),
        ]
    )
    assert put.id == "push_empty_values_put"
    assert "empties name.middleName, locale, title of jane@example.com" in put.explanation
    assert "leaving them out (or sending them empty)" in put.explanation
    assert put.explanation.endswith("It also changes name.givenName.")


def test_a_put_keeping_every_attribute_is_no_push_of_empty_values() -> None:
    """What a PUT never carries is not emptied: the server's readOnly attributes (groups, meta),
    the password, active (a boolean has no empty value), and what was already empty."""
    held = jane(title="", groups=[{"value": "g1"}], nickName=None)
    sent = {k: v for k, v in full_put(held).items() if k not in ("groups", "active", "nickName")}
    _read, put = classify_sequence(
        [
            (okta("GET", f"/Users/{JANE_ID}"), 200, None, held),
            (okta("PUT", f"/Users/{JANE_ID}", sent), 200, None, held),
        ]
    )
    assert put.id == "update_user_put"


def test_deactivate_patch(deactivate_flow: list[Exchange]) -> None:
    (step,) = classify_sequence(deactivate_flow)
    assert (step.id, step.label) == ("deactivate_user_patch", "Deactivate (PATCH)")
    assert "no path" in step.explanation and "200" in step.explanation


def test_deactivate_patch_with_path_and_string() -> None:
    body = {"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    (step,) = classify_sequence([(okta("PATCH", f"/Users/{JANE_ID}", body), 200, None)])
    assert step.id == "deactivate_user_patch"
    assert 'path "active"' in step.explanation


def test_deactivate_answered_204_is_noted(deactivate_flow: list[Exchange]) -> None:
    req = deactivate_flow[0][0]
    (step,) = classify_sequence([(req, 204, None)])
    assert "Okta's tooling checks 200" in step.explanation


def test_reactivate_patch(reactivate_flow: list[Exchange]) -> None:
    (step,) = classify_sequence(reactivate_flow)
    assert (step.id, step.label) == ("reactivate_user_patch", "Reactivate (PATCH)")


def test_aiw_deactivate(aiw_deactivate_flow: list[Exchange]) -> None:
    read, put = classify_sequence(aiw_deactivate_flow)
    assert read.id == "read_user"
    assert (put.id, put.label) == ("deactivate_user_put", "Deactivate (AIW PUT)")
    assert "No earlier read" not in put.explanation


def test_aiw_deactivate_without_a_read_is_still_a_deactivation(
    aiw_deactivate_flow: list[Exchange],
) -> None:
    (step,) = classify_sequence(aiw_deactivate_flow[1:])
    assert step.id == "deactivate_user_put"
    assert "No earlier read" in step.explanation


def test_aiw_reactivate(aiw_reactivate_flow: list[Exchange]) -> None:
    _read, put = classify_sequence(aiw_reactivate_flow)
    assert (put.id, put.label) == ("reactivate_user_put", "Reactivate (AIW PUT)")


def test_put_of_an_inactive_user_keeping_it_inactive_is_an_update() -> None:
    steps = classify_sequence(
        [
            (okta("GET", f"/Users/{JANE_ID}"), 200, None, jane(active=False)),
            (
                okta("PUT", f"/Users/{JANE_ID}", full_put(jane(active=False), locale="fr-FR")),
                200,
                None,
                jane(active=False),
            ),
        ]
    )
    assert steps[1].id == "update_user_put"
    assert "locale" in steps[1].explanation


def test_password_sync_patch(password_sync_patch_flow: list[Exchange]) -> None:
    (step,) = classify_sequence(password_sync_patch_flow)
    assert (step.id, step.label) == ("password_sync_patch", "Password sync (PATCH)")
    body = {"Operations": [{"op": "replace", "path": "password", "value": "x"}]}
    (step,) = classify_sequence([(okta("PATCH", f"/Users/{JANE_ID}", body), 200, None)])
    assert step.id == "password_sync_patch"


def test_aiw_password_sync(aiw_password_sync_flow: list[Exchange]) -> None:
    _read, put = classify_sequence(aiw_password_sync_flow)
    assert (put.id, put.label) == ("password_sync_put", "Password sync (AIW PUT)")


def test_other_user_patch_is_not_usual() -> None:
    body = {"Operations": [{"op": "replace", "path": "name.givenName", "value": "Janet"}]}
    (step,) = classify_sequence([(okta("PATCH", f"/Users/{JANE_ID}", body), 200, None)])
    assert step.id == "update_user_patch"
    assert "not usual for Okta" in step.label
    assert "name.givenName" in step.explanation


def test_patch_answered_501(deactivate_flow: list[Exchange]) -> None:
    req = deactivate_flow[0][0]
    (step,) = classify_sequence([(req, 501, None, error(501, "PATCH is not supported"))])
    assert "Okta does not fall back to PUT" in step.explanation


def test_server_error_fails_the_task(deactivate_flow: list[Exchange]) -> None:
    (step,) = classify_sequence([(deactivate_flow[0][0], 503, None)])
    assert "no automatic retry" in step.explanation
    assert step.next_retry_in_s is None


def test_crud_test(crud_test_flow: list[Exchange]) -> None:
    assert ids(classify_sequence(crud_test_flow)) == [
        "create_user_existence_check",
        "create_user",
        "read_user",
        "update_user_put",
        "deactivate_user_patch",
        "reactivate_user_patch",
        "deactivate_user_patch",
    ]


def test_import_users(import_users_flow: list[Exchange]) -> None:
    steps = classify_sequence(import_users_flow)
    assert ids(steps) == ["import_users"] * 3
    assert [s.page for s in steps] == [1, 2, 3]
    assert [s.label for s in steps] == [f"Import users, page {n}" for n in (1, 2, 3)]
    assert "startIndex=101" in steps[0].explanation  # what Okta asks for next
    assert "Page 2 of 3" in steps[1].explanation
    assert "last page" in steps[2].explanation
    assert "active false" in steps[0].explanation


def test_import_page_size_other_than_100() -> None:
    (step,) = classify_sequence([(okta("GET", "/Users?startIndex=51&count=25"), 200, None)])
    assert (step.id, step.page) == ("import_users", 3)
    assert "count=25 is not Okta's page size" in step.explanation


def test_import_groups(import_groups_flow: list[Exchange]) -> None:
    steps = classify_sequence(import_groups_flow)
    assert ids(steps) == ["import_groups"] * 2
    assert [s.page for s in steps] == [1, 2]
    assert steps[1].label == "Import groups, page 2"


def test_import_groups_after_credentials_test_is_not_a_test(
    test_credentials_flow: list[Exchange], import_groups_flow: list[Exchange]
) -> None:
    # excludedAttributes=members marks the group push / import listing.
    steps = classify_sequence([test_credentials_flow[0], import_groups_flow[0]])
    assert ids(steps) == ["test_credentials", "import_groups"]


# --- tests: group push -------------------------------------------------------------------------
def test_group_push(group_push_flow: list[Exchange]) -> None:
    steps = classify_sequence(group_push_flow)
    assert ids(steps) == [
        "push_group_lookup",
        "push_group_create",
        "push_group_add_members",
        "push_group_rename",
        "read_group",
        "push_group_remove_members",
        "push_group_rename",
    ]
    lookup, create, add, rename, read, remove, _rename = steps
    assert lookup.label == 'Push group: look up "Sales"'
    assert "Not found: Okta creates the group next" in lookup.explanation
    assert create.label == 'Push group: create "Sales"'
    assert add.label == "Push group: add 2 members"
    assert "jane@example.com, bob@example.com" in add.explanation
    assert rename.label == 'Push group: rename to "Sales"'
    assert "after every membership change" in rename.explanation
    assert read.label == "Read group"
    assert '"Sales"' in read.explanation  # the name learnt from the create
    assert remove.label == "Push group: remove 1 member"
    assert "jane@example.com" in remove.explanation
    assert "never all of them" in remove.explanation


def test_push_now(push_now_flow: list[Exchange]) -> None:
    (step,) = classify_sequence(push_now_flow)
    assert (step.id, step.label) == ("push_group_replace_members", "Push Now: replace members")
    assert "1 member" in step.explanation
    assert "emptied" not in step.explanation


def test_push_now_empty(push_now_empty_flow: list[Exchange]) -> None:
    (step,) = classify_sequence(push_now_empty_flow)
    assert step.id == "push_group_replace_members"
    assert "The list is empty: the group must be emptied, not refused." in step.explanation


def test_aiw_group_push(aiw_group_push_flow: list[Exchange]) -> None:
    read, put = classify_sequence(aiw_group_push_flow)
    assert read.id == "read_group"
    assert (put.id, put.label) == ("push_group_put", "Push group (AIW PUT)")
    assert "1 member" in put.explanation


def test_group_delete(group_delete_flow: list[Exchange]) -> None:
    _read, delete = classify_sequence(group_delete_flow)
    assert (delete.id, delete.label) == ("push_group_delete", "Push group: delete")
    assert "204" in delete.explanation


def test_group_patch_most_significant_operation_wins() -> None:
    add = ADD_JANE_BOB["Operations"][0]
    rename = RENAME_SALES["Operations"][0]
    remove = REMOVE_JANE["Operations"][0]
    replace_all = {"op": "replace", "path": "members", "value": []}
    cases = [
        ([add, rename], "push_group_add_members"),
        ([rename, add, remove], "push_group_remove_members"),
        ([add, replace_all, rename], "push_group_replace_members"),
    ]
    for operations, expected in cases:
        req = okta("PATCH", f"/Groups/{SALES_ID}", group_patch(*operations))
        (step,) = classify_sequence([(req, 204, None)])
        assert step.id == expected
        assert 'It also renames the group to "Sales"' in step.explanation


def test_group_remove_without_filter_is_flagged() -> None:
    body = group_patch({"op": "remove", "path": "members"})
    (step,) = classify_sequence([(okta("PATCH", f"/Groups/{SALES_ID}", body), 204, None)])
    assert step.id == "push_group_remove_members"
    assert step.label == "Push group: remove all members"
    assert "would remove every member" in step.explanation


def test_group_patch_of_other_attributes_is_not_okta() -> None:
    body = group_patch({"op": "replace", "path": "externalId", "value": "x"})
    (step,) = classify_sequence([(okta("PATCH", f"/Groups/{SALES_ID}", body), 200, None)])
    assert step.id == "not_okta"
    assert "externalId" in step.explanation


# --- tests: SPEC test --------------------------------------------------------------------------
def test_spec_test(spec_test_flow: list[Exchange]) -> None:
    steps = classify_sequence(spec_test_flow)
    assert ids(steps) == ["spec_test"] * len(spec_test_flow)
    labels = [s.label.removeprefix("SPEC test: ") for s in steps]
    assert labels == [
        "list users",
        "get a user by id",
        "filter for a non-existent userName",
        "unknown id -> 404",
        "create a user",
        "read back the created user",
        "create the same user again -> 409",
        "filter with the userName upper-cased",
        "list groups",
        "bad Authorization -> 401",
        "GET /Users/00919288221112222 -> 404",
    ]
    assert all("as the SPEC test expects" in s.explanation for s in steps)
    assert "OKTA SCIM Integration" in steps[0].explanation


def test_spec_test_failures_are_explained(spec_test_flow: list[Exchange]) -> None:
    flow = list(spec_test_flow)
    req, _status, _ra, _body = flow[6]
    flow[6] = (req, 201, None, None)  # a server that accepts the duplicate
    steps = classify_sequence(flow[:7])
    assert "Expected 409, got 201: this SPEC step fails." in steps[6].explanation
    classifier = OktaClassifier()
    groups = flow[8][0]
    step = classifier.note_response(groups, classifier.classify(groups), 200, None, duration_s=0.9)
    assert "the SPEC test allows 600 ms" in step.explanation


# --- tests: rate limits and retries ------------------------------------------------------------
def test_rate_limited_create(rate_limited_create_flow: list[Exchange]) -> None:
    check, first, retry1, retry2, retry3 = classify_sequence(rate_limited_create_flow)
    assert check.id == "create_user_existence_check"
    assert [s.id for s in (first, retry1, retry2, retry3)] == ["create_user"] * 4
    assert [s.retry for s in (first, retry1, retry2, retry3)] == [None, 1, 2, 3]
    assert first.label == "Create user jane@example.com"
    assert retry2.label == "Create user jane@example.com (retry 2)"
    # Retry-After: 30 honoured; then none (5 min) doubled once; then a date (5 min) doubled twice.
    assert first.next_retry_in_s == 30
    assert retry1.next_retry_in_s == 2 * DEFAULT_RETRY_WAIT_S
    assert retry2.next_retry_in_s == 4 * DEFAULT_RETRY_WAIT_S
    assert retry3.next_retry_in_s is None
    assert "Retry-After: 30 honoured" in first.explanation
    assert "no Retry-After" in retry1.explanation
    assert "HTTP-date" in retry2.explanation
    assert "Retry 1 (attempt 2 of 10)" in retry1.explanation
    assert "wait 30 s; it came after 30 s" in retry1.explanation
    assert "wait 20 min; it came after 20 min" in retry3.explanation
    assert not any(s.retry_gives_up for s in (first, retry1, retry2, retry3))


def test_rate_limited_give_up(rate_limited_give_up_flow: list[Exchange]) -> None:
    steps = classify_sequence(rate_limited_give_up_flow)
    assert ids(steps) == ["deactivate_user_patch"] * MAX_ATTEMPTS
    assert [s.retry for s in steps] == [None, *range(1, MAX_ATTEMPTS)]
    assert [s.next_retry_in_s for s in steps[:-1]] == [2.0**k for k in range(MAX_ATTEMPTS - 1)]
    assert not any(s.retry_gives_up for s in steps[:-1])
    last = steps[-1]
    assert last.label == "Deactivate (PATCH) (retry 9)"
    assert last.retry_gives_up and last.next_retry_in_s is None
    assert "gives up after 10 attempts; the task fails" in last.explanation
    # After giving up, the same request is a new task (an admin retried it), not retry 10.
    again = okta("PATCH", f"/Users/{JANE_ID}", DEACTIVATE, t=10_000)
    (step,) = classify_sequence([*rate_limited_give_up_flow, (again, 200, None)])[-1:]
    assert step.retry is None


def test_retry_keeps_the_step_chosen_from_context(link_existing_user_flow: list[Exchange]) -> None:
    check, (read, _s, _r, body), _put = link_existing_user_flow
    steps = classify_sequence([check, (read, 429, "5"), (read, 200, None, body)])
    assert steps[1].id == steps[2].id == "link_user_read"
    assert steps[2].retry == 1 and steps[2].label.endswith("(retry 1)")


def test_a_different_body_is_not_a_retry() -> None:
    first = okta("POST", "/Users", JANE_CREATE)
    other = okta("POST", "/Users", {**JANE_CREATE, "userName": "bob@example.com"})
    steps = classify_sequence([(first, 429, "60"), (other, 201, None)])
    assert steps[1].retry is None


def test_success_ends_the_retry_chain() -> None:
    req = okta("POST", "/Users", JANE_CREATE)
    steps = classify_sequence([(req, 429, "60"), (req, 201, None), (req, 409, None)])
    assert [s.retry for s in steps] == [None, 1, None]


def test_integer_retry_after_doubles() -> None:
    req = okta("GET", "/Users?startIndex=101&count=100")
    steps = classify_sequence([(req, 429, "60")] * 3)
    assert [s.next_retry_in_s for s in steps] == [60, 120, 240]
    assert [s.page for s in steps] == [2, 2, 2]
    assert steps[2].label == "Import users, page 2 (retry 2)"


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("30", 30),
        ("0", 0),
        (" 120 ", 120),
        (None, 300),
        (HTTP_DATE, 300),
        ("30.5", 300),
        ("-1", 300),
        ("soon", 300),
        ("", 300),
        ("٣", 300),  # an Arabic-Indic digit: str.isdigit() but not an integer for Okta
    ],
)
def test_retry_wait(header: str | None, wait: float) -> None:
    assert retry_wait(1, header)[0] == wait
    assert retry_wait(3, header)[0] == wait * 4


# --- tests: not Okta and discovery -------------------------------------------------------------
def test_not_okta(not_okta_flow: list[Exchange]) -> None:
    steps = classify_sequence(not_okta_flow)
    assert ids(steps) == ["not_okta"] * len(not_okta_flow)
    assert all(s.label.startswith("Not sent by Okta: ") for s in steps)
    assert all("Okta's SCIM client does not send this" in s.explanation for s in steps)
    delete, bulk, me, search, users_search, last_modified, *_rest = steps
    assert delete.label == "Not sent by Okta: DELETE /Users/{id}"
    assert "never deletes users" in delete.explanation
    assert "/Bulk" in bulk.explanation and "/Me" in me.explanation
    assert ".search" in search.explanation and ".search" in users_search.explanation
    assert "meta.lastModified" in last_modified.explanation


def test_discovery(discovery_flow: list[Exchange]) -> None:
    steps = classify_sequence(discovery_flow)
    assert ids(steps) == ["discovery"] * 4
    assert steps[0].label == "Discovery: /ServiceProviderConfig"
    assert "entitlements" in steps[1].explanation


# --- tests: the classifier itself --------------------------------------------------------------
def test_every_step_is_reached(request: pytest.FixtureRequest) -> None:
    """Together the flows of OKTA.md reach every step id of STEPS."""
    seen: set[str] = set()
    for name in FLOW_FIXTURES:
        seen |= set(ids(classify_sequence(request.getfixturevalue(name))))
    seen |= {"update_user_patch"}  # covered by test_other_user_patch_is_not_usual
    # Entitlement steps need a catalog (set_catalog): their flow is in test_okta_entitlements.
    from tests.core.test_okta_entitlements import run_entitlement_flow

    seen |= set(ids(run_entitlement_flow()))
    assert seen == set(STEPS)


FLOW_FIXTURES = [
    "test_credentials_flow",
    "create_user_flow",
    "link_existing_user_flow",
    "update_profile_flow",
    "push_empty_values_flow",
    "deactivate_flow",
    "reactivate_flow",
    "aiw_deactivate_flow",
    "aiw_reactivate_flow",
    "password_sync_patch_flow",
    "aiw_password_sync_flow",
    "import_users_flow",
    "import_groups_flow",
    "crud_test_flow",
    "group_push_flow",
    "push_now_flow",
    "push_now_empty_flow",
    "aiw_group_push_flow",
    "group_delete_flow",
    "spec_test_flow",
    "rate_limited_create_flow",
    "rate_limited_give_up_flow",
    "not_okta_flow",
    "discovery_flow",
]


def test_steps_table_is_well_formed() -> None:
    for step_id, (label, explanation) in STEPS.items():
        assert step_id == step_id.lower() and " " not in step_id
        assert label and explanation.endswith((".", "{why}", "{detail}"))


def test_classify_changes_nothing(link_existing_user_flow: list[Exchange]) -> None:
    classifier = OktaClassifier()
    check, (read, _s, _r, _b), _put = link_existing_user_flow
    classify_sequence([check], classifier)
    assert classifier.classify(read) == classifier.classify(read)
    assert classifier.classify(read).id == "link_user_read"
    assert len(classifier.history) == 1


def test_history_is_bounded_by_size(link_existing_user_flow: list[Exchange]) -> None:
    classifier = OktaClassifier(history_size=50)
    check, (read, _s, _r, _b), _put = link_existing_user_flow
    classify_sequence([check], classifier)
    filler = [
        (
            okta("GET", EXISTENCE_CHECK.replace("jane", f"user{n}")),
            200,
            None,
            list_response([jane(id=f"u{n}")]),
        )
        for n in range(60)
    ]
    classify_sequence(filler, classifier)
    assert len(classifier.history) == 50
    assert classifier.history[-1].step_id == "create_user_existence_check"
    # Jane's existence check has been forgotten: reading her is a plain read again.
    assert classifier.classify(read).id == "read_user"
    # Every internal memory is bounded too.
    for value in vars(classifier).values():
        if hasattr(value, "__len__") and not isinstance(value, (str, int, float)):
            assert len(value) <= 50


def test_history_is_bounded_by_age(link_existing_user_flow: list[Exchange]) -> None:
    classifier = OktaClassifier(max_age_s=900)
    check, (read, _s, _r, _b), _put = link_existing_user_flow
    check = (okta("GET", EXISTENCE_CHECK, t=0), 200, None, list_response([jane()]))
    classify_sequence([check], classifier)
    late = OktaRequest(read.method, read.path, read.query, read.body, read.user_agent, 901.0)
    assert classifier.classify(late).id == "read_user"
    assert classifier.history == ()


def test_slow_answer_is_flagged(deactivate_flow: list[Exchange]) -> None:
    classifier = OktaClassifier()
    req = deactivate_flow[0][0]
    step = classifier.note_response(req, classifier.classify(req), 200, None, duration_s=61)
    assert "closes the connection after 60 s" in step.explanation


def test_dropped_connection() -> None:
    classifier = OktaClassifier()
    req = okta("POST", "/Users", JANE_CREATE)
    step = classifier.note_response(req, classifier.classify(req), 0, None)
    assert "connection" in step.explanation


def test_odd_requests_never_raise() -> None:
    bodies: list[Any] = [None, [], "text", 3, {"Operations": "x"}, {"Operations": [1, None]}]
    bodies += [{"Operations": [{"op": "remove", "path": "members[value eq"}]}]
    bodies += [{"Operations": [{"op": "add", "path": 5, "value": {"active": "maybe"}}]}]
    paths = ["", "/", "/Users", "/Users/", "/users/x", "/Groups/g/extra", "/scim/v2/Users/x"]
    queries = [{}, {"filter": "(("}, {"startIndex": "x", "count": "-5"}, {"count": "0"}]
    classifier = OktaClassifier(history_size=20)
    t = 0.0
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
        for path in paths:
            for query in queries:
                for body in bodies:
                    t += 1
                    req = OktaRequest(method, path, query, body, "", t)
                    step = classifier.classify(req)
                    assert step.id in STEPS
                    final = classifier.note_response(req, step, 429, "1", body)
                    assert final.id == step.id


def test_base_path_prefix_and_case_are_tolerated() -> None:
    (step,) = classify_sequence([(okta("GET", "/scim/v2/users/abc"), 200, None)])
    assert step.id == "read_user"
