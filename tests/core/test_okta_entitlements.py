"""Okta insight for entitlements (core/okta_entitlements.py): request sequences written from
OKTA.md, "Entitlements, roles and custom attributes (Okta Identity Governance)" and Okta's guide
"Build a SCIM 2.0 server with entitlements", replayed through a classifier told the catalog
with ``set_catalog`` as the server does when a catalog is loaded.
"""

from __future__ import annotations

from typing import Any

from scim_desktop.core.okta import STEPS, OktaClassifier, OktaRequest, Step, classify_sequence
from scim_desktop.core.okta_entitlements import ENTITLEMENT_STEPS
from tests.core.test_okta import (
    JANE_ID,
    PATCH_SCHEMA,
    SPEC_UA,
    Exchange,
    error,
    full_put,
    ids,
    jane,
    list_response,
    okta,
)

ROLE_URN = "urn:okta:scim:schemas:core:1.0:Role"
ENTITLEMENT_URN = "urn:okta:scim:schemas:core:1.0:Entitlement"
PROFILE_EXT = "urn:acme:scim:schemas:extension:app:1.0:Profile"
USER_EXT = "urn:acme:scim:schemas:extension:app:1.0:User"
CATALOG = {"/Roles": "Role", "/Licenses": "License", "/Profiles": "Profile"}

ADMIN = {"value": "role-admin", "display": "Administrator"}
AUDITOR = {"value": "role-auditor", "display": "Auditor"}
PRO = {"value": "lic-pro", "display": "Pro license", "type": "License"}


def classifier(catalog: dict[str, str] | None = None) -> OktaClassifier:
    engine = OktaClassifier()
    engine.set_catalog(CATALOG if catalog is None else catalog)
    return engine


def value(vid: str, name: str, schema: str = ROLE_URN) -> dict[str, Any]:
    return {"schemas": [schema], "id": vid, "displayName": name}


def role_page(values: list[dict[str, Any]], total: int, start: int = 1) -> dict[str, Any]:
    page = list_response(values, total)
    page["startIndex"] = start
    return page


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
RESOURCE_TYPES = list_response(
    [
        {
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
            "schemaExtensions": [{"schema": ENTERPRISE}, {"schema": USER_EXT}],
        },
        {"id": "Role", "name": "Role", "endpoint": "/Roles", "schema": ROLE_URN},
        {"id": "License", "name": "License", "endpoint": "/Licenses", "schema": ENTITLEMENT_URN},
    ]
)


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def to_jane(method: str, body: Any, answer: Any = None, status: int = 200) -> Exchange:
    """Okta's PATCH or PUT of Jane, answered ``status`` with ``answer``."""
    return (okta(method, f"/Users/{JANE_ID}", body), status, None, answer)


def entitlement_flow() -> list[Exchange]:
    """The whole OIG story (OKTA.md): discovery, the import of every endpoint, grants and
    revokes by PATCH and PUT. For ``set_catalog(CATALOG)``."""
    with_admin = jane(roles=[ADMIN])
    return [
        (okta("GET", "/ResourceTypes"), 200, None, RESOURCE_TYPES),
        (okta("GET", "/ResourceTypes/Role"), 200, None, RESOURCE_TYPES["Resources"][1]),
        (okta("GET", f"/Schemas/{PROFILE_EXT}"), 200, None, {"id": PROFILE_EXT}),
        (okta("GET", f"/Schemas/{USER_EXT}"), 200, None, {"id": USER_EXT}),
        (
            okta("GET", "/Roles?startIndex=1&count=100"),
            200,
            None,
            role_page([value("role-admin", "Administrator")], 1),
        ),
        (okta("GET", "/Roles/role-admin"), 200, None, value("role-admin", "Administrator")),
        (okta("GET", f"/Users/{JANE_ID}"), 200, None, jane()),
        to_jane("PATCH", patch({"op": "add", "path": "roles", "value": [ADMIN]}), with_admin),
        to_jane(
            "PATCH",
            patch({"op": "remove", "path": 'roles[value eq "role-admin"]'}),
            jane(roles=[]),
        ),
        (okta("GET", f"/Users/{JANE_ID}"), 200, None, jane(roles=[])),
        to_jane("PUT", full_put(jane(), roles=[ADMIN]), with_admin),
        to_jane("PUT", full_put(jane(), roles=[]), jane(roles=[])),
    ]


