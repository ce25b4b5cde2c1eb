"""What the SCIM endpoints' own HTTP layer (scim_desktop/server/handlers.py, http1.py) must do that
Tornado's RequestHandler used to: headers, HEAD, 405, gzip, decoding of paths and queries,
keep-alive, 100-continue, clients that go away, and OAuth paths handed to the Application."""

from __future__ import annotations

import email.utils
import gzip
import http.client
import json
import re
import socket
import time

import pytest

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.server.events import RequestRecord
from scim_desktop.server.handlers import GZIP_FAST_ABOVE
from scim_desktop.server.runner import ServerThread
from tests.conftest import TOKEN, RecordingSink
from tests.scim_client import ScimClient
from tests.server.test_okta_flows import ERROR_SCHEMA, GROUP_SCHEMA, make_users, okta_create_body

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def raw_exchange(port: int, request: bytes, *, read_until_close: bool = False) -> bytes:
    """Send bytes, return what came back (one response, or everything until the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if not read_until_close and b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(body) >= length[0]:
                    break
        return data


def records(sink: RecordingSink) -> list[RequestRecord]:
    return [e for e in sink.events if isinstance(e, RequestRecord)]


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_standard_headers(client: ScimClient) -> None:
    resp = client.get("/Users")
    assert resp.status == 200
    date = resp.header("Date")
    assert date and abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()) < 5
    assert resp.header("Content-Length") == str(len(resp.raw))
    assert resp.header("Vary") == "Accept-Encoding"
    assert resp.header("Server") is None  # no product banner


def test_head_has_the_get_headers_and_no_body(server: ServerThread) -> None:
    c = ScimClient(server.base_url, token=TOKEN)
    uid = make_users(c, 1)[0]["id"]
    get = c.get(f"/Users/{uid}")
    c.close()
    reply = raw_exchange(
        server.port,
        f"HEAD /scim/v2/Users/{uid} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n".encode(),
        read_until_close=True,
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b""
    assert f"Content-Length: {len(get.raw)}".encode() in head
    assert f"ETag: {get.header('ETag')}".encode() in head  # RFC 9110's spelling


def test_unknown_method_is_405_with_allow_before_auth(server: ServerThread) -> None:
    reply = raw_exchange(server.port, b"BREW /scim/v2/Users HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405")
    assert b"Allow: GET, HEAD, POST" in head
    assert json.loads(body)["schemas"] == [ERROR_SCHEMA]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/Users", "GET, HEAD, POST"),
        ("POST", "/Users/abc", "GET, HEAD, PUT, PATCH, DELETE"),
        ("PUT", "/ServiceProviderConfig", "GET"),
        ("GET", "/Users/.search", "POST"),
    ],
)
def test_method_not_allowed_lists_allowed(client: ScimClient, method, path, allow) -> None:
    resp = client.request(method, path, {} if method in ("POST", "PUT") else None)
    assert resp.status == 405
    assert resp.header("Allow") == allow
    assert resp.body["status"] == "405"


def test_wrong_method_still_needs_auth(server: ServerThread) -> None:
    c = ScimClient(server.base_url, token="wrong")
    assert c.request("DELETE", "/Users").status == 401
    c.close()


def test_unknown_path_is_404_without_auth_for_any_method(server: ServerThread) -> None:
    c = ScimClient(server.base_url, token="wrong")
    for method in ("GET", "POST", "OPTIONS", "HEAD"):
        resp = c.request(method, "/Nowhere")
        assert resp.status == 404, method
    c.close()


def test_percent_encoded_ids_and_case_insensitive_collections(client: ScimClient) -> None:
    uid = make_users(client, 1)[0]["id"]
    encoded = "".join(f"%{b:02X}" for b in uid.encode())
    assert client.get(f"/users/{encoded}/").body["id"] == uid
    assert client.get("/GROUPS").status == 200
    bad = client.get("/Users/%FF%FE")
    assert bad.status == 400 and "UTF-8" in bad.body["detail"]


def test_query_values_are_decoded_and_stripped(client: ScimClient) -> None:
    make_users(client, 3)
    resp = client.get("/Users?count=%202%20&startIndex=1")
    assert resp.status == 200 and resp.body["itemsPerPage"] == 2
    bad = client.get("/Users?filter=%FF")
    assert bad.status == 400 and bad.body["schemas"] == [ERROR_SCHEMA]


def test_gzip_only_for_bodies_worth_it(client: ScimClient, server: ServerThread) -> None:
    make_users(client, 5)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for path, compressed in (("/scim/v2/Users?count=5", True), ("/scim/v2/Users?count=0", False)):
        conn.request("GET", path, headers={**AUTH, "Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        raw = resp.read()
        assert resp.getheader("Content-Length") == str(len(raw))
        if compressed:
            assert resp.getheader("Content-Encoding") == "gzip"
            assert json.loads(gzip.decompress(raw))["totalResults"] == 5
        else:
            assert resp.getheader("Content-Encoding") is None
            assert json.loads(raw)["totalResults"] == 5
    conn.close()


SCIM_CT = {"Content-Type": "application/scim+json"}


def test_long_answers_are_gzipped_at_the_fastest_level(
    client: ScimClient, server: ServerThread
) -> None:
    """gzip runs on the loop: past GZIP_FAST_ABOVE it uses level 1 (the gzip header's XFL byte
    says 4, "fastest", RFC 1952 §2.3.1), shorter answers level 6 (XFL 0); both decode to the
    same answer as without gzip."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    group = {"schemas": [GROUP_SCHEMA], "displayName": "Big", "members": []}
    conn.request("POST", "/scim/v2/Groups", json.dumps(group), {**AUTH, **SCIM_CT})
    gid = json.loads(conn.getresponse().read())["id"]
    for size, xfl in ((2_000, 0), (GZIP_FAST_ABOVE + 10_000, 4)):
        body = {"schemas": [GROUP_SCHEMA], "displayName": "g" * size, "members": []}
        conn.request("PUT", f"/scim/v2/Groups/{gid}", json.dumps(body), {**AUTH, **SCIM_CT})
        plain = json.loads(conn.getresponse().read())
        conn.request("GET", f"/scim/v2/Groups/{gid}", headers={**AUTH, "Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        raw = resp.read()
        assert resp.getheader("Content-Encoding") == "gzip"
        assert raw[8] == xfl, size
        assert json.loads(gzip.decompress(raw))["displayName"] == plain["displayName"]
    conn.close()


def test_keep_alive_serves_many_requests_on_one_connection(client: ScimClient) -> None:
    uid = make_users(client, 1)[0]["id"]
    for _ in range(50):
        assert client.get(f"/Users/{uid}").status == 200
    assert client.get("/Users/nope").status == 404
    assert client.get(f"/Users/{uid}").status == 200


def test_expect_100_continue(server: ServerThread) -> None:
    body = json.dumps(okta_create_body("cont@example.com")).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\nContent-Type: application/scim+json\r\nExpect: 100-continue\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        interim = sock.recv(100)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert b"HTTP/1.1 201" in reply


def test_delete_answer_has_no_content_headers(client: ScimClient) -> None:
    created = client.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "G", "members": []})
    resp = client.request("DELETE", f"/Groups/{created.body['id']}")
    assert resp.status == 204 and resp.raw == b""
    assert resp.header("Content-Type") is None


