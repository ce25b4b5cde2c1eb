"""The lifecycle checklist (core/coverage.py) fed by the real classifier (core/okta.py).

The flows are the OKTA.md request sequences of tests/core/test_okta.py and
test_okta_entitlements.py: each is classified as the server does, turned into the records the
checklist reads, and must tick exactly its items. Wrong answers mark an item failed.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import orjson
import pytest

from scim_desktop.core.coverage import ITEMS, MAX_EVIDENCE, Coverage, Exchange
from scim_desktop.core.coverage_report import report_html, report_json, report_markdown, summary
from scim_desktop.core.okta import STEPS, OktaClassifier, classify_sequence
from tests.core.test_okta import (
    JANE_ID,
    jane,
    list_response,
)
from tests.core.test_okta_entitlements import classifier as catalog_classifier
from tests.core.test_okta_entitlements import entitlement_flow

Flow = list[tuple[Any, ...]]
#: Steps no checklist item needs: discovery reads Okta never makes, requests Okta never sends,
#: one catalog value read (no OIN item; the import proves the catalog), and a user PATCH that
#: is neither (de)activation nor password (Okta sends profile updates as PUT: OKTA.md).
UNMAPPED_STEPS = {"discovery", "not_okta", "read_entitlement_value", "update_user_patch"}


def _text(body: Any) -> str:
    return "" if body is None else orjson.dumps(body).decode()


def records(flow: Flow, engine: OktaClassifier | None = None) -> list[Exchange]:
    """The flow classified in order (as the server does), as the checklist's records."""
    steps = classify_sequence(flow, engine)
    out = []
    for n, (exchange, step) in enumerate(zip(flow, steps, strict=True), 1):
        req, status = exchange[0], exchange[1]
        body = exchange[3] if len(exchange) > 3 else None
        query = "&".join(f"{k}={v}" for k, v in req.query.items())
        out.append(
            Exchange(
                id=f"#{n}",
                time=f"2026-01-01T00:00:{n % 60:02d}Z",
                method=req.method,
                path=f"/scim/v2{req.path}",
                query=query,
                status=status,
                request_body=_text(req.body),
                response_body=_text(body),
                okta_step=step.id,
                okta_label=step.label,
                okta_explanation=step.explanation,
                retry_gives_up=step.retry_gives_up,
            )
        )
    return out


def feed(recs: list[Exchange]) -> Coverage:
    cov = Coverage()
    for r in recs:
        cov.add(r)
    return cov


def statuses(cov: Coverage) -> dict[str, str]:
    return {s.item.id: s.status for s in cov.snapshot()}


def covered(cov: Coverage) -> set[str]:
    return {k for k, v in statuses(cov).items() if v == "covered"}


# flow fixture -> exactly the items it covers
FLOWS: dict[str, set[str]] = {
    "test_credentials_flow": {"test_credentials"},
    "create_user_flow": {"existence_check", "create_user"},
    "link_existing_user_flow": {"existence_check", "link_user"},
    "update_profile_flow": {"read_user", "update_profile"},
    "push_empty_values_flow": {"read_user", "push_empty_values"},
    "deactivate_flow": {"deactivate_user"},
    "reactivate_flow": {"reactivate_user"},
    "aiw_deactivate_flow": {"read_user", "deactivate_user"},
    "aiw_reactivate_flow": {"read_user", "reactivate_user"},
    "password_sync_patch_flow": {"password_sync"},
    "aiw_password_sync_flow": {"read_user", "password_sync"},
    "import_users_flow": {"import_users"},
    "import_groups_flow": {"import_groups"},
    "group_push_flow": {
        "push_group_lookup",
        "push_group_create",
        "push_group_add_members",
        "push_group_rename",
        "read_group",
        "push_group_remove_members",
    },
    "push_now_flow": {"push_now"},
    "push_now_empty_flow": {"push_now", "push_empty_group"},
    "aiw_group_push_flow": {"read_group", "push_now"},
    "group_delete_flow": {"read_group", "unlink_delete_group"},
    "spec_test_flow": {"spec_test"},
    # A 429 Okta retries is no failure; the create that follows covers the item.
    "rate_limited_create_flow": {"existence_check", "create_user"},
}
ENTITLEMENT_ITEMS = {
    "read_resource_types",
    "read_extension_schemas",
    "import_entitlements",
    "read_user",
    "grant_entitlement",
    "revoke_entitlement",
}