def run_entitlement_flow() -> list[Step]:
    return classify_sequence(entitlement_flow(), classifier())


# --- without a catalog ---------------------------------------------------------------------------
def test_without_a_catalog_nothing_changes() -> None:
    steps = classify_sequence(
        [
            (okta("GET", "/ResourceTypes"), 200, None, RESOURCE_TYPES),
            (okta("GET", f"/Schemas/{USER_EXT}"), 200, None, None),
            (okta("GET", "/Roles?startIndex=1&count=100"), 200, None, None),
            (okta("GET", "/Roles/role-admin"), 200, None, None),
        ]
    )
    assert ids(steps) == ["discovery", "discovery", "not_okta", "not_okta"]
    assert steps[2].label == "Not sent by Okta: GET /Roles"


def test_the_whole_story_in_order() -> None:
    assert ids(run_entitlement_flow()) == [
        "read_resource_types",
        "read_resource_types",
        "read_extension_schemas",
        "read_extension_schemas",
        "import_entitlements",
        "read_entitlement_value",
        "read_user",
        "grant_entitlement",
        "revoke_entitlement",
        "read_user",
        "grant_entitlement",
        "revoke_entitlement",
    ]


# --- discovery -----------------------------------------------------------------------------------
def test_resource_types() -> None:
    listing, one = classify_sequence(entitlement_flow()[:2], classifier())
    assert listing.label == "Okta reads the app's resource types"
    assert one.label == "Okta reads the app's resource types (Role)"
    # What Okta does with the answer: imports the types with its URNs, not User.
    assert (
        f"Okta reads /Schemas for the extensions it does not know ({USER_EXT}). "
        "Okta imports the values of Role (/Roles), License (/Licenses) next."
    ) in listing.explanation
    assert "/Schemas" not in one.explanation.split("resource types.", 1)[1]
    assert "Governance tab" in listing.explanation
    assert "Okta imports the values of Role (/Roles) next." in one.explanation


def test_resource_types_without_okta_types() -> None:
    body = list_response([{"id": "User", "name": "User", "endpoint": "/Users"}])
    (step,) = classify_sequence([(okta("GET", "/ResourceTypes"), 200, None, body)], classifier())
    assert "the Governance tab stays empty" in step.explanation


def test_extension_schemas() -> None:
    listing, unknown, known = classify_sequence(
        [
            (okta("GET", "/Schemas"), 200, None, list_response([])),
            (okta("GET", f"/Schemas/{USER_EXT}"), 200, None, {"id": USER_EXT}),
            (okta("GET", f"/Schemas/{ROLE_URN}"), 200, None, {"id": ROLE_URN}),
        ],
        classifier(),
    )
    assert ids([listing, unknown, known]) == ["read_extension_schemas"] * 3
    assert listing.label == "Okta reads the extension schemas"
    assert unknown.label == f"Okta reads the extension schemas ({USER_EXT})"
    assert "user profile" in unknown.explanation
    assert "does not need to read it" in known.explanation
    assert "does not need to read it" not in unknown.explanation


def test_discovery_failure_stops_entitlement_management() -> None:
    (step,) = classify_sequence(
        [(okta("GET", "/ResourceTypes"), 500, None, error(500, "boom"))], classifier()
    )
    assert step.id == "read_resource_types"
    assert "enabling entitlement management fails" in step.explanation
    assert '"boom"' in step.explanation


def test_service_provider_config_stays_discovery() -> None:
    (step,) = classify_sequence([(okta("GET", "/ServiceProviderConfig"), 200, None)], classifier())
    assert step.id == "discovery"


