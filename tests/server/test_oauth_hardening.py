"""OAuth hardening over real sockets (issue 12, section 3 and the token endpoint's part of
section 2): a replayed refresh token revokes its family (RFC 9700 §4.14.2) while a retry
gets its answer again; a code sent in a refused token request (JSON, query) is spent
(RFC 6749 §10.5); a flood of authorization requests cannot evict a waiting consent."""

from __future__ import annotations

import http.client
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from scim_desktop.core.oauth import MAX_PENDING, MAX_PENDING_PER_ORIGIN
from scim_desktop.server.runner import ServerThread
from tests.server.test_oauth_flow import (
    CLIENT_ID,
    REDIRECT,
    Http,
    Reply,
    assert_oauth_error,
    basic,
    consent,
    exchange,
    get_code,
    hidden,
    scim,
    token,
)


def refresh(web: Http, refresh_token: str) -> Reply:
    return token(web, {"grant_type": "refresh_token", "refresh_token": refresh_token}, basic())


def scim_status(server: ServerThread, access_token: str) -> tuple[int, str]:
    client = scim(server, access_token)
    try:
        resp = client.get("/Users")
        return resp.status, (resp.body or {}).get("detail", "")
    finally:
        client.close()


# --- refresh token replay (RFC 9700 §4.14.2) ----------------------------------------------
def test_a_replayed_refresh_token_revokes_the_family(oauth_server, web, db_path) -> None:
    first = exchange(web, get_code(web)).json
    second = refresh(web, first["refresh_token"]).json
    assert scim_status(oauth_server, second["access_token"])[0] == 200
    third = refresh(web, second["refresh_token"]).json  # Okta carries on with the new one
    assert scim_status(oauth_server, third["access_token"])[0] == 200
    other = exchange(web, get_code(web)).json  # a second authorization, not of the family

    replay = refresh(web, first["refresh_token"])
    body = assert_oauth_error(replay, 400, "invalid_grant")
    assert "already used" in body["error_description"]
    assert "RFC 9700 section 4.14.2" in body["error_description"]
    # The current access token and the current refresh token no longer work...
    status, detail = scim_status(oauth_server, third["access_token"])
    assert status == 401
    assert detail.startswith("The access token was revoked")
    assert "RFC 9700" in detail  # the 401 detail says why the family was revoked
    current = assert_oauth_error(refresh(web, third["refresh_token"]), 400, "invalid_grant")
    assert "revoked" in current["error_description"]
    # ... nor any earlier one of the family; the other authorization is untouched.
    for tokens in (first, second):
        assert scim_status(oauth_server, tokens["access_token"])[0] == 401
    assert scim_status(oauth_server, other["access_token"])[0] == 200
    # The window's token list shows the revocation and why.
    infos = oauth_server.oauth_tokens().result(5)
    family = [i for i in infos if i.reason]
    assert len(family) == 6 and {i.status for i in family} == {"revoked"}
    assert all("presented again (RFC 9700 §4.14.2)" in i.reason for i in family)
    assert [i.status for i in infos if not i.reason] == ["active", "active"]
    # It is saved at once (the token file), so a restart does not bring the family back.
    saved = json.loads(db_path.with_name("scim.oauth.json").read_text())["tokens"]
    assert sum(1 for t in saved if "RFC 9700" in t.get("revoked_reason", "")) == 6


def test_two_workers_refreshing_at_once_get_the_same_tokens(oauth_server, web) -> None:
    first = exchange(web, get_code(web)).json
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: refresh(web, first["refresh_token"]), range(4)))
    assert [r.status for r in replies] == [200] * 4, [r.text for r in replies]
    assert len({r.json["refresh_token"] for r in replies}) == 1
    assert len({r.json["access_token"] for r in replies}) == 1
    new = replies[0].json
    assert scim_status(oauth_server, new["access_token"])[0] == 200
    assert refresh(web, new["refresh_token"]).status == 200
    # Once the new refresh token was used, the first one coming back is a replay.
    assert_oauth_error(refresh(web, first["refresh_token"]), 400, "invalid_grant")
    assert scim_status(oauth_server, new["access_token"])[0] == 401


