"""What Okta expects back for each step (core/okta_expect.py).

Good answers: OKTA.md's flows (tests/core/test_okta.py) classified by the real classifier, and
the real server's own answers recorded by a real server, all judged [] (Okta is happy). Wrong
answers: each way OKTA.md says Okta fails, retries, loses data or flags an answer, judged with
the right effect.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from scim_desktop.core.okta import OktaClassifier, classify_sequence
from scim_desktop.core.okta_expect import EFFECT_TEXT, Problem, expect, is_failure
from scim_desktop.server.events import RequestRecord
from tests.conftest import RecordingSink
from tests.core.test_okta import (
    DEACTIVATE,
    FLOW_FIXTURES,
    GROUP_SCHEMA,
    JANE_CREATE,
    JANE_ID,
    REACTIVATE,
    error,
    group_patch,
    jane,
    list_response,
    okta,
    sales,
)
from tests.core.test_okta_entitlements import classifier as catalog_classifier
from tests.core.test_okta_entitlements import entitlement_flow
from tests.scim_client import ScimClient, filter_query

#: OKTA.md's flows (test_okta.py's, all of them) whose every answer pleases Okta: all but the
#: two whose server answers 429 on purpose.
GOOD_FLOWS = [
    name
    for name in FLOW_FIXTURES
    if name not in ("rate_limited_create_flow", "rate_limited_give_up_flow")
]


def _text(body: Any) -> str:
    return "" if body is None else orjson.dumps(body).decode()


def judged(flow: list[tuple[Any, ...]], engine: Any = None) -> list[list[Problem]]:
    """Each exchange of the flow classified in order (as the server does), then judged."""
    steps = classify_sequence(flow, engine)
    out = []
    for exchange, step in zip(flow, steps, strict=True):
        req, status = exchange[0], exchange[1]
        body = exchange[3] if len(exchange) > 3 else None
        out.append(
            expect(
                step.id,
                req.method,
                "&".join(f"{k}={v}" for k, v in req.query.items()),
                _text(req.body),
                status,
                _text(body),
                retry_gives_up=step.retry_gives_up,
                path=f"/scim/v2{req.path}",
                explanation=step.explanation,
            )
        )
    return out


def one(step: str | None, method: str, status: int, answer: Any = None, **kw: Any) -> list[Problem]:
    """One answer judged; ``request``: the request body (a dict), ``query``: the raw query."""
    return expect(
        step,
        method,
        kw.pop("query", ""),
        _text(kw.pop("request", None)),
        status,
        answer if isinstance(answer, str) else _text(answer),
        **kw,
    )


def wait_for_records(sink: RecordingSink, n: int) -> list[RequestRecord]:
    """The first ``n`` request records (each is published just after its answer is sent)."""
    deadline = time.monotonic() + 10
    while True:
        records = [e for e in sink.events if isinstance(e, RequestRecord)]
        if len(records) >= n or time.monotonic() > deadline:
            return records
        time.sleep(0.01)


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


# --- good answers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("flow_name", GOOD_FLOWS)
def test_okta_is_happy_with_oktas_flows(flow_name: str, request: pytest.FixtureRequest) -> None:
    flow = request.getfixturevalue(flow_name)
    assert judged(flow) == [[] for _ in flow]


def test_okta_is_happy_with_the_entitlement_flow() -> None:
    flow = entitlement_flow()
    assert judged(flow, catalog_classifier()) == [[] for _ in flow]


def test_okta_is_happy_with_the_real_servers_answers(
    client: ScimClient, sink: RecordingSink
) -> None:
    # The server's own answers to Okta's requests (OKTA.md bodies), as recorded: the judgement
    # of a real record is the one the window and the checklist make.
    client.get(
        "/Users?" + filter_query('userName eq "jane@example.com"') + "&startIndex=1&count=100"
    )
    jane_id = client.post("/Users", JANE_CREATE).body["id"]
    client.get(f"/Users/{jane_id}")
    client.patch(f"/Users/{jane_id}", DEACTIVATE)
    client.patch(f"/Users/{jane_id}", REACTIVATE)
    client.get("/Users?startIndex=1&count=100")
    client.get("/Groups?" + filter_query('displayName eq "Sales"') + "&startIndex=1&count=100")
    group = client.post(
        "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Sales", "members": []}
    ).body["id"]
    add = {"op": "add", "path": "members", "value": [{"value": jane_id, "display": "jane"}]}
    client.patch(f"/Groups/{group}", group_patch(add))
    client.patch(f"/Groups/{group}", group_patch({"op": "replace", "path": "members", "value": []}))
    client.delete(f"/Groups/{group}")
    records = wait_for_records(sink, 11)
    steps = [r.okta_step for r in records]
    assert steps == [
        "create_user_existence_check",
        "create_user",
        "read_user",
        "deactivate_user_patch",
        "reactivate_user_patch",
        "import_users",
        "push_group_lookup",
        "push_group_create",
        "push_group_add_members",
        "push_group_replace_members",
        "push_group_delete",
    ]
    for r in records:
        problems = expect(
            r.okta_step,
            r.method,
            r.query,
            r.request_body,
            r.status,
            r.response_body,
            path=r.path,
            explanation=r.okta_explanation,
        )
        assert problems == [], (r.okta_step, r.status, r.response_body)


# --- creates --------------------------------------------------------------------------------------
def test_an_empty_201_fails_with_oktas_message() -> None:
    p = only(one("create_user", "POST", 201, "", request=JANE_CREATE))
    assert p.effect == "fails"
    assert "Create new user returned empty user" in p.okta_effect
    assert "no resource with an id" in p.what and p.fix


def test_a_group_created_without_an_id_fails_the_push() -> None:
    p = only(one("push_group_create", "POST", 201, {"displayName": "Sales"}))
    assert p.effect == "fails" and "id" in p.okta_effect


def test_a_create_answered_200_and_an_echoed_password_are_flagged() -> None:
    problems = one("create_user", "POST", 200, jane(password="<placeholder>"))
    assert [(p.effect, p.what) for p in problems] == [
        ("tooling", "answered 200 instead of 201"),
        ("tooling", "the answer returns the password"),
    ]


@pytest.mark.parametrize(
    ("status", "answer", "effect", "what"),
    [
        (409, error(409, "exists", "uniqueness"), None, ""),
        (409, error(409, "exists"), "tooling", "without a SCIM Error of scimType uniqueness"),
        (201, jane(), "tooling", "duplicate create answered 201"),
        (500, error(500, "boom"), "fails", "answered 500 instead of 409"),
    ],
)
def test_a_duplicate_create_must_get_409_uniqueness(
    status: int, answer: Any, effect: str | None, what: str
) -> None:
    problems = one("create_user", "POST", status, answer, request=JANE_CREATE, duplicate=True)
    if effect is None:
        assert problems == []
    else:
        p = only(problems)
        assert p.effect == effect and what in p.what


def test_a_409_to_okta_s_create_fails_the_task_and_says_the_existence_check_missed() -> None:
    p = only(one("create_user", "POST", 409, error(409, "exists", "uniqueness")))
    assert p.effect == "fails" and "existence check" in p.okta_effect
    assert p.what == 'answered 409: "exists" (the userName exists)'


# --- lists ----------------------------------------------------------------------------------------
LIST_STEPS = [
    "create_user_existence_check",
    "import_users",
    "test_credentials",
    "push_group_lookup",
]


@pytest.mark.parametrize("step", LIST_STEPS)
def test_a_string_total_results_fails(step: str) -> None:
    page = {**list_response([]), "totalResults": "0"}
    p = only(one(step, "GET", 200, page, query="startIndex=1&count=100"))
    assert p.effect == "fails"
    assert p.what == 'totalResults is "0", not a JSON integer'


@pytest.mark.parametrize("step", LIST_STEPS)
def test_a_bare_array_is_not_a_list_response(step: str) -> None:
    p = only(one(step, "GET", 200, [jane()]))
    assert p.effect == "fails" and "not a ListResponse (a bare array)" in p.what


def test_the_existence_check_tolerates_404_but_not_500() -> None:
    assert one("create_user_existence_check", "GET", 404, error(404, "none")) == []
    p = only(one("create_user_existence_check", "GET", 500, {}))
    assert p.effect == "fails" and p.what == "answered 500 instead of 200"
    assert "no automatic retry" in p.okta_effect


def test_an_existence_check_that_ignored_its_filter_links_the_wrong_user() -> None:
    bob = jane(userName="bob@example.com", id="bob")
    query = 'filter=userName eq "jane@example.com"&startIndex=1&count=100'
    p = only(one("create_user_existence_check", "GET", 200, list_response([bob]), query=query))
    assert p.effect == "ignored" and "wrong user" in p.okta_effect
    # Matched case-insensitively: JANE is jane (RFC 7643 caseExact false).
    upper = list_response([jane(userName="JANE@example.com")])
    assert one("create_user_existence_check", "GET", 200, upper, query=query) == []


def test_an_import_page_that_ignored_start_index_loses_users() -> None:
    page = list_response([jane()], 250)  # startIndex 1 answered to startIndex=101
    p = only(one("import_users", "GET", 200, page, query="startIndex=101&count=100"))
    assert p.effect == "ignored" and p.what == "answered startIndex 1 to startIndex=101"
    zero = {**list_response([jane()], 250), "startIndex": 0}
    assert "(0-based)" in only(one("import_users", "GET", 200, zero, query="startIndex=1")).what


def test_total_results_counting_only_the_page_stops_the_import() -> None:
    page = {**list_response([jane(), jane(id="b")], 2), "startIndex": 101}
    p = only(one("import_users", "GET", 200, page, query="startIndex=101&count=100"))
    assert p.effect == "ignored" and "totalResults is 2" in p.what


def test_items_per_page_and_active_on_an_import_page() -> None:
    page = {**list_response([jane(active="true")]), "itemsPerPage": 100}
    problems = one("import_users", "GET", 200, page, query="startIndex=1&count=100")
    assert [(p.effect, p.what) for p in problems] == [
        ("tooling", "itemsPerPage is 100 but the page holds 1"),
        ("ignored", 'active is "true", not a JSON boolean'),
    ]


def test_entitlements_count_1_needs_items_per_page_1() -> None:
    values = [{"id": "a", "displayName": "A"}, {"id": "b", "displayName": "B"}]
    page = {**list_response(values, 2), "itemsPerPage": 2}
    problems = one("import_entitlements", "GET", 200, page, query="count=1&startIndex=1")
    assert [(p.effect, p.what) for p in problems] == [
        ("tooling", "returned 2 resources for count=1"),
        ("tooling", "itemsPerPage is 2 for count=1, not 1"),
    ]
    assert "Runscope" in problems[1].okta_effect
    good = list_response(values[:1], 2)
    assert one("import_entitlements", "GET", 200, good, query="count=1&startIndex=1") == []


# --- users ----------------------------------------------------------------------------------------
def test_deactivate_answered_204_is_flagged_by_tooling_only() -> None:
    p = only(one("deactivate_user_patch", "PATCH", 204, "", request=DEACTIVATE))
    assert p.effect == "tooling"
    assert p.what == "PATCH deactivate answered 204 where Okta expects 200 with the user"
    assert p.effect in EFFECT_TEXT and is_failure([p])
    # A group PATCH may get 204 (OKTA.md): nothing to say.
    assert one("push_group_add_members", "PATCH", 204) == []


def test_deactivate_that_left_the_user_active_loses_the_deactivation() -> None:
    p = only(one("deactivate_user_patch", "PATCH", 200, jane(active=True), request=DEACTIVATE))
    assert p.effect == "ignored" and p.what == "the answer shows active true, not false"
    p = only(one("reactivate_user_put", "PUT", 200, jane(active=False)))
    assert "active false, not true" in p.what


def test_patch_501_fails_without_a_put_fallback() -> None:
    p = only(one("deactivate_user_patch", "PATCH", 501, error(501, "no PATCH")))
    assert p.effect == "fails" and "does not fall back to PUT" in p.okta_effect


def test_a_path_less_patch_refused_says_how_to_accept_it() -> None:
    p = only(one("deactivate_user_patch", "PATCH", 400, error(400, "path required")))
    assert p.effect == "fails" and p.what == 'answered 400: "path required"'
    assert "no path" in p.fix


@pytest.mark.parametrize("step", ["update_user_put", "import_groups", "push_group_rename"])
def test_5xx_fails_with_no_retry(step: str) -> None:
    p = only(one(step, "GET", 503, "Service Unavailable"))
    assert p.effect == "fails" and "no automatic retry" in p.okta_effect
    assert "SCIM Error body" in p.fix  # a plain-text error shows the admin nothing
    assert "with no reason" in p.okta_effect


def test_429_retries_then_gives_up() -> None:
    p = only(one("create_user", "POST", 429, error(429, "slow down")))
    assert p.effect == "retries" and not is_failure([p])
    assert "up to 10 attempts" in p.okta_effect
    p = only(one("create_user", "POST", 429, "", retry_gives_up=True))
    assert p.effect == "fails" and "gave up" in p.what


def test_the_rate_limited_flow_retries_then_is_happy(request: pytest.FixtureRequest) -> None:
    results = judged(request.getfixturevalue("rate_limited_create_flow"))
    assert [[p.effect for p in r] for r in results] == [
        [],
        ["retries"],
        ["retries"],
        ["retries"],
        [],
    ]


def test_401_fails_the_credentials_test() -> None:
    p = only(one("test_credentials", "GET", 401, error(401, "bad token")))
    assert p.effect == "fails" and "credentials test fails" in p.okta_effect


def test_a_dropped_connection_and_a_timeout_fail() -> None:
    assert only(one("read_user", "GET", 0)).effect == "fails"
    p = only(one("read_user", "GET", 200, jane(), duration_s=61.0))
    assert p.effect == "fails" and "60 s" in p.okta_effect


def test_an_emptied_attribute_still_in_the_answer_is_lost() -> None:
    """OIN test plan, "push empty values": what the PUT leaves out or sends empty must be gone
    from the answer; the app keeping it silently differs from Okta's profile."""
    held = jane(title="VP Sales", name={"givenName": "Jane", "middleName": "Q"})
    emptied = {**jane(name={"givenName": "Jane", "middleName": ""}), "nickName": None}
    cleared = jane(name={"givenName": "Jane"})
    assert one("push_empty_values_put", "PUT", 200, cleared, request=emptied) == []
    p = only(one("push_empty_values_put", "PUT", 200, held, request=emptied))
    assert p.effect == "ignored" and is_failure([p])
    assert (
        p.what
        == "the answer still shows name.middleName, title, which the PUT left out or sent empty"
    )
    assert "the app keeps the old value" in p.okta_effect and "RFC 7644 §3.5.1" in p.fix
    # The server's own attributes (groups, meta) and a boolean are not Okta's to empty.
    same = jane(groups=[{"value": "g1"}])
    assert one("push_empty_values_put", "PUT", 200, same, request=jane(active=None)) == []
    # An update PUT is not judged that way: only the step the classifier gave says "emptied".
    assert one("update_user_put", "PUT", 200, held, request=emptied) == []