# --- imports -------------------------------------------------------------------------------------
def test_import_pages() -> None:
    engine = classifier()
    pages = [
        (
            okta("GET", f"/Roles?startIndex={start}&count=100"),
            200,
            None,
            role_page([value(f"r{n}", f"Role {n}") for n in range(size)], 250, start),
        )
        for start, size in ((1, 100), (101, 100), (201, 50))
    ]
    first, second, last = classify_sequence(pages, engine)
    assert ids([first, second, last]) == ["import_entitlements"] * 3
    assert [s.page for s in (first, second, last)] == [1, 2, 3]
    assert first.label == "Okta imports Role values, page 1"
    assert last.label == "Okta imports Role values, page 3"
    assert "from /Roles" in first.explanation and "Governance tab" in first.explanation
    assert "Okta asks next for startIndex=101." in first.explanation
    assert "Page 2 of 3." in second.explanation
    assert "this is the last page" in last.explanation
    assert "but the page holds" not in last.explanation  # 50 values, itemsPerPage 50


def test_each_endpoint_has_its_type_and_total() -> None:
    steps = classify_sequence(
        [
            (
                okta("GET", "/Licenses?startIndex=1&count=100"),
                200,
                None,
                role_page([value("lic-pro", "Pro", ENTITLEMENT_URN)], 101),
            ),
            (okta("GET", "/Profiles?startIndex=101&count=100"), 200, None, None),
            (okta("GET", "/Licenses?startIndex=101&count=100"), 200, None, None),
        ],
        classifier(),
    )
    assert [s.label for s in steps] == [
        "Okta imports License values, page 1",
        "Okta imports Profile values, page 2",
        "Okta imports License values, page 2",
    ]
    # The License total (101) is known from its first page; the Profile total is not.
    assert "Page 2 of 2." in steps[2].explanation
    assert "Page 2 of" not in steps[1].explanation


def test_runscope_count_1() -> None:
    good = role_page([value("role-admin", "Administrator")], 3)
    bad = role_page([value("role-admin", "Administrator")], 3)
    bad["itemsPerPage"] = 3
    url = "/Roles?count=1&startIndex=1"
    ok, failed = classify_sequence(
        [(okta("GET", url, ua=SPEC_UA), 200, None, good), (okta("GET", url), 200, None, bad)],
        classifier(),
    )
    assert ok.id == failed.id == "import_entitlements" and ok.page == 1
    assert "Runscope entitlements test" in ok.explanation
    assert "count=1&startIndex=1" in ok.explanation and "not Okta's page size" not in ok.explanation
    assert "as the Runscope entitlements test requires" in ok.explanation
    assert "The Runscope entitlements test fails: itemsPerPage is not 1." in failed.explanation
    assert "it must be the real page size" in failed.explanation


def test_read_one_value_named_from_the_import() -> None:
    engine = classifier()
    classify_sequence(entitlement_flow()[4:5], engine)
    found, gone = classify_sequence(
        [
            (okta("GET", "/Roles/role-admin"), 200, None, value("role-admin", "Administrator")),
            (okta("GET", "/roles/role-x"), 404, None, error(404, "No such Role")),
        ],
        engine,
    )
    assert found.label == 'Okta reads Role value "Administrator" (id role-admin)'
    assert gone.label == "Okta reads Role value role-x"
    assert "404: the value is not in the app" in gone.explanation


def test_429_on_an_import_page_is_retried_like_an_import_page() -> None:
    engine = classifier()
    req = okta("GET", "/Roles?startIndex=101&count=100", t=5_000)
    (step,) = classify_sequence([(req, 429, "30", None)], engine)
    assert step.id == "import_entitlements" and step.page == 2
    assert step.next_retry_in_s == 30.0
    assert "Okta pauses the task and sends retry 1 in 30 s (Retry-After: 30 honoured)" in (
        step.explanation
    )
    again = okta("GET", "/Roles?startIndex=101&count=100", t=5_031)
    (retry,) = classify_sequence([(again, 429, None, None)], engine)
    assert retry.id == "import_entitlements" and retry.retry == 1
    assert retry.label == "Okta imports Role values, page 2 (retry 1)"
    # No Retry-After the second time: 5 minutes, doubled once (OKTA.md).
    assert retry.next_retry_in_s == 600.0


