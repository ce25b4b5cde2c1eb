"""Fault injection over real sockets: every action, counts, run-time swaps, records."""

from __future__ import annotations

import email.utils
import socket
import time

import pytest

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.core.faults import get_preset, parse_fault_spec
from scim_desktop.server.events import RequestRecord
from scim_desktop.server.runner import ServerThread
from tests.conftest import TOKEN, RecordingSink
from tests.scim_client import ScimClient
from tests.server.test_okta_flows import ERROR_SCHEMA, okta_create_body


@pytest.fixture
def make_server(tmp_path):
    started: list[ServerThread] = []

    def make(*specs: str, presets: tuple[str, ...] = (), seed: int | None = None):
        rules = tuple(parse_fault_spec(s) for s in specs)
        for name in presets:
            rules += get_preset(name).rules
        sink = RecordingSink()
        config = ServerConfig(
            port=0,
            db_path=tmp_path / f"db{len(started)}.json",
            auth=AuthConfig("bearer", token=TOKEN),
            faults=rules,
            fault_seed=seed,
        )
        server = ServerThread(config, sink)
        server.start()
        started.append(server)
        return server, ScimClient(server.base_url, token=TOKEN), sink

    yield make
    for server in started:
        server.stop()


def records(sink: RecordingSink, at_least: int = 1) -> list[RequestRecord]:
    """The request records published so far, waiting (briefly) for ``at_least`` of them:
    a record is published when the request finishes, just after its answer was sent."""
    deadline = time.monotonic() + 5
    while True:
        found = [e for e in sink.events if isinstance(e, RequestRecord)]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.005)


def test_status_with_retry_after_seconds_and_count(make_server) -> None:
    _server, client, sink = make_server("status=429,retry_after=30,method=POST,path=/Users,count=2")
    for _ in range(2):
        resp = client.post("/Users", okta_create_body("rl@example.com"))
        assert resp.status == 429 and resp.header("Retry-After") == "30"
        assert resp.body["schemas"] == [ERROR_SCHEMA] and resp.body["status"] == "429"
        assert "Injected fault" in resp.body["detail"]
    # The count is used up: the third create goes through, and GETs were never affected.
    assert client.post("/Users", okta_create_body("rl@example.com")).status == 201
    assert client.get("/Users").status == 200
    recs = records(sink, 4)
    assert [r.status for r in recs] == [429, 429, 201, 200]
    assert recs[0].fault and "429" in recs[0].fault and recs[2].fault is None
    # Okta insight: the repeated create is recognised as a retry with Okta's wait.
    assert recs[0].okta_step == "create_user" and recs[0].extra["okta_next_retry_in_s"] == 30
    assert recs[1].extra["okta_retry"] == 1 and recs[1].extra["okta_next_retry_in_s"] == 60


def test_retry_after_as_http_date_and_absent(make_server) -> None:
    _server, client, sink = make_server(
        "status=429,retry_after=date,path=/Users,count=1",
        "status=429,retry_after=none,path=/Users,count=1",
    )
    first = client.get("/Users")
    parsed = email.utils.parsedate_to_datetime(first.header("Retry-After"))
    assert parsed.tzinfo is not None and parsed.timestamp() > time.time()
    second = client.get("/Users")
    assert second.status == 429 and second.header("Retry-After") is None
    assert records(sink, 2)[0].extra["okta_next_retry_in_s"] == 300  # HTTP-date: Okta waits 5 min


def test_latency_then_normal_answer(make_server) -> None:
    _server, client, sink = make_server("latency_ms=300,method=GET")
    t0 = time.monotonic()
    resp = client.get("/Users")
    elapsed = time.monotonic() - t0
    assert resp.status == 200 and elapsed >= 0.3
    assert records(sink)[0].duration_ms >= 300


def test_latency_then_status(make_server) -> None:
    _server, client, _sink = make_server("latency_ms=200,status=503")
    t0 = time.monotonic()
    resp = client.get("/Groups")
    assert resp.status == 503 and time.monotonic() - t0 >= 0.2


def test_drop_closes_without_response(make_server) -> None:
    server, client, sink = make_server("action=drop,count=1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
        assert sock.recv(1024) == b""  # closed, not a single byte of response
    assert client.get("/Users").status == 200
    dropped = records(sink, 2)[0]
    assert dropped.status == 0 and dropped.fault and "drop" in dropped.fault


def test_empty_201_on_create(make_server) -> None:
    _server, client, _sink = make_server(presets=("empty-create",))
    resp = client.post("/Users", okta_create_body("empty@example.com"))
    assert resp.status == 201 and resp.raw == b""
    # Nothing was created: the fault answered before any SCIM code ran.
    assert client.get("/Users").body["totalResults"] == 0


def test_501_on_patch_preset(make_server) -> None:
    _server, client, sink = make_server(presets=("501-patch",))
    uid = client.post("/Users", okta_create_body("p@example.com")).body["id"]
    op = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    resp = client.patch(f"/Users/{uid}", op)
    assert resp.status == 501 and resp.body["status"] == "501"
    assert client.get(f"/Users/{uid}").body["active"] is True
    assert records(sink, 3)[1].okta_step == "deactivate_user_patch"


def test_503_on_groups_only(make_server) -> None:
    _server, client, _sink = make_server(presets=("503-groups",))
    assert client.get("/Groups").status == 503
    assert client.get("/Users").status == 200


def test_step_matching(make_server) -> None:
    _server, client, _sink = make_server("status=500,step=create_user_existence_check")
    assert client.get("/Users?filter=userName%20eq%20%22a%40b.c%22").status == 500
    assert client.get("/Users?startIndex=1&count=100").status == 200


def test_rate_limiter(make_server) -> None:
    _server, client, _sink = make_server("rate=1,burst=3")
    statuses = [client.get("/Users").status for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    resp = client.get("/Users")
    assert resp.status == 429 and int(resp.header("Retry-After")) >= 1


def test_probability_with_seed_repeats(make_server) -> None:
    outcomes = []
    for _ in range(2):
        server, client, _sink = make_server("status=500,probability=0.5", seed=7)
        outcomes.append([client.get("/Users").status for _ in range(40)])
        server.stop()
    assert outcomes[0] == outcomes[1] and 500 in outcomes[0] and 200 in outcomes[0]


def test_rules_swapped_at_run_time(make_server) -> None:
    server, client, _sink = make_server()
    assert client.get("/Users").status == 200
    server.set_fault_rules([parse_fault_spec("status=500")]).result(5)
    assert client.get("/Users").status == 500
    states = server.fault_states().result(5)
    assert states[0].fired == 1 and states[0].remaining is None
    server.set_fault_rules([]).result(5)
    assert client.get("/Users").status == 200


def test_no_rule_leaves_scim_untouched(make_server) -> None:
    _server, client, sink = make_server("status=500,method=DELETE")
    created = client.post("/Users", okta_create_body("u@example.com"))
    assert created.status == 201 and created.body["userName"] == "u@example.com"
    assert records(sink)[0].fault is None