def test_a_grant_the_answer_does_not_show_is_lost() -> None:
    admin = {"value": "role-admin", "display": "Administrator"}
    grant = {"Operations": [{"op": "add", "path": "roles", "value": [admin]}]}
    p = only(one("grant_entitlement", "PATCH", 200, jane(roles=[]), request=grant))
    assert p.effect == "ignored" and "role-admin" in p.what
    revoke = {"Operations": [{"op": "remove", "path": 'roles[value eq "role-admin"]'}]}
    p = only(one("revoke_entitlement", "PATCH", 200, jane(roles=[admin]), request=revoke))
    assert "still hold role-admin" in p.what


# --- groups ---------------------------------------------------------------------------------------
def test_member_remove_and_empty_replace_refused_fail() -> None:
    remove = group_patch({"op": "remove", "path": f'members[value eq "{JANE_ID}"]'})
    p = only(one("push_group_remove_members", "PATCH", 400, error(400, "bad"), request=remove))
    assert p.effect == "fails" and "members[value eq" in p.fix
    empty = group_patch({"op": "replace", "path": "members", "value": []})
    p = only(one("push_group_replace_members", "PATCH", 400, error(400, "x"), request=empty))
    assert p.effect == "fails" and "replace of members with []" in p.what


def test_member_changes_the_answer_contradicts_are_lost() -> None:
    remove = group_patch({"op": "remove", "path": f'members[value eq "{JANE_ID}"]'})
    still = sales([{"value": JANE_ID}])
    p = only(one("push_group_remove_members", "PATCH", 200, still, request=remove))
    assert p.effect == "ignored" and "still in the answer" in p.what
    empty = group_patch({"op": "replace", "path": "members", "value": []})
    p = only(one("push_group_replace_members", "PATCH", 200, still, request=empty))
    assert p.what == "members replaced with [] but 1 remain"
    assert one("push_group_replace_members", "PATCH", 200, sales(), request=empty) == []