def test_5xx_fails_the_import() -> None:
    (step,) = classify_sequence(
        [(okta("GET", "/Roles?startIndex=1&count=100"), 503, None, error(503, "down"))],
        classifier(),
    )
    assert step.id == "import_entitlements"
    assert "503: the entitlement import fails" in step.explanation
    assert "Okta documents no automatic retry" not in step.explanation


def test_catalog_endpoints_are_read_only_and_unfiltered() -> None:
    steps = classify_sequence(
        [
            (okta("POST", "/Roles", value("r", "R")), 405, None, None),
            (okta("DELETE", "/Roles/role-admin"), 405, None, None),
            (okta("GET", "/Roles?filter=displayName%20eq%20%22Administrator%22"), 200, None),
        ],
        classifier(),
    )
    assert ids(steps) == ["not_okta"] * 3
    assert steps[0].label == "Not sent by Okta: POST /Roles"
    assert steps[1].label == "Not sent by Okta: DELETE /Roles/{id}"
    assert "without a filter" in steps[2].explanation


def test_user_import_pages_mention_grants() -> None:
    holders = [jane(roles=[ADMIN]), jane(id="u2", userName="bob@example.com", entitlements=[PRO])]
    plain = [jane(id="u3", userName="carol@example.com")]
    with_grants, without = classify_sequence(
        [
            (
                okta("GET", "/Users?startIndex=1&count=100"),
                200,
                None,
                list_response(holders + plain),
            ),
            (okta("GET", "/Users?startIndex=1&count=100"), 200, None, list_response(plain)),
        ]
    )
    assert ids([with_grants, without]) == ["import_users"] * 2
    assert "2 of the users on this page carry roles or entitlements" in with_grants.explanation
    assert "roles or entitlements" not in without.explanation


# --- grants and revokes --------------------------------------------------------------------------
def _jane_known(engine: OktaClassifier, **changes: Any) -> None:
    """Okta reads Jane first, so the classifier knows her name and her grants."""
    classify_sequence([(okta("GET", f"/Users/{JANE_ID}"), 200, None, jane(**changes))], engine)


def test_grant_by_patch() -> None:
    engine = classifier()
    _jane_known(engine)
    role, licence = classify_sequence(
        [
            to_jane(
                "PATCH",
                patch({"op": "add", "path": "roles", "value": [ADMIN]}),
                jane(roles=[ADMIN]),
            ),
            to_jane(
                "PATCH",
                patch({"op": "add", "path": "entitlements", "value": [PRO]}),
                jane(roles=[ADMIN], entitlements=[PRO]),
            ),
        ],
        engine,
    )
    assert role.id == licence.id == "grant_entitlement"
    assert role.label == "Okta grants Administrator to jane@example.com"
    assert 'role "Administrator" (role-admin)' in role.explanation
    assert "op add on path roles" in role.explanation
    assert "showing the grant in roles" in role.explanation
    assert "It also" not in role.explanation and "It also" not in licence.explanation
    assert licence.label == "Okta grants Pro license to jane@example.com"
    assert 'License "Pro license" (lic-pro)' in licence.explanation


def test_revoke_by_patch_names_the_value_from_the_import() -> None:
    engine = classifier()
    classify_sequence(entitlement_flow()[4:5], engine)  # the /Roles import: role-admin's name
    (step,) = classify_sequence(
        [
            to_jane(
                "PATCH",
                patch({"op": "remove", "path": 'roles[value eq "role-admin"]'}),
                jane(roles=[]),
            )
        ],
        engine,
    )
    assert step.id == "revoke_entitlement"
    assert step.label == f"Okta revokes Administrator from user {JANE_ID}"
    assert 'roles[value eq "role-admin"]' in step.explanation