@pytest.mark.parametrize("flow_name", sorted(FLOWS))
def test_each_flow_ticks_exactly_its_items(flow_name: str, request: pytest.FixtureRequest) -> None:
    cov = feed(records(request.getfixturevalue(flow_name)))
    assert covered(cov) == FLOWS[flow_name]
    assert "failed" not in statuses(cov).values()
    for state in cov.snapshot():
        if state.status == "covered":
            assert state.evidence and all(e.ok for e in state.evidence)
            assert state.count == len(state.evidence)


def test_the_entitlement_flow_ticks_the_governance_items() -> None:
    cov = feed(records(entitlement_flow(), catalog_classifier()))
    assert covered(cov) == ENTITLEMENT_ITEMS
    grants = cov.state("grant_entitlement")
    # A PATCH add on roles and a PUT with a new role: both grants are evidence.
    assert [e.method for e in grants.evidence] == ["PATCH", "PUT"]
    assert [e.method for e in cov.state("revoke_entitlement").evidence] == ["PATCH", "PUT"]


def test_every_traffic_item_is_proved_by_some_flow_and_every_step_is_mapped() -> None:
    proved = set().union(*FLOWS.values(), ENTITLEMENT_ITEMS)
    traffic = {i.id for i in ITEMS if not i.manual}
    assert traffic == proved
    mapped = {step for i in ITEMS for step in i.steps}
    assert mapped <= set(STEPS)
    assert set(STEPS) - mapped == UNMAPPED_STEPS
    assert len({i.id for i in ITEMS}) == len(ITEMS) and 20 <= len(ITEMS) <= 35
    assert all(i.manual == (not i.steps) for i in ITEMS)


def test_nothing_seen_at_first_and_manual_items_wait_for_a_tick() -> None:
    cov = Coverage()
    for state in cov.snapshot():
        assert state.status == ("manual" if state.item.manual else "not_seen")
        assert state.evidence == () and state.count == 0


def one(step: str, method: str, path: str, status: int, answer: Any = None, **kw: Any) -> Exchange:
    fields: dict[str, Any] = {
        "id": "r1",
        "time": "2026-01-01T00:00:00Z",
        "method": method,
        "path": path,
        "query": "",
        "status": status,
        "request_body": "",
        "response_body": answer if isinstance(answer, str) else _text(answer),
        "okta_step": step,
    }
    fields.update(kw)
    return Exchange(**fields)


USER = "/scim/v2/Users"
JANE = f"/scim/v2/Users/{JANE_ID}"
GROUP = "/scim/v2/Groups/g1"


@pytest.mark.parametrize(
    ("item_id", "exchange", "reason"),
    [
        # OKTA.md, Create step 2: "Expected: 201".
        ("create_user", one("create_user", "POST", USER, 200, jane()), "200 instead of 201"),
        # "Create new user returned empty user".
        ("create_user", one("create_user", "POST", USER, 201, ""), "no resource with an id"),
        ("create_user", one("create_user", "POST", USER, 409, {}), "answered 409"),
        (
            "create_user",
            one("create_user", "POST", USER, 201, jane(password="x")),
            "returns the password",
        ),
        # Create step 1: a 200 that is not a ListResponse (a bare array).
        (
            "existence_check",
            one("create_user_existence_check", "GET", USER, 200, [jane()]),
            "not a ListResponse",
        ),
        (
            "existence_check",
            one("create_user_existence_check", "GET", USER, 500, {}),
            "500 instead of 200",
        ),
        # "If PATCH is answered with 501, the task fails".
        ("deactivate_user", one("deactivate_user_patch", "PATCH", JANE, 501), "501"),
        (
            "deactivate_user",
            one("deactivate_user_patch", "PATCH", JANE, 200, jane(active=True)),
            "active true",
        ),
        (
            "reactivate_user",
            one("reactivate_user_put", "PUT", JANE, 200, jane(active=False)),
            "active false",
        ),
        ("deactivate_user", one("deactivate_user_put", "PUT", JANE, 204), "204 instead of 200"),
        ("password_sync", one("password_sync_patch", "PATCH", JANE, 0), "no answer"),
        ("import_users", one("import_users", "GET", USER, 200, {"Resources": []}), "ListResponse"),
        ("import_groups", one("import_groups", "GET", "/scim/v2/Groups", 503), "503"),
        ("push_group_create", one("push_group_create", "POST", GROUP, 201, {}), "with an id"),
        ("push_group_rename", one("push_group_rename", "PATCH", GROUP, 400, {}), "400"),
        ("unlink_delete_group", one("push_group_delete", "DELETE", GROUP, 404), "404"),
        (
            "push_empty_group",
            one(
                "push_group_replace_members",
                "PATCH",
                GROUP,
                400,
                request_body=_text({"Operations": [{"op": "replace", "path": "members"}]}),
            ),
            "400",
        ),
        # Okta's Runscope entitlements test "requires itemsPerPage == 1".
        (
            "import_entitlements",
            one(
                "import_entitlements",
                "GET",
                "/scim/v2/Roles",
                200,
                {**list_response([{"id": "a"}, {"id": "b"}]), "itemsPerPage": 2},
                query="count=1&startIndex=1",
            ),
            "itemsPerPage is 2",
        ),
        ("grant_entitlement", one("grant_entitlement", "PATCH", JANE, 500), "500"),
        # 429s Okta stopped retrying (OKTA.md: "up to 10 attempts; then the task fails").
        (
            "deactivate_user",
            one("deactivate_user_patch", "PATCH", JANE, 429, retry_gives_up=True),
            "gave up",
        ),
    ],
)
def test_a_wrong_answer_marks_its_item_failed(
    item_id: str, exchange: Exchange, reason: str
) -> None:
    cov = Coverage()
    assert item_id in cov.add(exchange)
    state = cov.state(item_id)
    assert state.status == "failed"
    assert reason in state.reason
    assert [e.record_id for e in state.evidence] == ["r1"] and not state.evidence[0].ok