def test_group_delete_wants_204() -> None:
    assert one("push_group_delete", "DELETE", 204) == []
    p = only(one("push_group_delete", "DELETE", 200, sales()))
    assert p.effect == "tooling" and p.what == "answered 200 instead of 204"
    p = only(one("push_group_delete", "DELETE", 404, error(404, "gone")))
    assert p.effect == "fails" and "ids" in p.fix


# --- the SPEC test --------------------------------------------------------------------------------
def test_a_failing_spec_step_is_the_classifier_s_verdict(request: pytest.FixtureRequest) -> None:
    flow = request.getfixturevalue("spec_test_flow")
    # The last step reads the made-up id and expects 404; answered 200 the SPEC step fails.
    bad = [*flow[:-1], (flow[-1][0], 200, None, jane())]
    p = only(judged(bad)[-1])
    assert p.effect == "tooling" and p.what == "Expected 404, got 200"
    # The second create answered 201 instead of 409: only the classifier knows it is the second.
    bad = [*flow[:6], (flow[6][0], 201, None, jane()), *flow[7:]]
    assert only(judged(bad)[6]).what == "Expected 409, got 201"


def test_spec_steps_without_the_classifier_judge_what_the_request_shows() -> None:
    ua = {"path": "/scim/v2/Users/00919288221112222"}
    assert one("spec_test", "GET", 404, error(404, "not found"), **ua) == []
    assert only(one("spec_test", "GET", 200, jane(), **ua)).what == "Expected 404, got 200"
    p = only(one("spec_test", "GET", 404, "Not Found", **ua))
    assert p.what == "the 404 has no SCIM Error body with detail"
    # count=1: Resources[0] must carry what the SPEC test reads.
    thin = list_response([{"id": "x", "userName": "x"}])
    p = only(
        one("spec_test", "GET", 200, thin, path="/scim/v2/Users", query="count=1&startIndex=1")
    )
    assert p.what.startswith("Resources[0] lacks name.givenName, name.familyName, active")
    dup = one("spec_test", "POST", 201, jane(), path="/scim/v2/Users", duplicate=True)
    assert only(dup).what == "Expected 409, got 201"


