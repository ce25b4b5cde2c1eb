"""How the request log, the detail pane and the exports show proxied records (issue 14), fed
records as the proxy builds them; test_proxy_mode.py drives a real proxy and upstream."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scim_desktop.gui.export import har_bytes, to_jsonl
from scim_desktop.gui.models.requests import COL_UPSTREAM, ProxiedRole, RequestLogModel
from scim_desktop.gui.widgets.requests_view import RequestsView
from scim_desktop.server.events import RequestRecord

PROBLEMS = (
    "answered 204 No Content: Okta expects 200 with the user",
    "Okta marks the deactivation failed & shows <the status>",
)


def record(n: int, **kw: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "id": n,
        "time": "2026-12-05T04:00:00.000Z",
        "method": "PATCH",
        "path": f"/scim/v2/Users/{n}",
        "query": "",
        "status": 200,
        "duration_ms": 50.0,
        "client": "127.0.0.1",
        "request_headers": {"Host": "127.0.0.1:8080", "Authorization": "Bearer ***"},
        "request_body": "",
        "response_headers": {"Content-Type": "application/scim+json"},
        "response_body": "",
    }
    fields.update(kw)
    return RequestRecord(**fields)


@pytest.fixture
def view(qtbot) -> RequestsView:
    v = RequestsView()
    qtbot.addWidget(v)
    v.resize(1400, 800)
    v.show()
    return v


RECORDS = [
    record(1, upstream_status=200, upstream_ms=42.0),
    record(2, status=204, upstream_status=204, upstream_ms=30.5, okta_problems=PROBLEMS),
    record(3, status=502, upstream_error="unreachable: connection refused (127.0.0.1:9)"),
    record(
        4,
        status=504,
        duration_ms=60001.5,
        upstream_error="timed out after 60 s",
        upstream_ms=60000.0,
    ),
    record(5, status=429, fault="429 for the demo"),
]


def test_upstream_column_marks_status_failures_rejects_and_proxy_answers(view) -> None:
    assert view.table.isColumnHidden(COL_UPSTREAM)
    view.set_proxy_mode(True)
    assert not view.table.isColumnHidden(COL_UPSTREAM) and view.rejected_button.isVisible()
    view.add_events(RECORDS)
    model = view.model
    cells = [model.index(row, COL_UPSTREAM).data() for row in range(5)]
    assert cells == ["200", "204 ⚠", "unreachable", "timed out", "—"]
    assert all(model.index(row, 0).data(ProxiedRole) for row in range(5))
    tip = model.index(1, COL_UPSTREAM).data(0x03)  # ToolTipRole
    assert "Okta would reject this answer" in tip and "&amp; shows &lt;the status&gt;" in tip
    assert "never saw it" in model.index(4, COL_UPSTREAM).data(0x03)
    # Only what Okta would reject, and what the upstream did not answer.
    view.rejected_button.setChecked(True)
    assert [view.proxy.record(r).id for r in range(view.proxy.rowCount())] == [2, 3, 4]
    view.rejected_button.setChecked(False)
    assert view.proxy.rowCount() == 5


def test_mock_records_leave_the_upstream_column_hidden_and_empty(view) -> None:
    view.add_events([record(1), record(2, fault="503 test", status=503)])
    assert view.table.isColumnHidden(COL_UPSTREAM) and not view.rejected_button.isVisible()
    assert [view.model.index(r, COL_UPSTREAM).data() for r in range(2)] == ["", ""]
    assert not view.model.index(1, 0).data(ProxiedRole)
    view.select_row(1)
    assert view.detail.fault_banner.text() == "⚡ Answered by a fault rule: 503 test"
    assert not view.detail.upstream_label.isVisible()
    # Proxied records arriving later show the column even in mock mode (a mode switch).
    view.add_events([record(3, upstream_status=201, upstream_ms=1.0)])
    assert not view.table.isColumnHidden(COL_UPSTREAM)
    view.clear()
    assert view.table.isColumnHidden(COL_UPSTREAM)


def test_detail_pane_says_what_the_upstream_did(view) -> None:
    view.set_proxy_mode(True)
    view.add_events(RECORDS)
    detail = view.detail

    view.select_row(0)
    assert "Your server answered" in detail.upstream_label.text()
    assert "42.0 ms upstream, 8.0 ms in the proxy" in detail.upstream_label.text()
    assert not detail.reject_banner.isVisible()

    view.select_row(1)
    assert detail.reject_banner.isVisible()
    text = detail.reject_banner.text()
    assert "Okta would reject this answer" in text
    assert "answered 204 No Content: Okta expects 200 with the user" in text
    assert "&amp; shows &lt;the status&gt;" in text  # escaped, never markup

    view.select_row(2)
    assert "Your server failed: unreachable: connection refused" in detail.upstream_label.text()
    assert not detail.reject_banner.isVisible()

    view.select_row(4)
    assert detail.fault_banner.text() == (
        "⚡ Answered by the proxy's fault rule: 429 for the demo; the upstream never saw it"
    )
    assert not detail.upstream_label.isVisible()


def test_har_and_jsonl_carry_upstream_timings() -> None:
    har = json.loads(har_bytes(RECORDS, "test"))
    ok, rejected, down, slow, faulted = har["log"]["entries"]
    assert ok["timings"] == {"blocked": 8.0, "send": 0, "wait": 42.0, "receive": 0}
    assert ok["_upstreamStatus"] == 200 and ok["_proxyTime"] == 8.0
    assert rejected["_oktaProblems"] == list(PROBLEMS)
    assert down["_upstreamStatus"] is None and down["_upstreamError"].startswith("unreachable")
    assert slow["_upstreamTime"] == 60000.0 and slow["timings"]["blocked"] == 1.5
    # A request the proxy answered (or a mock's) has the timings it always had.
    assert faulted["timings"] == {"send": 0, "wait": 50.0, "receive": 0}
    assert "_upstreamStatus" not in faulted
    for entry in har["log"]["entries"]:
        timings = entry["timings"]
        assert sum(v for v in timings.values() if v >= 0) == pytest.approx(entry["time"])
    lines = [json.loads(x) for x in to_jsonl(RECORDS).splitlines()]
    assert lines[1]["okta_problems"] == list(PROBLEMS) and lines[0]["upstream_ms"] == 42.0


def test_model_row_keeps_the_mode_it_arrived_in(qtbot) -> None:
    model = RequestLogModel()
    model.add_records([record(1, fault="x")])
    model.proxy_mode = True
    model.add_records([record(2, fault="x")])
    assert model.index(0, COL_UPSTREAM).data() == "" and model.index(1, COL_UPSTREAM).data() == "—"