def test_an_emptied_attribute_the_app_keeps_fails_push_empty_values(
    request: pytest.FixtureRequest,
) -> None:
    """Classified from the traffic (the read, then a PUT leaving title out), judged by
    okta_expect: the answer still showing title fails the item, with Okta's effect."""
    read, (put, status, after, _answer) = request.getfixturevalue("push_empty_values_flow")
    kept = [read, (put, status, after, jane(title="VP Sales"))]
    cov = feed(records(kept))
    state = cov.state("push_empty_values")
    assert state.status == "failed"
    assert state.reason == "the answer still shows title, which the PUT left out or sent empty"
    assert "the app keeps the old value" in state.evidence[0].okta_effect
    assert statuses(cov)["read_user"] == "covered"


def test_a_failure_stays_failed_after_later_successes_and_is_listed_first() -> None:
    cov = Coverage()
    cov.add(one("create_user", "POST", USER, 200, jane(), id="bad"))
    cov.add(one("create_user", "POST", USER, 201, jane(), id="good"))
    state = cov.state("create_user")
    assert state.status == "failed" and state.count == 2
    assert [(e.record_id, e.ok) for e in state.evidence] == [("bad", False), ("good", True)]


def test_tolerated_answers_do_not_fail() -> None:
    cov = Coverage()
    # OKTA.md: the existence check's "404 is tolerated"; a group PATCH may get 204; a 429 Okta
    # retries is not a failure (yet).
    cov.add(one("create_user_existence_check", "GET", USER, 404, {}))
    cov.add(one("push_group_add_members", "PATCH", GROUP, 204))
    cov.add(one("create_user", "POST", USER, 429, {}))
    result = statuses(cov)
    assert result["existence_check"] == "covered"
    assert result["push_group_add_members"] == "covered"
    assert result["create_user"] == "covered"


def test_a_failing_spec_step_fails_the_spec_item(request: pytest.FixtureRequest) -> None:
    spec_flow: Flow = request.getfixturevalue("spec_test_flow")
    # The last SPEC step expects 404 for an unknown id; answered 200 it fails.
    flow = [*spec_flow[:-1], (spec_flow[-1][0], 200, None, jane())]
    cov = feed(records(flow))
    state = cov.state("spec_test")
    assert state.status == "failed"
    assert "Expected 404, got 200" in state.reason


def test_a_group_create_with_no_members_is_not_an_empty_group_push() -> None:
    body = _text({"displayName": "Sales", "members": []})
    cov = Coverage()
    cov.add(
        one("push_group_create", "POST", "/scim/v2/Groups", 201, {"id": "g"}, request_body=body)
    )
    assert statuses(cov)["push_group_create"] == "covered"
    assert statuses(cov)["push_empty_group"] == "not_seen"


def test_manual_items_are_ticked_by_hand() -> None:
    cov = Coverage()
    cov.tick("suspend_user")
    state = cov.state("suspend_user")
    assert state.status == "covered" and state.ticked and state.evidence == ()
    cov.tick("suspend_user", done=False)
    assert cov.state("suspend_user").status == "manual"
    with pytest.raises(ValueError):
        cov.tick("create_user")  # proved by traffic only
    with pytest.raises(KeyError):
        cov.tick("no_such_item")
    with pytest.raises(KeyError):
        cov.state("no_such_item")
    cov.tick("unlink_keep_group")
    cov.add(one("create_user", "POST", USER, 201, jane()))
    cov.reset()
    assert statuses(cov)["unlink_keep_group"] == "manual"
    assert statuses(cov)["create_user"] == "not_seen"