def test_grant_by_replace_and_with_other_changes() -> None:
    body = patch(
        {"op": "replace", "path": "roles", "value": [AUDITOR]},
        {"op": "replace", "path": "title", "value": "CFO"},
    )
    (step,) = classify_sequence([to_jane("PATCH", body, jane(roles=[AUDITOR]))], classifier())
    assert step.id == "grant_entitlement"
    assert "a replace drops every roles value it does not list" in step.explanation
    assert "It also changes title." in step.explanation


def test_revoke_with_a_value_and_type_filter() -> None:
    path = 'entitlements[value eq "lic-pro" and type eq "License"]'
    (step,) = classify_sequence([to_jane("PATCH", patch({"op": "remove", "path": path}))])
    assert step.id == "revoke_entitlement"
    assert step.label == f"Okta revokes lic-pro from user {JANE_ID}"


def test_revoke_without_a_value_filter_is_flagged() -> None:
    (step,) = classify_sequence(
        [
            to_jane(
                "PATCH",
                patch({"op": "remove", "path": "entitlements"}),
                jane(),
            )
        ],
        classifier(),
    )
    assert step.id == "revoke_entitlement"
    assert "removes every entitlements value" in step.explanation


def test_grants_are_told_without_a_catalog_too() -> None:
    # A grant is a change to the user: no catalog endpoint is involved in recognising it.
    (step,) = classify_sequence(
        [
            to_jane(
                "PATCH",
                patch({"op": "add", "path": "roles", "value": [ADMIN]}),
                jane(roles=[ADMIN]),
            )
        ]
    )
    assert step.id == "grant_entitlement"


def test_patch_of_other_attributes_is_not_a_grant() -> None:
    body = patch({"op": "replace", "path": "displayName", "value": "J"})
    (step,) = classify_sequence([to_jane("PATCH", body)])
    assert step.id == "update_user_patch"


def test_grant_and_revoke_by_put_against_the_user_last_seen() -> None:
    engine = classifier()
    _jane_known(engine, roles=[ADMIN])
    grant, revoke, same = classify_sequence(
        [
            to_jane("PUT", full_put(jane(), roles=[ADMIN, AUDITOR]), jane(roles=[ADMIN, AUDITOR])),
            # The classifier remembered the answer to the PUT: Administrator goes now.
            to_jane(
                "PUT",
                full_put(jane(), roles=[AUDITOR]),
                jane(roles=[AUDITOR]),
            ),
            to_jane(
                "PUT",
                full_put(jane(), roles=[AUDITOR], title="CFO"),
                jane(roles=[AUDITOR], title="CFO"),
            ),
        ],
        engine,
    )
    assert grant.id == "grant_entitlement"
    assert grant.label == "Okta grants Auditor to jane@example.com"
    assert "PUT of the whole user with its roles" in grant.explanation
    assert revoke.id == "revoke_entitlement"
    assert revoke.label == "Okta revokes Administrator from jane@example.com"
    assert same.id == "update_user_put" and "Changed: title." in same.explanation


def test_put_with_grants_and_revokes_at_once() -> None:
    engine = classifier()
    _jane_known(engine, roles=[ADMIN])
    (step,) = classify_sequence(
        [
            to_jane(
                "PUT",
                full_put(jane(), roles=[AUDITOR]),
                jane(roles=[AUDITOR]),
            )
        ],
        engine,
    )
    assert step.id == "grant_entitlement"
    assert 'It also revokes role "Administrator" (role-admin).' in step.explanation


def test_put_with_roles_and_no_earlier_read() -> None:
    (step,) = classify_sequence(
        [to_jane("PUT", full_put(jane(), roles=[ADMIN]), None)],
        classifier(),
    )
    assert step.id == "update_user_put"
    assert "cannot be told" in step.explanation