def test_chunked_request_body(server: ServerThread) -> None:
    body = json.dumps(okta_create_body("chunk@example.com")).encode()
    half = len(body) // 2
    chunked = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:half], body[half:])
    )
    reply = raw_exchange(
        server.port,
        b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        + b"Connection: close\r\n\r\n"
        + chunked
        + b"0\r\n\r\n",
        read_until_close=True,
    )
    assert reply.startswith(b"HTTP/1.1 201")
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["userName"] == "chunk@example.com"


def start_with_latency(db_path, sink: RecordingSink, latency_ms: int) -> ServerThread:
    """A started server whose /Users answers wait ``latency_ms`` (an injected fault)."""
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        db_path=db_path,
        auth=AuthConfig("bearer", token=TOKEN),
        faults=(parse_fault_spec(f"latency_ms={latency_ms},path=/Users"),),
    )
    server = ServerThread(config, sink)
    server.start()
    return server


def test_client_gone_during_latency_is_recorded_without_answer(
    db_path, sink: RecordingSink
) -> None:
    server = start_with_latency(db_path, sink, 400)
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(
            b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
        time.sleep(0.1)
        sock.close()
        wait_for(lambda: len(records(sink)) == 1)
        [record] = records(sink)
        assert record.status == 0 and record.fault
        assert server.context.stats["active"] == 0
        c = ScimClient(server.base_url, token=TOKEN)
        assert c.get("/ServiceProviderConfig").status == 200  # still serving
        c.close()
    finally:
        server.stop()


def test_records_carry_request_and_response(client: ScimClient, sink: RecordingSink) -> None:
    client.post("/Users", okta_create_body("rec@example.com"))
    wait_for(lambda: any(r.method == "POST" for r in records(sink)))
    [post] = [r for r in records(sink) if r.method == "POST"]
    assert post.status == 201 and post.path == "/scim/v2/Users"
    assert post.request_headers["Authorization"] == "Bearer ***"
    assert '"password":"***"' in post.request_body.replace(" ", "")
    assert json.loads(post.response_body)["userName"] == "rec@example.com"
    assert post.response_headers["Location"].endswith(json.loads(post.response_body)["id"])
    assert post.okta_step and post.okta_label


@pytest.mark.parametrize(
    "query",
    [
        "",
        "a=1&b=2",
        "filter=userName%20eq%20%22jane%40example.com%22&startIndex=1&count=100",
        "a=1&a=2",
        "x=a+b%2Bc",
        "empty=&flag",
        "&&a=1&",
        "caf%C3%A9=th%C3%A9",
        "k=%20padded%20",
        "eq=a=b",
    ],
)
def test_query_parsing_matches_urllib(query: str) -> None:
    from urllib.parse import parse_qsl

    from scim_desktop.server.endpoints import parse_query

    expected = {k: v.strip() for k, v in parse_qsl(query, keep_blank_values=True)}
    assert parse_query(query) == expected


def test_query_control_characters_and_bad_utf8() -> None:
    from scim_desktop.core.errors import BadRequest
    from scim_desktop.server.endpoints import parse_query

    assert parse_query("a=x%01y") == {"a": "x y"}
    with pytest.raises(BadRequest):
        parse_query("a=%FF")


def test_repeated_authorization_headers_are_refused(server: ServerThread) -> None:
    reply = raw_exchange(
        server.port,
        b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {TOKEN}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode(),
    )
    assert reply.startswith(b"HTTP/1.1 401")


def test_pipelined_requests_are_answered_in_order(server: ServerThread) -> None:
    """Two creates and a read sent in one packet: answered one after the other, in order
    (the writes wait for their fsync before the next request is read)."""
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    requests = b""
    for name in ("pipe1@example.com", "pipe2@example.com"):
        body = json.dumps(okta_create_body(name)).encode()
        requests += (
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            + auth
            + b"Content-Type: application/scim+json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    requests += b"GET /scim/v2/Users?count=5 HTTP/1.1\r\nHost: x\r\n" + auth
    requests += b"Connection: close\r\n\r\n"
    reply = raw_exchange(server.port, requests, read_until_close=True)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", reply)
    assert statuses == [b"201", b"201", b"200"]
    first, second = reply.index(b"pipe1@example.com"), reply.index(b"pipe2@example.com")
    assert first < second
    assert reply.rstrip().endswith(b"}") and b'"totalResults":2' in reply


def test_http_1_0_gets_an_answer_and_the_connection_closes(server: ServerThread) -> None:
    reply = raw_exchange(
        server.port,
        b"GET /scim/v2/ServiceProviderConfig HTTP/1.0\r\n"
        + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode(),
        read_until_close=True,
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["schemas"] == [
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    ]