def test_evidence_is_bounded_but_counted() -> None:
    cov = Coverage()
    for n in range(MAX_EVIDENCE + 30):
        cov.add(one("import_users", "GET", USER, 200, list_response([]), id=f"p{n}"))
    state = cov.state("import_users")
    assert state.count == MAX_EVIDENCE + 30 and len(state.evidence) == MAX_EVIDENCE
    assert state.evidence[0].record_id == "p0"


def test_requests_of_no_item_touch_nothing() -> None:
    cov = Coverage()
    assert cov.add(one("not_okta", "DELETE", JANE, 204)) == []
    assert cov.add(one("discovery", "GET", "/scim/v2/ServiceProviderConfig", 200)) == []
    assert cov.add(one(None, "GET", "/favicon.ico", 404)) == []  # type: ignore[arg-type]
    assert all(s.count == 0 for s in cov.snapshot())


def test_reports(request: pytest.FixtureRequest) -> None:
    cov = feed(records(request.getfixturevalue("create_user_flow")))
    cov.add(one("push_group_rename", "PATCH", GROUP, 500, id="a|b"))
    cov.tick("suspend_user")
    states = cov.snapshot()
    doc = report_json(states)
    by_id = {i["id"]: i for i in doc["items"]}
    assert [i["id"] for i in doc["items"]] == [i.id for i in ITEMS]
    assert by_id["create_user"]["status"] == "covered"
    assert by_id["create_user"]["evidence"][0]["status"] == 201
    assert by_id["create_user"]["evidence"][0]["method"] == "POST"
    assert by_id["push_group_rename"]["status"] == "failed"
    assert by_id["push_group_rename"]["evidence"][0]["reason"] == "answered 500"
    assert by_id["suspend_user"]["status"] == "covered"
    assert by_id["import_users"] == {**by_id["import_users"], "status": "not_seen", "evidence": []}
    assert summary(states) == "3 of 33 covered, 1 failed, 24 not seen, 5 manual"

    md = report_markdown(states, "2026-01-02 03:04:05 UTC", ("session.jsonl",))
    assert "Generated 2026-01-02 03:04:05 UTC" in md and "`session.jsonl`" in md
    assert "| ✅ covered | Assign a new user: create | 1 |" in md
    assert "| ❌ failed | Group push: rename (answered 500) | 1 |" in md
    assert "| ☑ ticked | Suspend and unsuspend in Okta | 0 |" in md
    # Evidence lines name the record; a pipe in an id cannot break the table or the list.
    assert "- `#2` 2026-01-01T00:00:02Z `POST /scim/v2/Users` → 201" in md
    assert "`a\\|b`" in md and "FAILED: answered 500" in md


class _Page(HTMLParser):
    """The tags, text and ids of an HTML page (to check the report's structure and escaping)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.ids.update(v for k, v in attrs if k == "id" and v)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_report_is_self_contained_and_escapes_traffic(
    request: pytest.FixtureRequest,
) -> None:
    cov = feed(records(request.getfixturevalue("create_user_flow")))
    hostile = '<script>alert("x")</script>&amp;'
    cov.add(one("push_group_rename", "PATCH", GROUP + "?" + hostile, 500, {"detail": hostile}))
    cov.tick("suspend_user")
    states = cov.snapshot()
    page = report_html(states, "2026-01-02 03:04:05 UTC", ("a<b>.jsonl",))
    parser = _Page()
    parser.feed(page)
    text = "".join(parser.text)
    assert "script" not in parser.tags and "a" in parser.tags and "b" not in parser.tags
    assert hostile in text and "a<b>.jsonl" in text  # shown as text, not markup
    assert "Generated 2026-01-02 03:04:05 UTC" in text
    assert summary(states, " · ") in text
    assert "3 of 33 covered · 1 failed · 24 not seen · 5 manual" in text
    # Self-contained: inline style, nothing fetched.
    assert "<style>" in page and "http" not in page.replace("http-equiv", "")
    assert {i.id for i in ITEMS} <= parser.ids  # every item has its evidence section
    # A failure carries what Okta does and the fix.
    assert "Okta: Okta documents no automatic retry for 5xx" in text and "Fix: " in text
    assert "@media print" in page
