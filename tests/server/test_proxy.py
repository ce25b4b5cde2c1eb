"""Proxy mode (issue 14) on real sockets: our mock server or a scripted HTTP/1.1 server as the
upstream, a proxy-mode ServerThread in front, real HTTP clients."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from scim_desktop.config import AuthConfig, ServerConfig, UpstreamConfig
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.server.events import RequestRecord, UpstreamStatus
from scim_desktop.server.runner import ServerThread
from tests.conftest import TOKEN, RecordingSink
from tests.scim_client import ScimClient
from tests.server.proxy_fixtures import ScriptedUpstream, Seen, start_proxy, wait_for

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@example.com"}


def records(sink: RecordingSink) -> list[RequestRecord]:
    return [e for e in sink.events if isinstance(e, RequestRecord)]


def last_record(sink: RecordingSink, count: int = 1) -> RequestRecord:
    assert wait_for(lambda: len(records(sink)) >= count), "no request record was published"
    return records(sink)[-1]


@pytest.fixture
def mock_upstream(tmp_path: Path) -> Iterator[ServerThread]:
    """Our own mock server, bearer TOKEN, as the upstream."""
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        db_path=tmp_path / "upstream" / "up.json",
        auth=AuthConfig("bearer", token=TOKEN),
    )
    thread = ServerThread(config, RecordingSink(), name="upstream")
    thread.start()
    yield thread
    thread.stop()


def test_transparent_mode_forwards_the_clients_credential_and_rewrites_location(
    tmp_path: Path, mock_upstream: ServerThread, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    proxy = start_proxy(tmp_path, UpstreamConfig(mock_upstream.base_url + "/"), sink)
    proxies.append(proxy)
    client = ScimClient(proxy.base_url, token=TOKEN)
    created = client.post("/Users", USER)
    assert created.status == 201, created.raw
    user_id = created.body["id"]
    # Location is on the proxy. The body comes back unchanged: its meta.location is the
    # proxy's too only because our mock builds it from X-Forwarded-Host/-Proto.
    assert created.header("Location") == f"{proxy.base_url}/Users/{user_id}"
    assert created.body["meta"]["location"] == f"{proxy.base_url}/Users/{user_id}"
    assert created.header("ETag") is not None
    got = client.get(f"/Users/{user_id}")
    assert got.status == 200 and got.body["userName"] == "ada@example.com"
    found = client.get("/Users?filter=userName%20eq%20%22ada@example.com%22")
    assert found.status == 200 and found.body["totalResults"] == 1
    # The upstream decides: a wrong token is its 401, passed back.
    wrong = ScimClient(proxy.base_url, token="not-the-token").get("/Users")
    assert wrong.status == 401
    record = last_record(sink, 4)
    assert record.status == 401 and record.upstream_status == 401
    assert record.request_headers["Authorization"] == "Bearer ***"
    create_record = records(sink)[0]
    assert create_record.upstream_status == 201 and create_record.okta_step is not None
    assert create_record.upstream_ms is not None
    assert 0 < create_record.upstream_ms <= create_record.duration_ms
    assert create_record.upstream_error is None


def test_credential_swap_keeps_each_side_credential_on_its_side(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    upstream_secret = "upstream-secret-0123456789"

    def echo(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        # A careless upstream that echoes the credential it got, in a header and the body.
        auth = seen.header("Authorization") or ""
        body = b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"auth":"%s"}'
        return (
            200,
            [("Content-Type", "application/scim+json"), ("X-Echo", auth)],
            body % (auth.encode()),
        )

    scripted.answer = echo
    proxy = start_proxy(
        tmp_path,
        UpstreamConfig(scripted.url, token=upstream_secret),
        sink,
        auth=AuthConfig("bearer", token="proxy-token-abcdef"),
    )
    proxies.append(proxy)
    # The upstream's token does not open the proxy; nothing reaches the upstream.
    refused = ScimClient(proxy.base_url, token=upstream_secret).get("/Users")
    assert refused.status == 401 and scripted.seen == []
    answer = ScimClient(proxy.base_url, token="proxy-token-abcdef").get("/Users")
    assert answer.status == 200
    (seen,) = scripted.seen
    assert seen.header("Authorization") == f"Bearer {upstream_secret}"
    assert "proxy-token-abcdef" not in str(seen.headers)
    # The echoed upstream credential never reaches the client...
    assert upstream_secret not in answer.raw.decode() + str(dict(answer.headers))
    assert answer.header("X-Echo") == "Bearer ***"
    # ... nor a record.
    record = last_record(sink, 2)
    assert upstream_secret not in repr(record)
    assert "proxy-token-abcdef" not in repr(record)


def test_header_credential_replaces_a_client_header_of_the_same_name(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    proxy = start_proxy(
        tmp_path,
        UpstreamConfig(scripted.url, header=("X-Api-Key", "key-0123456789")),
        sink,
        auth=AuthConfig("bearer", token="proxy-token-abcdef"),
    )
    proxies.append(proxy)
    client = ScimClient(
        proxy.base_url, token="proxy-token-abcdef", headers={"X-Api-Key": "client-made-up"}
    )
    assert client.get("/Users").status == 200
    (seen,) = scripted.seen
    assert seen.header("X-Api-Key") == "key-0123456789"
    assert seen.header("Authorization") is None


def test_paths_query_method_body_and_hop_by_hop_headers(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    def answer(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        return (
            200,
            [
                ("Content-Type", "application/scim+json"),
                ("Connection", "X-Up-Hop"),
                ("X-Up-Hop", "1"),
                ("Keep-Alive", "timeout=5"),
                ("X-End-To-End", "kept"),
                ("Location", "/elsewhere/x"),
            ],
            b"{}",
        )

    scripted.answer = answer
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    proxies.append(proxy)
    client = ScimClient(
        proxy.base_url,
        headers={
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "secret-hop",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "X-Forwarded-For": "6.6.6.6",
            "X-Custom": "end-to-end",
        },
    )
    got = client.patch("/Users/a%20b?attributes=userName&x=1", {"Operations": []})
    assert got.status == 200
    (seen,) = scripted.seen
    assert (seen.method, seen.target) == ("PATCH", "/api/scim/Users/a%20b?attributes=userName&x=1")
    assert seen.body == b'{"Operations": []}'
    names = {n.lower() for n, _ in seen.headers}
    assert {"x-hop", "keep-alive", "te", "proxy-authorization"}.isdisjoint(names)
    assert seen.header("X-Custom") == "end-to-end"
    assert seen.header("Host") == f"127.0.0.1:{scripted.port}"
    # A client's own X-Forwarded-For is not believed: the chain starts at its address.
    assert seen.header("X-Forwarded-For") == "127.0.0.1"
    assert seen.header("X-Forwarded-Proto") == "http"
    assert seen.header("X-Forwarded-Host") == f"127.0.0.1:{proxy.port}"
    assert got.header("X-Up-Hop") is None and got.header("Keep-Alive") is None
    assert got.header("X-End-To-End") == "kept"
    # A Location outside the upstream's SCIM base is left as it was.
    assert got.header("Location") == "/elsewhere/x"


def test_location_on_the_upstream_is_moved_onto_the_proxy(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    locations = iter(
        [
            f"{scripted.url}/Users/1",
            f"HTTP://127.0.0.1:{scripted.port}/api/scim/Users/2?x=1",
            "/api/scim/Users/3",
            "https://other.example/api/scim/Users/4",
        ]
    )
    scripted.answer = lambda seen: (201, [("Location", next(locations))], b"")
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    proxies.append(proxy)
    client = ScimClient(proxy.base_url)
    got = [client.post("/Users", USER).header("Location") for _ in range(4)]
    assert got == [
        f"{proxy.base_url}/Users/1",
        f"{proxy.base_url}/Users/2?x=1",
        f"{proxy.base_url}/Users/3",
        "https://other.example/api/scim/Users/4",
    ]


def test_connections_to_the_upstream_are_kept_alive_and_closed_with_the_server(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink
) -> None:
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    try:
        client = ScimClient(proxy.base_url)
        for _ in range(20):
            assert client.get("/Users").status == 200
        assert len(scripted.seen) == 20
        assert len(scripted.peers) == 1  # one connection carried them all
        assert scripted.open_connections == 1
    finally:
        proxy.stop()
    # Stopping the server ends its upstream connections (a restart in another mode starts
    # clean).
    assert wait_for(lambda: scripted.open_connections == 0)


def test_faults_answer_in_the_proxy_and_the_upstream_sees_nothing(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    faults = (
        parse_fault_spec("status=429,retry_after=30,method=POST,path=/Users,count=1"),
        parse_fault_spec("action=drop,method=DELETE"),
        parse_fault_spec("latency_ms=50,method=PUT"),
    )
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink, faults=faults)
    proxies.append(proxy)
    client = ScimClient(proxy.base_url)
    limited = client.post("/Users", USER)
    assert limited.status == 429 and limited.header("Retry-After") == "30"
    assert scripted.seen == []
    record = last_record(sink)
    assert record.fault is not None and record.upstream_status is None
    with pytest.raises((ConnectionError, OSError)):
        client.delete("/Users/1")
    client.close()
    assert scripted.seen == []
    # Latency delays the forwarded request; it still arrives.
    assert client.put("/Users/1", USER).status == 200
    assert [s.method for s in scripted.seen] == ["PUT"]
    # The rule with count=1 is spent: the next POST goes upstream.
    assert client.post("/Users", USER).status == 200
    assert [s.method for s in scripted.seen] == ["PUT", "POST"]


def test_the_rate_limiter_answers_429_before_forwarding(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    faults = (parse_fault_spec("rate=0.01,burst=2"),)
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink, faults=faults)
    proxies.append(proxy)
    client = ScimClient(proxy.base_url)
    statuses = [client.get("/Users").status for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert len(scripted.seen) == 2


def test_nothing_outside_the_base_path_is_forwarded(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    proxies.append(proxy)
    client = ScimClient(f"http://127.0.0.1:{proxy.port}")
    assert client.get("/admin").status == 404
    assert client.get("/scim/v2x/Users").status == 404
    assert client.get("/scim/v2/../admin").status == 400
    assert client.get("/scim/v2/Users/%2e%2E/admin").status == 400
    assert client.request("CONNECT", "/scim/v2/Users").status == 405
    # A forward proxy's absolute-form request, to another host or to the upstream itself.
    for target in (
        "http://evil.example/scim/v2/Users",
        f"http://127.0.0.1:{scripted.port}/scim/v2/Users",
    ):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: evil.example\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 400 ")
    assert scripted.seen == []
    # The base itself and what is under it are forwarded.
    assert client.get("/scim/v2").status == 200
    assert client.get("/scim/v2/ServiceProviderConfig").status == 200
    assert [s.target for s in scripted.seen] == ["/api/scim", "/api/scim/ServiceProviderConfig"]


def test_upstream_down_is_a_502_and_its_coming_back_is_told(
    tmp_path: Path, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    upstream = ScriptedUpstream().start()
    port = upstream.port
    proxy = start_proxy(tmp_path, UpstreamConfig(upstream.url), sink)
    proxies.append(proxy)
    client = ScimClient(proxy.base_url)
    assert client.get("/Users").status == 200
    upstream.stop()
    down = client.get("/Users")
    assert down.status == 502
    assert down.body["status"] == "502" and "could not be reached" in down.body["detail"]
    assert down.header("Content-Type").startswith("application/scim+json")
    record = last_record(sink, 2)
    assert record.upstream_error is not None and record.upstream_error.startswith("unreachable")
    assert record.upstream_status is None
    assert proxy.upstream_up is False
    again = ScriptedUpstream().start(port)
    try:
        assert client.get("/Users").status == 200
    finally:
        again.stop()
    statuses = [e for e in sink.events if isinstance(e, UpstreamStatus)]
    assert [s.up for s in statuses] == [True, False, True]
    assert all(s.url == upstream.url for s in statuses)


def test_a_slow_upstream_is_a_504_after_the_timeout(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    import time

    def slow(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        time.sleep(1.5)
        return 200, [], b"{}"

    scripted.answer = slow
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url, timeout=0.3), sink)
    proxies.append(proxy)
    answer = ScimClient(proxy.base_url).get("/Users")
    assert answer.status == 504
    assert "did not answer in time" in answer.body["detail"]
    record = last_record(sink)
    assert record.upstream_error == "timed out after 0.3 s"


@pytest.mark.parametrize(
    ("raw", "cause"),
    [
        (b"hello there\r\n\r\n", "not an HTTP/1.1 status line"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not an HTTP/1.1 status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "closed before the whole body"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nabc", "invalid Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "chunk size is not hexadecimal",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n", "the proxy takes at most"),
        (b"", "closed the connection without answering"),
    ],
)
def test_garbage_from_the_upstream_is_a_502_that_says_why(
    tmp_path: Path,
    scripted: ScriptedUpstream,
    sink: RecordingSink,
    proxies: list[ServerThread],
    raw: bytes,
    cause: str,
) -> None:
    scripted.answer = lambda seen: raw
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    proxies.append(proxy)
    answer = ScimClient(proxy.base_url).get("/Users")
    assert answer.status == 502
    assert cause in answer.body["detail"]
    record = last_record(sink)
    assert record.upstream_error is not None and cause in record.upstream_error


def test_an_endless_answer_is_cut_at_the_cap(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    # Close-delimited and chunked answers over the cap (16 MB here) are refused, not buffered.
    big = b"x" * (17 * 1024 * 1024)
    answers = iter(
        [
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"100000\r\n"
            + b"x" * 0x100000
            + b"\r\n" * 1
            + (b"100000\r\n" + b"x" * 0x100000 + b"\r\n") * 16,
        ]
    )
    scripted.answer = lambda seen: next(answers)
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    proxies.append(proxy)
    client = ScimClient(proxy.base_url)
    for _ in range(2):
        answer = client.get("/Users")
        assert answer.status == 502 and "the proxy takes at most" in answer.body["detail"]


def test_https_upstream_self_signed_is_refused_unless_insecure(
    tmp_path: Path, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    from scim_desktop.config import TlsConfig

    upstream_db = tmp_path / "tls-upstream" / "up.json"
    upstream = ServerThread(
        ServerConfig(
            host="127.0.0.1",
            port=0,
            db_path=upstream_db,
            auth=AuthConfig("bearer", token=TOKEN),
            tls=TlsConfig.generated_for(upstream_db),
        ),
        RecordingSink(),
        name="tls-upstream",
    )
    upstream.start()
    proxies.append(upstream)
    assert upstream.base_url.startswith("https://")
    strict = start_proxy(
        tmp_path, UpstreamConfig(upstream.base_url, token=TOKEN), sink, name="strict"
    )
    proxies.append(strict)
    refused = ScimClient(strict.base_url).get("/Users")
    assert refused.status == 502
    assert (
        "not trusted" in refused.body["detail"] and "--insecure-upstream" in refused.body["detail"]
    )
    lax = start_proxy(
        tmp_path,
        UpstreamConfig(upstream.base_url, token=TOKEN, insecure=True),
        sink,
        name="lax",
    )
    proxies.append(lax)
    client = ScimClient(lax.base_url)
    created = client.post("/Users", USER)
    assert created.status == 201
    assert created.header("Location") == f"{lax.base_url}/Users/{created.body['id']}"


def test_secrets_are_redacted_in_text_and_json_lines_logs(
    tmp_path: Path, scripted: ScriptedUpstream, proxies: list[ServerThread]
) -> None:
    import io

    from scim_desktop.server.events import MultiSink
    from scim_desktop.server.log_sinks import JsonLinesSink, TextSink

    upstream_secret = "upstream-secret-0123456789"

    def answer(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        return (
            201,
            [("Content-Type", "application/scim+json"), ("Set-Cookie", "session=s3cr3t-cookie")],
            b'{"id":"1","userName":"ada","password":"pw-from-upstream",'
            b'"note":"%s"}' % upstream_secret.encode(),
        )

    scripted.answer = answer
    text_out, json_out = io.StringIO(), io.StringIO()
    text, jsonl = TextSink(text_out), JsonLinesSink(json_out)
    recording = RecordingSink()
    proxy = start_proxy(
        tmp_path,
        UpstreamConfig(scripted.url, basic=("svc", upstream_secret)),
        MultiSink(text, jsonl, recording),
        auth=AuthConfig("bearer", token="proxy-token-abcdef"),
    )
    proxies.append(proxy)
    client = ScimClient(proxy.base_url, token="proxy-token-abcdef")
    body = {**USER, "password": "client-password-1"}
    assert client.post("/Users?access_token=query-secret-1", body).status == 201
    last_record(recording)
    text.flush()
    jsonl.flush()
    logged = text_out.getvalue() + json_out.getvalue() + repr(recording.events)
    for secret in (
        upstream_secret,
        "proxy-token-abcdef",
        "client-password-1",
        "pw-from-upstream",
        "s3cr3t-cookie",
        "query-secret-1",
    ):
        assert secret not in logged, secret
    assert '"upstream_status":201' in json_out.getvalue()
    assert "(upstream 201 in" in text_out.getvalue()
    text.close()
    jsonl.close()


PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_answers_okta_would_reject_are_flagged_in_the_record(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    from tests.server.test_okta_flows import okta_create_body

    answers = iter(
        [
            # The existence check's list page with totalResults as a string.
            (
                200,
                [("Content-Type", "application/scim+json")],
                b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":"0","Resources":[],"startIndex":1,"itemsPerPage":0}',
            ),
            # A create answered 201 without an id.
            (
                201,
                [("Content-Type", "application/scim+json")],
                b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com"}',
            ),
            # Deactivation answered 204 where Okta expects 200 with the user.
            (204, [], b""),
            # Not JSON at all, though it says so.
            (200, [("Content-Type", "application/scim+json")], b"<html>oops</html>"),
        ]
    )
    scripted.answer = lambda seen: next(answers)
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    proxies.append(proxy)
    client = ScimClient(proxy.base_url, token="t")
    client.get("/Users?filter=userName%20eq%20%22ada%40example.com%22&startIndex=1&count=100")
    client.post("/Users", okta_create_body("ada@example.com"))
    deactivate = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    client.patch("/Users/abc", deactivate)
    client.get("/Users/abc")
    assert wait_for(lambda: len(records(sink)) == 4)
    check, create, patch, garbage = records(sink)
    assert any("totalResults" in p for p in check.okta_problems), check.okta_problems
    assert any("id" in p for p in create.okta_problems), create.okta_problems
    assert any("204" in p for p in patch.okta_problems), (patch.okta_step, patch.okta_problems)
    assert any("not valid JSON" in p for p in garbage.okta_problems), garbage.okta_problems
    # Each line says what is wrong, then what Okta does about it.
    assert all(" — " in p for r in (check, create, patch, garbage) for p in r.okta_problems)


def test_a_kept_alive_connection_the_upstream_closed_is_not_reused(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    scripted.close_silently = True  # answers keep-alive, then closes: every connection stale
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    proxies.append(proxy)
    client = ScimClient(proxy.base_url)
    assert [client.get("/Users").status for _ in range(5)] == [200] * 5
    assert len(scripted.seen) == 5 and len(scripted.peers) == 5  # a new connection each time
    assert all(r.upstream_error is None for r in records(sink))


def test_gzip_and_head_answers_pass_through_and_are_recorded_decoded(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    import gzip
    import http.client

    doc = b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"ada"}'
    packed = gzip.compress(doc)

    def answer(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = [("Content-Type", "application/scim+json"), ("Content-Encoding", "gzip")]
        if seen.method == "HEAD":
            return 200, [*headers, ("Content-Length", str(len(packed)))], b""
        return 200, headers, packed

    scripted.answer = answer
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    proxies.append(proxy)
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request("GET", "/scim/v2/Users/1", headers={"Accept-Encoding": "gzip"})
    got = conn.getresponse()
    assert got.read() == packed  # the bytes as the upstream sent them
    assert got.getheader("Content-Encoding") == "gzip"
    assert scripted.seen[0].header("Accept-Encoding") == "gzip"
    conn.request("HEAD", "/scim/v2/Users/1")
    head = conn.getresponse()
    assert head.read() == b"" and head.getheader("Content-Length") == str(len(packed))
    conn.close()
    assert wait_for(lambda: len(records(sink)) == 2)
    record = records(sink)[0]
    assert record.response_body == doc.decode()  # the record shows the JSON
    assert record.okta_problems == ()