def test_4xx_on_a_grant_fails_the_assignment_with_the_message() -> None:
    body = patch({"op": "add", "path": "roles", "value": [{"value": "role-x"}]})
    (step,) = classify_sequence(
        [to_jane("PATCH", body, error(400, 'Unknown role "role-x"', "invalidValue"), status=400)],
        classifier(),
    )
    assert step.id == "grant_entitlement"
    assert step.label == f"Okta grants role-x to user {JANE_ID}"
    assert "400: Okta fails the assignment task" in step.explanation
    assert 'Okta shows the admin: "Unknown role "role-x""' in step.explanation


# --- the catalog ---------------------------------------------------------------------------------
def test_catalog_change_at_run_time() -> None:
    engine = classifier({"/Roles": "Role"})
    licenses = okta("GET", "/Licenses?startIndex=1&count=100")
    roles = okta("GET", "/Roles?startIndex=1&count=100")
    assert engine.classify(licenses).id == "not_okta"
    assert engine.classify(roles).label == "Okta imports Role values, page 1"
    engine.set_catalog({"/Licenses": "License", "/Roles": "AppRole"})
    assert engine.catalog == {"/Licenses": "License", "/Roles": "AppRole"}
    assert engine.classify(licenses).label == "Okta imports License values, page 1"
    assert engine.classify(roles).label == "Okta imports AppRole values, page 1"
    engine.set_catalog({"/Licenses": "License"})
    assert engine.classify(roles).id == "not_okta"
    engine.set_catalog({})
    assert engine.classify(licenses).id == "not_okta"
    assert engine.classify(okta("GET", "/ResourceTypes")).id == "discovery"


def test_catalog_paths_are_normalised() -> None:
    engine = classifier({"licenses/": "License", "/Apps/Roles": "Role"})
    assert engine.catalog == {"/licenses": "License", "/Apps/Roles": "Role"}
    assert engine.classify(okta("GET", "/Licenses?startIndex=1&count=100")).id == (
        "import_entitlements"
    )
    assert engine.classify(okta("GET", "/scim/v2/apps/roles/r1")).label == (
        "Okta reads Role value r1"
    )
    assert engine.classify(okta("GET", "/Apps")).id == "not_okta"


def test_new_steps_are_in_the_table() -> None:
    assert set(STEPS) >= ENTITLEMENT_STEPS
    # The whole story reaches every entitlement step (and reads Jane, nothing else).
    assert set(ids(run_entitlement_flow())) == ENTITLEMENT_STEPS | {"read_user"}


def test_odd_requests_never_raise_with_a_catalog() -> None:
    bodies: list[Any] = [None, [], "text", 3, {"roles": "x"}, {"Operations": [1, None]}]
    bodies += [patch({"op": "remove", "path": "roles[value eq"}), patch({"op": "add"})]
    bodies += [patch({"op": "add", "path": "roles", "value": "role-admin"})]
    bodies += [patch({"op": "add", "value": {"roles": 5, "entitlements": [None, 3, {}]}})]
    bodies += [{"roles": [None, "role-admin", {"value": 7}], "entitlements": {}}]
    paths = ["/Roles", "/Roles/", "/roles/x/y", "/Roles/r1", "/ResourceTypes/", "/Schemas/x/y"]
    paths += [f"/Users/{JANE_ID}", "/Licenses", "/scim/v2/Licenses/l1"]
    queries = [{}, {"startIndex": "x", "count": "-5"}, {"count": "0"}, {"filter": "(("}]
    answers: list[Any] = [None, [], {"Resources": "x", "itemsPerPage": "1"}, {"Resources": [3]}]
    engine = classifier()
    _jane_known(engine, roles=[ADMIN])
    t = 10_000.0
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        for path in paths:
            for query in queries:
                for body in bodies:
                    for status, answer in zip((200, 429, 400, 503), answers, strict=True):
                        t += 1
                        req = OktaRequest(method, path, query, body, SPEC_UA, t)
                        step = engine.classify(req)
                        assert step.id in STEPS
                        assert engine.note_response(req, step, status, "1", answer).id == step.id