def test_spec_answers_say_whose_rule_each_problem_is() -> None:
    """Issue 15: Runscope's SPEC test checks statuses and Error bodies, not JSON types; Okta's
    client reads totalResults as an integer and active as a boolean. A SPEC answer's problem
    says which, as data (``source``), and the client's problem keeps the client's effect."""
    listed = list_response([jane()])
    listed["totalResults"] = "1"
    users = {"path": "/scim/v2/Users", "query": "count=1&startIndex=1"}
    p = only(one("spec_test", "GET", 200, listed, **users))
    assert p.source == "strict" and p.effect == "fails"
    assert p.what == 'totalResults is "1", not a JSON integer'
    assert p.okta_effect.startswith("Runscope's SPEC test does not check JSON types, but Okta's")
    assert p.okta_effect.endswith(
        "Okta's client reads totalResults as a JSON integer: the task fails"
    )
    # A string active in the created user: misread by the client (ignored), not a SPEC failure.
    p = only(one("spec_test", "POST", 201, {**jane(), "active": "true"}, path="/scim/v2/Users"))
    assert (p.source, p.effect) == ("strict", "ignored") and "not a JSON boolean" in p.what
    # Runscope's own assertions: a status, an Error body, a list that is no ListResponse.
    p = only(one("spec_test", "GET", 404, "Not Found", path="/scim/v2/Users/00919288221112222"))
    assert (p.source, p.effect) == ("runscope", "tooling")
    p = only(one("spec_test", "GET", 200, [jane()], **users))
    assert (p.source, p.effect) == ("runscope", "tooling")
    assert "Okta's SPEC test suite fails this step (Okta's own client would: " in p.okta_effect
    # Outside the SPEC test the same JSON type is the client's rule with its plain effect.
    p = only(one("import_users", "GET", 200, listed, query="startIndex=1&count=100"))
    assert (p.source, p.effect) == ("strict", "fails")
    assert (
        p.okta_effect == "Okta's client reads totalResults as a JSON integer: the user import fails"
    )
    # Everything else is Okta's (the default), as every other caller builds it.
    assert only(one("create_user", "POST", 500)).source == "okta"
    assert Problem("fails", "w", "e", "f").source == "okta"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "answer"),
    [
        ("PATCH", f"/Users/{JANE_ID}", DEACTIVATE, 501, error(501, "PATCH is not supported")),
        ("PATCH", f"/Users/{JANE_ID}", DEACTIVATE, 503, None),
        ("PATCH", f"/Users/{JANE_ID}", DEACTIVATE, 204, None),
        ("PATCH", f"/Users/{JANE_ID}", REACTIVATE, 0, None),
        ("POST", "/Users", JANE_CREATE, 201, None),
        ("POST", "/Users", JANE_CREATE, 409, error(409, "taken", "uniqueness")),
        ("GET", "/Users?startIndex=1&count=2", None, 401, error(401, "bad token")),
        ("GET", f"/Users/{JANE_ID}", None, 404, error(404, "gone")),
        ("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "S"}, 201, {}),
    ],
)
def test_the_classifier_says_what_okta_does_in_okta_expect_s_words(
    method: str, path: str, body: Any, status: int, answer: Any
) -> None:
    """One wording of Okta's reactions: the classifier's explanation carries the effect
    okta_expect reports for the same answer (the proxy's pane and check print that)."""
    (step,) = classify_sequence([(okta(method, path, body), status, None, answer)])
    (problem,) = expect(step.id, method, "", _text(body), status, _text(answer), path=path)
    assert problem.okta_effect in step.explanation
    if status >= 300:
        assert f"{status}: {problem.okta_effect}." in step.explanation
    if isinstance(answer, dict) and answer.get("detail"):
        assert f'Okta shows the admin: "{answer["detail"]}".' in step.explanation


def test_timeouts_and_giving_up_after_429s_are_said_once(
    request: pytest.FixtureRequest,
) -> None:
    flow = request.getfixturevalue("deactivate_flow")
    (step,) = classify_sequence(flow)
    engine = OktaClassifier()
    req = flow[0][0]
    slow = engine.note_response(req, engine.classify(req), 200, None, duration_s=61)
    (problem,) = one(step.id, "PATCH", 200, jane(active=False), duration_s=61)
    assert f"The answer took 61 s: {problem.okta_effect}." in slow.explanation
    last = classify_sequence(request.getfixturevalue("rate_limited_give_up_flow"))[-1]
    (gave_up,) = one(last.id, "PATCH", 429, retry_gives_up=last.retry_gives_up)
    assert f"Answered 429 to attempt 10: {gave_up.okta_effect}." in last.explanation


def test_nothing_expected_of_requests_okta_never_sends() -> None:
    assert one("not_okta", "DELETE", 500) == []
    assert one(None, "GET", 404) == []
    assert one("discovery", "GET", 500) == []