def test_a_refresh_whose_answer_was_lost_can_be_retried(oauth_server, web) -> None:
    first = exchange(web, get_code(web)).json
    form = urlencode({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    request = (
        "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {basic()['Authorization']}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\n\r\n{form}"
    ).encode()
    with socket.create_connection(("127.0.0.1", oauth_server.port), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # the client goes away before the answer arrives
    deadline = time.monotonic() + 5
    while not any(i.status == "rotated" for i in oauth_server.oauth_tokens().result(5)):
        assert time.monotonic() < deadline, "the lost refresh never reached the server"
        time.sleep(0.02)
    retry = refresh(web, first["refresh_token"])
    assert retry.status == 200, retry.text
    tokens = retry.json
    assert scim_status(oauth_server, tokens["access_token"])[0] == 200
    assert refresh(web, tokens["refresh_token"]).status == 200
    # One refreshed pair was issued, not two: the retry got the lost answer.
    infos = oauth_server.oauth_tokens().result(5)
    assert sum(1 for i in infos if i.grant == "refresh_token") == 4  # two refreshes


# --- a code sent in a refused token request is spent (RFC 6749 §3.2, §10.5) -----------------
def post_raw(web: Http, path: str, body: bytes, content_type: str | None) -> Reply:
    headers = dict(basic())
    if content_type is not None:
        headers["Content-Type"] = content_type
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def as_json(code: str) -> bytes:
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    return json.dumps(params).encode()


@pytest.mark.parametrize(
    ("content_type", "build"),
    [
        ("application/json", as_json),
        ("application/json", lambda c: as_json(c).replace(b'"ac_', b'"\\u0061c_')),
        (None, as_json),
        ("text/plain", lambda c: f"grant_type=authorization_code&code={c}".encode()),
    ],
    ids=["json", "json-escaped", "no-content-type", "form-as-text"],
)
def test_a_code_sent_in_a_refused_body_is_spent(web, content_type, build) -> None:
    code = get_code(web)
    reply = post_raw(web, "/oauth/token", build(code), content_type)
    body = assert_oauth_error(reply, 400, "invalid_request")
    assert "application/x-www-form-urlencoded" in body["error_description"]
    assert "can no longer be used" in body["error_description"]
    # Afterwards, as a form, the code is refused: it may sit in some log in clear.
    again = assert_oauth_error(exchange(web, code), 400, "invalid_grant")
    assert "can no longer be used" in again["error_description"]
    assert "refused" in again["error_description"]
    # The client authorizes again and carries on.
    assert exchange(web, get_code(web)).status == 200


def test_a_code_in_the_token_request_query_is_spent(web) -> None:
    code = get_code(web)
    form = urlencode({"grant_type": "authorization_code", "redirect_uri": REDIRECT}).encode()
    reply = post_raw(web, f"/oauth/token?code={code}", form, "application/x-www-form-urlencoded")
    body = assert_oauth_error(reply, 400, "invalid_request")
    assert "code parameter is missing" in body["error_description"]
    assert_oauth_error(exchange(web, code), 400, "invalid_grant")


def test_a_json_body_without_a_code_changes_nothing(oauth_server, web) -> None:
    tokens = exchange(web, get_code(web)).json
    payload = json.dumps({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    reply = post_raw(web, "/oauth/token", payload.encode(), "application/json")
    body = assert_oauth_error(reply, 400, "invalid_request")
    assert "can no longer be used" not in body["error_description"]
    # A refresh token is not spent by a malformed request: ending it would end the grant.
    assert refresh(web, tokens["refresh_token"]).status == 200


# --- waiting consents cannot be evicted by a flood ------------------------------------------
def authorize_path(n: int) -> str:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "state": f"flood-{n}",
    }
    return "/oauth/authorize?" + urlencode(query)


def flood(
    port: int, count: int, source: str = "127.0.0.1", headers: dict[str, str] | None = None
) -> dict[str, int]:
    """``count`` anonymous authorization requests on one keep-alive connection from
    ``source``; how many got a consent page and how many went back to the client with
    temporarily_unavailable."""
    seen = {"consent": 0, "temporarily_unavailable": 0}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        for n in range(count):
            conn.request("GET", authorize_path(n), headers=headers or {})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                seen["consent"] += 1
                continue
            assert resp.status == 302, resp.status
            query = parse_qs(urlsplit(resp.headers["Location"]).query)
            assert query["error"] == ["temporarily_unavailable"]
            assert query["state"] == [f"flood-{n}"]  # the client can match it up
            seen["temporarily_unavailable"] += 1
    finally:
        conn.close()
    return seen


def approve_page(web: Http, page: Reply) -> Reply:
    return web.request(
        "POST",
        "/oauth/authorize",
        {
            "request": hidden(page.text, "request"),
            "csrf": hidden(page.text, "csrf"),
            "decision": "approve",
        },
    )


def assert_approvable(oauth_server: ServerThread, web: Http, page: Reply) -> None:
    reply = approve_page(web, page)
    assert reply.status == 303, reply.text
    code = parse_qs(urlsplit(reply.headers["Location"]).query)["code"][0]
    tokens = exchange(web, code)
    assert tokens.status == 200
    assert scim_status(oauth_server, tokens.json["access_token"])[0] == 200


def test_a_flood_from_the_users_address_cannot_evict_the_consent(oauth_server, web) -> None:
    # Same address as the user: what everyone looks like behind a tunnel.
    page = consent(web)
    assert page.status == 200
    seen = flood(oauth_server.port, 1000)
    assert seen == {"consent": MAX_PENDING_PER_ORIGIN - 1, "temporarily_unavailable": 991}
    assert_approvable(oauth_server, web, page)


def test_behind_a_tunnel_the_cap_is_per_forwarded_client(oauth_server, web) -> None:
    # Through a tunnel every request comes from loopback; the tunnel names the client in
    # X-Forwarded-For, so one internet client cannot take every place.
    user = {"X-Forwarded-For": "203.0.113.5"}
    page = web.request("GET", authorize_path(-1), headers=user)
    assert page.status == 200
    seen = flood(oauth_server.port, 1000, headers={"X-Forwarded-For": "198.51.100.7"})
    assert seen == {"consent": MAX_PENDING_PER_ORIGIN, "temporarily_unavailable": 990}
    again = web.request("GET", authorize_path(-2), headers=user)
    assert again.status == 200  # the user can still start one
    assert_approvable(oauth_server, web, page)
    assert_approvable(oauth_server, web, again)


def can_bind(address: str) -> bool:
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


needs_loopback_net = pytest.mark.skipif(
    not can_bind("127.0.0.2"), reason="127.0.0.2 is not a local address here (macOS)"
)


@needs_loopback_net
def test_a_flood_from_another_address_is_capped_per_client(oauth_server, web) -> None:
    page = consent(web)
    seen = flood(oauth_server.port, 1000, source="127.0.0.2")
    assert seen == {"consent": MAX_PENDING_PER_ORIGIN, "temporarily_unavailable": 990}
    # Other clients can still start (the flood holds its own share only).
    assert consent(web, state="someone-else").status == 200
    assert_approvable(oauth_server, web, page)


@needs_loopback_net
def test_a_flood_from_many_addresses_fills_the_table_but_evicts_nothing(oauth_server, web) -> None:
    page = consent(web)
    sources = [f"127.0.{n // 200}.{2 + n % 200}" for n in range(100)]
    total = {"consent": 0, "temporarily_unavailable": 0}
    for source in sources:  # 100 addresses x 10 requests = 1,000
        for key, value in flood(oauth_server.port, 10, source).items():
            total[key] += value
    # Bounded: the table holds MAX_PENDING in all, the user's one included.
    assert total == {"consent": MAX_PENDING - 1, "temporarily_unavailable": 1000 - MAX_PENDING + 1}
    late = consent(web, state="late")
    assert late.status == 302 and "temporarily_unavailable" in late.headers["Location"]
    assert_approvable(oauth_server, web, page)
    assert consent(web, state="next").status == 200  # the place the decision freed
